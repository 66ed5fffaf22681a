"""The response runner: incident events in, decisions audited, guarded, acted on and verified.

One :meth:`ResponseRunner.handle` call per batch of incident events (a detect run's incidents, a
stream processor's events), at the time its clock says:

1. applied decisions whose incident resolved in time are ``verified``; those past their deadline
   ``escalated`` (a page through the outbox);
2. each open incident a rule matches and no earlier call decided is ``planned`` (the audit row is
   the claim: a replayed event finds it and does nothing), its guard rails checked
   (:mod:`models.response.guards`), then ``refused``, ``dry_run``, or run and ``applied`` /
   ``failed``.

Every row goes to the lake first (append-only, :mod:`connectors.sinks.response.audit_store`), then
is annotated on the incident (PagerDuty change event, Grafana annotation). An action runs only
after its ``planned`` row is stored, so a crash mid-action leaves a decision that is never retried
on its own: a person sees ``planned`` with nothing after it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pandas as pd

from connectors.sinks.pagerduty_outbox import Outbox
from connectors.sinks.response.annotations import AnnotationOutcome, StepAnnotator
from connectors.sinks.response.audit_store import ResponseAuditStore
from connectors.sinks.response.autoscaling import ScaleOutExecutor
from connectors.sinks.response.command import CommandExecutor
from connectors.sinks.response.escalation import escalation_event
from connectors.sinks.response.request import ActionRequest, ResponseActionError
from connectors.sinks.response.webhook import WebhookExecutor
from foresight.settings_response import ResponseConfig, ResponseRule
from foresight.timeutil import utc_now
from models.response.audit import AuditRow, as_details, audit_frame, rows_from_frame, steps_by_decision
from models.response.decisions import after_guards, applied, plan, verification, verify_minutes
from models.response.guards import check_action
from models.response.rules import IncidentView

log = logging.getLogger(__name__)


@dataclass
class Executors:
    """What acts: Auto Scaling (None when no rule scales out), webhooks and commands by name."""

    scale_out: ScaleOutExecutor | None = None
    webhooks: Mapping[str, WebhookExecutor] = field(default_factory=dict)
    commands: Mapping[str, CommandExecutor] = field(default_factory=dict)

    def for_rule(self, rule: ResponseRule) -> ScaleOutExecutor | WebhookExecutor | CommandExecutor | None:
        if rule.action == "scale_out":
            return self.scale_out
        if rule.webhook is not None:
            return self.webhooks.get(rule.webhook)
        return self.commands.get(rule.command or "")


@dataclass
class ResponseReport:
    """What one call recorded: rows by step, refusals as (target, check), escalation pages written."""

    steps: dict[str, int] = field(default_factory=dict)
    refused: list[tuple[str, str]] = field(default_factory=list)
    escalations: int = 0
    annotations: AnnotationOutcome = field(default_factory=AnnotationOutcome)

    def as_dict(self) -> dict[str, Any]:
        return {"steps": dict(self.steps), "refused": [f"{t}: {c}" for t, c in self.refused],
                "escalations": self.escalations,
                "annotations": {"pagerduty": self.annotations.pagerduty, "grafana": self.annotations.grafana,
                                "failed": dict(self.annotations.failed)}}


class ResponseRunner:
    """Acts on incident events under ``config``'s rules and guard rails (see the module docstring)."""

    def __init__(self, config: ResponseConfig, audit: ResponseAuditStore, executors: Executors, *,
                 annotator: StepAnnotator | None = None, outbox: Outbox | None = None,
                 clock: Callable[[], datetime] = utc_now) -> None:
        self.config, self.audit, self.executors = config, audit, executors
        self.annotator, self.outbox, self.clock = annotator, outbox, clock

    def handle(self, incidents: Iterable[IncidentView]) -> ResponseReport:
        incidents = list(incidents)
        now = pd.Timestamp(self.clock()).tz_convert("UTC")
        report = ResponseReport()
        history = rows_from_frame(self.audit.read())
        steps = steps_by_decision(history)
        for row in verification(steps, incidents, now):
            self._record(row, report)
        for incident in incidents:
            planned = plan(self.config, incident, steps, now)
            if planned is None:
                continue
            row, rule = planned
            if not self._record(row, report):  # someone else (a replay, the other runner) claimed it
                continue
            steps[row.decision_id] = {"planned": row}
            following = self._decide(row, rule, incident, history, now)
            history.append(following)
            self._record(following, report)
        return report

    def _decide(self, planned: AuditRow, rule: ResponseRule, incident: IncidentView, history: list[AuditRow],
                now: pd.Timestamp) -> AuditRow:
        executor = self.executors.for_rule(rule)
        live = None
        if rule.action == "scale_out" and isinstance(executor, ScaleOutExecutor):
            try:
                live = executor.live(planned.target)
            except Exception as exc:  # noqa: BLE001 - AWS unreachable: this decision fails, others go on
                return planned.followed_by("failed", now, detail=f"reading Auto Scaling group {planned.target}: "
                                                                  f"{exc}")
        verdict = check_action(self.config, action=rule.action, target=planned.target, now=now, history=history,
                               instances=rule.instances, live=live)
        following = after_guards(planned, verdict, now)
        if following is not None:
            return following
        if executor is None:
            return applied(planned, verdict, now, 1, error=f"no executor for rule {rule.name} (not configured)")
        request = ActionRequest(decision_id=planned.decision_id, action=rule.action, target=planned.target,
                                service=incident.service, incident_id=incident.incident_id, rule=rule.name,
                                fault_type=incident.fault_type, resource_id=incident.resource_id,
                                desired_capacity=verdict.desired_to)
        minutes = verify_minutes(self.config, rule.name)
        try:
            outcome = executor.execute(request)
        except ResponseActionError as exc:
            return applied(planned, verdict, now, minutes, error=str(exc))
        return applied(planned, verdict, now, minutes, outcome=outcome)

    def _record(self, row: AuditRow, report: ResponseReport) -> bool:
        """Store ``row`` (once), then annotate it and, for an escalation, page; False when it was stored already."""
        if self.audit.append(audit_frame([row])).empty:
            return False
        report.steps[row.step] = report.steps.get(row.step, 0) + 1
        if row.step == "refused":
            report.refused.append((row.target, row.check))
        details = dict(as_details(row))
        level = logging.WARNING if row.step in ("refused", "failed", "escalated") else logging.INFO
        log.log(level, "response %s%s: %s %s (%s)", row.step, f" [{row.check}]" if row.check else "", row.action,
                row.target, row.detail)
        if row.step == "escalated" and self.outbox is not None:
            written = self.outbox.append([escalation_event(details, self.config.escalate_severity)]).written
            report.escalations += written
        if self.annotator is not None:
            self.annotator.annotate(details, report.annotations)
        return True
