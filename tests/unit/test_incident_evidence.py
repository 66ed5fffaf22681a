"""One severity rule and one evidence record for both incident builders (models.incidents.evidence):
the roll-up (models.incidents.rollup) and the stream (models.incidents.stream + stream_builder)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from models.incidents.base import IncidentInputs
from models.incidents.evidence import EVIDENCE_KEYS, SERIES_KEYS, evidence_payload, series_record, severity
from models.incidents.replay import replay
from models.incidents.rollup import build_incidents
from models.incidents.settings import StreamSettings
from models.incidents.stream_builder import StreamBuilder, incident_rows

T0 = pd.Timestamp("2026-05-04 10:00", tz="UTC")
# A web -> db system; at minute 90 db's CPU triples and its latency jumps twenty-fold for six minutes.
CATALOGUE = pd.DataFrame(
    [
        ("web/cpu", "web", "web-1", "cpu_usage_rate"),
        ("web/lat", "web", "web-1", "pod_server_latency_p95"),
        ("db/cpu", "db", "db-1", "cpu_usage_rate"),
        ("db/lat", "db", "db-1", "pod_server_latency_p95"),
        ("db/lat99", "db", "db-1", "pod_server_latency_p99"),
    ],
    columns=["unique_id", "service", "resource_id", "metric"],
)
GRAPH = {"web": ("db",), "db": ()}
STREAM_LEVEL = 9.519651  # the fault's evidence (summed -log10 p) when the stream opens its incident


def telemetry(n: int = 120, seed: int = 4) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    ds = pd.date_range(T0, periods=n, freq="1min")
    levels = {"web/cpu": 20.0, "web/lat": 0.2, "db/cpu": 30.0, "db/lat": 0.01, "db/lat99": 0.02}
    frames = []
    for uid, level in levels.items():
        y = level * (1 + rng.normal(0, 0.02, n))
        y[90:96] *= {"db/cpu": 3.0, "db/lat": 20.0, "db/lat99": 20.0, "web/lat": 1.5}.get(uid, 1.0)
        frames.append(pd.DataFrame({"unique_id": uid, "ds": ds, "y": y}))
    return pd.concat(frames, ignore_index=True)


def rolled_up(score: float, threshold: float, metric: str = "cpu_usage_rate", **kw: object) -> pd.DataFrame:
    """Roll-up incidents of one db series scoring ``score`` at a single step (0.1 elsewhere)."""
    ds = pd.date_range(T0, periods=24, freq="5min")
    scores = pd.DataFrame({"unique_id": "db/x", "ds": ds, "score": np.where(np.arange(24) == 6, score, 0.1)})
    catalogue = pd.DataFrame({"unique_id": ["db/x"], "service": ["db"], "resource_id": ["db-1"], "metric": [metric]})
    return build_incidents(scores, None, catalogue, anomaly_threshold=threshold, risk_threshold=0.5, **kw)  # type: ignore[arg-type]


def old_rollup_severity(score: float, threshold: float) -> str:
    """The roll-up's rule before the two builders shared one (tail probability within 1 % / 10 %)."""
    tail, limit = 1.0 - score, 1.0 - threshold
    return "critical" if tail <= limit / 100 else "error" if tail <= limit / 10 else "warning"


@pytest.mark.parametrize(
    ("surprise", "bar", "label"),
    [
        (6.0, 6.0, "warning"),
        (6.99, 6.0, "warning"),
        (7.0, 6.0, "error"),  # 10x rarer than the line
        (7.99, 6.0, "error"),
        (8.0, 6.0, "critical"),  # 100x rarer
        (12.0, 10.0, "critical"),
        (float("inf"), 12.0, "critical"),  # a score of 1
        (float("nan"), 4.0, "warning"),  # raised by failure risk alone
    ],
)
def test_severity_counts_decades_of_rarity_beyond_the_bar(surprise: float, bar: float, label: str) -> None:
    assert severity(surprise, bar) == label
    assert severity(np.array([surprise, bar]), bar) == [label, "warning"]


@pytest.mark.slow
@pytest.mark.parametrize("threshold", [0.5, 0.9, 0.99, 0.9999])
def test_the_roll_ups_severities_are_those_of_its_rule_before(threshold: float) -> None:
    limit = 1.0 - threshold
    grid = [threshold, 1.0 - limit / 9.99, 1.0 - limit / 10, 1.0 - limit / 10.01, 1.0 - limit / 99.9,
            1.0 - limit / 100, 1.0 - limit / 100.1, 1.0 - limit / 1e4, 1.0]
    grid += list(1.0 - limit * 10 ** -np.random.default_rng(7).uniform(0, 3, 40))
    for score in grid:
        [label] = rolled_up(score, threshold)["severity"]
        assert label == old_rollup_severity(score, threshold), (score, threshold)


@pytest.mark.parametrize(("open_threshold", "expected"), [(6.0, "critical"), (8.0, "error")])
def test_the_same_surprise_over_the_same_bar_gets_the_same_severity_from_both_builders(
    open_threshold: float, expected: str
) -> None:
    settings = StreamSettings(open_threshold=open_threshold, split_threshold=10.0, page_budget_per_day=None)
    [streamed] = StreamBuilder(settings).build(IncidentInputs(telemetry(), CATALOGUE, call_graph=GRAPH)).incidents.itertuples()
    evidence = json.loads(streamed.evidence)
    level, bar = evidence["evidence_level"], evidence["open_threshold"]
    assert (level, bar) == (pytest.approx(STREAM_LEVEL), open_threshold)
    # The stream's own rule said critical / error only at 2x / 1.5x its threshold: here less.
    assert level < 1.5 * bar + (bar if expected == "critical" else 0)
    [rolled] = rolled_up(1.0 - 10.0**-level, 1.0 - 10.0**-bar)["severity"]
    assert streamed.severity == rolled == severity(level, bar) == expected


def test_a_raised_threshold_is_the_bar_and_stays_in_the_evidence_while_the_incident_unfolds() -> None:
    # A trained calibration raises the system's line to 7: the incident is 100x rarer than that.
    [row] = replay(telemetry(), CATALOGUE, GRAPH, calibration={"db": 7.0, "web": 7.0}).itertuples()
    evidence = json.loads(row.evidence)  # as re-assessed in the incident's first steps
    assert evidence["open_threshold"] == 7.0 and evidence["evidence_level"] == pytest.approx(STREAM_LEVEL)
    assert row.severity == "critical"


def test_both_builders_write_the_same_evidence_record() -> None:
    streamed = StreamBuilder(StreamSettings(page_budget_per_day=None)).build(
        IncidentInputs(telemetry(), CATALOGUE, call_graph=GRAPH)).incidents
    rolled = rolled_up(0.99999, 0.9999)
    stream_record = json.loads(streamed["evidence"].iloc[0])
    rollup_record = json.loads(rolled["evidence"].iloc[0])
    assert set(stream_record) == set(rollup_record) == EVIDENCE_KEYS
    for evidence in (stream_record, rollup_record):
        assert evidence["series"] and all(set(s) == SERIES_KEYS for s in evidence["series"])
    top = stream_record["series"][0]
    assert top["service"] == "db" and top["resource_id"] == "db-1" and top["observed"] > top["expected"]
    assert top["anomalous_samples"] is None and stream_record["anomalous_series"] >= 2
    [series] = rollup_record["series"]
    assert series == {
        "unique_id": "db/x", "service": "db", "metric": "cpu_usage_rate", "kind": "cpu", "resource_id": "db-1",
        "surprise": 5.0, "observed": None, "expected": None, "anomalous_samples": 1,
    }
    assert (rollup_record["evidence_level"], rollup_record["open_threshold"]) == (5.0, 4.0)
    assert rollup_record["max_risk"] is None and rollup_record["anomalous_series"] == 1


def test_engine_rows_of_any_shape_leave_the_builder_as_the_shared_record() -> None:
    raised = pd.DataFrame({
        "opened_at": [T0], "closed_at": [T0 + pd.Timedelta(minutes=4)], "services": ["db;web"],
        "category": "saturation", "score": 8.0, "severity": "error", "reopened": 0,
        "evidence": json.dumps({"series": [{"unique_id": "db/cpu", "service": "db", "metric": "cpu_usage_rate",
                                            "surprise": 7.5}], "ranked_services": ["db", "web"]}),
    })
    [row] = incident_rows(raised, CATALOGUE, pd.Timedelta(minutes=30))["evidence"]
    evidence = json.loads(row)
    assert set(evidence) == EVIDENCE_KEYS and evidence["evidence_level"] == 8.0
    assert evidence["series"] == [series_record(unique_id="db/cpu", service="db", metric="cpu_usage_rate",
                                                resource_id="db-1", surprise=7.5)]


def test_the_roll_up_names_a_fault_type_from_the_kinds_it_saw() -> None:
    evidence = json.loads(rolled_up(0.99999, 0.9999, metric="error_rate")["evidence"].iloc[0])
    assert (evidence["fault_type"], evidence["fault_type_confidence"]) == ("exception", 0.4)  # a failing handler


def test_a_page_score_is_written_only_where_there_is_one() -> None:
    def payload(**kw: float) -> dict[str, object]:
        return json.loads(evidence_payload(series=[], ranked_services=["db"], evidence_level=9.0, open_threshold=6.0, **kw))

    assert "page_score" not in payload() and payload(page_score=0.1)["page_score"] == 0.1
    assert payload(max_risk=float("nan"))["max_risk"] is None  # JSON has no NaN


def test_the_roll_ups_record_names_its_ranked_causes_as_the_streams_does() -> None:
    alone = rolled_up(0.999999, 0.9999)
    assert [json.loads(e)["ranked_services"] for e in alone["evidence"]] == [[s] for s in alone["service"]]
    ranked = rolled_up(0.999999, 0.9999, call_graph={"web": ["api"]})
    for evidence, column in zip(ranked["evidence"], ranked["ranked_services"], strict=True):
        assert json.loads(evidence)["ranked_services"] == column.split(";")
