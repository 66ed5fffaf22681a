"""The steps of a response decision, from incident events and the clock. Pure: the caller reads
the audit log and the Auto Scaling group, runs the action and writes the rows these return.

- :func:`plan` : an open incident a rule matches, not yet decided -> its ``planned`` row;
- :func:`after_guards` : the guard rails' verdict -> ``refused`` / ``dry_run`` row, or None
  (apply it: the caller runs the action and records ``applied`` or ``failed``, :func:`applied`);
- :func:`verification` : applied decisions whose incident resolved by their deadline ->
  ``verified``; those past it still open -> ``escalated``. Driven by incident events plus the
  time ``now`` passed in, so it is tested without sleeping.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import pandas as pd

from foresight.settings_response import ResponseConfig, ResponseRule
from models.response.audit import AWAITING, CLOSED, AuditRow, decision_id
from models.response.guards import Verdict
from models.response.rules import IncidentView, fill_target, match_rule


def plan(config: ResponseConfig, incident: IncidentView, decided: Mapping[str, object],
         now: pd.Timestamp) -> tuple[AuditRow, ResponseRule] | None:
    """The ``planned`` row of the rule acting on ``incident`` (and the rule), or None: the incident
    is resolved, no rule matches, or the decision is already in ``decided`` (by decision id)."""
    if not incident.open:
        return None
    rule = match_rule(config, incident)
    if rule is None:
        return None
    key = decision_id(incident.incident_id, rule.name)
    if key in decided:
        return None
    target = fill_target(rule, incident)
    how = f" via {rule.webhook or rule.command}" if rule.webhook or rule.command else ""
    row = AuditRow(
        decision_id=key, step="planned", time=now, incident_id=incident.incident_id, service=incident.service,
        fault_type=incident.fault_type, category=incident.category, rule=rule.name, action=rule.action,
        target=target, dry_run=not config.apply,
        detail=f"{rule.action} {target}{how} for {incident.severity} {incident.fault_type} incident on "
               f"{incident.service}",
    )
    return row, rule


def after_guards(planned: AuditRow, verdict: Verdict, now: pd.Timestamp) -> AuditRow | None:
    """The row that follows the guard rails: ``refused`` (naming the check), ``dry_run``, or None
    when the action is to be applied."""
    sizes = {"change": verdict.change, "desired_from": verdict.desired_from, "desired_to": verdict.desired_to}
    if not verdict.allowed:
        return planned.followed_by("refused", now, check=str(verdict.check), detail=verdict.reason, **sizes)
    if planned.dry_run:
        return planned.followed_by("dry_run", now, detail=f"would {planned.action} {planned.target}"
                                   + (f": {verdict.reason}" if verdict.reason else ""), **sizes)
    return None


def applied(planned: AuditRow, verdict: Verdict, now: pd.Timestamp, verify_minutes: int,
            error: str | None = None, outcome: str = "") -> AuditRow:
    """``applied`` (with its verification deadline) or, given an ``error``, ``failed``."""
    sizes = {"change": verdict.change, "desired_from": verdict.desired_from, "desired_to": verdict.desired_to}
    if error is not None:
        return planned.followed_by("failed", now, detail=error, **sizes)
    detail = "; ".join(part for part in (verdict.reason, outcome) if part)
    return planned.followed_by("applied", now, detail=detail, deadline=now + pd.Timedelta(minutes=verify_minutes),
                               **sizes)


def verify_minutes(config: ResponseConfig, rule_name: str) -> int:
    rule = next((r for r in config.rules if r.name == rule_name), None)
    return config.verify_minutes if rule is None or rule.verify_minutes is None else rule.verify_minutes


def verification(steps: Mapping[str, Mapping[str, AuditRow]], incidents: Iterable[IncidentView],
                 now: pd.Timestamp) -> list[AuditRow]:
    """``verified`` / ``escalated`` rows for applied decisions (``steps``: decision id -> step ->
    row) whose outcome is known at ``now``; an incident not among ``incidents`` counts as still open."""
    by_id = {incident.incident_id: incident for incident in incidents}
    out = []
    for rows in steps.values():
        if any(step in rows for step in CLOSED):
            continue
        acted = next((rows[step] for step in AWAITING if step in rows), None)
        if acted is None or acted.deadline is None:
            continue
        incident = by_id.get(acted.incident_id)
        end = None if incident is None else incident.end
        if end is not None and end <= acted.deadline:
            minutes = max(0.0, (end - acted.time).total_seconds() / 60)
            out.append(acted.followed_by("verified", now, detail=f"{acted.service} incident resolved at "
                                         f"{end:%Y-%m-%d %H:%M}Z, {minutes:.0f} min after the action",
                                         deadline=acted.deadline))
        elif now >= acted.deadline:
            state = "still open" if end is None else f"resolved only at {end:%H:%M}Z"
            out.append(acted.followed_by("escalated", now, detail=f"{acted.service} incident {state} "
                                         f"{(acted.deadline - acted.time).total_seconds() / 60:.0f} min after "
                                         f"{acted.action} {acted.target}", deadline=acted.deadline))
    return out
