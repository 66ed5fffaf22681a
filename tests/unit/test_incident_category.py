"""Metric kinds and incident categories (models.incidents.category)."""

from __future__ import annotations

import pytest

from models.incidents.category import categorise, metric_direction, metric_kind


@pytest.mark.parametrize(
    ("metric", "kind", "direction"),
    [
        ("cpu_usage_rate", "cpu", 1),
        ("cpu_pct", "cpu", 1),
        ("memory_usage", "memory", 1),
        ("disk_pct", "disk", 1),
        ("pod_server_latency_p95", "server_latency", 1),
        ("edge_destination_latency_p50", "server_latency", 1),
        ("edge_source_latency_p50", "call_latency", 1),
        ("edge_wire_latency_p50", "network_latency", 1),
        ("pod_client_latency_p99", "client_latency", 1),
        ("service_success_rate", "errors", -1),
        ("error_rate", "errors", 1),
        ("pod_workload", "traffic", 0),
        ("network_receive_bytes", "traffic", 0),
        ("node_cpu_usage_rate", "infrastructure", 1),
    ],
)
def test_metrics_map_to_kinds_and_problem_directions(metric: str, kind: str, direction: int) -> None:
    assert metric_kind(metric) == kind
    assert metric_direction(metric) == direction


@pytest.mark.parametrize(
    ("root", "incident", "category"),
    [
        ({"cpu": 6.0, "server_latency": 9.0}, {}, "saturation"),  # a busy CPU explains slow answers
        ({"cpu": 6.0}, {"errors": 5.0}, "errors"),  # failed requests: a busy CPU is slow, not wrong
        ({"call_latency": 6.0, "network_latency": 1.0}, {}, "saturation"),  # callers wait, wire flat
        ({"call_latency": 6.0, "network_latency": 6.0}, {}, "latency"),  # the wait is on the wire
        ({"server_latency": 1.0}, {"errors": 4.0}, "errors"),  # users see failures somewhere
        ({"network_latency": 5.0, "server_latency": 1.0}, {}, "latency"),  # slow wire, healthy server
        ({"network_latency": 3.0, "server_latency": 6.0}, {}, "saturation"),  # the server itself is slow
        ({"memory": 5.0}, {}, "resource_leak"),
        ({"disk": 5.0}, {}, "disk"),
        ({"cpu": 1.0, "traffic": 9.0}, {}, "errors"),  # nothing but the traffic pattern changed
    ],
)
def test_categories_follow_cause_before_symptom(
    root: dict[str, float], incident: dict[str, float], category: str
) -> None:
    assert categorise(root, incident, threshold=2.0) == category
