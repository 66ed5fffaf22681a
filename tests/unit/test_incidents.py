"""Detections -> incidents (models.incidents.rollup): roll-up, hysteresis, identity, category, severity."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from models.incidents.base import INCIDENT_OUTPUT_COLUMNS, incident_id
from models.incidents.rollup import build_incidents

T0 = pd.Timestamp("2026-05-04 10:00", tz="UTC")
STEP = pd.Timedelta("5min")
N = 36  # three hours of 5-minute samples

CATALOGUE = pd.DataFrame(
    [
        ("cart/i-1/mem_pct", "cart", "i-1", "mem_pct"),
        ("cart/i-2/mem_pct", "cart", "i-2", "mem_pct"),
        ("cart/i-1/cpu_pct", "cart", "i-1", "cpu_pct"),
        ("search/i-1/error_rate", "search", "i-1", "error_rate"),
        ("search/i-1/disk_pct", "search", "i-1", "disk_pct"),
    ],
    columns=["unique_id", "service", "resource_id", "metric"],
)


def scores(**bursts: dict[int, float]) -> pd.DataFrame:
    """Score 0.1 everywhere except ``{step: score}`` per series (keys use '__' for '/')."""
    ds = pd.date_range(T0, periods=N, freq=STEP).astype("datetime64[us, UTC]")
    frames = []
    for uid in CATALOGUE["unique_id"]:
        values = np.full(N, 0.1)
        for step, value in bursts.get(uid.replace("/", "__").replace("-", "_"), {}).items():
            values[step] = value
        frames.append(pd.DataFrame({"unique_id": uid, "ds": ds, "score": values}))
    return pd.concat(frames, ignore_index=True)


def build(s: pd.DataFrame, risk: pd.DataFrame | None = None, **kw: object) -> pd.DataFrame:
    params = {"anomaly_threshold": 0.99, "risk_threshold": 0.5, "resolve_after": "30min", **kw}
    return build_incidents(s, risk, CATALOGUE, **params)


def burst(start: int, stop: int, value: float = 0.995) -> dict[int, float]:
    return {i: value for i in range(start, stop)}


def test_two_anomalous_series_of_one_service_at_once_make_one_incident() -> None:
    s = scores(cart__i_1__mem_pct=burst(5, 10), cart__i_2__mem_pct=burst(6, 11, 0.9995))
    out = build(s)
    assert len(out) == 1
    row = out.iloc[0]
    assert row["service"] == "cart" and row["category"] == "resource_leak"
    assert row["start"] == T0 + 5 * STEP
    assert row["end"] == T0 + 11 * STEP  # first calm sample after the last active one (step 10)
    assert row["score"] == pytest.approx(0.9995)
    evidence = json.loads(row["evidence"])
    assert evidence["anomalous_series"] == 2
    # Same number of anomalous samples: the higher-scoring series leads the evidence.
    assert [e["unique_id"] for e in evidence["series"][:2]] == ["cart/i-2/mem_pct", "cart/i-1/mem_pct"]
    assert row["resource_id"] == "i-2"
    assert list(out.columns) == list(INCIDENT_OUTPUT_COLUMNS)


def test_min_series_requires_that_many_series_at_once() -> None:
    s = scores(cart__i_1__mem_pct=burst(5, 10), cart__i_2__mem_pct=burst(8, 9))
    out = build(s, min_series=2)
    assert len(out) == 1 and out.iloc[0]["start"] == T0 + 8 * STEP
    assert build(scores(cart__i_1__mem_pct=burst(5, 10)), min_series=2).empty


def test_flapping_within_resolve_after_is_one_incident_and_a_later_return_is_another() -> None:
    flapping = {**burst(4, 6), **burst(9, 10), **burst(14, 15)}  # clear for 20-25 min between
    late = burst(28, 30)  # 65 min after the last flap: a new incident
    out = build(scores(cart__i_1__cpu_pct={**flapping, **late}))
    assert len(out) == 2
    first, second = out.iloc[0], out.iloc[1]
    assert (first["start"], first["end"]) == (T0 + 4 * STEP, T0 + 15 * STEP)
    assert second["start"] == T0 + 28 * STEP
    assert first["incident_id"] != second["incident_id"]
    assert first["category"] == "saturation"


def test_incident_stays_open_until_calm_for_resolve_after() -> None:
    out = build(scores(cart__i_1__mem_pct=burst(N - 4, N - 1)))  # last active 10 min before the data ends
    assert len(out) == 1 and pd.isna(out.iloc[0]["end"])
    resolved = build(scores(cart__i_1__mem_pct=burst(N - 9, N - 7)))  # calm for exactly 30 min at the end
    assert resolved.iloc[0]["end"] == T0 + (N - 7) * STEP


def test_ids_are_deterministic_and_survive_overlapping_detect_windows() -> None:
    s = scores(cart__i_1__mem_pct=burst(5, 10), search__i_1__error_rate=burst(20, 24))
    first, again = build(s), build(s.sample(frac=1.0, random_state=0))
    pd.testing.assert_frame_equal(first, again)
    later_window = build(s[s["ds"] >= T0 + 3 * STEP])  # a later run that still sees both starts
    assert later_window["incident_id"].tolist() == first["incident_id"].tolist()
    assert first["incident_id"].iloc[0] == incident_id("cart", first["window_start"].iloc[0])
    assert (first["window_start"] <= first["start"]).all()


def test_category_follows_the_metric_with_most_anomalous_samples() -> None:
    s = scores(search__i_1__error_rate=burst(5, 12), search__i_1__disk_pct=burst(6, 8))
    assert build(s).iloc[0]["category"] == "errors"
    s = scores(search__i_1__disk_pct=burst(5, 12), search__i_1__error_rate=burst(6, 8))
    assert build(s).iloc[0]["category"] == "disk"


@pytest.mark.parametrize(("score", "severity"), [(0.995, "warning"), (0.9995, "error"), (0.99995, "critical")])
def test_severity_grows_with_the_score(score: float, severity: str) -> None:
    out = build(scores(cart__i_1__mem_pct=burst(5, 7, score)))
    assert out.iloc[0]["severity"] == severity


def test_risk_alone_raises_a_warning_incident() -> None:
    ds = pd.date_range(T0, periods=N, freq=STEP).astype("datetime64[us, UTC]")
    risk = pd.DataFrame({"service": "cart", "ds": ds, "risk": np.where(np.arange(N) == 12, 0.8, 0.1)})
    out = build(scores(), risk)
    assert len(out) == 1
    row = out.iloc[0]
    assert row["start"] == T0 + 12 * STEP and row["severity"] == "warning"
    assert row["score"] == pytest.approx(0.8)
    assert json.loads(row["evidence"])["max_risk"] == pytest.approx(0.8)


def test_no_activity_gives_an_empty_typed_frame() -> None:
    out = build(scores())
    assert out.empty and list(out.columns) == list(INCIDENT_OUTPUT_COLUMNS)
    assert str(out["start"].dtype) == "datetime64[us, UTC]"


def test_bad_parameters_raise_naming_the_problem() -> None:
    with pytest.raises(ValueError, match="min_series"):
        build(scores(), min_series=0)
    with pytest.raises(ValueError, match="resolve_after"):
        build(scores(), resolve_after="0min")


def test_with_a_call_graph_each_incident_ranks_the_anomalous_services_root_cause_first() -> None:
    graph = {"search": ("cart",), "cart": ()}
    # cart (the callee) is anomalous first and harder; search (its caller) follows mildly.
    s = scores(cart__i_1__cpu_pct=burst(5, 10, 0.99999), search__i_1__error_rate=burst(6, 10, 0.995))
    out = build(s, call_graph=graph)
    assert list(out.columns) == [*INCIDENT_OUTPUT_COLUMNS, "ranked_services"]
    by_service = out.set_index("service")["ranked_services"]
    assert by_service["cart"] == "cart"  # raised before search was anomalous
    assert by_service["search"] == "cart;search"  # the caller's incident blames its callee first
    assert list(build(s).columns) == list(INCIDENT_OUTPUT_COLUMNS)  # unchanged without a graph
    assert "ranked_services" in build(scores(), call_graph=graph).columns  # also when empty
