"""Service-level window features and "incident soon" labels for the failure predictor.

:func:`service_features` turns instance telemetry into one row per ``(service, ds)``: each metric
is first reduced across the service's instances by ``max`` (the worst instance is the one that
fails), then described over trailing windows (mean, std, min, max, change over the window), all
causal: a row at ``ds`` uses samples in ``(ds - window, ds]`` only. With logs, ERROR and WARN
counts per window are added. :func:`failure_labels` marks rows followed by an incident start
within the horizon.

Pure: frames in, frames out.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from foresight.schemas import (
    ID_COL,
    LOG_COLUMNS,
    TARGET_COL,
    TIME_COL,
    UTC_DTYPE,
    require_columns,
    validate_telemetry,
)

KEY_COLUMNS: tuple[str, ...] = ("service", TIME_COL)
WINDOW_STATS: tuple[str, ...] = ("mean", "std", "min", "max")
# Log levels counted, and the raw levels folded into each (ERROR counts error-or-worse).
LOG_LEVELS: dict[str, tuple[str, ...]] = {
    "error": ("ERROR", "CRITICAL", "FATAL"),
    "warn": ("WARN", "WARNING"),
}
EXCLUDED, NEGATIVE, POSITIVE = -1, 0, 1


def service_features(
    telemetry: pd.DataFrame,
    catalogue: pd.DataFrame,
    logs: pd.DataFrame | None = None,
    windows: Sequence[str] = ("30min", "2h"),
) -> pd.DataFrame:
    """``service, ds`` plus, per metric ``m``: ``m`` (max over instances) and for each window ``w``
    ``m_mean_w``, ``m_std_w``, ``m_min_w``, ``m_max_w``, ``m_slope_w`` (change over the window);
    with ``logs``: ``log_error_w``, ``log_warn_w`` counts. Sorted by ``(service, ds)``.
    """
    telemetry = validate_telemetry(telemetry)
    require_columns(catalogue, [ID_COL, "service", "metric"], "catalogue")
    durations = {_label(w): pd.Timedelta(w) for w in windows}
    base = _service_metrics(telemetry, catalogue)
    metrics = [c for c in base.columns if c not in KEY_COLUMNS]
    parts = [base]
    for label, duration in durations.items():
        parts.append(_window_stats(base, metrics, label, duration))
        parts.append(_window_change(base, metrics, label, duration))
        if logs is not None:
            parts.append(_log_counts(base, logs, label, duration))
    return pd.concat(parts, axis=1)


def failure_labels(
    features: pd.DataFrame, incidents: pd.DataFrame, horizon: str | pd.Timedelta = "60min"
) -> pd.Series:
    """Per feature row: 1 if an incident of its service starts within ``(ds, ds + horizon]``, else 0;
    -1 while an incident of the service is ongoing (``start <= ds < end``; an open incident, with
    no end, is ongoing from its start on).

    When the history records ``precursor_start``, rows from it until ``start - horizon`` are -1
    too (an incident is coming, just beyond the horizon). Rows labelled -1 describe a failure
    already happening or ambiguous lead-up, not its immediate precursors: the failure
    predictor drops them from training (``FailurePredictor.fit``) so it learns to warn early
    instead of to recognise outages. Ongoing wins over an upcoming start. Aligned with
    ``features.index``; named ``label``.
    """
    require_columns(features, list(KEY_COLUMNS), "features")
    require_columns(incidents, ["service", "start", "end"], "incidents")
    horizon_td = pd.Timedelta(horizon)
    if horizon_td <= pd.Timedelta(0):
        raise ValueError(f"horizon must be positive, got {horizon!r}")
    labels = np.zeros(len(features), dtype=np.int64)
    ds_all = features[TIME_COL].astype(UTC_DTYPE).to_numpy(dtype="datetime64[us]")
    services = features["service"].to_numpy(dtype=object)
    starts_all = _naive_utc(incidents["start"], "incidents.start")
    ends_all = _naive_utc(incidents["end"], "incidents.end")
    for service, group in incidents.groupby("service", sort=False):
        rows = np.flatnonzero(services == service)
        if rows.size == 0:
            continue
        ds = ds_all[rows]
        order = np.argsort(starts_all[group.index].to_numpy(dtype="datetime64[us]"))
        starts = starts_all[group.index].to_numpy(dtype="datetime64[us]")[order]
        ends = ends_all[group.index].to_numpy(dtype="datetime64[us]")[order]
        # An incident starts in (ds, ds + horizon] when the count of starts <= ds + h exceeds that <= ds.
        upcoming = np.searchsorted(starts, ds + horizon_td.to_timedelta64(), "right") > np.searchsorted(
            starts, ds, "right"
        )
        ongoing = _ongoing(ds, starts, ends)
        if "precursor_start" in incidents.columns:
            # A known precursor beyond the horizon (a leak 6 h before its OOM) is neither "fine"
            # nor "failing within the horizon": leave it out of training rather than call it 0.
            pre = _naive_utc(incidents["precursor_start"], "incidents.precursor_start")[group.index]
            pre = pre.to_numpy(dtype="datetime64[us]")[order]
            pre_order = np.argsort(pre)
            ongoing |= _ongoing(ds, pre[pre_order], (starts - horizon_td.to_timedelta64())[pre_order]) & ~upcoming
        labels[rows] = np.where(ongoing, EXCLUDED, np.where(upcoming, POSITIVE, NEGATIVE))
    return pd.Series(labels, index=features.index, name="label")


def _naive_utc(values: pd.Series, what: str) -> pd.Series:
    """UTC timestamps as naive UTC (for numpy); all-missing columns (open incidents) are allowed."""
    ts = pd.to_datetime(values)
    if ts.dt.tz is None:
        if ts.notna().any():
            raise ValueError(f"{what}: timestamps must be timezone-aware (UTC), got naive {ts.dtype}")
        return ts.astype("datetime64[us]")
    return ts.astype(UTC_DTYPE).dt.tz_localize(None)


def _ongoing(ds: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Is any interval ``[start, end)`` (sorted by start; NaT end = open) covering each ds?"""
    open_end = np.datetime64("9999-12-31", "us")
    ends = np.where(np.isnat(ends), open_end, ends)
    reach = np.maximum.accumulate(ends)  # furthest end among incidents started so far
    last = np.searchsorted(starts, ds, "right") - 1
    return (last >= 0) & (reach[np.clip(last, 0, None)] > ds)


def _label(window: str | pd.Timedelta) -> str:
    """Column-name suffix of a window: its string as given (``"30min"``), or minutes."""
    if isinstance(window, str):
        return window.strip()
    return f"{int(pd.Timedelta(window).total_seconds() // 60)}min"


def _service_metrics(telemetry: pd.DataFrame, catalogue: pd.DataFrame) -> pd.DataFrame:
    """Wide ``service, ds, <metric>...``: each metric's max across the service's instances."""
    info = catalogue.drop_duplicates(ID_COL).set_index(ID_COL)[["service", "metric"]]
    joined = telemetry.join(info, on=ID_COL, how="left")
    unknown = joined["service"].isna()
    if unknown.any():
        missing = sorted(joined.loc[unknown, ID_COL].unique())
        raise ValueError(f"{len(missing)} telemetry series are not in the catalogue, e.g. {missing[:5]}")
    wide = joined.pivot_table(index=["service", TIME_COL], columns="metric", values=TARGET_COL, aggfunc="max")
    wide.columns = [str(c) for c in wide.columns]
    out = wide.sort_index().reset_index()
    out["service"] = out["service"].astype("string")
    return out


def _window_stats(base: pd.DataFrame, metrics: list[str], label: str, duration: pd.Timedelta) -> pd.DataFrame:
    """Trailing mean/std/min/max over ``(ds - duration, ds]`` per service."""
    rolling = base.set_index(TIME_COL).groupby("service", sort=False)[metrics].rolling(duration)
    frames = []
    for stat in WINDOW_STATS:
        values = getattr(rolling, stat)()
        values.columns = [f"{m}_{stat}_{label}" for m in metrics]
        frames.append(values.to_numpy())
    names = [f"{m}_{stat}_{label}" for stat in WINDOW_STATS for m in metrics]
    # groupby-rolling returns rows grouped by service in base's (sorted) order, so positions align.
    return pd.DataFrame(np.hstack(frames), columns=names, index=base.index)


def _window_change(base: pd.DataFrame, metrics: list[str], label: str, duration: pd.Timedelta) -> pd.DataFrame:
    """``value now - value at ds - duration`` (the latest sample at or before it) per service."""
    probe = base[["service", TIME_COL]].assign(_at=base[TIME_COL] - duration)
    earlier = pd.merge_asof(
        probe.sort_values("_at"), base.rename(columns={TIME_COL: "_at"}).sort_values("_at"),
        on="_at", by="service", direction="backward",
    ).set_index(probe.sort_values("_at").index).sort_index()
    change = base[metrics].to_numpy() - earlier[metrics].to_numpy()
    return pd.DataFrame(change, columns=[f"{m}_slope_{label}" for m in metrics], index=base.index)


def _log_counts(base: pd.DataFrame, logs: pd.DataFrame, label: str, duration: pd.Timedelta) -> pd.DataFrame:
    """Log lines per level of each service within ``(ds - duration, ds]``."""
    require_columns(logs, list(LOG_COLUMNS), "logs")
    ts = pd.to_datetime(logs["ts"]).astype(UTC_DTYPE).dt.tz_localize(None).to_numpy(dtype="datetime64[us]")
    level = logs["level"].astype("string").str.upper().to_numpy(dtype=object)
    log_service = logs["service"].to_numpy(dtype=object)
    services = base["service"].to_numpy(dtype=object)
    ds = base[TIME_COL].dt.tz_localize(None).to_numpy(dtype="datetime64[us]")
    lo = ds - duration.to_timedelta64()
    out = {f"log_{name}_{label}": np.zeros(len(base), dtype=np.float64) for name in LOG_LEVELS}
    for service in np.unique(services):
        rows = np.flatnonzero(services == service)
        for name, raw_levels in LOG_LEVELS.items():
            times = np.sort(ts[(log_service == service) & np.isin(level, raw_levels)])
            counts = np.searchsorted(times, ds[rows], "right") - np.searchsorted(times, lo[rows], "right")
            out[f"log_{name}_{label}"][rows] = counts
    return pd.DataFrame(out, index=base.index)
