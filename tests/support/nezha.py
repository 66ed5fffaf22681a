"""A tiny synthetic day in the Nezha layout: three services, one fault (CPU or network delay) on a
leaf service."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

START = pd.Timestamp("2022-08-22 03:51:19")
PODS = {
    "frontend": "frontend-579b9bff58-t2dbm",
    "cartservice": "cartservice-579f59597d-wc2lz",
    "currencyservice": "currencyservice-cf787dd48-vpjrd",
}
EDGES = (("frontend", "cartservice"), ("frontend", "currencyservice"))


def _times(n: int) -> tuple[list[str], list[int]]:
    stamps = [START + pd.Timedelta(minutes=i, seconds=0.6 * (i % 2)) for i in range(n)]
    text = [
        f"{t:%Y-%m-%d %H:%M:%S}.{t.microsecond:06d}123 +0000 UTC m=+{60.0 * i:.6f}"
        for i, t in enumerate(stamps)
    ]
    return text, [int(t.timestamp()) for t in stamps]


def write_nezha_day(
    root: Path,
    *,
    minutes: int = 150,
    fault_minute: int | None = 110,
    fault_service: str = "cartservice",
    fault_kind: str = "cpu_contention",
    seed: int = 0,
    name: str = "2022-08-22",
) -> Path:
    """Write ``root/<name>/`` with pod, service and edge metrics, the call graph and the fault list.

    At ``fault_minute`` (rows from then on, for six minutes) the frontend's latencies rise mildly
    and, for ``fault_kind`` ``cpu_contention``, ``fault_service``'s CPU and server latency jump and
    the edges into it slow down seen from both ends; for ``network_delay`` only the callers' view
    of the edges into it slows down (the wire), its own metrics stay flat.
    """
    if fault_kind not in ("cpu_contention", "network_delay"):
        raise ValueError(f"fault_kind must be cpu_contention or network_delay, got {fault_kind!r}")
    network = fault_kind == "network_delay"
    rng = np.random.default_rng(seed)
    day = root / name
    metric = day / "metric"
    metric.mkdir(parents=True)
    text, epoch = _times(minutes)
    hit = np.zeros(minutes, dtype=bool)
    if fault_minute is not None:
        hit[fault_minute : fault_minute + 6] = True
    for service, pod in PODS.items():
        cpu = 20 + rng.normal(0, 1, minutes)
        server = 0.01 + np.abs(rng.normal(0, 0.0005, minutes))
        client = 0.02 + np.abs(rng.normal(0, 0.001, minutes))
        if service == fault_service and not network:
            cpu = np.where(hit, 90 + rng.normal(0, 1, minutes), cpu)
            server = np.where(hit, 0.5, server)
        elif service == "frontend":
            client = np.where(hit, 0.04, client)
        pd.DataFrame(
            {
                "Time": text,
                "TimeStamp": epoch,
                "PodName": pod,
                "CpuUsage(m)": cpu / 10,
                "CpuUsageRate(%)": cpu,
                "MemoryUsage(Mi)": 100 + rng.normal(0, 0.1, minutes),
                "MemoryUsageRate(%)": 40 + rng.normal(0, 0.05, minutes),
                "PodClientLatencyP95(s)": client,
                "PodServerLatencyP95(s)": server,
                "PodWorkload(Ops)": 8 + rng.normal(0, 0.3, minutes),
                "PodSuccessRate(%)": 0,
                "NodeCpuUsageRate(%)": 10 + rng.normal(0, 0.5, minutes),
            }
        ).to_csv(metric / f"{pod}_metric.csv", index=False)
    pd.DataFrame(
        {
            "Time": text,
            "TimeStamp": epoch,
            "ServiceName": "Frontend",
            "SuccessRate(%)": 100.0,
            "LatencyP50(s)": 0.2 + np.abs(rng.normal(0, 0.01, minutes)),
        }
    ).to_csv(metric / "front_service.csv", index=False)
    for file_name in ("source_50.csv", "destination_50.csv"):
        edges = {"time": text, "timestamp": epoch}
        for caller, callee in EDGES:
            base = 0.005 + np.abs(rng.normal(0, 0.0003, minutes))
            slowed = callee == fault_service and (file_name == "source_50.csv" or not network)
            edges[f"{caller}_{callee}"] = np.where(hit, 0.3, base) if slowed else base
        pd.DataFrame(edges).to_csv(metric / file_name, index=False)
    deps = [
        ("frontend", "cartservice"),
        ("frontend", "currencyservice"),
        ("frontend", "33.33.33.167"),
        ("loadgenerator", "frontend"),
    ]
    pd.DataFrame(deps, columns=["Source", "Target"]).assign(Weight=1).to_csv(
        metric / "dependency.csv", index=False
    )
    faults: dict[str, list[dict[str, str]]] = {}
    if fault_minute is not None:
        inject = START + pd.Timedelta(minutes=fault_minute - 1, seconds=5)  # seen from the next scrape on
        faults[f"{inject:%H}"] = [
            {
                "inject_time": f"{inject:%Y-%m-%d %H:%M:%S}",
                "inject_timestamp": str(int(inject.timestamp())),
                "inject_pod": PODS[fault_service],
                "inject_type": fault_kind,
            }
        ]
    (day / f"{name}-fault_list.json").write_text(json.dumps(faults))
    return day
