"""Lead-time buckets: where a forecast point falls by how far ahead of its origin it is, and its scores there.

A planner reads a 7-day forecast, so interval coverage pooled over all leads hides what matters:
a band can hold 80 % of the actuals overall while holding 95 % in the first hour and 65 % a week
out. Buckets are edges in *time*, not steps, so they mean the same at any sampling interval:

- ``1h``: lead in (0, 1 h]; ``1d``: (1 h, 1 d]; ``7d``: (1 d, 7 d]; ``beyond_7d``: over 7 d.

A bucket no point falls in is absent from every result (never reported as 0). Pure functions;
used by the backtest, the forecast benchmark, the selector's calibration and the capacity gate.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

LEAD_EDGES: tuple[tuple[str, pd.Timedelta], ...] = (
    ("1h", pd.Timedelta(hours=1)),
    ("1d", pd.Timedelta(days=1)),
    ("7d", pd.Timedelta(days=7)),
)
BEYOND = "beyond_7d"
BUCKETS: tuple[str, ...] = (*(name for name, _ in LEAD_EDGES), BEYOND)
TITLES: dict[str, str] = {"1h": "first hour", "1d": "first day", "7d": "first week", BEYOND: "beyond a week"}
LEAD_SCORE_COLUMNS: tuple[str, ...] = ("bucket", "n", "coverage", "pinball")


def lead_bucket(leads: ArrayLike) -> np.ndarray:
    """The bucket name of each lead time (a timedelta, > 0); raises on a lead that is not after its origin."""
    lead = pd.to_timedelta(pd.Series(np.asarray(leads).ravel())).to_numpy()
    if lead.size and (pd.isna(lead).any() or (lead <= np.timedelta64(0, "ns")).any()):
        raise ValueError("lead times must be positive (a forecast point after its origin)")
    edges = np.array([edge.to_timedelta64() for _, edge in LEAD_EDGES])
    return np.asarray(BUCKETS, dtype=object)[np.searchsorted(edges, lead, side="left")]


def step_buckets(h: int, freq: str | pd.Timedelta) -> np.ndarray:
    """The bucket of steps 1..h ahead at sampling interval ``freq``."""
    step = pd.Timedelta(pd.tseries.frequencies.to_offset(freq)) if isinstance(freq, str) else pd.Timedelta(freq)
    return lead_bucket(np.arange(1, h + 1) * step)


def scores_by_lead(
    y: ArrayLike, lower: ArrayLike, upper: ArrayLike, leads: ArrayLike, level: int
) -> pd.DataFrame:
    """Per lead bucket (in :data:`BUCKETS` order, empty ones left out): points, interval coverage
    and pinball loss (mean over points of the two bounds' losses as the (1 - level) / 2 and
    (1 + level) / 2 quantiles)."""
    actual = np.asarray(y, dtype="float64")
    lo, hi = np.asarray(lower, dtype="float64"), np.asarray(upper, dtype="float64")
    if not actual.shape == lo.shape == hi.shape:
        raise ValueError(f"actuals and bounds differ in shape: {actual.shape}, {lo.shape}, {hi.shape}")
    buckets = lead_bucket(leads)
    if buckets.size != actual.size:
        raise ValueError(f"{buckets.size} lead times for {actual.size} points")
    tau = (1 - level / 100) / 2
    below, above = actual - lo, actual - hi
    loss = (np.maximum(tau * below, (tau - 1) * below) + np.maximum((1 - tau) * above, -tau * above)) / 2
    inside = (actual >= lo) & (actual <= hi)
    rows = [
        (name, int(mask.sum()), float(inside[mask].mean()), float(loss[mask].mean()))
        for name in BUCKETS
        if (mask := buckets == name).any()
    ]
    return pd.DataFrame(rows, columns=list(LEAD_SCORE_COLUMNS))


def lead_metrics(table: pd.DataFrame) -> dict[str, float]:
    """``coverage_lead_<bucket>``, ``pinball_lead_<bucket>`` and ``points_lead_<bucket>`` from
    :func:`scores_by_lead`, as flat metric names (MLflow, the gate)."""
    out: dict[str, float] = {}
    for row in table.itertuples(index=False):
        out[f"coverage_lead_{row.bucket}"] = float(row.coverage)
        out[f"pinball_lead_{row.bucket}"] = float(row.pinball)
        out[f"points_lead_{row.bucket}"] = float(row.n)
    return out


def metrics_by_lead(metrics: dict[str, float], prefix: str = "coverage") -> dict[str, float]:
    """The ``<prefix>_lead_<bucket>`` entries of ``metrics`` keyed by bucket, in :data:`BUCKETS` order."""
    return {b: metrics[f"{prefix}_lead_{b}"] for b in BUCKETS if f"{prefix}_lead_{b}" in metrics}
