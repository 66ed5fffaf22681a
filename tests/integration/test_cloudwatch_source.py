"""The cloudwatch source against a real moto_server on loopback, alone and through the ingest flow.

moto's GetMetricData scans every stored datapoint for every query and period (quadratic), so
the data here is sized to keep the file fast: 510 series x 12 five-minute points exercise the
500-queries-per-call batching and ListMetrics paging (500 per page), and 3 series x 2 days of
one-minute points with a small datapoint budget exercise time-range splitting. NextToken paging,
PartialData and per-query errors, which moto never returns, are covered with botocore's Stubber
in tests/unit/test_cloudwatch_queries.py.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from connectors.sources.base import Window
from connectors.sources.cloudwatch.source import CloudWatchRequestError, CloudWatchSource
from foresight.lake import Lake
from foresight.watermarks import WatermarkStore
from support.fault_proxy import FaultProxy
from support.moto import moto_server, reset_moto, use_test_credentials

pytestmark = pytest.mark.integration

REGION = "us-east-1"
NAMESPACE = "Foresight/Test"


@pytest.fixture(scope="module")
def moto_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with moto_server(tmp_path_factory.mktemp("moto")) as url:
        yield url


@pytest.fixture
def cloudwatch(moto_url: str, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """A boto3 client on a freshly reset moto, with test credentials in the environment."""
    import boto3

    use_test_credentials(monkeypatch)
    reset_moto(moto_url)
    return boto3.client("cloudwatch", endpoint_url=moto_url, region_name=REGION)


def _put(client, frame: pd.DataFrame, metric_name: str = "CPUUtilization") -> None:  # type: ignore[no-untyped-def]
    """Store ``instance, ts, value`` rows as CloudWatch datapoints, 1000 per call (the API's limit)."""
    data = [{"MetricName": metric_name, "Dimensions": [{"Name": "InstanceId", "Value": inst}],
             "Timestamp": ts.to_pydatetime(), "Value": float(value)}
            for inst, ts, value in frame[["instance", "ts", "value"]].itertuples(index=False)]
    for i in range(0, len(data), 1000):
        client.put_metric_data(Namespace=NAMESPACE, MetricData=data[i:i + 1000])


def _grid(instances: list[str], start: pd.Timestamp, periods: int, freq: str, seed: int) -> pd.DataFrame:
    """One datapoint per instance per step with distinct seeded values."""
    ts = pd.date_range(start, periods=periods, freq=freq)
    values = np.random.default_rng(seed).uniform(0, 100, len(instances) * periods).round(3)
    return pd.DataFrame({"instance": np.repeat(instances, periods), "ts": np.tile(ts, len(instances)),
                         "value": values})


def _metric(instance: str, period: int = 60) -> dict:
    return {"namespace": NAMESPACE, "metric_name": "CPUUtilization", "dimensions": {"InstanceId": instance},
            "stat": "Average", "period": period, "unit": "percent", "service": "cart",
            "resource_dimension": "InstanceId"}


def _assert_same(got: pd.DataFrame, expected: pd.DataFrame) -> None:
    """``got`` (telemetry) holds exactly the expected datapoints: same count, values, no repeats."""
    assert not got.duplicated(["unique_id", "ds"]).any()
    want = expected.assign(unique_id="cart/" + expected["instance"] + "/cpu_utilization", ds=expected["ts"])
    joined = got.merge(want, on=["unique_id", "ds"], how="outer", indicator=True)
    assert (joined["_merge"] == "both").all(), joined[joined["_merge"] != "both"].head()
    np.testing.assert_allclose(joined["y"], joined["value"])


def test_over_500_discovered_series_are_batched_and_come_back_complete(cloudwatch, moto_url: str) -> None:
    start = pd.Timestamp.now(tz="UTC").floor("D") - pd.Timedelta(days=2)
    instances = [f"i-{i:05d}" for i in range(510)]
    expected = _grid(instances, start, 12, "5min", seed=1)
    _put(cloudwatch, expected)
    source = CloudWatchSource(name="cw", region=REGION, endpoint_url=moto_url, discover=[{
        "namespace": NAMESPACE, "metric_name": "CPUUtilization", "dimensions": {"InstanceId": None},
        "stat": "Average", "period": 300, "unit": "percent", "service": "cart", "resource_dimension": "InstanceId"}])
    batch = source.fetch(Window(start - pd.Timedelta("7min"), start + pd.Timedelta("1h 2min")))
    report = source.last_report
    assert report is not None and (report.series, report.calls, report.failures) == (510, 2, [])
    assert sorted(batch.catalogue["resource_id"]) == instances, "ListMetrics' two pages were both read"
    assert set(batch.catalogue["labels"].map(lambda s: json.loads(s)["namespace"])) == {NAMESPACE}
    assert len(batch.telemetry) == 510 * 12
    _assert_same(batch.telemetry, expected)


def test_a_long_range_is_split_by_the_datapoint_budget_and_read_once(cloudwatch, moto_url: str) -> None:
    start = pd.Timestamp.now(tz="UTC").floor("D") - pd.Timedelta(days=3)
    instances = ["i-a", "i-b", "i-c"]
    expected = _grid(instances, start, 2 * 1440, "1min", seed=2)
    _put(cloudwatch, expected)
    source = CloudWatchSource(name="cw", region=REGION, endpoint_url=moto_url, max_datapoints_per_call=1000,
                              metrics=[_metric(i) for i in instances])
    batch = source.fetch(Window(start + pd.Timedelta("17s"), start + pd.Timedelta(days=2, seconds=59)))
    report = source.last_report
    assert report is not None and report.calls == 9, "2,880 periods x 3 queries at <= 1,000 datapoints a call"
    # The start is floored to the period, so the first minute is read even though the window starts 17 s in.
    assert len(batch.telemetry) == 3 * 2880
    _assert_same(batch.telemetry, expected)


def test_client_retries_ride_over_transient_5xx(cloudwatch, moto_url: str) -> None:
    start = pd.Timestamp.now(tz="UTC").floor("h") - pd.Timedelta(hours=3)
    expected = _grid(["i-a", "i-b"], start, 30, "1min", seed=3)
    _put(cloudwatch, expected)
    with FaultProxy(moto_url) as proxy:
        source = CloudWatchSource(name="cw", region=REGION, endpoint_url=proxy.url, max_attempts=3,
                                  metrics=[_metric("i-a"), _metric("i-b")])
        proxy.fail_next(2, statuses=(500, 503))
        batch = source.fetch(Window(start, start + pd.Timedelta("30min")))
        assert (proxy.failed, proxy.requests) == (2, 3), "two errors, then the third attempt got through"
    _assert_same(batch.telemetry, expected)


def _ingest_sources(monkeypatch: pytest.MonkeyPatch, endpoint: str, instances: list[str], **options: object) -> None:
    monkeypatch.setenv("FORESIGHT_SOURCES", json.dumps([{
        "name": "cw", "kind": "cloudwatch", "overlap": "PT10M", "initial_lookback": "PT2H",
        "options": {"region": REGION, "endpoint_url": endpoint, "metrics": [_metric(i) for i in instances],
                    **options}}]))


def test_ingest_pulls_incrementally_with_overlap_and_no_duplicates(
        prefect_harness, foresight_home: Path, cloudwatch, moto_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from flows.ingest import ingest

    now0 = pd.Timestamp.now(tz="UTC").floor("min")
    instances = ["i-a", "i-b", "i-c"]
    first = _grid(instances, now0 - pd.Timedelta("100min"), 70, "1min", seed=4)  # up to now0 - 31 min
    _put(cloudwatch, first)
    _ingest_sources(monkeypatch, moto_url, instances)
    [outcome] = ingest()
    lake = Lake(foresight_home / "lake")
    marks = WatermarkStore(lake)
    assert outcome["passed"] and outcome["written"]["telemetry"] == 3 * 70
    assert marks.all_for("cw") == dict.fromkeys([f"cart/{i}/cpu_utilization" for i in instances],
                                                now0 - pd.Timedelta("31min")), "one watermark per metric"

    second = _grid(instances, now0 - pd.Timedelta("30min"), 25, "1min", seed=5)  # up to now0 - 6 min
    _put(cloudwatch, second)
    [outcome] = ingest()
    # The second run starts 10 minutes before the watermark: 11 re-read minutes and 25 new per series.
    assert outcome["written"]["telemetry"] == 3 * (11 + 25)
    assert set(marks.all_for("cw").values()) == {now0 - pd.Timedelta("6min")}
    stored = lake.read("telemetry")
    assert len(stored) == 3 * 95
    _assert_same(stored[["unique_id", "ds", "y"]], pd.concat([first, second], ignore_index=True))
    catalogue = lake.read("catalogue")
    assert sorted(catalogue["unique_id"]) == [f"cart/{i}/cpu_utilization" for i in instances]
    assert set(catalogue["unit"]) == {"percent"}


def test_a_metric_added_later_gets_its_whole_history_while_the_others_resume(
        prefect_harness, foresight_home: Path, cloudwatch, moto_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from flows.ingest import ingest

    now0 = pd.Timestamp.now(tz="UTC").floor("min")
    data = _grid(["i-a", "i-b"], now0 - pd.Timedelta("100min"), 70, "1min", seed=8)
    _put(cloudwatch, data)
    _ingest_sources(monkeypatch, moto_url, ["i-a"])
    [first] = ingest()
    assert first["written"]["telemetry"] == 70
    _ingest_sources(monkeypatch, moto_url, ["i-a", "i-b"])  # a metric joins the config
    [second] = ingest()
    # i-a re-reads only its 10-minute overlap; i-b, with no watermark of its own, its whole history.
    assert second["written"]["telemetry"] == 11 + 70
    lake = Lake(foresight_home / "lake")
    _assert_same(lake.read("telemetry")[["unique_id", "ds", "y"]], data)
    assert set(WatermarkStore(lake).all_for("cw").values()) == {data["ts"].max()}


def test_a_run_that_exhausts_retries_fails_clearly_and_keeps_the_watermark(
        prefect_harness, foresight_home: Path, cloudwatch, moto_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from flows.ingest import ingest

    start = pd.Timestamp.now(tz="UTC").floor("min") - pd.Timedelta("60min")
    expected = _grid(["i-a", "i-b"], start, 50, "1min", seed=6)
    _put(cloudwatch, expected)
    lake = Lake(foresight_home / "lake")
    with FaultProxy(moto_url) as proxy:
        _ingest_sources(monkeypatch, proxy.url, ["i-a", "i-b"], max_attempts=2)
        proxy.fail_next(10, statuses=(503,))
        with pytest.raises(CloudWatchRequestError, match=r"GetMetricData failed .*503"):
            ingest()
        assert proxy.requests == 2, "max_attempts=2: one try and one retry, no other retry layer"
        assert WatermarkStore(lake).all_for("cw") == {}
        assert not lake.exists("telemetry")

        proxy.heal()
        [outcome] = ingest()
    assert outcome["passed"]
    assert set(WatermarkStore(lake).all_for("cw").values()) == {expected["ts"].max()}
    _assert_same(lake.read("telemetry")[["unique_id", "ds", "y"]], expected)
