"""Metric vocabularies: which metrics a generated system exposes, under which names and units.

A vocabulary lists ``(measure, metric, unit)``: the *measure* is what the generator computes
(:data:`MEASURES`), the metric name and unit are what the system calls it. ``nezha`` mirrors the
Nezha data set's names (per-pod metrics plus per-call edge latencies when the call graph is
known), ``generic`` uses common free-text names (``cpu_usage``, ``memory_rss_bytes``,
``latency_p99_seconds``, ``requests_per_second``, ``error_ratio``), and ``varied`` draws every
metric's name per system from synonyms other tools use (some of which Foresight's metric
classification may not know yet: that is what it is for).
"""

from __future__ import annotations

import numpy as np

# What the generator can compute per service (see synthesis.measure_values).
MEASURES: tuple[str, ...] = (
    "cpu_pct", "cpu_millicores", "mem_pct", "mem_bytes", "mem_mib", "disk_pct", "disk_ratio",
    "latency_p50_s", "latency_p95_s", "latency_p99_s", "latency_p99_ms", "client_latency_p95_s",
    "rps", "error_ratio", "error_pct", "success_pct",
)
Vocabulary = tuple[tuple[str, str, str], ...]  # (measure, metric, unit)

NEZHA_LIKE: Vocabulary = (
    ("cpu_millicores", "cpu_usage", "millicores"),
    ("cpu_pct", "cpu_usage_rate", "percent"),
    ("mem_mib", "memory_usage", "mebibytes"),
    ("mem_pct", "memory_usage_rate", "percent"),
    ("disk_pct", "disk_usage_rate", "percent"),
    ("latency_p95_s", "pod_server_latency_p95", "seconds"),
    ("latency_p99_s", "pod_server_latency_p99", "seconds"),
    ("client_latency_p95_s", "pod_client_latency_p95", "seconds"),
    ("rps", "pod_workload", "requests_per_second"),
    ("success_pct", "pod_success_rate", "percent"),
)
GENERIC: Vocabulary = (
    ("cpu_pct", "cpu_usage", "percent"),
    ("mem_bytes", "memory_rss_bytes", "bytes"),
    ("disk_pct", "disk_used_percent", "percent"),
    ("latency_p50_s", "latency_p50_seconds", "seconds"),
    ("latency_p99_s", "latency_p99_seconds", "seconds"),
    ("rps", "requests_per_second", "requests_per_second"),
    ("error_ratio", "error_ratio", "ratio"),
)
# Per measure group, synonyms in use elsewhere: one is drawn per system.
_SYNONYMS: tuple[tuple[tuple[str, str, str], ...], ...] = (
    (("cpu_pct", "cpu_utilization", "percent"), ("cpu_pct", "container_cpu_percent", "percent"),
     ("cpu_millicores", "process_cpu_millicores", "millicores")),
    (("mem_bytes", "memory_working_set_bytes", "bytes"), ("mem_bytes", "heap_used_bytes", "bytes"),
     ("mem_pct", "mem_used_percent", "percent")),
    (("disk_pct", "fs_used_percent", "percent"), ("disk_ratio", "volume_usage_ratio", "ratio"),
     ("disk_pct", "disk_utilisation_pct", "percent")),
    (("latency_p99_s", "http_server_duration_p99_seconds", "seconds"),
     ("latency_p99_ms", "response_time_p99_ms", "milliseconds"), ("latency_p99_s", "request_latency_p99", "seconds")),
    (("rps", "http_requests_per_second", "requests_per_second"), ("rps", "throughput_rps", "requests_per_second"),
     ("rps", "qps", "requests_per_second")),
    (("error_ratio", "http_5xx_ratio", "ratio"), ("error_ratio", "failed_request_ratio", "ratio"),
     ("error_pct", "error_rate_percent", "percent")),
)
VOCABULARIES: tuple[str, ...] = ("nezha", "generic", "varied")
EDGE_METRICS: tuple[str, str] = ("edge_source_latency_p50", "edge_destination_latency_p50")


def vocabulary(name: str, rng: np.random.Generator) -> Vocabulary:
    """The vocabulary called ``name`` (one of :data:`VOCABULARIES`); ``varied`` draws from ``rng``."""
    if name == "nezha":
        return NEZHA_LIKE
    if name == "generic":
        return GENERIC
    if name == "varied":
        return tuple(group[int(rng.integers(len(group)))] for group in _SYNONYMS)
    raise ValueError(f"unknown vocabulary {name!r}; choose one of: {', '.join(VOCABULARIES)}")
