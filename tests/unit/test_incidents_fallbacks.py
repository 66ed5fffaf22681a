"""build_incidents (models.incidents.rollup) on input the simulator never produces: metric names that
:data:`METRIC_CATEGORIES` does not know (real exporters'), and episodes too short to raise."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.incidents.base import INCIDENT_OUTPUT_COLUMNS
from models.incidents.rollup import build_incidents

T0 = pd.Timestamp("2026-05-04 10:00", tz="UTC")
N = 30
METRICS = (
    "cpu_usage_rate",
    "memory_usage",
    "pod_server_latency_p95",
    "edge_wire_latency_p50",
    "success_rate",
    "network_receive_bytes",
    "mem_pct",
)
CATALOGUE = pd.DataFrame(
    {"unique_id": [f"cart/{m}" for m in METRICS], "service": "cart", "resource_id": "pod-1", "metric": METRICS}
)


def scores(hot: dict[str, float], steps: range = range(10, 14)) -> pd.DataFrame:
    """Score 0.1 everywhere; the metrics in ``hot`` score their value over ``steps``."""
    ds = pd.date_range(T0, periods=N, freq="1min").astype("datetime64[us, UTC]")
    frames = []
    for metric in METRICS:
        values = np.full(N, 0.1)
        if metric in hot:
            values[list(steps)] = hot[metric]
        frames.append(pd.DataFrame({"unique_id": f"cart/{metric}", "ds": ds, "score": values}))
    return pd.concat(frames, ignore_index=True)


def build(s: pd.DataFrame, **kw: object) -> pd.DataFrame:
    params = {"anomaly_threshold": 0.9999, "risk_threshold": 0.5, "resolve_after": "30min", **kw}
    return build_incidents(s, None, CATALOGUE, **params)


@pytest.mark.parametrize(
    ("hot", "category"),
    [
        # a busy CPU explains the slow answers, even where latency has more anomalous series
        ({"cpu_usage_rate": 0.99999, "pod_server_latency_p95": 0.999999}, "saturation"),
        ({"pod_server_latency_p95": 0.99999}, "saturation"),
        ({"edge_wire_latency_p50": 0.99999}, "latency"),  # time lost between caller and callee
        ({"memory_usage": 0.99999}, "resource_leak"),
        ({"success_rate": 0.99999, "cpu_usage_rate": 0.999999}, "errors"),  # failed requests first
        # below the threshold a kind does not count: the memory growth alone is the incident
        ({"memory_usage": 0.99999, "cpu_usage_rate": 0.999}, "resource_leak"),
    ],
)
def test_metrics_the_table_does_not_know_are_categorised_by_their_kind(hot: dict[str, float], category: str) -> None:
    out = build(scores(hot))
    assert len(out) == 1 and out.iloc[0]["category"] == category


def test_a_metric_the_table_knows_still_decides_the_category() -> None:
    out = build(scores({"mem_pct": 0.99999, "cpu_usage_rate": 0.999999}))
    assert out.iloc[0]["category"] == "resource_leak"  # mem_pct's entry, not the CPU's kind


def test_episodes_shorter_than_min_active_raise_nothing() -> None:
    out = build(scores({"cpu_usage_rate": 0.99999}, steps=range(10, 11)), min_active=2)
    assert out.empty and list(out.columns) == list(INCIDENT_OUTPUT_COLUMNS)
    assert len(build(scores({"cpu_usage_rate": 0.99999}, steps=range(10, 12)), min_active=2)) == 1


def test_an_episode_raised_by_risk_alone_is_categorised_by_its_most_surprising_kind() -> None:
    ds = pd.date_range(T0, periods=N, freq="1min").astype("datetime64[us, UTC]")
    risk = pd.DataFrame({"service": "cart", "ds": ds, "risk": np.where(np.arange(N) == 12, 0.8, 0.1)})
    s = scores({"cpu_usage_rate": 0.999, "memory_usage": 0.99})  # both below the anomaly threshold
    unknown_only = CATALOGUE[CATALOGUE["metric"] != "mem_pct"]  # no name the table knows
    s = s[s["unique_id"].isin(unknown_only["unique_id"])]
    out = build_incidents(s, risk, unknown_only, anomaly_threshold=0.9999, risk_threshold=0.5)
    assert len(out) == 1 and out.iloc[0]["category"] == "saturation"
