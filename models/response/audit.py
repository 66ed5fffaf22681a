"""The response audit log's rows: one per step of a decision, keyed ``(decision_id, step)``. Pure.

A *decision* is one rule acting on one incident (:func:`decision_id`: a hash of both), so the
same incident event processed twice, by the detect flow and the stream processor or by a re-run,
is the same decision and acts once. Its steps, in order:

- ``planned``: the rule matched; the action and its target are known (always the first row);
- ``refused``: a guard rail said no (``check`` names it: :data:`models.response.guards.CHECKS`);
- ``dry_run``: every guard rail passed, and ``response.apply`` is off: nothing was changed;
- ``applied``: the action ran; ``failed``: it was tried and raised (``detail`` says why);
- ``verified``: the incident resolved within the verification window after ``applied``;
- ``escalated``: it had not, so a page of ``response.escalate_severity`` went out.

Rows are never rewritten (the lake writer inserts only keys it does not hold).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import pandas as pd

from foresight.schemas import UTC_DTYPE

STEPS: tuple[str, ...] = ("planned", "refused", "dry_run", "applied", "failed", "verified", "escalated")
# Steps that count against a target's cool-down and hourly limits: what ran, or would have run.
ACTED: tuple[str, ...] = ("dry_run", "applied")
# Steps after which a decision waits for its incident to resolve.
AWAITING: tuple[str, ...] = ("applied",)
CLOSED: tuple[str, ...] = ("verified", "escalated")

AUDIT_COLUMNS: tuple[str, ...] = (
    "decision_id", "step", "time", "incident_id", "service", "fault_type", "category", "rule", "action",
    "target", "dry_run", "check", "detail", "change", "desired_from", "desired_to", "deadline",
)


def decision_id(incident_id: str, rule: str) -> str:
    """The id of ``rule`` acting on ``incident_id``: the same for every replay of the incident."""
    return hashlib.sha256(f"{incident_id}|{rule}".encode()).hexdigest()[:24]


@dataclass(frozen=True)
class AuditRow:
    """One step of one decision (see the module docstring). ``change``: instances added (scale-outs);
    ``desired_from`` / ``desired_to``: the group's desired capacity before and after (-1: none);
    ``deadline``: when an applied action must have resolved its incident (NaT: not applied)."""

    decision_id: str
    step: str
    time: pd.Timestamp
    incident_id: str
    service: str
    fault_type: str
    category: str
    rule: str
    action: str
    target: str
    dry_run: bool
    check: str = ""
    detail: str = ""
    change: int = 0
    desired_from: int = -1
    desired_to: int = -1
    deadline: pd.Timestamp | None = None

    def __post_init__(self) -> None:
        if self.step not in STEPS:
            raise ValueError(f"unknown audit step {self.step!r}; known: {', '.join(STEPS)}")
        if self.step == "refused" and not self.check:
            raise ValueError(f"a refused step names the guard rail that refused it ({self.decision_id})")
        if pd.Timestamp(self.time).tzinfo is None:
            raise ValueError("audit times must be timezone-aware")

    def followed_by(self, step: str, time: pd.Timestamp, **changes: Any) -> AuditRow:
        """The next step of the same decision."""
        fields = {**asdict(self), "step": step, "time": time, "check": "", "detail": "", **changes}
        return AuditRow(**fields)


def audit_frame(rows: Iterable[AuditRow]) -> pd.DataFrame:
    """Rows as the lake dataset's frame (:data:`AUDIT_COLUMNS`, typed)."""
    records = [asdict(row) for row in rows]
    frame = pd.DataFrame.from_records(records, columns=list(AUDIT_COLUMNS))
    for column in ("time", "deadline"):
        frame[column] = pd.to_datetime(frame[column], utc=True).astype(UTC_DTYPE)
    for column in ("change", "desired_from", "desired_to"):
        frame[column] = frame[column].astype("int64")
    frame["dry_run"] = frame["dry_run"].astype(bool)
    return frame


def empty_audit() -> pd.DataFrame:
    return audit_frame([])


def rows_from_frame(frame: pd.DataFrame) -> list[AuditRow]:
    """The lake's rows back as :class:`AuditRow` (NaT deadlines as None)."""
    if frame.empty:
        return []
    out = []
    for record in frame[list(AUDIT_COLUMNS)].to_dict("records"):
        deadline = record["deadline"]
        record["deadline"] = None if deadline is None or pd.isna(deadline) else pd.Timestamp(deadline)
        record["time"] = pd.Timestamp(record["time"])
        out.append(AuditRow(**record))
    return out


def steps_by_decision(rows: Iterable[AuditRow]) -> dict[str, dict[str, AuditRow]]:
    """decision id -> step -> row."""
    out: dict[str, dict[str, AuditRow]] = {}
    for row in rows:
        out.setdefault(row.decision_id, {})[row.step] = row
    return out


def as_details(row: AuditRow) -> Mapping[str, Any]:
    """A row as JSON-safe details (for annotations and reports)."""
    out = {k: v for k, v in asdict(row).items() if v not in (None, "", -1)}
    for key in ("time", "deadline"):
        if key in out:
            out[key] = pd.Timestamp(out[key]).isoformat()
    return out
