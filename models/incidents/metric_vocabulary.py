"""What a free-text metric name measures: its kind, which way is a problem, and its unit.

Names come from any system (``cpu_usage``, ``container_memory_working_set_bytes``,
``http_request_duration_seconds_p99``, ``ErrorRatio``, ``requests_per_second``,
``filesystem_avail_bytes``). A name is split into lower-case tokens at non-alphanumerics and
camelCase boundaries (:func:`metric_tokens`), and the tokens are matched against a small
vocabulary, in this order (the first that matches wins, :func:`vocabulary_kind`):

- ``infrastructure``: a name starting with ``node`` (the machine under a pod: shared, so not
  evidence about the pod);
- ``errors``: error, fail, exception, timeout, 5xx, success, availability, ...; a success rate or
  availability is a problem when it falls;
- latencies: latency, duration, response time, rt, wait, pNN percentiles; seen by the caller on
  an edge (``edge`` with ``source``/``caller``: ``call_latency``), by a client (``client``,
  ``outbound``, ``downstream``: ``client_latency``), else at the service (``server_latency``);
- ``cpu`` (cpu, millicores, throttling), ``memory`` (mem, memory, rss, heap, working set, swap,
  oom), ``disk`` (disk, fs, filesystem, volume, storage, inode); for these a fall is the problem
  when the name counts what is left (free, avail, available, idle, remaining);
- anything else is ``traffic`` (requests, rps, qps, throughput, bytes, packets, syscalls, ...),
  which is a problem either way.

:func:`metric_unit` reads a unit from the name (``_percent``, ``_pct``, ``_ratio``, ``_seconds``,
``_ms``, ``_bytes``, ``per_second``) for catalogues that give none. :func:`metric_family` names the
thing measured without its percentile, statistic or unit, so that variants of one measurement count
once. Pure.
"""

from __future__ import annotations

import re
from functools import lru_cache

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_SPLIT = re.compile(r"[^a-z0-9%]+")
_PERCENTILE = re.compile(r"^p\d{2,3}$")
# Tokens naming a variant of one measurement (a percentile, a statistic, a unit), not the thing measured.
_VARIANT_TOKEN = re.compile(
    r"^(p\d{2,3}|rate|usage|pct|percent|percentage|ratio|mib|mb|bytes|millicores|seconds|secs|ms|milliseconds"
    r"|total|per|second|avg|mean|max|min|median)$"
)

_ERROR_TOKENS = frozenset(
    {"error", "errors", "err", "errs", "errored", "fail", "failed", "fails", "failure", "failures",
     "exception", "exceptions", "timeout", "timeouts", "5xx", "4xx", "500", "502", "503", "504",
     "success", "successful", "succeeded", "availability"}
)
_ERROR_PREFIXES = ("error", "fail")  # errorrate, failedrequests
_FALLING_ERRORS = frozenset({"success", "successful", "succeeded", "availability"})
_LATENCY_TOKENS = frozenset(
    {"latency", "latencies", "duration", "durations", "rt", "rtt", "elapsed", "wait", "waiting", "lag",
     "delay", "delays"}
)
_CALLER_TOKENS = frozenset({"source", "caller", "upstream"})
_CLIENT_TOKENS = frozenset({"client", "outbound", "outgoing", "downstream", "dependency", "dependencies"})
_CPU_TOKENS = frozenset({"cpu", "cpus", "vcpu", "millicores", "processor", "throttled", "throttling"})
_MEMORY_TOKENS = frozenset({"mem", "memory", "rss", "heap", "swap", "oom", "oomkilled", "workingset"})
_DISK_TOKENS = frozenset({"disk", "disks", "fs", "filesystem", "volume", "storage", "inode", "inodes"})
_LEFT_TOKENS = frozenset({"free", "avail", "available", "idle", "remaining", "left"})
_UNIT_TOKENS: dict[str, str] = {
    "percent": "percent",
    "pct": "percent",
    "percentage": "percent",
    "%": "percent",
    "ratio": "ratio",
    "fraction": "ratio",
    "seconds": "seconds",
    "secs": "seconds",
    "ms": "milliseconds",
    "milliseconds": "milliseconds",
    "microseconds": "microseconds",
    "bytes": "bytes",
    "rps": "requests_per_second",
    "qps": "requests_per_second",
    "millicores": "millicores",
}


@lru_cache(maxsize=65536)  # a fleet has few distinct names, looked up per series and per evidence row
def metric_tokens(metric: str) -> tuple[str, ...]:
    """Lower-case tokens of a metric name: ``PodServerLatencyP95(s)`` -> ``pod, server, latency, p95, s``;
    ``response_time`` and ``working_set`` become one token each (``responsetime``, ``workingset``)."""
    text = _CAMEL.sub("_", metric.strip()).lower()
    text = re.sub(r"response[_\s.-]*time", "responsetime", text)
    text = re.sub(r"working[_\s.-]*set", "workingset", text)
    return tuple(t for t in _SPLIT.split(text) if t)


@lru_cache(maxsize=65536)
def vocabulary_kind(metric: str) -> str:
    """The kind of a free-text metric name (see the module doc); ``traffic`` when nothing matches."""
    tokens = metric_tokens(metric)
    if not tokens:
        return "traffic"
    words = set(tokens)
    if tokens[0] == "node":
        return "infrastructure"
    if words & _ERROR_TOKENS or any(t.startswith(_ERROR_PREFIXES) for t in tokens):
        return "errors"
    latency = bool(words & _LATENCY_TOKENS) or "responsetime" in words or any(
        t.startswith("latenc") for t in tokens
    )
    if latency:
        if "wire" in words:
            return "network_latency"
        if "edge" in words and words & _CALLER_TOKENS:
            return "call_latency"
        if words & _CLIENT_TOKENS:
            return "client_latency"
        return "server_latency"
    if words & _CPU_TOKENS or any("cpu" in t for t in tokens):
        return "cpu"
    if words & _MEMORY_TOKENS or any(t.startswith("memory") for t in tokens):
        return "memory"
    if words & _DISK_TOKENS:
        return "disk"
    if any(_PERCENTILE.match(t) for t in tokens) and not words & {"bytes", "size", "count"}:
        return "server_latency"  # a bare percentile (checkout_p99_ms) is a latency
    return "traffic"


def vocabulary_falls(metric: str, kind: str) -> bool:
    """Whether a *fall* of ``metric`` (of ``kind``) is the problem: a success rate or availability,
    or a resource name counting what is left (free memory, available disk, idle CPU)."""
    words = set(metric_tokens(metric))
    if kind == "errors":
        return bool(words & _FALLING_ERRORS)
    if kind in ("cpu", "memory", "disk"):
        return bool(words & _LEFT_TOKENS)
    return False


def metric_unit(metric: str) -> str:
    """The unit a metric name states (``latency_p99_seconds`` -> ``seconds``, ``error_pct`` ->
    ``percent``, ``requests_per_second`` -> ``requests_per_second``); empty when it states none."""
    tokens = metric_tokens(metric)
    for i, token in enumerate(tokens):
        if token == "per" and i + 1 < len(tokens) and tokens[i + 1] in ("second", "sec", "s"):
            return "requests_per_second"
    for token in reversed(tokens):
        if token in _UNIT_TOKENS:
            return _UNIT_TOKENS[token]
    return ""


def metric_family(metric: str) -> str:
    """The thing a metric measures, without percentile, statistic or unit variants:
    ``pod_server_latency_p95`` and ``latency_p99_seconds`` -> ``pod_server_latency``, ``latency``."""
    kept = [t for t in metric_tokens(metric) if not _VARIANT_TOKEN.match(t)]
    return "_".join(kept) or metric
