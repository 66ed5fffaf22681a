"""Free-text metric names from any system -> kind, problem direction and unit (models.incidents.metric_vocabulary,
models.incidents.category), and the failed-share unit of error and success rates (models.incidents.share_units)."""

from __future__ import annotations

import pandas as pd
import pytest

from models.incidents.category import exhausted_kinds, metric_direction, metric_kind
from models.incidents.metric_vocabulary import metric_family, metric_tokens, metric_unit
from models.incidents.share_units import failed_share_unit, with_share_units
from models.incidents.wire_latency import wire_pairs

VOCABULARY = [
    # (name, kind, direction, unit stated by the name)
    ("cpu_usage", "cpu", 1, ""),
    ("container_cpu_usage_seconds_total", "cpu", 1, "seconds"),
    ("CpuUsageRate", "cpu", 1, ""),
    ("cpu_idle_percent", "cpu", -1, "percent"),
    ("memory_rss_bytes", "memory", 1, "bytes"),
    ("container_memory_working_set_bytes", "memory", 1, "bytes"),
    ("jvm_heap_used", "memory", 1, ""),
    ("mem_available_bytes", "memory", -1, "bytes"),
    ("disk_used_pct", "disk", 1, "percent"),
    ("filesystem_avail_bytes", "disk", -1, "bytes"),
    ("fs_inodes_used", "disk", 1, ""),
    ("latency_p99_seconds", "server_latency", 1, "seconds"),
    ("http_request_duration_seconds", "server_latency", 1, "seconds"),
    ("response_time_ms", "server_latency", 1, "milliseconds"),
    ("ResponseTimeP95", "server_latency", 1, ""),
    ("checkout_p99_ms", "server_latency", 1, "milliseconds"),
    ("outbound_latency_p95", "client_latency", 1, ""),
    ("error_ratio", "errors", 1, "ratio"),
    ("http_5xx_rate", "errors", 1, ""),
    ("requests_failed_total", "errors", 1, ""),
    ("ErrorRate", "errors", 1, ""),
    ("timeouts_per_second", "errors", 1, "requests_per_second"),
    ("success_rate_percent", "errors", -1, "percent"),
    ("availability", "errors", -1, ""),
    ("requests_per_second", "traffic", 0, "requests_per_second"),
    ("rps", "traffic", 0, "requests_per_second"),
    ("throughput_qps", "traffic", 0, "requests_per_second"),
    ("net_bytes_in", "traffic", 0, "bytes"),
    ("response_size_bytes_p99", "traffic", 0, "bytes"),
    ("node_cpu_usage_rate", "infrastructure", 1, ""),
    # Nezha's and the simulator's names keep the kinds they had
    ("pod_server_latency_p95", "server_latency", 1, ""),
    ("edge_destination_latency_p50", "server_latency", 1, ""),
    ("edge_source_latency_p50", "call_latency", 1, ""),
    ("edge_wire_latency_p50", "network_latency", 1, ""),
    ("pod_client_latency_p99", "client_latency", 1, ""),
    ("service_success_rate", "errors", -1, ""),
    ("pod_workload", "traffic", 0, ""),
    ("syscall_read", "traffic", 0, ""),
    ("network_receive_bytes", "traffic", 0, "bytes"),
    ("cpu_pct", "cpu", 1, "percent"),
    ("mem_pct", "memory", 1, "percent"),
    ("request_rate", "traffic", 0, ""),
    ("error_rate", "errors", 1, ""),
]


@pytest.mark.parametrize(("metric", "kind", "direction", "unit"), VOCABULARY)
def test_free_text_names_map_to_kind_direction_and_unit(metric: str, kind: str, direction: int, unit: str) -> None:
    assert (metric_kind(metric), metric_direction(metric), metric_unit(metric)) == (kind, direction, unit)


def test_names_split_into_tokens_at_separators_and_camel_case() -> None:
    assert metric_tokens("PodServerLatencyP95(s)") == ("pod", "server", "latency", "p95", "s")
    assert metric_tokens("http.response-time ms") == ("http", "responsetime", "ms")


@pytest.mark.parametrize(
    ("metric", "unit", "point"),
    [
        ("error_ratio", "", 0.01),  # a ratio in [0, 1], said by the name
        ("error_rate", "ratio", 0.01),
        ("errors_percent", "", 1.0),
        ("success_rate_percent", "", 1.0),  # a success rate in percent, said by the name
        ("pod_success_rate", "percent", 1.0),
        ("availability", "", 0.01),  # a success share of unstated unit: a ratio
        ("errors_total", "count", 0.0),  # a count of errors is no share
        ("latency_p99_seconds", "percent", 0.0),  # not an errors metric
    ],
)
def test_one_percentage_point_of_a_failed_share_in_its_own_units(metric: str, unit: str, point: float) -> None:
    assert failed_share_unit(metric, unit) == point


def test_an_error_share_of_unstated_unit_is_read_from_its_values() -> None:
    catalogue = pd.DataFrame(
        {
            "unique_id": ["a", "b", "c", "d", "e"],
            "metric": ["error_rate", "success_rate", "errors", "error_rate", "cpu_usage"],
            "unit": ["", "", "", "percent", ""],
        }
    )
    telemetry = pd.DataFrame(
        {"unique_id": ["a", "a", "b", "b", "c", "d", "e"], "y": [0.0, 0.02, 99.0, 97.0, 250.0, 0.1, 0.5]}
    )
    filled = with_share_units(catalogue, telemetry)
    assert filled["unit"].tolist() == ["ratio", "percent", "", "percent", ""]
    assert [failed_share_unit(m, u) for m, u in zip(filled["metric"], filled["unit"], strict=True)] == [
        0.01, 1.0, 0.0, 1.0, 0.0
    ]


def test_a_disk_is_full_by_a_share_in_use_from_the_unit_or_the_name_never_by_the_share_left() -> None:
    assert exhausted_kinds([("disk_used_pct", "", 97.0)]) == {"disk"}
    assert exhausted_kinds([("disk_used", "ratio", 0.97)]) == {"disk"}
    assert exhausted_kinds([("disk_free_pct", "", 97.0)]) == set()
    assert exhausted_kinds([("disk_used_bytes", "", 97.0)]) == set()


@pytest.mark.parametrize(
    ("names", "family"),
    [
        (("latency_p99_seconds", "latency_p95_seconds", "latency_p50_ms"), "latency"),
        (("pod_server_latency_p90", "pod_server_latency_p99"), "pod_server_latency"),
        (("cpu_usage", "cpu_usage_rate", "cpu_pct"), "cpu"),
        (("memory_rss_bytes", "memory_rss_mib"), "memory_rss"),
    ],
)
def test_variants_of_one_measurement_share_a_family(names: tuple[str, ...], family: str) -> None:
    assert {metric_family(n) for n in names} == {family}
    assert metric_family("requests_per_second") != metric_family("error_ratio")


def test_an_edge_measured_from_both_ends_is_paired_whatever_the_latency_is_called() -> None:
    catalogue = pd.DataFrame(
        {
            "unique_id": ["c1", "s1", "c2", "s2", "x"],
            "resource_id": ["web->db", "web->db", "api->db", "api->db", "web->db"],
            "metric": [
                "edge_caller_duration_seconds",
                "edge_callee_duration_seconds",
                "edge_source_latency_p50",
                "edge_destination_latency_p50",
                "edge_source_latency_p99",  # no callee view of the p99: not paired
            ],
        }
    )
    pairs = wire_pairs(catalogue)
    assert [(a, b) for a, b, _ in pairs] == [("c1", "s1"), ("c2", "s2")]
    assert pairs[1][2] == "edge_wire_latency_p50"
    assert {metric_kind(m) for _, _, m in pairs} == {"network_latency"}
