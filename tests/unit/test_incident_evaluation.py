"""The gate's figures of an incident pipeline's pages (models.incidents.evaluation): pooled and per system."""

from __future__ import annotations

import pandas as pd
import pytest

from models.incidents.evaluation import evaluate_pipeline, page_metrics

T0 = pd.Timestamp("2026-05-01", tz="UTC")
HORIZON, GRACE = pd.Timedelta(minutes=60), pd.Timedelta(minutes=15)


def _frame(rows: list[tuple[str, int]]) -> pd.DataFrame:
    """``service, start, end`` from (service, minutes after T0); each lasts 10 minutes."""
    start = pd.Series([T0 + pd.Timedelta(minutes=m) for _, m in rows], dtype="datetime64[us, UTC]")
    return pd.DataFrame({"service": [s for s, _ in rows], "start": start, "end": start + pd.Timedelta(minutes=10)})


def test_figures_per_system_show_the_worst_rotation_not_only_the_pool() -> None:
    systems = {"web": "web", "db": "web", "batch": "batch", "idle": "idle"}  # three systems
    truth = _frame([("db", 100), ("web", 500), ("batch", 900)])
    # web's system: both faults paged; batch: its fault missed, four false pages; idle: nothing.
    raised = _frame([("db", 101), ("web", 505), ("batch", 300), ("batch", 400), ("batch", 1300), ("batch", 1500)])
    m = page_metrics(raised, truth, systems, days=2.0, horizon=HORIZON, grace=GRACE)
    assert m["recall"] == pytest.approx(2 / 3) and m["precision"] == pytest.approx(2 / 6)
    assert m["false_alarms"] == 4 and m["false_alarms_per_day"] == pytest.approx(4 / 2 / 3)  # per system-day
    assert m["system.web.recall"] == 1 and m["system.web.false_alarms_per_day"] == 0
    assert m["system.batch.recall"] == 0 and m["system.batch.false_alarms_per_day"] == 2.0
    assert m["max_false_alarms_per_day"] == 2.0 and m["min_recall"] == 0 and m["systems"] == 3
    assert not any(key.startswith("system.idle.") for key in m)  # neither a fault nor a page


def test_no_faults_after_the_split_make_every_page_a_false_alarm() -> None:
    empty = pd.DataFrame()  # e.g. a lake with no incidents dataset yet
    m = page_metrics(_frame([("web", 10)]), empty, {"web": "web"}, days=1.0, horizon=HORIZON, grace=GRACE)
    assert m["false_alarms"] == 1 and m["recall"] == 0 and m["f1"] == 0 and m["max_false_alarms_per_day"] == 1


def test_a_split_with_nothing_on_one_side_is_refused() -> None:
    from models.anomaly.base import DETECTORS
    from models.incidents.pipeline import IncidentPipeline

    ds = pd.date_range(T0, periods=10, freq="5min").astype("datetime64[us, UTC]")
    telemetry = pd.DataFrame({"unique_id": "web/cpu", "ds": ds, "y": 1.0})
    catalogue = pd.DataFrame({"unique_id": ["web/cpu"], "service": ["web"], "metric": ["cpu_pct"]})
    pipeline = IncidentPipeline(DETECTORS.get("streaming")())
    with pytest.raises(ValueError, match="no history before it"):
        evaluate_pipeline(pipeline, telemetry, catalogue, pd.DataFrame(), T0)
