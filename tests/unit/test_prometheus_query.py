"""Pure parts of the Prometheus source: range planning, decoding, counters and options."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from connectors.sources.base import Window
from connectors.sources.prometheus.decode import (
    LabelCollisionError,
    SeriesNaming,
    counter_rates,
    decode_matrix,
    identify,
)
from connectors.sources.prometheus.query import MAX_POINTS_PER_SERIES, plan_chunks, range_query_params
from connectors.sources.prometheus.source import PrometheusConfigError, PrometheusSource, parse_options
from foresight.schemas import CATALOGUE_COLUMNS

T0 = pd.Timestamp("2026-03-01T00:00:00Z")


def _grid_ms(chunks) -> np.ndarray:
    """Every evaluation instant the chunks' queries would ask Prometheus for, in order."""
    parts = [np.arange(c.start_ms, c.last_ms + 1, c.step_ms) for c in chunks]
    return np.concatenate(parts) if parts else np.array([], dtype="int64")


def _expected_ms(start: pd.Timestamp, end: pd.Timestamp, step: pd.Timedelta) -> np.ndarray:
    """Brute force: all epoch-aligned multiples of step inside [start, end)."""
    step_ms = int(step / pd.Timedelta("1ms"))
    lo, hi = start.value // 1_000_000 - 2 * step_ms, end.value // 1_000_000 + 2 * step_ms
    grid = np.arange(lo - lo % step_ms, hi, step_ms)
    stamps = grid.astype("int64") * 1_000_000
    return grid[(stamps >= start.value) & (stamps < end.value)]


@pytest.mark.parametrize(
    ("start", "end", "step", "max_points"),
    [
        (T0, T0 + pd.Timedelta(days=14), pd.Timedelta("60s"), MAX_POINTS_PER_SERIES),
        (T0 + pd.Timedelta("17s"), T0 + pd.Timedelta(hours=5, seconds=3), pd.Timedelta("60s"), 7),
        (T0, T0 + pd.Timedelta(hours=1), pd.Timedelta("60s"), 60),  # end on the grid: excluded
        (T0 + pd.Timedelta("1ms"), T0 + pd.Timedelta(minutes=10, milliseconds=1), pd.Timedelta("15s"), 4),
        (T0 + pd.Timedelta("250ms"), T0 + pd.Timedelta(seconds=20), pd.Timedelta("1500ms"), 3),
        (T0, T0 + pd.Timedelta("30s"), pd.Timedelta("60s"), 100),
    ],
)
def test_chunks_cover_every_aligned_instant_exactly_once(start, end, step, max_points) -> None:
    chunks = plan_chunks(start, end, step, max_points=max_points)
    got, want = _grid_ms(chunks), _expected_ms(start, end, step)
    np.testing.assert_array_equal(got, want)  # same instants, in order: no gap, no overlap
    assert all(c.points <= max_points for c in chunks)
    assert all(c.end_ms == n.start_ms for c, n in zip(chunks, chunks[1:], strict=False)), "chunks abut"


def test_fourteen_days_at_one_minute_needs_two_requests_under_the_prometheus_limit() -> None:
    chunks = plan_chunks(T0, T0 + pd.Timedelta(days=14), pd.Timedelta("60s"))
    assert [c.points for c in chunks] == [11_000, 20_160 - 11_000]
    params = [range_query_params("up", c) for c in chunks]
    points = [(float(p["end"]) - float(p["start"])) / float(p["step"]) + 1 for p in params]
    assert points == [11_000, 9_160] and max(points) <= MAX_POINTS_PER_SERIES


def test_adjacent_windows_split_at_a_boundary_sample_without_losing_or_repeating_it() -> None:
    step, mid = pd.Timedelta("60s"), T0 + pd.Timedelta(hours=3)  # mid is itself a grid instant
    left = _grid_ms(plan_chunks(T0, mid, step, max_points=50))
    right = _grid_ms(plan_chunks(mid, T0 + pd.Timedelta(hours=6), step, max_points=50))
    whole = _grid_ms(plan_chunks(T0, T0 + pd.Timedelta(hours=6), step, max_points=50))
    assert mid.value // 1_000_000 not in left and mid.value // 1_000_000 in right
    np.testing.assert_array_equal(np.concatenate([left, right]), whole)


def test_range_params_are_exact_decimal_seconds_ending_on_the_last_instant() -> None:
    [chunk] = plan_chunks(T0 + pd.Timedelta("10ms"), T0 + pd.Timedelta("5s"), pd.Timedelta("1500ms"))
    params = range_query_params("rate(x[5m])", chunk, timeout=pd.Timedelta("2s"))
    base = T0.value // 1_000_000_000
    assert params == {"query": "rate(x[5m])", "start": f"{base + 1}.500", "end": f"{base + 4}.500",
                      "step": "1.500", "timeout": "2000ms"}


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"step": pd.Timedelta("100us")}, "whole number of milliseconds"),
        ({"step": pd.Timedelta(0)}, "positive"),
        ({"max_points": 11_001}, "max_points"),
        ({"max_points": 0}, "max_points"),
    ],
)
def test_invalid_plans_are_refused(kwargs, match) -> None:
    args = {"step": pd.Timedelta("60s"), "max_points": 100} | kwargs
    with pytest.raises(ValueError, match=match):
        plan_chunks(T0, T0 + pd.Timedelta(hours=1), args["step"], max_points=args["max_points"])


def test_naive_bounds_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        plan_chunks(pd.Timestamp("2026-01-01"), T0, pd.Timedelta("60s"))


# -- decoding ------------------------------------------------------------------------------------
def _matrix(*series: tuple[dict, list]) -> list[dict]:
    return [{"metric": labels, "values": values} for labels, values in series]


def test_decode_parses_special_values_and_exact_millisecond_times() -> None:
    t = T0.value / 1e9
    result = _matrix(({"job": "api", "instance": "10.0.0.1:9100"},
                      [[t, "1.5"], [t + 60.001, "NaN"], [t + 120, "+Inf"], [t + 180, "-Inf"], [t + 240, "1e3"]]))
    telemetry, catalogue = decode_matrix(result, SeriesNaming("cpu_pct", "percent"), source="prom")
    assert telemetry["unique_id"].unique().tolist() == ["api/10.0.0.1:9100/cpu_pct"]
    assert str(telemetry["ds"].dtype) == "datetime64[us, UTC]"
    assert telemetry["ds"].iloc[1] == T0 + pd.Timedelta("60.001s")
    y = telemetry["y"].to_numpy()
    assert y[0] == 1.5 and np.isnan(y[1]) and y[2] == np.inf and y[3] == -np.inf and y[4] == 1000.0
    assert list(catalogue.columns) == list(CATALOGUE_COLUMNS)
    assert catalogue.iloc[0][["service", "resource_id", "metric", "unit", "source"]].tolist() == [
        "api", "10.0.0.1:9100", "cpu_pct", "percent", "prom"]


def test_extra_labels_make_distinct_ids_and_the_catalogue_keeps_the_full_label_set() -> None:
    t = T0.value / 1e9
    base = {"__name__": "node_cpu_seconds_total", "job": "node", "instance": "h1"}
    result = _matrix(({**base, "mode": "idle", "cpu": "0"}, [[t, "1"]]), ({**base, "mode": "user", "cpu": "0"}, [[t, "2"]]))
    telemetry, catalogue = decode_matrix(result, SeriesNaming("cpu", "count"), source="p")
    assert sorted(catalogue["unique_id"]) == ["node/h1/cpu{cpu=0,mode=idle}", "node/h1/cpu{cpu=0,mode=user}"]
    assert json.loads(catalogue["labels"].iloc[0]) == {**base, "mode": "idle", "cpu": "0"}
    assert len(telemetry) == 2 and telemetry["unique_id"].nunique() == 2


def test_identity_sanitises_slashes_and_marks_missing_labels() -> None:
    uid, service, resource = identify({"job": "kube/api", "path": "/v1/x"}, SeriesNaming("lat", "seconds"))
    assert uid == "kube_api/_/lat{path=_v1_x}" and (service, resource) == ("kube_api", "_")
    assert identify({"job": "x", "instance": "h"}, SeriesNaming("m", "count", service="checkout"))[0] == "checkout/h/m{job=x}"
    assert len(uid.split("/")) == 3


def test_label_sets_that_collide_on_one_id_raise_with_both_sets() -> None:
    t = T0.value / 1e9
    result = _matrix(({"job": "a/b", "instance": "h"}, [[t, "1"]]), ({"job": "a_b", "instance": "h"}, [[t, "2"]]))
    with pytest.raises(LabelCollisionError) as info:
        decode_matrix(result, SeriesNaming("m", "count"), source="p")
    assert info.value.unique_id == "a_b/h/m" and len(info.value.label_sets) == 2


def test_decode_keeps_only_the_half_open_window() -> None:
    t = T0.value / 1e9
    result = _matrix(({"job": "a", "instance": "h"}, [[t - 60, "0"], [t, "1"], [t + 60, "2"], [t + 120, "3"]]))
    telemetry, _ = decode_matrix(result, SeriesNaming("m", "count"), source="p",
                                 start=T0, end=T0 + pd.Timedelta("120s"))
    assert telemetry["y"].tolist() == [1.0, 2.0]


def test_decode_of_an_empty_result_is_an_empty_typed_frame() -> None:
    telemetry, catalogue = decode_matrix([], SeriesNaming("m", "count"), source="p")
    assert telemetry.empty and str(telemetry["ds"].dtype) == "datetime64[us, UTC]"
    assert catalogue.empty and list(catalogue.columns) == list(CATALOGUE_COLUMNS)


# -- counters ------------------------------------------------------------------------------------
def test_counter_rates_handle_a_reset_per_series() -> None:
    ds = pd.date_range(T0, periods=6, freq="60s")
    raw = pd.concat([
        pd.DataFrame({"unique_id": "a/h/req", "ds": ds, "y": [100.0, 160.0, 220.0, 30.0, 90.0, 150.0]}),
        pd.DataFrame({"unique_id": "b/h/req", "ds": ds, "y": [0.0, 6.0, 12.0, 18.0, 24.0, 30.0]}),
    ]).sample(frac=1.0, random_state=7)  # order must not matter
    rates = counter_rates(raw)
    a = rates[rates["unique_id"] == "a/h/req"]
    # The reset at index 3 counted 0 -> 30 in 60 s: 0.5/s, never a negative rate.
    assert a["y"].tolist() == [1.0, 1.0, 0.5, 1.0, 1.0]
    assert a["ds"].tolist() == list(ds[1:])
    assert rates.loc[rates["unique_id"] == "b/h/req", "y"].tolist() == [0.1] * 5
    assert (rates["y"] >= 0).all()


def test_counter_rate_across_a_gap_is_the_average_over_the_gap() -> None:
    ds = pd.DatetimeIndex([T0, T0 + pd.Timedelta("60s"), T0 + pd.Timedelta("660s")])
    rates = counter_rates(pd.DataFrame({"unique_id": "s/h/c", "ds": ds, "y": [0.0, 60.0, 660.0]}))
    assert rates["y"].tolist() == [1.0, 1.0]


# -- options -------------------------------------------------------------------------------------
SERIES = [{"name": "cpu_pct", "promql": "up", "unit": "percent"}]


def test_options_have_documented_defaults_and_accept_prometheus_durations() -> None:
    opts = parse_options("p", {"url": "http://127.0.0.1:9090", "series": SERIES, "timeout": "5s"})
    assert (opts.step, opts.max_concurrency, opts.retries) == (pd.Timedelta("60s"), 4, 3)
    assert opts.timeout == pd.Timedelta("5s")
    assert (opts.series[0].service_label, opts.series[0].resource_label) == ("job", "instance")


@pytest.mark.parametrize(
    ("options", "where"),
    [
        ({"url": "127.0.0.1:9090"}, "url"),
        ({"step": "often"}, "step"),
        ({"step": "100us"}, "step"),
        ({"max_concurrency": 0}, "max_concurrency"),
        ({"series": []}, "series"),
        ({"series": SERIES * 2}, "series"),
        ({"series": [{"name": "a/b", "promql": "up", "unit": "count"}]}, "series.0.name"),
        ({"verify": "/no/such/ca.pem"}, "verify"),
        ({"retires": 2}, "retires"),
    ],
)
def test_bad_options_are_named(options, where) -> None:
    with pytest.raises(PrometheusConfigError, match=f"'p'.*{where.replace('.', '[.]')}") as info:
        parse_options("p", {"url": "http://h:9090", "series": SERIES} | options)
    assert any(loc.startswith(where) for loc, _ in info.value.problems)


def test_secrets_are_never_echoed_in_errors_or_reprs() -> None:
    with pytest.raises(PrometheusConfigError) as info:
        parse_options("p", {"url": "http://h:9090", "series": SERIES, "bearer_token": "tok-SECRET",
                            "basic_auth": {"username": "u", "password": "pw-SECRET"}})
    assert "both" in str(info.value) and "SECRET" not in str(info.value)
    opts = parse_options("p", {"url": "http://h:9090", "series": SERIES, "bearer_token": "tok-SECRET"})
    assert "SECRET" not in repr(opts) and "SECRET" not in opts.model_dump_json()


def test_the_source_plans_one_request_per_series_and_chunk() -> None:
    source = PrometheusSource(name="p", url="http://h:9090", step="60s", max_points=100,
                              series=SERIES + [{"name": "mem_pct", "promql": "up", "unit": "percent"}])
    requests = source.requests_for(Window(T0, T0 + pd.Timedelta(hours=5)))
    assert [r.key for r in requests] == ["cpu_pct"] * 3 + ["mem_pct"] * 3
    assert sum(r.chunk.points for r in requests) == 2 * 300
