"""PagerDuty delivery: outbox events to the Events API v2, model promotions as change events.

The detect flow writes every page to the outbox first (``connectors.sinks.pagerduty_outbox``); this
module delivers what the outbox holds and records each delivery in a ledger next to it
(``pagerduty-events.delivered.jsonl``). An event is *pending* while its ``(dedup_key,
event_action)`` is in the outbox but not in the ledger, so a run that cannot reach PagerDuty
loses nothing (the next run sends it) and a re-run sends nothing twice. Delivery is
at-least-once: a crash between PagerDuty's 202 and the ledger write resends one event, which
PagerDuty de-duplicates by ``dedup_key`` (a repeated trigger joins the open alert, a repeated
resolve is dropped).

Retries live here and only here: pdpyras' own retry loop is switched off on every session
(it retries 429 without limit and ignores ``Retry-After``), and the Prefect task that calls
:meth:`PagerDutySender.deliver` has no retries of its own. Each event gets at most
``RetryPolicy.max_attempts`` attempts on 429, 5xx and network errors, waiting what
``Retry-After`` asks or an exponential backoff; a wait longer than ``RetryPolicy.max_wait``
ends the run's delivery and leaves the rest pending. A 4xx other than 429 is PagerDuty
rejecting the event: it stays pending (and is reported) but does not stop the others.

Outbox events hold a reference to the routing key (``{"ref": "sinks.pagerduty_routing_key"}``),
never the key: the sender is built from that setting and its session puts the key on each
request, so events written while no key was configured (embedded mode, or a misspelt key) are
delivered like any other once one is. An event whose reference names a setting this sender does
not hold stays pending and is reported (``unroutable``). A trigger whose resolve is also still
pending describes a problem that cleared before anyone could be told; both are recorded as
``suppressed`` instead of paging for the past (``send_cleared=True`` sends them anyway); so
turning a key on after a quiet week pages only for what is still open.

pdpyras is imported inside functions (only runs that page need it).
"""

from __future__ import annotations

import logging
import math
import time
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, TypeVar

from connectors.sinks.pagerduty_outbox import (
    MAX_SUMMARY,
    ROUTING_KEY_SETTING,
    InvalidEventError,
    JsonLinesLog,
    Outbox,
    check_links,
    check_summary_and_timestamp,
    exclusive_lock,
    routing_key_setting,
)
from foresight.redact import redact_url

if TYPE_CHECKING:
    from pdpyras import ChangeEventsAPISession, EventsAPISession, PDSession

    from foresight.settings import Settings

log = logging.getLogger(__name__)

DEFAULT_EVENTS_URL = "https://events.pagerduty.com"
ROUTING_KEY_LENGTH = 32  # PagerDuty integration keys are 32 characters
REQUEST_TIMEOUT_SECONDS = 10.0
DELIVERED, SUPPRESSED = "delivered", "suppressed"
CHANGE_ACTION = "change"  # the ledger's event_action for change events (they have none of their own)

T = TypeVar("T")


# -- retry policy (pure) -----------------------------------------------------------------------
@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long one event is retried on 429 / 5xx / network errors within a run."""

    max_attempts: int = 4
    base_delay: float = 1.0  # backoff without Retry-After: base_delay * 2 ** (attempt - 1)
    max_wait: float = 30.0  # never block longer than this once; a longer Retry-After defers the event

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {self.max_attempts}")
        if not (self.base_delay >= 0 and math.isfinite(self.base_delay)):
            raise ValueError(f"base_delay must be a finite number >= 0, got {self.base_delay}")
        if not (self.max_wait > 0 and math.isfinite(self.max_wait)):
            raise ValueError(f"max_wait must be a finite number > 0, got {self.max_wait}")

    def wait_before_retry(self, attempt: int, retry_after: float | None) -> float | None:
        """Seconds to wait after failed attempt ``attempt`` (1-based), or None to stop trying now.

        ``Retry-After`` wins over the backoff; one beyond ``max_wait`` stops (the event stays
        pending for the next run) rather than holding the flow.
        """
        if attempt >= self.max_attempts:
            return None
        if retry_after is not None:
            return None if retry_after > self.max_wait else max(retry_after, 0.0)
        return min(self.base_delay * 2 ** (attempt - 1), self.max_wait)


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """A ``Retry-After`` header in seconds: delta-seconds or an HTTP-date (RFC 9110); None if absent or unreadable."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - (now or datetime.now(UTC))).total_seconds(), 0.0)


# -- delivery planning (pure) ------------------------------------------------------------------
@dataclass(frozen=True)
class DeliveryPlan:
    """What one run should do with the outbox: events to send (outbox order) and to suppress."""

    send: list[dict[str, Any]]
    suppress: list[dict[str, Any]]
    unroutable: list[dict[str, Any]]  # pending, but their routing-key reference names no key we hold


def plan_delivery(
    events: Iterable[Mapping[str, Any]],
    done: set[tuple[str, str]],
    *,
    send_cleared: bool = False,
    key_setting: str = ROUTING_KEY_SETTING,
) -> DeliveryPlan:
    """Split outbox ``events`` into those to send and to suppress, given ledger identities ``done``.

    Pending = not in ``done``, whenever it was written: the key is added at send time, so an
    event written before a key was configured is sent like any other. A pending event whose
    routing-key reference is not ``key_setting`` is ``unroutable`` (left pending). Unless
    ``send_cleared``, a dedup key whose trigger and resolve are both pending is suppressed
    whole: the problem cleared before it was delivered, and paging for it now would only wake
    someone for the past.
    """
    pending: list[dict[str, Any]] = []
    unroutable: list[dict[str, Any]] = []
    for event in events:
        if _identity(event) in done:
            continue
        (pending if routing_key_setting(event) == key_setting else unroutable).append(dict(event))
    cleared: set[str] = set()
    if not send_cleared:
        actions: dict[str, set[str]] = {}
        for event in pending:
            actions.setdefault(str(event.get("dedup_key")), set()).add(str(event.get("event_action")))
        cleared = {key for key, acts in actions.items() if {"trigger", "resolve"} <= acts}
    send = [e for e in pending if str(e.get("dedup_key")) not in cleared]
    suppress = [e for e in pending if str(e.get("dedup_key")) in cleared]
    return DeliveryPlan(send=send, suppress=suppress, unroutable=unroutable)


# -- change events (pure) ----------------------------------------------------------------------
def promotion_change_event(
    registered_name: str,
    version: str,
    reason: str,
    *,
    timestamp: datetime,
    metrics: Mapping[str, float] | None = None,
    run_id: str | None = None,
    links: list[dict[str, str]] | None = None,
) -> dict[str, Any]:
    """A validated Change Events API body (without ``routing_key``) announcing a new champion."""
    if timestamp.tzinfo is None:
        raise ValueError("timestamp must be timezone-aware")
    details: dict[str, Any] = {"registered_model": registered_name, "version": str(version), "reason": reason}
    if metrics:
        details["metrics"] = {k: float(v) for k, v in metrics.items() if math.isfinite(float(v))}
    if run_id:
        details["mlflow_run_id"] = run_id
    summary = f"Foresight: {registered_name} v{version} promoted to champion ({reason})"
    event: dict[str, Any] = {
        "payload": {
            "summary": summary if len(summary) <= MAX_SUMMARY else summary[: MAX_SUMMARY - 1] + "…",
            "source": f"foresight/{registered_name}",
            "timestamp": timestamp.astimezone(UTC).isoformat().replace("+00:00", "Z"),
            "custom_details": details,
        },
        "links": list(links or []),
    }
    validate_change_event(event)
    return event


def validate_change_event(event: Mapping[str, Any]) -> None:
    """Raise :class:`InvalidEventError` naming the first field that breaks a Change Events API rule."""
    payload = event.get("payload")
    if not isinstance(payload, Mapping):
        raise InvalidEventError("payload", "a change event needs a payload object", event)
    check_summary_and_timestamp(payload, event)
    check_links(event)


# -- errors and reports ------------------------------------------------------------------------
class DeliveryError(RuntimeError):
    """One event was not delivered. ``.status`` is the last HTTP status (None: network error),
    ``.retryable`` whether PagerDuty was throttling or unavailable (vs. rejecting the event),
    ``.attempts`` how many requests were made, ``.detail`` PagerDuty's answer."""

    def __init__(self, what: str, status: int | None, detail: str, attempts: int, *, retryable: bool) -> None:
        self.what, self.status, self.detail, self.attempts, self.retryable = (
            what,
            status,
            detail,
            attempts,
            retryable,
        )
        answer = "no response" if status is None else f"HTTP {status}"
        super().__init__(f"PagerDuty {what}: {answer} after {attempts} attempt(s): {detail}")


@dataclass(frozen=True)
class DeliveryFailure:
    """An event left pending by a run, and why."""

    dedup_key: str
    event_action: str
    status: int | None
    detail: str
    retryable: bool


@dataclass
class DeliveryReport:
    """What one delivery run did; ``pending`` counts events still to send after it (unroutable
    ones included: ``unroutable`` of them name a routing-key setting this sender does not hold)."""

    delivered: int = 0
    suppressed: int = 0
    pending: int = 0
    unroutable: int = 0
    failures: list[DeliveryFailure] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "delivered": self.delivered,
            "suppressed": self.suppressed,
            "pending": self.pending,
            "unroutable": self.unroutable,
            "failures": [
                {
                    "dedup_key": f.dedup_key,
                    "event_action": f.event_action,
                    "status": f.status,
                    "detail": f.detail,
                    "retryable": f.retryable,
                }
                for f in self.failures
            ],
        }


# -- the ledger (I/O) --------------------------------------------------------------------------
class DeliveryLedger(JsonLinesLog):
    """Which outbox events (and change events) reached PagerDuty or were suppressed, one line each."""

    def _validate(self, record: Mapping[str, Any]) -> None:
        for name in ("dedup_key", "event_action"):
            if not isinstance(record.get(name), str) or not record[name]:
                raise ValueError(f"ledger record needs a non-empty string {name!r}: {dict(record)!r}")
        if record.get("state") not in (DELIVERED, SUPPRESSED):
            raise ValueError(f"ledger record state must be {DELIVERED!r} or {SUPPRESSED!r}: {dict(record)!r}")


def ledger_path(outbox_path: str | Path) -> Path:
    """The delivery ledger beside an outbox: ``pagerduty-events.jsonl`` -> ``pagerduty-events.delivered.jsonl``."""
    path = Path(outbox_path)
    return path.with_name(f"{path.stem}.delivered.jsonl")


def _ledger_record(dedup_key: str, action: str, state: str, **extra: Any) -> dict[str, Any]:
    at = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    return {"dedup_key": dedup_key, "event_action": action, "state": state, "at": at, **extra}


# -- the sender (I/O) --------------------------------------------------------------------------
def pdpyras() -> ModuleType:
    """Import pdpyras on first use, without its import-time notice that it is succeeded by the
    ``pagerduty`` package (same session API; moving over is a separate change)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*pdpyras.*deprecated", category=UserWarning)
        import pdpyras as module  # lazy: its import warns; filtered here
    return module


class _DebugOnly(logging.LoggerAdapter):  # type: ignore[type-arg]
    """pdpyras' retry messages, demoted to debug: with its retries off they would misreport."""

    def log(self, level: int, msg: object, *args: Any, **kwargs: Any) -> None:
        super().log(logging.DEBUG, msg, *args, **kwargs)


def _single_attempt(session: PDSession, base_url: str, timeout: float) -> None:
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
    session.log = _DebugOnly(logging.getLogger(f"{__name__}.pdpyras"), {})


class PagerDutySender:
    """Sends Events API v2 events with bounded retries, and delivers an outbox exactly once per event."""

    def __init__(
        self,
        routing_key: str,
        *,
        events_url: str = DEFAULT_EVENTS_URL,
        retry: RetryPolicy | None = None,
        send_cleared: bool = False,
        timeout: float = REQUEST_TIMEOUT_SECONDS,
        sleep: Callable[[float], None] = time.sleep,
        key_setting: str = ROUTING_KEY_SETTING,
    ) -> None:
        if not isinstance(routing_key, str) or len(routing_key) != ROUTING_KEY_LENGTH:
            length = len(routing_key) if isinstance(routing_key, str) else type(routing_key).__name__
            raise ValueError(
                f"PagerDuty routing key must be the {ROUTING_KEY_LENGTH}-character integration key, got {length}"
            )
        if not events_url.startswith(("http://", "https://")):
            raise ValueError(f"events_url must be an http(s) URL, got {redact_url(events_url)!r}")
        self._routing_key = routing_key
        self.key_setting = key_setting  # the outbox reference this key answers
        self.events_url = events_url.rstrip("/")
        self.retry = retry or RetryPolicy()
        self.send_cleared = send_cleared
        self.timeout = timeout
        self._sleep = sleep

    @classmethod
    def from_settings(cls, settings: Settings) -> PagerDutySender | None:
        """The sender the settings describe, or None in embedded mode (no routing key)."""
        sinks = settings.sinks
        if sinks.pagerduty_routing_key is None:
            return None
        return cls(
            sinks.pagerduty_routing_key.get_secret_value(),
            events_url=sinks.pagerduty_events_url,
            retry=RetryPolicy(
                max_attempts=sinks.pagerduty_max_attempts, max_wait=sinks.pagerduty_max_wait_seconds
            ),
        )

    def __repr__(self) -> str:  # never show the key
        return f"PagerDutySender(events_url={redact_url(self.events_url)!r}, key_setting={self.key_setting!r})"

    # sessions ---------------------------------------------------------------------------------
    def _events_session(self) -> EventsAPISession:
        session = pdpyras().EventsAPISession(self._routing_key)
        _single_attempt(session, self.events_url, self.timeout)
        return session

    def _change_session(self) -> ChangeEventsAPISession:
        session = pdpyras().ChangeEventsAPISession(self._routing_key)
        _single_attempt(session, self.events_url, self.timeout)
        return session

    # one request, retried -----------------------------------------------------------------------
    def _with_retries(self, what: str, call: Callable[[], T]) -> T:
        PDClientError = pdpyras().PDClientError  # noqa: N806 - the library's class
        attempt = 0
        while True:
            attempt += 1
            try:
                return call()
            except PDClientError as exc:
                response = exc.response
                status = None if response is None else int(response.status_code)
                detail = _answer(exc)
                if status is not None and status != 429 and status < 500:
                    raise DeliveryError(what, status, detail, attempt, retryable=False) from exc
                retry_after = (
                    None if response is None else retry_after_seconds(response.headers.get("Retry-After"))
                )
                wait = self.retry.wait_before_retry(attempt, retry_after)
                if wait is None:
                    raise DeliveryError(what, status, detail, attempt, retryable=True) from exc
                log.warning(
                    "PagerDuty %s: %s; retrying in %.1f s (attempt %d of %d)",
                    what,
                    "no response" if status is None else f"HTTP {status}",
                    wait,
                    attempt + 1,
                    self.retry.max_attempts,
                )
                self._sleep(wait)

    def send(self, event: Mapping[str, Any], session: EventsAPISession | None = None) -> str:
        """Send one outbox event (trigger / acknowledge / resolve); returns PagerDuty's dedup_key.

        The event's routing-key reference must name this sender's setting; the request carries
        the key it was built with. Raises :class:`DeliveryError` once retries are exhausted or
        PagerDuty rejects the event.
        """
        reference = routing_key_setting(event)
        if reference != self.key_setting:
            named = "no reference" if reference is None else f"a reference to {reference}"
            raise ValueError(
                f"event {event.get('dedup_key')!r} holds {named}; this sender sends for {self.key_setting}"
            )
        own = session is None
        active = session or self._events_session()
        what = f"{event.get('event_action')} {event.get('dedup_key')}"
        try:
            return self._with_retries(what, lambda: _post_event(active, event))
        finally:
            if own:
                active.close()

    def send_change(self, event: Mapping[str, Any]) -> None:
        """Send one change event (``promotion_change_event``) to ``/v2/change/enqueue``, retried."""
        validate_change_event(event)
        payload = event["payload"]
        with self._change_session() as session:
            self._with_retries(
                f"change event {payload['summary'][:60]!r}",
                lambda: session.submit(
                    payload["summary"],
                    source=payload.get("source"),
                    custom_details=payload.get("custom_details"),
                    links=event.get("links") or None,
                    timestamp=payload.get("timestamp"),
                ),
            )

    # the outbox ---------------------------------------------------------------------------------
    def deliver(self, outbox: Outbox, ledger: DeliveryLedger) -> DeliveryReport:
        """Send every pending outbox event in order and record each success in the ledger.

        Runs hold a lock beside the ledger, so two concurrent runs cannot both send an event.
        After a failure, later events of the same dedup key wait (a resolve must not overtake
        its trigger); after a retryable failure (PagerDuty throttling or down) the rest of
        the run's events wait too.
        """
        outbox.scrub()  # lines an older version wrote with a literal key: rewritten without it
        with exclusive_lock(ledger.path.with_name(f"{ledger.path.name}.deliver.lock")):
            plan = plan_delivery(outbox.read(), ledger.identities(), send_cleared=self.send_cleared,
                                 key_setting=self.key_setting)
            report = DeliveryReport(suppressed=len(plan.suppress), unroutable=len(plan.unroutable),
                                    pending=len(plan.unroutable))
            for event in plan.unroutable:
                reference = routing_key_setting(event)
                report.failures.append(DeliveryFailure(
                    str(event.get("dedup_key")), str(event.get("event_action")), None,
                    f"no routing key configured for {reference or 'an event without a reference'}",
                    retryable=False,
                ))
            if plan.suppress:
                ledger.append(
                    [
                        _ledger_record(
                            str(e["dedup_key"]),
                            str(e["event_action"]),
                            SUPPRESSED,
                            reason="cleared before it could be delivered",
                        )
                        for e in plan.suppress
                    ]
                )
            if not plan.send:
                return report
            blocked_keys: set[str] = set()
            unavailable = False
            with self._events_session() as session:
                for event in plan.send:
                    key, action = str(event["dedup_key"]), str(event["event_action"])
                    if unavailable or key in blocked_keys:
                        report.pending += 1
                        continue
                    try:
                        self.send(event, session)
                    except DeliveryError as exc:
                        log.warning("%s; it stays pending for the next run", exc)
                        report.pending += 1
                        report.failures.append(
                            DeliveryFailure(key, action, exc.status, exc.detail, exc.retryable)
                        )
                        blocked_keys.add(key)
                        unavailable = exc.retryable
                        continue
                    ledger.append([_ledger_record(key, action, DELIVERED)])
                    report.delivered += 1
            return report


def _post_event(session: EventsAPISession, event: Mapping[str, Any]) -> str:
    """One Events API v2 request for an outbox event, through pdpyras' trigger / resolve / acknowledge."""
    action = event.get("event_action")
    key = event.get("dedup_key")
    if action == "trigger":
        payload = event["payload"]
        extra = {
            k: payload[k] for k in ("timestamp", "component", "group", "class") if payload.get(k) is not None
        }
        details = payload.get("custom_details")
        return str(
            session.trigger(
                payload["summary"],
                payload["source"],
                dedup_key=key,
                severity=payload["severity"],
                payload=extra,
                custom_details=dict(details) if details is not None else None,
                images=event.get("images") or None,
                links=event.get("links") or None,
            )
        )
    if action == "resolve":
        return str(session.resolve(key))
    if action == "acknowledge":
        return str(session.acknowledge(key))
    raise InvalidEventError("event_action", f"cannot send {action!r}", event)


def _answer(exc: Exception) -> str:
    """PagerDuty's error body (trimmed) or the exception text for network errors."""
    response = getattr(exc, "response", None)
    if response is not None:
        text = (response.text or "").strip()
        return text[:500] if text else response.reason or "empty response"
    cause = exc.__cause__
    return f"{type(cause).__name__}: {cause}" if cause is not None else str(exc)


def _identity(event: Mapping[str, Any]) -> tuple[str, str]:
    return str(event.get("dedup_key")), str(event.get("event_action"))


# -- entry points for flows --------------------------------------------------------------------
def deliver_outbox(settings: Settings, sender: PagerDutySender | None = None) -> DeliveryReport | None:
    """Deliver the settings' outbox through ``sender`` (default: from the settings); None in embedded mode."""
    sender = sender or PagerDutySender.from_settings(settings)
    if sender is None:
        return None
    return sender.deliver(Outbox(settings.outbox_path), DeliveryLedger(ledger_path(settings.outbox_path)))


def notify_promotion(
    settings: Settings,
    registered_name: str,
    version: str,
    reason: str,
    *,
    metrics: Mapping[str, float] | None = None,
    run_id: str | None = None,
    sender: PagerDutySender | None = None,
) -> bool:
    """Tell PagerDuty (a change event) that ``registered_name`` v``version`` became champion.

    Best effort: returns True once PagerDuty has it (now or on an earlier call: the ledger
    keeps a retried train task from announcing twice), False in embedded mode or when it could
    not be delivered (logged; a promotion notice is context for responders, not a page).
    """
    sender = sender or PagerDutySender.from_settings(settings)
    if sender is None:
        return False
    ledger = DeliveryLedger(ledger_path(settings.outbox_path))
    key = f"change/{registered_name}/{version}"
    if (key, CHANGE_ACTION) in ledger.identities():
        return True
    links = (
        [{"href": settings.sinks.dashboard_url, "text": "Foresight dashboard"}]
        if settings.sinks.dashboard_url
        else []
    )
    event = promotion_change_event(
        registered_name,
        version,
        reason,
        timestamp=datetime.now(UTC),
        metrics=metrics,
        run_id=run_id,
        links=links,
    )
    try:
        sender.send_change(event)
    except DeliveryError as exc:
        log.warning("promotion of %s v%s not announced to PagerDuty: %s", registered_name, version, exc)
        return False
    ledger.append([_ledger_record(key, CHANGE_ACTION, DELIVERED)])
    return True
