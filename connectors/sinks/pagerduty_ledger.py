"""PagerDuty delivery's bookkeeping: the ledger of what reached PagerDuty, what a run should send, what it did.

An outbox event is *pending* while its ``(dedup_key, event_action)`` is in the outbox but not in
the ledger (``pagerduty-events.delivered.jsonl`` beside it). :func:`plan_delivery` (pure) splits
the pending events into those to send, to suppress (cleared before anyone could be told) and
unroutable ones; :class:`DeliveryReport` is what one run did.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from connectors.sinks.jsonl_log import JsonLinesLog
from connectors.sinks.pagerduty_outbox import ROUTING_KEY_SETTING, routing_key_setting

DELIVERED, SUPPRESSED = "delivered", "suppressed"
CHANGE_ACTION = "change"  # the ledger's event_action for change events (they have none of their own)


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
        if identity(event) in done:
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


def identity(event: Mapping[str, Any]) -> tuple[str, str]:
    return str(event.get("dedup_key")), str(event.get("event_action"))


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


def ledger_record(dedup_key: str, action: str, state: str, **extra: Any) -> dict[str, Any]:
    at = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    return {"dedup_key": dedup_key, "event_action": action, "state": state, "at": at, **extra}
