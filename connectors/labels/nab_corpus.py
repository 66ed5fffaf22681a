"""A NAB-layout labelled corpus on disk: read its series, windows and profiles; write result files.

Layout read (NAB's own): ``DATA/data/<category>/<name>.csv`` (``timestamp,value``),
``DATA/labels/combined_windows.json`` and ``DATA/labels/profiles.json``. Layout written:
``RESULTS/<category>/<detector>_<name>.csv`` with ``timestamp,value,anomaly_score,label`` (one
row per input row, in order; label 1 inside a window). Scoring: :mod:`models.evaluation.nab`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

Windows = dict[str, list[tuple[pd.Timestamp, pd.Timestamp]]]


@dataclass(frozen=True)
class NabFile:
    """One corpus file: its key in the label file (``<category>/<name>.csv``) and its rows."""

    key: str
    frame: pd.DataFrame  # timestamp (datetime64), value (float)

    @property
    def category(self) -> str:
        return self.key.split("/", 1)[0]

    @property
    def stem(self) -> str:
        return Path(self.key).name


def read_corpus(data_dir: str | Path) -> tuple[list[NabFile], Windows]:
    """Every labelled CSV under ``DATA/data`` (sorted by key) and the windows of each."""
    root = Path(data_dir)
    labels = root / "labels" / "combined_windows.json"
    if not labels.is_file():
        raise FileNotFoundError(
            f"{labels} not found: expected NAB's layout (data/, labels/combined_windows.json)"
        )
    windows = read_windows(labels)
    files = []
    for path in sorted((root / "data").glob("*/*.csv")):
        key = f"{path.parent.name}/{path.name}"
        if key not in windows:
            continue  # NAB scores labelled files only
        frame = pd.read_csv(path)
        missing = {"timestamp", "value"} - set(frame.columns)
        if missing:
            raise ValueError(f"{path} lacks column(s) {sorted(missing)}")
        frame = pd.DataFrame(
            {
                "timestamp": pd.to_datetime(frame["timestamp"]),
                "value": pd.to_numeric(frame["value"], errors="coerce").astype("float64"),
            }
        )
        files.append(NabFile(key, frame))
    if not files:
        raise FileNotFoundError(f"no labelled CSV files under {root / 'data'}")
    return files, windows


def read_windows(path: str | Path) -> Windows:
    """NAB's ``combined_windows.json``: ``{"<category>/<name>.csv": [[start, end], ...]}``, sorted."""
    raw = json.loads(Path(path).read_text())
    out: Windows = {}
    for key, windows in raw.items():
        pairs = sorted((pd.Timestamp(start), pd.Timestamp(end)) for start, end in windows)
        for start, end in pairs:
            if end < start:
                raise ValueError(f"window [{start}, {end}] of {key} ends before it starts")
        out[key] = pairs
    return out


def read_profiles(path: str | Path) -> dict[str, tuple[float, float, float]]:
    """NAB's ``profiles.json`` as ``{name: (tp, fp, fn)}`` weights (``CostMatrix`` ``tpWeight``,
    ``fpWeight``, ``fnWeight``)."""
    raw = json.loads(Path(path).read_text())
    profiles = {}
    for name, spec in raw.items():
        try:
            cost = spec["CostMatrix"]
            profiles[name] = (float(cost["tpWeight"]), float(cost["fpWeight"]), float(cost["fnWeight"]))
        except (KeyError, TypeError) as exc:
            raise ValueError(f"profile {name!r} in {path} lacks CostMatrix tpWeight/fpWeight/fnWeight") from exc
    return profiles


def write_results(out_dir: Path, detector: str, item: NabFile, scores: np.ndarray, labels: np.ndarray) -> Path:
    """``RESULTS/<category>/<detector>_<name>.csv``: timestamp, value, anomaly_score, label."""
    path = out_dir / item.category / f"{detector}_{item.stem}"
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(
        {
            "timestamp": item.frame["timestamp"].dt.strftime("%Y-%m-%d %H:%M:%S"),
            "value": item.frame["value"],
            "anomaly_score": scores,
            "label": labels,
        }
    ).to_csv(path, index=False)
    return path
