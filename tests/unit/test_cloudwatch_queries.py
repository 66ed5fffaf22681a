"""CloudWatch source: pure query builders, response merging, options, and paging via botocore's Stubber.

moto's GetMetricData ignores ``MaxDatapoints`` and never returns ``NextToken``, ``PartialData``
or per-query errors, and it cannot compute percentiles; those paths are tested here against
botocore's Stubber (which validates every request and response against the service model).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import pytest

from connectors.sources.base import Window
from connectors.sources.cloudwatch.queries import (
    MAX_DATAPOINTS_PER_CALL,
    QUERY_ID_PATTERN,
    SCAN_BY,
    DuplicateSeriesError,
    MetricSpec,
    MissingDimensionError,
    align_window,
    build_batches,
    is_valid_period,
    is_valid_stat,
    list_metrics_request,
    resolve_spec,
    snake_case,
    unique_specs,
)
from connectors.sources.cloudwatch.results import (
    catalogue_frame,
    failures,
    merge_pages,
    rejected_frame,
    telemetry_frame,
)
from connectors.sources.cloudwatch.source import (
    AllSeriesFailedError,
    CloudWatchOptions,
    CloudWatchOptionsError,
    CloudWatchRequestError,
    CloudWatchSource,
    cloudwatch_client,
)
from foresight.schemas import CATALOGUE_COLUMNS, UTC_DTYPE

T0 = pd.Timestamp("2026-03-02 10:00", tz="UTC")


def _spec(i: int = 0, period: int = 60, stat: str = "Average") -> MetricSpec:
    return resolve_spec(namespace="AWS/EC2", metric_name="CPUUtilization", dimensions={"InstanceId": f"i-{i:04d}"},
                        stat=stat, period=period, unit="percent", service="cart", resource_dimension="InstanceId")


def _covered(batches) -> list[pd.Timestamp]:  # type: ignore[no-untyped-def]
    """Every (query id, period start) the batches ask for: what CloudWatch can return once each."""
    return [(qid, ts) for b in batches for qid in b.specs
            for ts in pd.date_range(b.start, b.end, freq=f"{b.period}s", inclusive="left")]


# --- names and specs ---------------------------------------------------------------------------

@pytest.mark.parametrize(("name", "snake"), [
    ("CPUUtilization", "cpu_utilization"), ("NetworkIn", "network_in"), ("HTTPCode_Target_5XX_Count",
     "http_code_target_5xx_count"), ("ApproximateNumberOfMessagesVisible", "approximate_number_of_messages_visible"),
    ("5XXError", "5xx_error"), ("Ec2Instance", "ec2_instance"), ("Latency", "latency"), ("DiskReadOps", "disk_read_ops")])
def test_snake_case(name: str, snake: str) -> None:
    assert snake_case(name) == snake


def test_spec_names_service_and_resource_from_static_values_or_dimensions() -> None:
    spec = resolve_spec(namespace="AWS/ApplicationELB", metric_name="TargetResponseTime",
                        dimensions={"LoadBalancer": "app/web/1", "TargetGroup": "tg/a"}, stat="p95", period=300,
                        unit="seconds", service_dimension="LoadBalancer", resource_dimension="TargetGroup")
    assert spec.unique_id == "app/web/1/tg/a/target_response_time"
    assert json.loads(spec.labels) == {"namespace": "AWS/ApplicationELB", "metric_name": "TargetResponseTime",
                                       "dimensions": {"LoadBalancer": "app/web/1", "TargetGroup": "tg/a"},
                                       "stat": "p95", "period": 300}
    assert _spec(7).unique_id == "cart/i-0007/cpu_utilization"
    with pytest.raises(MissingDimensionError, match="no dimension 'InstanceId'") as err:
        resolve_spec(namespace="AWS/EC2", metric_name="CPUUtilization", dimensions={"AutoScalingGroupName": "g"},
                     stat="Average", period=60, unit="percent", service="s", resource_dimension="InstanceId")
    assert err.value.dimensions == {"AutoScalingGroupName": "g"}
    with pytest.raises(ValueError, match="exactly one of 'service'"):
        resolve_spec(namespace="n", metric_name="m", dimensions={"a": "b"}, stat="Sum", period=60, unit="count",
                     service="s", service_dimension="a", resource="r")


@pytest.mark.parametrize(("stat", "ok"), [("Average", True), ("p95", True), ("p99.9", True), ("tm90", True),
                                          ("TM(10%:90%)", True), ("SampleCount", True), ("avg", False),
                                          ("p", False), ("p100000", False)])
def test_statistics(stat: str, ok: bool) -> None:
    assert is_valid_stat(stat) is ok


@pytest.mark.parametrize(("period", "ok"), [(1, True), (30, True), (60, True), (300, True), (90, False),
                                            (0, False), (45, False)])
def test_periods(period: int, ok: bool) -> None:
    assert is_valid_period(period) is ok


def test_unique_specs_collapses_repeats_and_refuses_two_queries_for_one_series() -> None:
    assert unique_specs([_spec(1), _spec(0), _spec(1)]) == [_spec(0), _spec(1)]
    with pytest.raises(DuplicateSeriesError, match="distinct 'metric' name") as err:
        unique_specs([_spec(1), _spec(1, stat="Maximum")])
    assert list(err.value.duplicates) == ["cart/i-0001/cpu_utilization"]


def test_list_metrics_request_matches_any_value_for_a_null_filter() -> None:
    assert list_metrics_request("AWS/EC2", "CPUUtilization", {"InstanceId": None, "ImageId": "ami-1"}) == {
        "Namespace": "AWS/EC2", "MetricName": "CPUUtilization",
        "Dimensions": [{"Name": "ImageId", "Value": "ami-1"}, {"Name": "InstanceId"}]}
    assert list_metrics_request("AWS/EC2", None, {}) == {"Namespace": "AWS/EC2"}


# --- batches -----------------------------------------------------------------------------------

def test_batches_hold_at_most_500_queries_with_valid_unique_ids_mapping_back_to_specs() -> None:
    specs = [_spec(i) for i in range(1201)]
    batches = build_batches(specs, T0, T0 + pd.Timedelta("1h"))
    assert [len(b.specs) for b in batches] == [500, 500, 201]
    ids = [qid for b in batches for qid in b.specs]
    assert len(ids) == len(set(ids)) == 1201
    assert all(QUERY_ID_PATTERN.match(qid) for qid in ids)
    assert sorted((s for b in batches for s in b.specs.values()), key=specs.index) == specs
    request = batches[0].request()
    assert request["ScanBy"] == SCAN_BY == "TimestampAscending"
    assert [q["Id"] for q in request["MetricDataQueries"]] == list(batches[0].specs)
    assert request["MetricDataQueries"][3]["MetricStat"] == {
        "Metric": {"Namespace": "AWS/EC2", "MetricName": "CPUUtilization",
                   "Dimensions": [{"Name": "InstanceId", "Value": "i-0003"}]},
        "Period": 60, "Stat": "Average"}
    assert request["StartTime"] == datetime(2026, 3, 2, 10, tzinfo=UTC)


def test_window_is_floored_to_the_period_so_the_running_period_waits_for_the_next_run() -> None:
    start, end = T0 + pd.Timedelta("7min 13s"), T0 + pd.Timedelta("1h 4min 59s")
    assert align_window(start, end, 300) == (T0 + pd.Timedelta("5min"), T0 + pd.Timedelta("1h"))
    [batch] = build_batches([_spec(0, period=300)], start, end)
    assert (batch.start, batch.end, batch.n_periods) == (T0 + pd.Timedelta("5min"), T0 + pd.Timedelta("1h"), 11)
    assert build_batches([_spec(0, period=3600)], start, T0 + pd.Timedelta("59min")) == [], "no whole hour yet"


def test_consecutive_windows_read_every_period_exactly_once() -> None:
    specs = [_spec(i, period=p) for i, p in enumerate([60, 60, 300])]
    cuts = [T0 + pd.Timedelta(s) for s in ("13s", "47min 30s", "2h 1min 5s", "5h 59min 59s")]
    covered = [c for a, b in zip(cuts, cuts[1:], strict=False) for c in _covered(build_batches(specs, a, b))]
    assert len(covered) == len(set(covered)), "no period is read twice"
    whole = _covered(build_batches(specs, cuts[0], cuts[-1]))
    assert sorted(covered) == sorted(whole), "and none is skipped at the cuts"


@pytest.mark.parametrize(("n_specs", "limit", "days"), [(3, 1000, 14), (500, MAX_DATAPOINTS_PER_CALL, 14),
                                                   (1200, MAX_DATAPOINTS_PER_CALL, 3), (7, 7, 1), (40, 30, 1)])
def test_long_ranges_are_split_within_the_datapoint_limit(n_specs: int, limit: int, days: int) -> None:
    specs = [_spec(i) for i in range(n_specs)]
    start, end = T0, T0 + pd.Timedelta(days=days)
    batches = build_batches(specs, start, end, max_datapoints=limit)
    assert all(b.max_datapoints <= limit and len(b.specs) <= 500 for b in batches)
    spans: dict[str, list[tuple[pd.Timestamp, pd.Timestamp]]] = {}
    for b in batches:
        for qid in b.specs:
            spans.setdefault(qid, []).append((b.start, b.end))
    assert len(spans) == n_specs
    for qid_spans in spans.values():  # each query's sub-ranges tile [start, end): every period once
        qid_spans.sort()
        assert qid_spans[0][0] == start and qid_spans[-1][1] == end
        assert all(a[1] == b[0] for a, b in zip(qid_spans, qid_spans[1:], strict=False))
    assert sum(b.max_datapoints for b in batches) == n_specs * days * 1440


def test_build_batches_refuses_limits_beyond_the_api() -> None:
    with pytest.raises(ValueError, match="max_queries"):
        build_batches([_spec()], T0, T0 + pd.Timedelta("1h"), max_queries=501)
    with pytest.raises(ValueError, match="max_datapoints"):
        build_batches([_spec()], T0, T0 + pd.Timedelta("1h"), max_datapoints=MAX_DATAPOINTS_PER_CALL + 1)


# --- responses ---------------------------------------------------------------------------------

def _ts(minutes: list[int]) -> list[datetime]:
    return [(T0 + pd.Timedelta(minutes=m)).to_pydatetime() for m in minutes]


def test_pages_merge_per_query_and_a_failed_query_is_isolated() -> None:
    [batch] = build_batches([_spec(0), _spec(1), _spec(2)], T0, T0 + pd.Timedelta("10min"))
    pages: list[dict[str, Any]] = [
        {"MetricDataResults": [
            {"Id": "m0", "Timestamps": _ts([0, 1]), "Values": [1.0, 2.0], "StatusCode": "PartialData"},
            {"Id": "m1", "Timestamps": [], "Values": [], "StatusCode": "InternalError",
             "Messages": [{"Code": "InternalError", "Value": "try later"}]}],
         "Messages": [{"Code": "MaxMetricsExceeded", "Value": "x"}]},
        {"MetricDataResults": [
            {"Id": "m0", "Timestamps": _ts([2]), "Values": [3.0], "StatusCode": "Complete"},
            {"Id": "m2", "Timestamps": _ts([0]), "Values": [9.0], "StatusCode": "Complete"}]},
    ]
    merged = merge_pages(pages)
    assert merged["m0"].values == [1.0, 2.0, 3.0] and merged["m0"].status == "Complete"
    frame = telemetry_frame(batch.specs, merged)
    assert frame.dtypes.to_dict() == {"unique_id": "string", "ds": UTC_DTYPE, "y": "float64"}
    assert frame.groupby("unique_id").size().to_dict() == {"cart/i-0000/cpu_utilization": 3,
                                                           "cart/i-0002/cpu_utilization": 1}
    [failed] = failures(batch, merged)
    assert (failed.query_id, failed.status) == ("m1", "InternalError")
    assert "try later" in failed.reason and "i-0001" in failed.reason
    rejected = rejected_frame([failed])
    assert rejected["origin"].str.startswith("cloudwatch/cart/i-0001/cpu_utilization/").all()
    assert json.loads(rejected["raw"].iloc[0])["status"] == "InternalError"


def test_a_query_partial_after_the_last_page_or_missing_is_a_failure() -> None:
    [batch] = build_batches([_spec(0), _spec(1)], T0, T0 + pd.Timedelta("10min"))
    merged = merge_pages([{"MetricDataResults": [{"Id": "m0", "Timestamps": _ts([0]), "Values": [1.0],
                                                  "StatusCode": "PartialData"}]}])
    assert [(f.query_id, f.status) for f in failures(batch, merged)] == [("m0", "PartialData"), ("m1", "Missing")]


def test_catalogue_has_the_schema_columns_and_units_from_config() -> None:
    cat = catalogue_frame([_spec(0), _spec(1)], "cw")
    assert tuple(cat.columns) == CATALOGUE_COLUMNS
    assert cat["unit"].tolist() == ["percent", "percent"] and cat["resource_id"].tolist() == ["i-0000", "i-0001"]


# --- options -----------------------------------------------------------------------------------

_METRIC: dict[str, Any] = {"namespace": "AWS/EC2", "metric_name": "CPUUtilization", "dimensions": {"InstanceId": "i-1"},
           "unit": "percent", "service": "cart", "resource_dimension": "InstanceId"}


@pytest.mark.parametrize(("options", "named"), [
    ({"region": "eu-west-1", "metrics": [{**_METRIC, "period": 90}]}, "metrics.0.period"),
    ({"region": "eu-west-1", "metrics": [{**_METRIC, "stat": "avg"}]}, "metrics.0.stat"),
    ({"region": "eu-west-1", "metrics": [{**_METRIC, "resource_dimension": "Nope"}]}, "'Nope' is not one of"),
    ({"region": "eu-west-1", "metrics": [{**_METRIC, "service_dimension": "InstanceId"}]}, "exactly one of 'service'"),
    ({"region": "eu-west-1"}, "at least one entry in 'metrics' or 'discover'"),
    ({"region": "eu-west-1", "metrics": [_METRIC], "aws_secret_access_key": "SUPERSECRET"}, "credential chain"),
    ({"region": "eu-west-1", "metrics": [_METRIC], "max_attempts": 0}, "max_attempts"),
    ({"metrics": [_METRIC]}, "region"),
])
def test_bad_options_raise_an_error_naming_the_option(options: dict, named: str) -> None:
    with pytest.raises(CloudWatchOptionsError, match=r"cloudwatch source 'cw'") as err:
        CloudWatchSource(name="cw", **options)
    assert named in str(err.value)
    assert "SUPERSECRET" not in str(err.value) + repr(err.value.errors), "secrets are never echoed"


def test_the_client_uses_the_configured_retries_and_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    options = CloudWatchOptions.model_validate({"region": "eu-west-1", "endpoint_url": "http://127.0.0.1:9",
                                                "metrics": [_METRIC], "max_attempts": 7})
    client = cloudwatch_client(options)
    assert client.meta.config.retries == {"mode": "standard", "total_max_attempts": 7}
    assert client.meta.endpoint_url == "http://127.0.0.1:9" and client.meta.region_name == "eu-west-1"


# --- paging and failures through the source (botocore Stubber) ---------------------------------

@pytest.fixture
def stubbed():  # type: ignore[no-untyped-def]
    import boto3
    from botocore.stub import Stubber

    client = boto3.client("cloudwatch", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    with Stubber(client) as stub:
        yield client, stub
        stub.assert_no_pending_responses()


def _source(**extra: object) -> CloudWatchSource:
    metrics = [{**_METRIC, "dimensions": {"InstanceId": f"i-{i}"}, "stat": "p95", "period": 60} for i in range(2)]
    return CloudWatchSource(name="cw", region="us-east-1", metrics=metrics, **extra)


def test_next_token_is_followed_until_exhausted_and_pages_merge_without_duplicates(stubbed) -> None:  # type: ignore[no-untyped-def]
    client, stub = stubbed
    window = Window(T0 + pd.Timedelta("20s"), T0 + pd.Timedelta("5min 30s"))
    source = _source()
    [batch] = build_batches(unique_specs(m.spec(m.dimensions) for m in source.options.metrics), window.start,
                            window.end)
    first = batch.request()
    assert first["StartTime"] == T0.to_pydatetime() and first["MetricDataQueries"][0]["MetricStat"]["Stat"] == "p95"
    stub.add_response("get_metric_data", {
        "MetricDataResults": [{"Id": "m0", "Timestamps": _ts([0, 1, 2]), "Values": [1.0, 2.0, 3.0],
                               "StatusCode": "PartialData"},
                              {"Id": "m1", "Timestamps": _ts([0]), "Values": [5.0], "StatusCode": "PartialData"}],
        "NextToken": "page-2"}, first)
    stub.add_response("get_metric_data", {
        "MetricDataResults": [{"Id": "m0", "Timestamps": _ts([3, 4]), "Values": [4.0, 5.0], "StatusCode": "Complete"},
                              {"Id": "m1", "Timestamps": _ts([1, 2, 3, 4]), "Values": [6.0, 7.0, 8.0, 9.0],
                               "StatusCode": "Complete"}],
        "Messages": [{"Code": "Note", "Value": "served from cache"}]}, {**first, "NextToken": "page-2"})
    batch_out = source.fetch(window, client=client)
    frame = batch_out.telemetry
    assert len(frame) == 10 and not frame.duplicated(["unique_id", "ds"]).any()
    assert frame.loc[frame["unique_id"] == "cart/i-1/cpu_utilization", "y"].tolist() == [5.0, 6.0, 7.0, 8.0, 9.0]
    report = source.last_report
    assert report is not None and (report.calls, report.pages, report.datapoints) == (1, 2, 10)
    assert report.messages == [{"Code": "Note", "Value": "served from cache"}] and not report.failures
    assert batch_out.rejected is None


def test_one_failing_metric_is_counted_and_quarantined_while_the_others_arrive(stubbed) -> None:  # type: ignore[no-untyped-def]
    client, stub = stubbed
    stub.add_response("get_metric_data", {"MetricDataResults": [
        {"Id": "m0", "Timestamps": _ts([0, 1]), "Values": [1.0, 2.0], "StatusCode": "Complete"},
        {"Id": "m1", "Timestamps": [], "Values": [], "StatusCode": "Forbidden",
         "Messages": [{"Code": "Forbidden", "Value": "no access to i-1"}]}]})
    source = _source()
    out = source.fetch(Window(T0, T0 + pd.Timedelta("2min")), client=client)
    assert out.telemetry["unique_id"].unique().tolist() == ["cart/i-0/cpu_utilization"]
    assert source.last_report is not None and [f.status for f in source.last_report.failures] == ["Forbidden"]
    assert out.rejected is not None and out.rejected["reason"].str.contains("no access to i-1").all()
    assert len(out.catalogue) == 2, "the failed series stays known"


def test_every_metric_failing_fails_the_fetch_with_the_failures(stubbed) -> None:  # type: ignore[no-untyped-def]
    client, stub = stubbed
    stub.add_response("get_metric_data", {"MetricDataResults": [
        {"Id": qid, "StatusCode": "InternalError", "Messages": [{"Code": "InternalError", "Value": "boom"}]}
        for qid in ("m0", "m1")]})
    with pytest.raises(AllSeriesFailedError, match="all 2 queries failed") as err:
        _source().fetch(Window(T0, T0 + pd.Timedelta("2min")), client=client)
    assert {f.query_id for f in err.value.failures} == {"m0", "m1"}


def test_a_request_error_after_retries_names_the_call(stubbed) -> None:  # type: ignore[no-untyped-def]
    client, stub = stubbed
    stub.add_client_error("get_metric_data", service_error_code="InvalidParameterValue",
                          service_message="bad period", http_status_code=400)
    with pytest.raises(CloudWatchRequestError, match=r"GetMetricData failed \(2 queries, period 60 s") as err:
        _source().fetch(Window(T0, T0 + timedelta(minutes=2)), client=client)
    assert "bad period" in str(err.value.cause)


def test_discovery_follows_list_metrics_pages_and_skips_unnameable_metrics(stubbed) -> None:  # type: ignore[no-untyped-def]
    client, stub = stubbed
    rule = {"namespace": "AWS/EC2", "metric_name": "CPUUtilization", "dimensions": {"InstanceId": None},
            "unit": "percent", "service": "fleet", "resource_dimension": "InstanceId", "period": 300}
    listed = [{"Namespace": "AWS/EC2", "MetricName": "CPUUtilization",
               "Dimensions": [{"Name": "InstanceId", "Value": f"i-{i}"}]} for i in range(3)]
    request = {"Namespace": "AWS/EC2", "MetricName": "CPUUtilization", "Dimensions": [{"Name": "InstanceId"}]}
    stub.add_response("list_metrics", {"Metrics": listed[:2], "NextToken": "t"}, request)
    stub.add_response("list_metrics", {"Metrics": [listed[2], {"Namespace": "AWS/EC2",
                                                               "MetricName": "CPUUtilization", "Dimensions": []}]},
                      {**request, "NextToken": "t"})
    stub.add_response("get_metric_data", {"MetricDataResults": [
        {"Id": f"m{i}", "Timestamps": _ts([0]), "Values": [float(i)], "StatusCode": "Complete"} for i in range(3)]})
    source = CloudWatchSource(name="cw", region="us-east-1", discover=[rule])
    out = source.fetch(Window(T0, T0 + pd.Timedelta("5min")), client=client)
    assert out.catalogue["unique_id"].tolist() == [f"fleet/i-{i}/cpu_utilization" for i in range(3)]
    assert source.last_report is not None and len(source.last_report.skipped) == 1
