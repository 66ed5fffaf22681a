"""Application log lines that follow load and incident phases, from a fixed set of templates.

Access lines are sampled (about 0.7 lines per instance per 5 minutes at average load, whatever
the step) so three weeks stay well under 100k rows; error, time-out and warning lines are
sampled more generously and follow the error ratio, latency, heap and disk of the instance.
Event lines (deploys, rollbacks, OOM kills, restarts) are written at their moment. Line counts
per template and instance step are Poisson draws around those rates, so every run with one seed
is identical.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import reduce

import numpy as np
import pandas as pd

from foresight.schemas import LOG_COLUMNS, UTC_DTYPE
from simulator.fleet import CALL_GRAPH, Fleet
from simulator.scenarios import Scenario
from simulator.seeding import rng_for
from simulator.signals import Signals
from simulator.timegrid import TimeGrid

ACCESS_LINES_PER_5MIN = 0.7  # sampled access lines per instance per 5 minutes at its mean load
# Every rate below is "lines per instance per 5 minutes" and scales with the step.
ERROR_LINE_BOOST = 40.0  # failed requests are logged this many times more often than successes
UPSTREAM_TIMEOUT_MS = 2000


@dataclass(frozen=True)
class LogTemplate:
    """One kind of log line; ``template_id`` is a stable hash of the pattern, as a log miner would give."""

    key: str
    pattern: str
    level: str

    @property
    def template_id(self) -> str:
        return hashlib.sha1(self.pattern.encode()).hexdigest()[:8]


LOG_TEMPLATES: dict[str, LogTemplate] = {
    t.key: t
    for t in (
        LogTemplate("http_ok", "<method> <path> 200 in <ms>ms", "INFO"),
        LogTemplate("http_error", "<method> <path> 500 in <ms>ms", "ERROR"),
        LogTemplate("slow_request", "slow request <method> <path> took <ms>ms (slo <ms>ms)", "WARNING"),
        LogTemplate("app_error", "ERROR processing <entity> id=<id>: <reason>", "ERROR"),
        LogTemplate("upstream_timeout", "upstream timeout calling <service> after <ms>ms", "ERROR"),
        LogTemplate("pool_exhausted", "connection pool exhausted (max=64), waited <ms>ms", "WARNING"),
        LogTemplate("gc_pause", "GC pause <ms>ms heap=<pct>%", "INFO"),
        LogTemplate("disk_usage", "disk usage <pct>% on /var", "WARNING"),
        LogTemplate("disk_full", "write failed: no space left on device (/var/lib/app)", "ERROR"),
        LogTemplate("deploy_started", "deploy started version=<version> strategy=<strategy>", "INFO"),
        LogTemplate(
            "rollback_started", "rollback started version=<version> after error_rate=<pct>%", "WARNING"
        ),
        LogTemplate("service_started", "service started version=<version> in <s>s", "INFO"),
        LogTemplate("oom_killed", "OOMKilled container restarted (exit code 137)", "ERROR"),
    )
}

ENDPOINTS: dict[str, tuple[tuple[str, str], ...]] = {
    "frontend": (("GET", "/"), ("GET", "/product"), ("GET", "/cart"), ("POST", "/checkout")),
    "cart": (("GET", "/api/cart"), ("POST", "/api/cart/items"), ("DELETE", "/api/cart/items")),
    "checkout": (("POST", "/api/checkout"), ("GET", "/api/checkout/quote")),
    "catalog": (("GET", "/api/products"), ("GET", "/api/products/item"), ("GET", "/api/categories")),
    "payments": (("POST", "/api/payments/authorize"), ("POST", "/api/payments/capture")),
    "search": (("GET", "/api/search"), ("GET", "/api/search/suggest")),
}
ENTITIES: dict[str, str] = {
    "frontend": "page", "cart": "cart", "checkout": "order", "catalog": "product", "payments": "payment",
    "search": "query",
}
ERROR_REASONS = np.array(["NullPointerException", "TimeoutException", "deadline exceeded", "invalid state"])


def _join(*parts: object) -> np.ndarray:
    """Element-wise string concatenation of scalars and arrays."""
    return reduce(np.strings.add, [np.asarray(p).astype(str) for p in parts])


@dataclass
class _Lines:
    """Log rows gathered column-wise before one frame is built."""

    ts_us: list[np.ndarray]
    instance: list[np.ndarray]
    key: list[np.ndarray]
    level: list[np.ndarray]
    message: list[np.ndarray]

    def add(self, ts_us: np.ndarray, instance: np.ndarray, key: str, message: np.ndarray,
            level: np.ndarray | None = None) -> None:
        n = len(ts_us)
        self.ts_us.append(np.asarray(ts_us, dtype="int64"))
        self.instance.append(np.asarray(instance, dtype="int64"))
        self.key.append(np.full(n, key, dtype=object))
        self.level.append(np.full(n, LOG_TEMPLATES[key].level, dtype=object) if level is None else level)
        self.message.append(np.asarray(message, dtype=object))


def _draw(rng: np.random.Generator, rate: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Poisson line counts per (instance, step), expanded to one (instance, step) pair per line."""
    counts = rng.poisson(np.maximum(rate, 0.0))
    flat = np.flatnonzero(counts)
    rows = np.repeat(flat, counts.ravel()[flat])
    return np.divmod(rows, rate.shape[1])


def _endpoint(rng: np.random.Generator, services: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A random endpoint of each row's service: (method, path) arrays."""
    pick = rng.random(len(services))
    methods, paths = np.empty(len(services), dtype=object), np.empty(len(services), dtype=object)
    for name, endpoints in ENDPOINTS.items():
        rows = services == name
        k = (pick[rows] * len(endpoints)).astype(int)
        methods[rows] = np.array([m for m, _ in endpoints], dtype=object)[k]
        paths[rows] = np.array([p for _, p in endpoints], dtype=object)[k]
    return methods, paths


def generate_logs(
    seed: int, fleet: Fleet, grid: TimeGrid, scenario: Scenario, signals: Signals
) -> pd.DataFrame:
    """The log frame (``LOG_COLUMNS``) for the whole span, sorted by ``ts`` then ``resource_id``."""
    rng = rng_for(seed, "logs")
    v = signals.values
    rps, lat, err = v["request_rate"], v["latency_p95"], v["error_rate"]
    services = np.array([i.service for i in fleet.instances], dtype=object)
    step_us = grid.step_minutes * 60 * 1_000_000
    ds_us = grid.ds.asi8
    lines = _Lines([], [], [], [], [])
    load = rps / np.maximum(rps.mean(axis=1, keepdims=True), 1e-9)
    per_step = grid.step_minutes / 5.0

    def stamp(t: np.ndarray) -> np.ndarray:  # within the step that starts at the sample
        return ds_us[t] + rng.integers(0, step_us, len(t))

    def ms(seconds: np.ndarray, lo: float = -0.9, sd: float = 0.45) -> np.ndarray:
        return np.maximum(1, np.round(seconds * 1000 * np.exp(rng.normal(lo, sd, len(seconds))))).astype(int)

    i, t = _draw(rng, per_step * ACCESS_LINES_PER_5MIN * load * (1.0 - err))
    method, path = _endpoint(rng, services[i])
    lines.add(stamp(t), i, "http_ok", _join(method, " ", path, " 200 in ", ms(lat[i, t]), "ms"))

    i, t = _draw(rng, per_step * ACCESS_LINES_PER_5MIN * ERROR_LINE_BOOST * load * err)
    method, path = _endpoint(rng, services[i])
    lines.add(stamp(t), i, "http_error", _join(method, " ", path, " 500 in ", ms(lat[i, t], -0.3), "ms"))

    i, t = _draw(rng, per_step * 0.5 * ACCESS_LINES_PER_5MIN * ERROR_LINE_BOOST * load * err)
    entity = pd.Series(services[i], dtype=object).map(ENTITIES).to_numpy(dtype=object)
    ids = rng.integers(10_000, 999_999, len(i))
    lines.add(stamp(t), i, "app_error", _join("ERROR processing ", entity, " id=", ids, ": ",
                                               ERROR_REASONS[rng.integers(0, len(ERROR_REASONS), len(i))]))

    ratio = lat / signals.slo_s[:, None]
    i, t = _draw(rng, per_step * 3.0 * np.clip(ratio - 0.8, 0.0, 2.0))
    method, path = _endpoint(rng, services[i])
    slo_ms = np.round(signals.slo_s[i] * 1000).astype(int)
    lines.add(stamp(t), i, "slow_request", _join("slow request ", method, " ", path, " took ",
                                                  ms(lat[i, t], 0.0, 0.15), "ms (slo ", slo_ms, "ms)"))

    _upstream_timeouts(rng, fleet, signals, per_step * load, lines, stamp)

    i, t = _draw(rng, per_step * 2.0 * np.clip((v["cpu_pct"] - 92.0) / 8.0, 0.0, 1.0))
    lines.add(stamp(t), i, "pool_exhausted", _join("connection pool exhausted (max=64), waited ",
                                                    rng.integers(50, 1500, len(i)), "ms"))

    mem = signals.heap_pct  # the application logs its heap, which a container limit can fill first
    i, t = _draw(rng, per_step * (0.06 + 2.5 * np.clip((mem - 75.0) / 25.0, 0.0, 1.0) ** 2))
    heap = np.round(mem[i, t]).astype(int)
    # Pauses lengthen sharply as the heap nears its limit.
    stretch = 1.0 + 20.0 * np.clip((heap - 80) / 20.0, 0, 1) ** 2
    pause = np.round(rng.gamma(2.0, 15.0, len(i)) * stretch).astype(int)
    level = np.where(heap >= 85, "WARNING", "INFO").astype(object)
    lines.add(stamp(t), i, "gc_pause", _join("GC pause ", pause, "ms heap=", heap, "%"), level)

    disk = v["disk_pct"]
    i, t = _draw(rng, per_step * np.where(disk >= 85.0, 0.5, 0.0))
    lines.add(stamp(t), i, "disk_usage", _join("disk usage ", np.floor(disk[i, t]).astype(int), "% on /var"))
    i, t = _draw(rng, per_step * np.where(disk >= 99.0, 4.0, 0.0))
    lines.add(stamp(t), i, "disk_full", np.full(len(i), LOG_TEMPLATES["disk_full"].pattern, dtype=object))

    _event_lines(rng, grid, scenario, signals, lines)
    return _frame(fleet, lines)


def _upstream_timeouts(rng: np.random.Generator, fleet: Fleet, signals: Signals, load: np.ndarray,
                       lines: _Lines, stamp: Callable[[np.ndarray], np.ndarray]) -> None:
    """Callers log time-outs when a callee is past its SLO or failing."""
    lat, err = signals.values["latency_p95"], signals.values["error_rate"]
    for caller, callees in CALL_GRAPH.items():
        rows = np.array(fleet.instances_of(caller))
        for callee in callees:
            sub = fleet.instances_of(callee)
            slow = np.clip(lat[sub].mean(axis=0) / signals.slo_s[sub].mean() - 1.0, 0.0, 3.0)
            rate = load[rows] * (1.5 * slow + 10.0 * err[sub].mean(axis=0))[None, :]
            i, t = _draw(rng, rate)
            message = f"upstream timeout calling {callee} after {UPSTREAM_TIMEOUT_MS}ms"
            lines.add(stamp(t), rows[i], "upstream_timeout", np.full(len(i), message, dtype=object))


def _event_lines(rng: np.random.Generator, grid: TimeGrid, scenario: Scenario, signals: Signals,
                 lines: _Lines) -> None:
    """Deploys, rollbacks, restarts and OOM kills, at their moment (a handful of rows: a plain loop)."""
    ds_us = grid.ds.asi8
    second = 1_000_000
    err = signals.values["error_rate"]
    for d in scenario.deploys:
        at = ds_us[d.at]
        if d.kind == "rollback":
            pct = int(round(100 * err[d.instance, max(d.at - 1, 0)]))
            message = f"rollback started version={d.version} after error_rate={pct}%"
            lines.add(np.array([at - int(rng.integers(90, 200)) * second]), np.array([d.instance]),
                      "rollback_started", np.array([message]))
        else:
            strategy = "canary" if d.kind == "canary" else "rolling"
            lines.add(np.array([at - int(rng.integers(90, 200)) * second]), np.array([d.instance]),
                      "deploy_started", np.array([f"deploy started version={d.version} strategy={strategy}"]))
        boot = round(float(rng.uniform(8, 40)), 1)
        lines.add(np.array([at - int(rng.integers(5, 60)) * second]), np.array([d.instance]),
                  "service_started", np.array([f"service started version={d.version} in {boot}s"]))
    for inc in scenario.incidents:
        if inc.category == "resource_leak":
            at = ds_us[inc.start] + int(rng.integers(0, 30)) * second
            lines.add(np.array([at]), np.array([inc.instance]), "oom_killed",
                      np.array([LOG_TEMPLATES["oom_killed"].pattern]))


def _frame(fleet: Fleet, lines: _Lines) -> pd.DataFrame:
    """One sorted frame from the gathered columns."""
    ts = np.concatenate(lines.ts_us)
    instance = np.concatenate(lines.instance)
    ids = {k: t.template_id for k, t in LOG_TEMPLATES.items()}
    keys = np.concatenate(lines.key)
    frame = pd.DataFrame(
        {
            "ts": pd.Series(ts.astype("datetime64[us]")).dt.tz_localize("UTC").astype(UTC_DTYPE),
            "service": np.array([i.service for i in fleet.instances], dtype=object)[instance],
            "resource_id": np.array([i.instance_id for i in fleet.instances], dtype=object)[instance],
            "level": np.concatenate(lines.level),
            "template_id": pd.Series(keys).map(ids).to_numpy(),
            "message": np.concatenate(lines.message),
        }
    )
    frame = frame.astype({c: "string" for c in LOG_COLUMNS if c != "ts"})
    return frame.sort_values(["ts", "resource_id"], kind="stable").reset_index(drop=True)[list(LOG_COLUMNS)]
