"""pdpyras, the Events API v2 client Foresight sends through: its import, its sessions made single-attempt,
one request per outbox event, and PagerDuty's answer when it refuses.

Retries are not here: ``connectors.sinks.pagerduty.PagerDutySender`` retries within its
``RetryPolicy``, so every session this module sets up makes exactly one attempt per call.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping
from types import ModuleType
from typing import TYPE_CHECKING, Any

from connectors.sinks.pagerduty_outbox import InvalidEventError

if TYPE_CHECKING:
    from pdpyras import EventsAPISession, PDSession


def pdpyras() -> ModuleType:
    """Import pdpyras on first use, without its import-time notice that it is succeeded by the
    ``pagerduty`` package (same session API; moving over is a separate change)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*pdpyras.*deprecated", category=UserWarning)
        import pdpyras as module  # lazy: only runs that page need pdpyras
    return module


class _DebugOnly(logging.LoggerAdapter):  # type: ignore[type-arg]
    """pdpyras' retry messages, demoted to debug: with its retries off they would misreport."""

    def log(self, level: int, msg: object, *args: Any, **kwargs: Any) -> None:
        super().log(logging.DEBUG, msg, *args, **kwargs)


def single_attempt(session: PDSession, base_url: str, timeout: float) -> None:
    """Point a pdpyras session at ``base_url`` and switch its own retries off (ours are the only ones).

    pdpyras retries a status only when ``session.retry`` names it, except 429, which it retries
    forever unless named; naming 429 with ``max_http_attempts = -1`` makes it return the first
    429 to us. ``max_network_attempts = 0`` raises the first network error.
    """
    session.url = base_url.rstrip("/")
    session.retry = {429: 1}
    session.max_http_attempts = -1
    session.max_network_attempts = 0
    session.timeout = timeout
    session.log = _DebugOnly(logging.getLogger("connectors.sinks.pagerduty.pdpyras"), {})


def post_event(session: EventsAPISession, event: Mapping[str, Any]) -> str:
    """One Events API v2 request for an outbox event, as the outbox holds it but for the routing
    key (the session adds its own). A trigger goes through pdpyras' ``send_event``, not its
    ``trigger``, which drops ``client`` and ``client_url``."""
    action = event.get("event_action")
    key = event.get("dedup_key")
    if action == "trigger":
        fields = {
            name: event[name] for name in ("payload", "links", "images", "client", "client_url") if event.get(name)
        }
        return str(session.send_event("trigger", dedup_key=key, **fields))
    if action == "resolve":
        return str(session.resolve(key))
    if action == "acknowledge":
        return str(session.acknowledge(key))
    raise InvalidEventError("event_action", f"cannot send {action!r}", event)


def refusal_text(exc: Exception) -> str:
    """PagerDuty's error body (trimmed) or the exception text for network errors."""
    response = getattr(exc, "response", None)
    if response is not None:
        text = (response.text or "").strip()
        return text[:500] if text else response.reason or "empty response"
    cause = exc.__cause__
    return f"{type(cause).__name__}: {cause}" if cause is not None else str(exc)
