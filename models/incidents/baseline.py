"""The baseline incident builder: incidents from the robust z-score baselines, for comparison.

Per series, the direction-agnostic robust z over the past ``window`` (a day; all the samples so
far while fewer exist, from ``min_history`` samples on: :func:`models.anomaly.robust_z.trailing_robust_z`).
The system score at a step is the largest z of any series. An incident opens when the system
score crosses ``threshold`` upwards; with ``nms_width`` (the suppression variant) only at a new
local maximum (above every system score of the ``nms_width`` steps before) and at most one per
``nms_width`` steps. Root cause: the service of the top series, then the next services by their
largest z at that step (three in all). No category: ``unknown``.

The z matrix (:func:`series_z`, the costly part) is computed once and reused for every threshold
(:func:`baseline_incidents`). Pure: frames in, frames out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from foresight.schemas import ID_COL, TARGET_COL, TIME_COL
from models.anomaly.robust_z import causal_suppression, trailing_robust_z

WINDOW = pd.Timedelta("1D")
MIN_HISTORY = 30  # samples of a series before it is scored
UNKNOWN = "unknown"
TOP_SERVICES = 3


@dataclass(frozen=True)
class SeriesZ:
    """Robust z of every series on one regular time grid."""

    ds: pd.DatetimeIndex  # (T,) grid times, UTC
    z: np.ndarray  # (T, N) float, 0 where a series is not scored
    ids: np.ndarray  # (N,) unique_id per column
    services: np.ndarray  # (N,) service per column


def grid_step(ds: pd.Series) -> pd.Timedelta:
    """The most common spacing between distinct sample times (at least one nanosecond)."""
    times = pd.Series(pd.to_datetime(ds, utc=True).unique()).sort_values()
    diffs = times.diff().dropna()
    diffs = diffs[diffs > pd.Timedelta(0)]
    return pd.Timedelta(diffs.mode().iloc[0]) if len(diffs) else pd.Timedelta("1min")


def series_z(
    telemetry: pd.DataFrame,
    catalogue: pd.DataFrame,
    window: pd.Timedelta = WINDOW,
    min_history: int = MIN_HISTORY,
    mean_ad_fallback: bool = True,
) -> SeriesZ:
    """Every series' trailing robust z on the telemetry's regular grid (causal, exact).

    Series that never change score 0 everywhere (their z is 0 by definition), so they are not
    computed. ``mean_ad_fallback``: see :func:`models.anomaly.robust_z.trailing_robust_z`. Samples off the grid are snapped to the nearest step (a later one wins a collision).
    """
    if telemetry.empty:
        raise ValueError("no telemetry to score")
    step = grid_step(telemetry[TIME_COL])
    ds = pd.to_datetime(telemetry[TIME_COL], utc=True)
    start = ds.min()
    rows = np.rint(((ds - start) / step).to_numpy(dtype=float)).astype(np.int64)
    codes, ids = pd.factorize(telemetry[ID_COL], sort=True)
    values = np.full((int(rows.max()) + 1, len(ids)), np.nan)
    values[rows, codes] = telemetry[TARGET_COL].to_numpy(dtype=float)
    steps = max(1, int(round(window / step)))
    n = len(values)
    z = np.zeros_like(values)
    for j in range(values.shape[1]):
        column = values[:, j]
        finite = column[np.isfinite(column)]
        if finite.size == 0 or np.all(finite == finite[0]):
            continue
        z[:, j] = trailing_robust_z(column, min(steps, n), min(min_history, steps), mean_ad_fallback=mean_ad_fallback)
    service_of = catalogue.drop_duplicates(ID_COL).set_index(ID_COL)["service"]
    services = pd.Index(ids).map(service_of).to_numpy(dtype=object)
    services = np.where(pd.isna(services), np.asarray(ids, dtype=object), services)
    grid = pd.date_range(start, periods=n, freq=step)
    return SeriesZ(ds=grid, z=z, ids=np.asarray(ids, dtype=object), services=services)


def opening_steps(system: np.ndarray, threshold: float, nms_width: int | None = None) -> np.ndarray:
    """The steps at which an incident opens, in order (see the module docstring)."""
    system = np.asarray(system, dtype=float)
    if nms_width is None:
        above = system >= threshold
        return np.flatnonzero(above & ~np.r_[False, above[:-1]])
    candidates = np.flatnonzero(causal_suppression(system, nms_width) >= threshold)
    opened: list[int] = []
    for t in candidates:
        if not opened or t - opened[-1] >= nms_width:
            opened.append(int(t))
    return np.asarray(opened, dtype=np.int64)


def baseline_incidents(scores: SeriesZ, threshold: float, nms_width: int | None = None) -> pd.DataFrame:
    """Incidents ``opened_at, services, category, score, severity, closed_at, evidence``.

    ``services`` ranks up to three services (``;``-joined): the top series' service first.
    ``closed_at`` is the first later step whose system score is below ``threshold`` (NaT if none).
    """
    if threshold <= 0:
        raise ValueError(f"threshold must be > 0, got {threshold}")
    if nms_width is not None and nms_width < 1:
        raise ValueError(f"nms_width must be >= 1, got {nms_width}")
    z = scores.z
    columns = ["opened_at", "services", "category", "score", "severity", "closed_at", "evidence"]
    if z.size == 0:
        return pd.DataFrame(columns=columns)
    system = z.max(axis=1)
    service_codes, service_names = pd.factorize(pd.Series(scores.services, dtype=object))
    below = np.flatnonzero(system < threshold)
    rows = []
    for t in opening_steps(system, threshold, nms_width):
        per_service = np.zeros(len(service_names))
        np.maximum.at(per_service, service_codes, z[t])
        top = int(np.argmax(z[t]))
        ranked = [str(scores.services[top])]
        for k in np.argsort(-per_service, kind="stable"):
            name = str(service_names[k])
            if len(ranked) >= TOP_SERVICES or per_service[k] <= 0:
                break
            if name not in ranked:
                ranked.append(name)
        after = below[below > t]
        rows.append(
            {
                "opened_at": scores.ds[t],
                "services": ";".join(ranked),
                "category": UNKNOWN,
                "score": float(system[t]),
                "severity": "",
                "closed_at": scores.ds[after[0]] if len(after) else pd.NaT,
                "evidence": f"{scores.ids[top]} z={system[t]:.1f}",
            }
        )
    return pd.DataFrame(rows, columns=columns)
