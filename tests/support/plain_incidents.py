"""A small generated system in memory (and, written out, in the plain incident layout): three
services with free-text metric names, sampled at any interval, one CPU fault on a leaf service."""

from __future__ import annotations

import numpy as np
import pandas as pd

from connectors.labels.incident_layout import Fault, IncidentDay

START = pd.Timestamp("2026-03-02 10:00", tz="UTC")
SERVICES = ("web", "api", "db")
CALL_GRAPH = {"web": ("api",), "api": ("db",), "db": ()}


def plain_system(
    *,
    interval: str = "10s",
    minutes: int = 150,
    fault_minute: float | None = 110.0,
    fault_service: str = "db",
    fault_minutes: float = 6.0,
    seed: int = 0,
    name: str = "shop",
) -> IncidentDay:
    """Per service ``cpu_usage`` (percent), ``memory_rss_bytes``, ``latency_p99_seconds``,
    ``requests_per_second`` and ``error_ratio`` (in [0, 1]); web also has ``success_rate_percent``.
    From ``fault_minute`` for ``fault_minutes`` the faulty service's CPU saturates and its latency
    jumps tenfold, its callers' latency rises a little (they wait for it)."""
    rng = np.random.default_rng(seed)
    step = pd.Timedelta(interval)
    n = int(pd.Timedelta(minutes=minutes) / step)
    ds = pd.date_range(START, periods=n, freq=step).astype("datetime64[us, UTC]")
    elapsed = (ds - START) / pd.Timedelta("1min")
    hit = np.zeros(n, dtype=bool)
    if fault_minute is not None:
        hit = (elapsed >= fault_minute) & (elapsed < fault_minute + fault_minutes)
    frames, rows = [], []
    for service in SERVICES:
        faulty = service == fault_service
        caller = fault_service in _downstream(service)
        values = {
            "cpu_usage": np.where(hit & faulty, 95.0, 30.0) + rng.normal(0, 1.5, n),
            "memory_rss_bytes": 2e8 + rng.normal(0, 1e5, n),
            "latency_p99_seconds": 0.05 * np.where(hit & faulty, 10.0, np.where(hit & caller, 1.5, 1.0))
            + np.abs(rng.normal(0, 0.002, n)),
            "requests_per_second": 100 + rng.normal(0, 3, n),
            "error_ratio": np.clip(0.001 + rng.normal(0, 0.0005, n), 0, 1),
        }
        if service == "web":
            values["success_rate_percent"] = 100 * (1 - values["error_ratio"])
        for metric, y in values.items():
            uid = f"{service}/{metric}"
            frames.append(pd.DataFrame({"unique_id": uid, "ds": ds, "y": y}))
            rows.append({"unique_id": uid, "service": service, "metric": metric})
    telemetry = pd.concat(frames, ignore_index=True).astype({"unique_id": "string", "y": "float64"})
    catalogue = pd.DataFrame(rows).assign(
        source="generated", labels="{}", resource_id=lambda f: f["service"], instance_type="", unit=""
    )
    faults = []
    if fault_minute is not None:
        at = START + pd.Timedelta(minutes=fault_minute)
        faults = [Fault(at, fault_service, fault_service, "cpu_contention")]
    return IncidentDay(
        name=name,
        telemetry=telemetry.sort_values(["unique_id", "ds"], kind="stable").reset_index(drop=True),
        catalogue=catalogue[["unique_id", "source", "metric", "labels", "service", "resource_id",
                             "instance_type", "unit"]],
        call_graph=dict(CALL_GRAPH),
        faults=faults,
    )


def _downstream(service: str) -> set[str]:
    """Services ``service`` calls, directly or through others."""
    seen: set[str] = set()
    todo = list(CALL_GRAPH[service])
    while todo:
        callee = todo.pop()
        if callee not in seen:
            seen.add(callee)
            todo += CALL_GRAPH[callee]
    return seen
