"""A :class:`~response.runner.ResponseRunner` built from the settings, and the one call flows make.

Auto Scaling through ``sinks.aws`` (region, endpoint) when a rule scales out; webhooks and
commands from ``response.webhooks`` / ``response.commands``; annotations in PagerDuty with
``sinks.pagerduty_routing_key`` and in Grafana with ``sinks.grafana_url``; escalations into the
PagerDuty outbox, delivered at once when a routing key is set; the audit log in the lake.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

from connectors.sinks.aws.clients import aws_client
from connectors.sinks.grafana import GrafanaClient
from connectors.sinks.pagerduty import PagerDutySender, deliver_outbox
from connectors.sinks.pagerduty_ledger import DeliveryLedger, ledger_path
from connectors.sinks.pagerduty_outbox import Outbox
from connectors.sinks.response.annotations import StepAnnotator
from connectors.sinks.response.audit_store import ResponseAuditStore
from connectors.sinks.response.autoscaling import ScaleOutExecutor
from connectors.sinks.response.command import CommandExecutor
from connectors.sinks.response.webhook import WebhookExecutor
from foresight.lake import Lake
from foresight.settings import Settings
from foresight.timeutil import utc_now
from models.response.rules import incident_views
from response.runner import Executors, ResponseRunner


def executors_from_settings(settings: Settings) -> Executors:
    cfg = settings.response
    scale_out = None
    if any(rule.action == "scale_out" for rule in cfg.rules):
        aws = settings.sinks.aws
        scale_out = ScaleOutExecutor(aws_client("autoscaling", region=aws.region, endpoint_url=aws.endpoint_url))
    webhooks = {name: WebhookExecutor(name, hook.url, timeout=hook.timeout_seconds,
                                      token=hook.token.get_secret_value() if hook.token else None)
                for name, hook in cfg.webhooks.items()}
    commands = {name: CommandExecutor(name, command.argv, timeout=command.timeout_seconds)
                for name, command in cfg.commands.items()}
    return Executors(scale_out=scale_out, webhooks=webhooks, commands=commands)


def runner_from_settings(settings: Settings, *, lake: Lake | None = None,
                         clock: Callable[[], datetime] = utc_now) -> tuple[ResponseRunner, GrafanaClient | None]:
    """The runner, and the Grafana client it annotates through (close it after use)."""
    sinks = settings.sinks
    sender = PagerDutySender.from_settings(settings)
    grafana = None
    if sinks.grafana_url and sinks.grafana_token is not None:
        grafana = GrafanaClient(sinks.grafana_url, sinks.grafana_token.get_secret_value())
    annotator = StepAnnotator(sender=sender, ledger=DeliveryLedger(ledger_path(settings.outbox_path)),
                              grafana=grafana)
    runner = ResponseRunner(settings.response, ResponseAuditStore(lake or Lake(settings.lake_location)),
                            executors_from_settings(settings), annotator=annotator,
                            outbox=Outbox(settings.outbox_path), clock=clock)
    return runner, grafana


def respond(settings: Settings, incidents: Iterable[Mapping[str, Any]], *, lake: Lake | None = None,
            clock: Callable[[], datetime] = utc_now) -> dict[str, Any]:
    """Run automated response on incident records (the detect flow's frame as records, a stream
    event's incident); the report as a dict. A no-op unless ``response.enabled``."""
    if not settings.response.enabled:
        return {"skipped": "response.enabled is off"}
    runner, grafana = runner_from_settings(settings, lake=lake, clock=clock)
    try:
        report = runner.handle(incident_views(incidents))
    finally:
        if grafana is not None:
            grafana.close()
    out = report.as_dict()
    out["apply"] = settings.response.apply
    if report.escalations:
        delivery = deliver_outbox(settings)  # None without a routing key: the next delivery sends it
        out["escalation_delivery"] = None if delivery is None else delivery.as_dict()
    return out
