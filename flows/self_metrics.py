"""Each flow run reports on itself: a Prefect state hook pushes ``foresight_flow_*`` when the run ends.

Every flow is declared with ``on_completion=SELF_METRICS, on_failure=SELF_METRICS``; the hook
(:func:`push_run_metrics`) reads the run's duration from Prefect, its counts from the flow's result
(:func:`flow_run_from_result`; a failed run's counts from ``SourceContractFailedError.result``) and
pushes them through :mod:`connectors.sinks.flow_metrics`, only when ``sinks.pushgateway_url`` is set.
A push that fails is a warning: the run's own state never depends on it.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from prefect.flows import FlowStateHook

from connectors.sinks.flow_metrics import FlowRun, push_flow_metrics
from flows.resources import settings_for_run
from foresight.redact import redact_url

log = logging.getLogger(__name__)


def flow_run_from_result(flow: str, result: Any, *, succeeded: bool, duration: float,
                         finished_at: float) -> FlowRun:
    """The run's report from what the flow returned (or, failed, what its error carried)."""
    rows: dict[str, dict[str, int]] = {}
    promoted = sent = pending = None
    if flow == "ingest" and isinstance(result, list):
        for outcome in result:
            accepted, quarantined = int(outcome.get("accepted", 0)), int(outcome.get("quarantined", 0))
            rows[str(outcome["source"])] = {"in": accepted + quarantined, "accepted": accepted,
                                            "quarantined": quarantined}
    elif flow == "train" and isinstance(result, dict):
        promoted = sum(1 for res in result.values() if isinstance(res, dict) and res.get("decision") == "promote")
    elif flow == "detect" and isinstance(result, dict):
        paging = result.get("paging") or {}  # None without a routing key: nothing was sent
        sent, pending = int(paging.get("delivered", 0)), int(paging.get("pending", 0))
    return FlowRun(flow, succeeded=succeeded, duration=max(duration, 0.0), finished_at=finished_at, rows=rows,
                   models_promoted=promoted, pages_sent=sent, pages_pending=pending)


def push_run_metrics(flow: Any, flow_run: Any, state: Any) -> None:
    """Prefect ``on_completion`` / ``on_failure`` hook: push the run's metrics; warn, never raise."""
    try:
        settings = settings_for_run((flow_run.parameters or {}).get("config_file"))
        url = settings.sinks.pushgateway_url
        if not url:
            return
        succeeded = bool(state.is_completed())
        outcome = state.result(raise_on_failure=False)
        result = outcome if succeeded else getattr(outcome, "result", None)  # SourceContractFailedError's
        finished = state.timestamp.timestamp() if state.timestamp else time.time()
        started = flow_run.start_time.timestamp() if flow_run.start_time else finished
        run = flow_run_from_result(flow.name, result, succeeded=succeeded, duration=finished - started,
                                   finished_at=finished)
        push_flow_metrics(url, run, instance=settings.sinks.pushgateway_instance)
    except Exception as exc:  # noqa: BLE001 - self-observability must never fail or hide the run
        log.warning("flow %s: pushing its own metrics failed: %s", getattr(flow, "name", flow),
                    redact_url(str(exc)))


SELF_METRICS: list[FlowStateHook[..., Any]] = [push_run_metrics]
