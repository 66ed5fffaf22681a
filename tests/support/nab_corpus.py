"""A tiny NAB-layout corpus: three 5-minute files, each with one spike mid-way through one window."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

PROFILES = {
    "standard": {"CostMatrix": {"tpWeight": 1.0, "fnWeight": 1.0, "fpWeight": 0.11, "tnWeight": 1.0}},
    "reward_low_FP_rate": {"CostMatrix": {"tpWeight": 1.0, "fnWeight": 1.0, "fpWeight": 0.22, "tnWeight": 1.0}},
    "reward_low_FN_rate": {"CostMatrix": {"tpWeight": 1.0, "fnWeight": 2.0, "fpWeight": 0.11, "tnWeight": 1.0}},
}


def write_corpus(root: Path) -> dict[str, tuple[int, int]]:
    """Write ``data/`` and ``labels/`` under ``root``; returns each file's window as row bounds."""
    rng = np.random.default_rng(11)
    windows: dict[str, list[list[str]]] = {}
    where: dict[str, tuple[int, int]] = {}
    for key, n, spike in (
        ("artificialWithAnomaly/a_one.csv", 700, 500),
        ("realThing/b_two.csv", 800, 620),
        ("realThing/c_three.csv", 600, 450),
    ):
        ts = pd.date_range("2024-01-01", periods=n, freq="5min")
        y = 20 + rng.normal(0, 1, n)
        y[spike] += 15
        path = root / "data" / key
        path.parent.mkdir(parents=True, exist_ok=True)
        pd.DataFrame({"timestamp": ts.strftime("%Y-%m-%d %H:%M:%S"), "value": y}).to_csv(path, index=False)
        lo, hi = spike - 20, spike + 20
        windows[key] = [[f"{ts[lo]}.000000", f"{ts[hi]}.000000"]]
        where[key] = (lo, hi)
    (root / "labels").mkdir(parents=True, exist_ok=True)
    (root / "labels" / "combined_windows.json").write_text(json.dumps(windows))
    (root / "labels" / "profiles.json").write_text(json.dumps(PROFILES))
    return where
