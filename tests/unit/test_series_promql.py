"""Per-series PromQL from the source's expression and the catalogue's labels (pure, plus SQLite I/O)."""

from __future__ import annotations

import pandas as pd
import pytest
from sqlalchemy import create_engine

from connectors.sinks.series_promql import SeriesPromqlTable, series_promql_frame, series_selector
from foresight.settings import SourceConfig


@pytest.mark.parametrize(
    ("expression", "labels", "counter", "expected"),
    [
        (
            "foresight_sim_cpu_pct",
            {"job": "checkout", "instance": "i-01"},
            False,
            'foresight_sim_cpu_pct{instance="i-01",job="checkout"}',
        ),
        (
            'up{job="node"}',
            {"job": "node", "instance": "h:9100", "__name__": "up"},
            False,
            'up{job="node",instance="h:9100",job="node"}',
        ),
        (
            "http_requests_total",
            {"job": "api"},
            True,
            'rate(http_requests_total{job="api"}[$__rate_interval])',
        ),
        ("m", {"path": 'a"b\\c'}, False, 'm{path="a\\"b\\\\c"}'),
        (
            "sum by (job) (rate(x[5m]))",
            {"job": "api"},
            False,
            '(sum by (job) (rate(x[5m]))) and on(job) label_replace(vector(1), "job", "api", "", "")',
        ),
        (
            "100 * m",
            {"job": "a$1", "instance": "i"},
            False,
            '(100 * m) and on(instance, job) label_replace(label_replace(vector(1), "instance", "i", "", ""), '
            '"job", "a$$1", "", "")',
        ),
        ("sum(x)", {}, False, "(sum(x))"),
    ],
)
def test_series_selector(expression: str, labels: dict, counter: bool, expected: str) -> None:
    assert series_selector(expression, labels, counter=counter) == expected


def test_series_selector_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="empty"):
        series_selector("  ", {})
    with pytest.raises(ValueError, match="label names"):
        series_selector("m", {"bad-name": "x"})


def test_frame_covers_only_prometheus_sourced_series() -> None:
    sources = [
        SourceConfig(
            name="prom",
            kind="prometheus",
            options={"series": [{"name": "cpu_pct", "promql": "node_cpu", "unit": "percent"}]},
        ),
        SourceConfig(name="sim", kind="simulator"),
    ]
    catalogue = pd.DataFrame(
        {
            "unique_id": ["svc/h1/cpu_pct", "svc/h2/cpu_pct", "svc/h1/mem_pct", "other/h9/cpu_pct"],
            "source": ["prom", "prom", "prom", "sim"],
            "metric": ["cpu_pct", "cpu_pct", "mem_pct", "cpu_pct"],
            "labels": ['{"job": "svc", "instance": "h1"}', '{"job": "svc", "instance": "h2"}', "{}", "{}"],
        }
    )
    frame = series_promql_frame(catalogue, sources)
    assert frame.to_dict("records") == [
        {"unique_id": "svc/h1/cpu_pct", "source": "prom", "promql": 'node_cpu{instance="h1",job="svc"}'},
        {"unique_id": "svc/h2/cpu_pct", "source": "prom", "promql": 'node_cpu{instance="h2",job="svc"}'},
    ]
    with pytest.raises(ValueError, match="not JSON"):
        series_promql_frame(catalogue.assign(labels="{oops"), sources)


def test_table_upserts_by_unique_id(tmp_path) -> None:
    table = SeriesPromqlTable(create_engine(f"sqlite:///{tmp_path / 'store.db'}"))
    table.create()
    table.create()  # idempotent
    table.write(pd.DataFrame({"unique_id": ["a", "b"], "source": "p", "promql": ["x", "y"]}))
    table.write(pd.DataFrame({"unique_id": ["b"], "source": "p", "promql": ["z"]}))
    assert table.read().to_dict("records") == [
        {"unique_id": "a", "source": "p", "promql": "x"},
        {"unique_id": "b", "source": "p", "promql": "z"},
    ]
