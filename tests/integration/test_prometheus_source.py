"""The Prometheus source against a real Prometheus with 14 backfilled days, node_exporter and faults."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from connectors.sources.base import Window
from connectors.sources.prometheus.client import PrometheusUnavailableError
from connectors.sources.prometheus.source import PrometheusFetchError, PrometheusSource
from foresight.lake import Lake
from foresight.watermarks import WatermarkStore
from support.fault_proxy import FaultProxy
from support.prometheus import (
    PrometheusServer,
    SyntheticSeries,
    backfill,
    node_exporter,
    prometheus,
    require_binary,
)

pytestmark = pytest.mark.integration

STEP = pd.Timedelta("60s")
END = pd.Timestamp.now(tz="UTC").floor("min") - STEP  # newest backfilled sample
START = END - pd.Timedelta(days=14) + STEP
GAP = (START + pd.Timedelta(days=3), START + pd.Timedelta(days=3, hours=2))  # h1 cpu is silent here
RESET_AT = 9_000  # the counter restarts from zero at this sample
STREAMS = ("cpu_pct", "mem_bytes", "http_requests")
SERIES_OPTIONS = [
    {"name": "cpu_pct", "promql": "cpu_usage", "unit": "percent"},
    {"name": "mem_bytes", "promql": "mem_used", "unit": "bytes"},
    {"name": "http_requests", "promql": "http_requests_total", "unit": "requests_per_second", "counter": True},
]


def _synthetic() -> tuple[list[SyntheticSeries], dict[str, pd.DataFrame]]:
    """The written series and, per unique_id, the telemetry the source must return for them."""
    rng = np.random.default_rng(42)
    ds = pd.date_range(START, END, freq=STEP)
    n = len(ds)
    cpu1 = rng.uniform(5, 95, n).round(3)
    keep = ~((ds >= GAP[0]) & (ds < GAP[1]))
    cpu2 = rng.uniform(5, 95, n).round(3)
    cpu2[[100, 5000]] = [np.nan, np.inf]  # the contract must quarantine these, not the source
    mem = rng.integers(1 << 30, 8 << 30, n).astype("float64")
    increments = rng.integers(0, 600, n).astype("float64")
    counter = np.cumsum(increments)
    counter[RESET_AT:] = np.cumsum(increments[RESET_AT:])  # restarted: counts up from zero again
    written = [
        SyntheticSeries("cpu_usage", {"job": "api", "instance": "h1:9100"}, ds[keep], cpu1[keep]),
        SyntheticSeries("cpu_usage", {"job": "api", "instance": "h2:9100"}, ds, cpu2),
        SyntheticSeries("mem_used", {"job": "db", "instance": "h3:9100"}, ds, mem),
        SyntheticSeries("http_requests_total", {"job": "api", "instance": "h1:9100"}, ds, counter, kind="counter"),
    ]
    expected = {
        "api/h1:9100/cpu_pct": written[0].frame(),
        "api/h2:9100/cpu_pct": written[1].frame(),
        "db/h3:9100/mem_bytes": written[2].frame(),
        # Every increment over one minute, independent of how the source computes it.
        "api/h1:9100/http_requests": pd.DataFrame({"ds": ds[1:], "y": increments[1:] / 60.0}),
    }
    return written, expected


WRITTEN, EXPECTED = _synthetic()


def _expected_frame(drop_non_finite: bool = False) -> pd.DataFrame:
    frame = pd.concat([f.assign(unique_id=uid) for uid, f in EXPECTED.items()], ignore_index=True)
    if drop_non_finite:
        frame = frame[np.isfinite(frame["y"])]
    return _canonical(frame)


def _expected_in(window: Window) -> pd.DataFrame:
    """What a pull of ``window`` returns: the counter's first sample in it has no predecessor."""
    want = _expected_frame()
    want = want[(want["ds"] >= window.start) & (want["ds"] < window.end)]
    first_rate = want.index[want["unique_id"] == "api/h1:9100/http_requests"][:1]
    return want.drop(first_rate).reset_index(drop=True)


def _canonical(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame[["unique_id", "ds", "y"]].astype({"unique_id": str, "ds": "datetime64[us, UTC]", "y": "float64"})
    return out.sort_values(["unique_id", "ds"]).reset_index(drop=True)


@pytest.fixture(scope="module")
def tsdb_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The 14 days backfilled once; each server gets its own copy."""
    require_binary("prometheus")
    path = tmp_path_factory.mktemp("prom-template") / "tsdb"
    backfill(path, WRITTEN)
    return path


def _server_from(template: Path, workdir: Path) -> AbstractContextManager[PrometheusServer]:
    workdir.mkdir(parents=True, exist_ok=True)
    shutil.copytree(template, workdir / "tsdb")
    return prometheus(workdir)


@pytest.fixture(scope="module")
def prom(tsdb_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusServer]:
    with _server_from(tsdb_template, tmp_path_factory.mktemp("prom")) as server:
        yield server


def _source(url: str, **options) -> PrometheusSource:
    return PrometheusSource(name="prom", **({"url": url, "series": SERIES_OPTIONS, "step": "60s",
                                             "backoff": "50ms"} | options))


FULL = Window(START - pd.Timedelta(hours=1), END + pd.Timedelta(hours=1))


# -- pulling history -------------------------------------------------------------------------------
def test_pulled_values_equal_what_was_written_across_many_chunks(prom: PrometheusServer) -> None:
    with FaultProxy(prom.url) as proxy:
        batch = _source(proxy.url, max_points=1500, max_concurrency=4).fetch(FULL)
    points = len(pd.date_range(FULL.start, FULL.end, freq=STEP, inclusive="left"))
    assert len(proxy.queries) == 3 * -(-points // 1500), "one request per series and chunk"
    got = _canonical(batch.telemetry)
    want = _expected_frame()
    assert not got.duplicated(["unique_id", "ds"]).any()
    pd.testing.assert_frame_equal(got, want, check_exact=False, rtol=1e-12)
    # Every chunk boundary instant was fetched exactly once (and the gap stayed a gap).
    h1 = got[got["unique_id"] == "api/h1:9100/cpu_pct"]
    assert not ((h1["ds"] >= GAP[0]) & (h1["ds"] < GAP[1])).any()
    catalogue = batch.catalogue.set_index("unique_id")
    assert sorted(catalogue.index) == sorted(EXPECTED)
    assert catalogue.loc["db/h3:9100/mem_bytes", "unit"] == "bytes"
    assert json.loads(catalogue.loc["api/h2:9100/cpu_pct", "labels"]) == {
        "__name__": "cpu_usage", "job": "api", "instance": "h2:9100"}


def test_a_new_label_set_becomes_a_new_series(prom: PrometheusServer) -> None:
    source = _source(prom.url, series=[{"name": "cpu", "promql": 'label_replace(cpu_usage, "zone", "z-$1", '
                                                             '"instance", "h(1).*")', "unit": "percent"}])
    batch = source.fetch(Window(END - pd.Timedelta(hours=1), END + STEP))
    assert sorted(batch.catalogue["unique_id"]) == ["api/h1:9100/cpu{zone=z-1}", "api/h2:9100/cpu"]


def test_a_rejected_query_is_isolated_with_prometheus_message(prom: PrometheusServer) -> None:
    series = SERIES_OPTIONS[:1] + [{"name": "broken", "promql": "rate(cpu_usage[5m]", "unit": "count"}]
    source = _source(prom.url, series=series, max_points=500)
    batch = source.fetch(Window(END - pd.Timedelta(hours=20), END + STEP))
    assert set(batch.telemetry["unique_id"]) == {"api/h1:9100/cpu_pct", "api/h2:9100/cpu_pct"}
    assert batch.rejected is not None and batch.rejected["origin"].tolist() == ["prom/broken"]
    assert "bad_data" in batch.rejected["reason"].iloc[0] and "parse error" in batch.rejected["reason"].iloc[0]
    assert "broken" in source.failures and source.last_stats is not None
    assert source.last_stats.retries == 0 and source.last_stats.query_errors == 3, "a 400 is never retried"
    with pytest.raises(PrometheusFetchError, match="every series failed"):
        _source(prom.url, series=series[1:]).fetch(Window(END - pd.Timedelta(hours=1), END))


# -- faults ----------------------------------------------------------------------------------------
def test_503s_are_retried_until_the_pull_succeeds(prom: PrometheusServer) -> None:
    window = Window(END - pd.Timedelta(hours=2), END + STEP)
    with FaultProxy(prom.url, fail_first=2) as proxy:
        batch = _source(proxy.url, max_concurrency=1, retries=3).fetch(window)
    assert proxy.answered[:2] == [503, 503] and proxy.answered[2:] == [200] * 3
    want = _expected_in(window)
    pd.testing.assert_frame_equal(_canonical(batch.telemetry), want)


def test_a_server_that_keeps_failing_fails_clearly_after_its_retries(prom: PrometheusServer) -> None:
    with FaultProxy(prom.url, fail_first=10_000) as proxy, pytest.raises(PrometheusUnavailableError) as info:
        _source(proxy.url, max_concurrency=1, retries=2).fetch(Window(END - pd.Timedelta(hours=1), END))
    err = info.value
    assert err.attempts == 3 and "HTTP 503" in err.last_error and "injected 503" in err.last_error
    assert err.query == "cpu_usage" and "cpu_usage" in str(err) and err.chunk.describe() in str(err)
    assert len(proxy.queries) == 3, "the other series' requests were abandoned, not retried"


def test_slow_answers_past_the_timeout_are_retried_then_fail_clearly(prom: PrometheusServer) -> None:
    window = Window(END - pd.Timedelta(minutes=30), END + STEP)
    one = {"series": SERIES_OPTIONS[:1], "timeout": "400ms", "max_concurrency": 1}
    with FaultProxy(prom.url, delay_first=2, delay=1.2) as proxy:
        batch = _source(proxy.url, retries=3, **one).fetch(window)
    assert len(proxy.queries) == 3 and len(batch.telemetry) == 2 * 31
    with FaultProxy(prom.url, delay_first=10_000, delay=1.2) as proxy, \
            pytest.raises(PrometheusUnavailableError, match="timed out") as info:
        _source(proxy.url, retries=1, **one).fetch(window)
    assert info.value.attempts == 2


# -- live scrape -----------------------------------------------------------------------------------
def test_a_live_node_exporter_scrape_appears(tmp_path: Path) -> None:
    with node_exporter(tmp_path) as target, prometheus(tmp_path / "live", scrape_targets={"node": target}) as server:
        source = PrometheusSource(name="live", url=server.url, step="1s", series=[
            {"name": "load1", "promql": "node_load1", "unit": "count"},
            {"name": "cpu_seconds", "promql": "sum by (job, instance, mode) (node_cpu_seconds_total)",
             "unit": "count", "counter": True}])
        deadline, batch = time.monotonic() + 20, None
        while time.monotonic() < deadline:
            now = pd.Timestamp.now(tz="UTC")
            batch = source.fetch(Window(now - pd.Timedelta("30s"), now))
            if batch.telemetry["unique_id"].str.contains("cpu_seconds").any():
                break
            time.sleep(1)
    assert batch is not None
    ids = set(batch.telemetry["unique_id"])
    assert f"node/{target}/load1" in ids
    assert f"node/{target}/cpu_seconds{{mode=idle}}" in ids
    assert (batch.telemetry["y"] >= 0).all() and batch.telemetry["y"].notna().all()


# -- through the ingest flow -----------------------------------------------------------------------
def _configure(monkeypatch: pytest.MonkeyPatch, url: str, **options) -> None:
    monkeypatch.setenv("FORESIGHT_SOURCES", json.dumps([{
        "name": "prom", "kind": "prometheus", "overlap": "PT10M", "initial_lookback": "P15D",
        "options": {"url": url, "series": SERIES_OPTIONS, "step": "60s", "backoff": "50ms"} | options,
    }]))


def test_ingest_pulls_incrementally_from_the_watermark(prefect_harness, foresight_home: Path, prom: PrometheusServer,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from flows.ingest import ingest

    with FaultProxy(prom.url) as proxy:
        _configure(monkeypatch, proxy.url, max_points=5000)
        [first] = ingest()
        lake = Lake(foresight_home / "lake")
        stored = _canonical(lake.read("telemetry"))
        marks = WatermarkStore(lake).all_for("prom")
        assert first["passed"]
        pd.testing.assert_frame_equal(stored, _expected_frame(drop_non_finite=True), check_exact=False, rtol=1e-12)
        assert marks == dict.fromkeys(STREAMS, END), "one watermark per configured series"
        mark = END
        n_first = len(proxy.queries)
        [second] = ingest()
    resumed = pd.Timestamp(float(proxy.queries[n_first]["start"]), unit="s", tz="UTC")
    assert resumed == mark - pd.Timedelta("10min"), "the second run re-reads the overlap, no more"
    assert len(proxy.queries) - n_first == 3, "one chunk per series for the short resumed window"
    again = _canonical(lake.read("telemetry"))
    pd.testing.assert_frame_equal(again, stored)  # the overlap re-read changed nothing
    assert second["passed"] and WatermarkStore(lake).all_for("prom") == marks


def test_a_refused_series_keeps_only_its_own_watermark_back(prefect_harness, foresight_home: Path,
                                                            prom: PrometheusServer,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from flows.ingest import ingest

    broken = [dict(s, promql="mem_used[") if s["name"] == "mem_bytes" else s for s in SERIES_OPTIONS]
    lake = Lake(foresight_home / "lake")
    with FaultProxy(prom.url) as proxy:
        _configure(monkeypatch, proxy.url, series=broken, max_points=11_000)
        [first] = ingest()
        assert first["passed"], "the other series are stored"
        assert WatermarkStore(lake).all_for("prom") == {"cpu_pct": END, "http_requests": END}
        assert "db/h3:9100/mem_bytes" not in set(lake.read("telemetry")["unique_id"])

        n_first = len(proxy.queries)
        _configure(monkeypatch, proxy.url, max_points=11_000)  # the query is fixed
        [second] = ingest()
        starts: dict[str, pd.Timestamp] = {}
        for q in proxy.queries[n_first:]:  # a query's first chunk is where its pull started
            start = pd.Timestamp(float(q["start"]), unit="s", tz="UTC")
            starts[q["query"]] = min(start, starts.get(q["query"], start))
    assert second["passed"]
    assert starts["cpu_usage"] == starts["http_requests_total"] == END - pd.Timedelta("10min"), \
        "up-to-date series resume at their own watermark"
    assert starts["mem_used"] < START, "the refused series is re-read from the start of its history"
    pd.testing.assert_frame_equal(_canonical(lake.read("telemetry")), _expected_frame(drop_non_finite=True),
                                  check_exact=False, rtol=1e-12)
    assert WatermarkStore(lake).all_for("prom") == dict.fromkeys(STREAMS, END)


def test_prometheus_stopped_mid_run_fails_and_a_rerun_completes(prefect_harness, foresight_home: Path,
                                                                 tsdb_template: Path, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from flows.ingest import ingest

    with _server_from(tsdb_template, tmp_path / "stoppable") as server:
        stop_at = 4

        def stop_prometheus(n: int) -> None:
            if n == stop_at:
                server.stop()

        with FaultProxy(server.url, on_request=stop_prometheus) as proxy:
            _configure(monkeypatch, proxy.url, max_points=3000, max_concurrency=1, retries=2)
            with pytest.raises(PrometheusUnavailableError, match="after 3 attempt") as info:
                ingest()
            assert "RemoteDisconnected" in info.value.last_error or "Connection" in info.value.last_error
            lake = Lake(foresight_home / "lake")
            assert WatermarkStore(lake).all_for("prom") == {}, "a failed pull does not advance a watermark"
            assert not lake.exists("telemetry")
            server.start()  # same port, same data
            [outcome] = ingest()
    assert outcome["passed"]
    pd.testing.assert_frame_equal(_canonical(lake.read("telemetry")), _expected_frame(drop_non_finite=True),
                                  check_exact=False, rtol=1e-12)
    assert WatermarkStore(lake).all_for("prom") == dict.fromkeys(STREAMS, END)
