"""Nezha layout -> Foresight shapes (bench.datasets.nezha): services, long telemetry, catalogue, graph, faults."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from bench.datasets.nezha import NezhaLayoutError, day_folders, load_nezha, metric_name, pod_service
from foresight.schemas import CATALOGUE_COLUMNS, validate_telemetry
from support.nezha import PODS, write_nezha_day


@pytest.mark.parametrize(
    ("pod", "service"),
    [
        ("frontend-579b9bff58-t2dbm", "frontend"),
        ("productcatalogservice-668d5f85fb-wckp8", "productcatalogservice"),
        ("redis-cart-0", "redis-cart"),
        ("standalone", "standalone"),
    ],
)
def test_pods_map_to_services_by_stripping_the_hash_suffix(pod: str, service: str) -> None:
    assert pod_service(pod) == service


def test_metric_names_become_snake_case_with_units() -> None:
    assert metric_name("PodServerLatencyP95(s)") == ("pod_server_latency_p95", "seconds")
    assert metric_name("CpuUsageRate(%)") == ("cpu_usage_rate", "percent")
    assert metric_name("SyscallRead") == ("syscall_read", "count")


def test_a_day_loads_as_long_telemetry_a_catalogue_a_call_graph_and_faults(tmp_path: Path) -> None:
    write_nezha_day(tmp_path, minutes=40, fault_minute=20)
    (day,) = load_nezha(tmp_path)  # a folder of day folders
    telemetry = validate_telemetry(day.telemetry)  # the data model's guard accepts it as is
    assert list(day.catalogue.columns) == list(CATALOGUE_COLUMNS)
    assert set(telemetry["unique_id"]) == set(day.catalogue["unique_id"])
    cat = day.catalogue.set_index("unique_id")
    cpu = cat.loc[f"nezha/{PODS['cartservice']}/cpu_usage_rate"]
    assert (cpu["service"], cpu["resource_id"], cpu["unit"]) == (
        "cartservice",
        PODS["cartservice"],
        "percent",
    )
    # Edge latency belongs to the callee; the entry service's figures to the frontend.
    edge = cat.loc["nezha/frontend->cartservice/edge_source_latency_p50"]
    assert edge["service"] == "cartservice" and json.loads(edge["labels"]) == {
        "callee": "cartservice",
        "caller": "frontend",
    }
    # Both views of an edge (caller's and callee's) are kept and belong to the callee.
    callee_view = cat.loc["nezha/frontend->cartservice/edge_destination_latency_p50"]
    assert (callee_view["service"], callee_view["resource_id"]) == ("cartservice", "frontend->cartservice")
    assert cat.loc["nezha/frontend/service_success_rate", "service"] == "frontend"
    assert cat.loc["nezha/frontend/service_success_rate", "unit"] == "percent"
    # 40 scrapes at hh:mm:19-20 -> ds rounded up to the minute, one per minute, no duplicates.
    ds = telemetry.loc[telemetry["unique_id"] == f"nezha/{PODS['frontend']}/cpu_usage", "ds"]
    assert len(ds) == 40 and ds.iloc[0] == pd.Timestamp("2022-08-22 03:52", tz="UTC")
    assert (ds.diff().dropna() == pd.Timedelta("1min")).all()
    # Only service-to-service edges of services with metrics: IPs and the load generator are dropped.
    assert day.call_graph == {
        "cartservice": (),
        "currencyservice": (),
        "frontend": ("cartservice", "currencyservice"),
    }
    (fault,) = day.faults
    assert (fault.service, fault.kind, fault.pod) == ("cartservice", "cpu_contention", PODS["cartservice"])
    assert fault.inject_time == pd.Timestamp("2022-08-22 04:10:24", tz="UTC")


def test_a_single_day_folder_and_several_days_are_both_accepted(tmp_path: Path) -> None:
    write_nezha_day(tmp_path, minutes=20, fault_minute=None, name="2022-08-22")
    write_nezha_day(tmp_path, minutes=20, fault_minute=None, name="2022-08-23")
    assert [p.name for p in day_folders(tmp_path)] == ["2022-08-22", "2022-08-23"]
    assert [d.name for d in load_nezha(tmp_path / "2022-08-23")] == ["2022-08-23"]
    assert load_nezha(tmp_path / "2022-08-22")[0].faults == []


def test_a_folder_without_the_layout_is_refused_with_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(NezhaLayoutError, match="no Nezha day folder"):
        load_nezha(tmp_path)
    (tmp_path / "d" / "metric").mkdir(parents=True)
    with pytest.raises(NezhaLayoutError, match="_metric.csv"):
        load_nezha(tmp_path)


def test_unreadable_times_are_refused(tmp_path: Path) -> None:
    day = write_nezha_day(tmp_path, minutes=10, fault_minute=None)
    path = day / "metric" / f"{PODS['frontend']}_metric.csv"
    frame = pd.read_csv(path)
    frame.loc[3, "Time"] = "yesterday"
    frame.to_csv(path, index=False)
    with pytest.raises(NezhaLayoutError, match="unreadable times"):
        load_nezha(tmp_path)
