"""Foresight's own flow metrics (``foresight_flow_*``): built from each flow's result, pushed by a
Prefect state hook that never fails the run (issue 17 item 6)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from types import SimpleNamespace

import pandas as pd
import pytest

from connectors.sinks.flow_metrics import (
    LAST_RUN,
    MODELS_PROMOTED,
    PAGES_PENDING,
    PAGES_SENT,
    ROWS,
    RUN_DURATION,
    RUN_SUCCEEDED,
    FlowRun,
    flow_registry,
    flow_word,
    last_success_metric,
)
from connectors.sinks.pushgateway import LAST_SUCCESS, detection_registry, detection_snapshot
from dashboards import health
from dashboards.build import DASHBOARDS
from flows import detect, forecast_plan, ingest, pipeline, publish, train
from flows.self_metrics import flow_run_from_result, push_run_metrics
from foresight.source_holds import SourceContractFailedError

INGEST_RESULT = [
    {"source": "prom", "passed": True, "accepted": 1200, "quarantined": 3, "written": {}},
    {"source": "logs", "passed": False, "accepted": 0, "quarantined": 40, "written": {}},
]


def _value(registry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, labels)


def test_ingest_rows_per_source_from_the_result() -> None:
    run = flow_run_from_result("ingest", INGEST_RESULT, succeeded=True, duration=12.5, finished_at=1000.0)
    reg = flow_registry(run)
    assert _value(reg, ROWS, source="prom", kind="in") == 1203
    assert _value(reg, ROWS, source="prom", kind="accepted") == 1200
    assert _value(reg, ROWS, source="logs", kind="quarantined") == 40
    assert _value(reg, RUN_DURATION) == 12.5 and _value(reg, RUN_SUCCEEDED) == 1
    assert _value(reg, "foresight_ingest_last_success_timestamp_seconds") == 1000.0
    assert _value(reg, MODELS_PROMOTED) is None and _value(reg, PAGES_SENT) is None  # not ingest's


def test_train_counts_promotions_and_detect_counts_pages() -> None:
    train = {"forecaster": {"decision": "promote"}, "anomaly": {"decision": "challenger"},
             "failure": {"decision": "promote"}}
    reg = flow_registry(flow_run_from_result("train", train, succeeded=True, duration=1, finished_at=5))
    assert _value(reg, MODELS_PROMOTED) == 2
    detect = {"incidents": 3, "paging": {"delivered": 4, "pending": 1, "suppressed": 0}}
    reg = flow_registry(flow_run_from_result("detect", detect, succeeded=True, duration=1, finished_at=5))
    assert (_value(reg, PAGES_SENT), _value(reg, PAGES_PENDING)) == (4, 1)
    no_key = flow_registry(flow_run_from_result("detect", {"paging": None}, succeeded=True, duration=1,
                                                finished_at=5))
    assert _value(no_key, PAGES_SENT) == 0  # embedded mode: written to the outbox, nothing sent


def test_detect_last_success_is_the_alerts_metric_and_a_failure_does_not_set_it() -> None:
    assert last_success_metric("detect") == LAST_SUCCESS
    assert last_success_metric("forecast-and-plan") == "foresight_forecast_and_plan_last_success_timestamp_seconds"
    ok = flow_registry(FlowRun("detect", succeeded=True, duration=3, finished_at=77))
    assert _value(ok, LAST_SUCCESS) == 77
    failed = flow_registry(FlowRun("detect", succeeded=False, duration=3, finished_at=88))
    assert _value(failed, LAST_SUCCESS) is None
    assert (_value(failed, RUN_SUCCEEDED), _value(failed, LAST_RUN)) == (0, 88)


def test_bad_runs_are_refused_with_the_problem_named() -> None:
    with pytest.raises(ValueError, match="cannot name a metric"):
        flow_word("--")
    with pytest.raises(ValueError, match="duration"):
        FlowRun("ingest", succeeded=True, duration=-1, finished_at=0)
    with pytest.raises(ValueError, match="unknown kind"):
        FlowRun("ingest", succeeded=True, duration=1, finished_at=0, rows={"prom": {"dropped": 1}})


def _hook_args(flow: str, state_ok: bool, result: object):
    start, end = datetime(2026, 3, 1, 12, tzinfo=UTC), datetime(2026, 3, 1, 12, 0, 9, tzinfo=UTC)
    state = SimpleNamespace(is_completed=lambda: state_ok, timestamp=end,
                            result=lambda raise_on_failure=True: result)
    return SimpleNamespace(name=flow), SimpleNamespace(parameters={"config_file": None}, start_time=start), state


def test_the_hook_pushes_a_failed_runs_carried_counts(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    pushed = []
    monkeypatch.setenv("FORESIGHT_HOME", str(tmp_path))
    monkeypatch.setenv("FORESIGHT_SINKS__PUSHGATEWAY_URL", "http://127.0.0.1:9")
    monkeypatch.setattr("flows.self_metrics.push_flow_metrics", lambda url, run, instance: pushed.append(run))
    error = SourceContractFailedError("logs failed", sources=["logs"], result=INGEST_RESULT)
    push_run_metrics(*_hook_args("ingest", False, error))
    (run,) = pushed
    assert not run.succeeded and run.duration == 9.0 and run.rows["logs"]["quarantined"] == 40


def test_the_hook_warns_instead_of_failing_and_skips_without_a_gateway(
    monkeypatch: pytest.MonkeyPatch, tmp_path, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("FORESIGHT_HOME", str(tmp_path))
    monkeypatch.delenv("FORESIGHT_SINKS__PUSHGATEWAY_URL", raising=False)
    monkeypatch.setattr("flows.self_metrics.push_flow_metrics", lambda *a, **k: pytest.fail("pushed"))
    push_run_metrics(*_hook_args("train", True, {}))  # no gateway: nothing pushed
    monkeypatch.undo()
    monkeypatch.setenv("FORESIGHT_HOME", str(tmp_path))
    monkeypatch.setenv("FORESIGHT_SINKS__PUSHGATEWAY_URL", "http://user:hunter2@127.0.0.1:9")  # nothing listens
    with caplog.at_level(logging.WARNING, logger="flows.self_metrics"):
        push_run_metrics(*_hook_args("train", True, {}))
    assert "pushing its own metrics failed" in caplog.text and "hunter2" not in caplog.text


def test_every_flow_carries_the_hook_and_the_health_dashboard_is_built() -> None:
    for module, name in ((ingest, "ingest"), (train, "train"), (forecast_plan, "forecast_and_plan"),
                         (detect, "detect"), (publish, "publish"), (pipeline, "pipeline")):
        flow = getattr(module, name)
        assert push_run_metrics in flow.on_completion_hooks and push_run_metrics in flow.on_failure_hooks, name
    assert DASHBOARDS[health.FILENAME] is health.build and health.build()["uid"] == health.UID


def test_the_detect_last_success_has_the_detect_sinks_help_text() -> None:
    """The Pushgateway warns and keeps one help per name; both pushes must agree."""
    ours = flow_registry(FlowRun("detect", succeeded=True, duration=1, finished_at=1))
    sink = detection_registry(detection_snapshot(pd.DataFrame(columns=["unique_id", "ds", "score"]), None, None,
                                                 pd.DataFrame(columns=["unique_id", "service", "metric"])))

    def help_of(registry) -> str:
        return next(m.documentation for m in registry.collect() if m.name == LAST_SUCCESS)

    assert help_of(ours) == help_of(sink)
