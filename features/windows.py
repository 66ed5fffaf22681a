"""Service-level window features for the failure predictor (its labels: :mod:`features.failure_labels`).

:func:`service_features` turns instance telemetry into one row per ``(service, ds)`` with
features that mean the same thing on every service and metric, so a model that has seen a
handful of incidents can recognise the next one on another service:

- **levels** of bounded metrics only (``cpu_pct``, ``mem_pct``, ``disk_pct``: percent of the
  resource; ``error_rate``: a ratio), worst instance (``max``). Request rates and latencies have
  service-specific scales, so they enter only relative to their own history.
- **robust z** (``m_z``): the level against the series' own trailing baseline (median and
  inter-quartile range of the last ``baseline``), so "unusual for this instance" transfers.
- **trend** (``m_slope_w``): least-squares slope over each trailing window, in units per hour
  (relative to the baseline for unbounded metrics).
- **time to exhaustion** (``m_tte_w``, percent metrics): minutes until 100 % at that trend
  (``TTE_CAP_MINUTES`` when flat or falling), worst instance (``min``); ``util_tte_w`` is the
  minimum over cpu / mem / disk; ``util_max``, ``util_z_max``, ``util_slope_w`` the largest
  level, z and slope of the three.
- **imbalance** (``m_spread``; ``request_rate_imbalance``): how far the worst instance is from
  the others. A hot key hits one instance, a campaign the whole service.
- with **logs**: ERROR / WARN line counts per window (``log_error_w``, ``log_warn_w``), the
  ERROR count relative to its own trailing rate (``log_error_lift_w``), deploys started per
  window (``deploys_w``) and ``minutes_since_deploy``; per ERROR / WARN template, its line count
  per window (``log_tpl_<template_id>_w``): "connection pool exhausted" rising says more than
  "some warnings". A template with no lines is a count of 0 (:func:`absent_means_zero`).

Everything is causal: a row at ``ds`` uses samples and log lines at or before ``ds`` only.
:func:`risk_direction` says which features physics makes monotone in risk (fuller is riskier).

Pure: frames in, frames out.
"""

from __future__ import annotations

import re
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
# Log levels counted, and the raw levels folded into each (ERROR counts error-or-worse).
LOG_LEVELS: dict[str, tuple[str, ...]] = {
    "error": ("ERROR", "CRITICAL", "FATAL"),
    "warn": ("WARN", "WARNING"),
}
# A deploy beginning, as deploy tools and CD systems phrase it ("deploy started version=...").
DEPLOY_PATTERN = re.compile(
    r"\b(?:deploy|deployment|rollout|release)\w*\s+(?:started|starting|begun|begins)\b", re.IGNORECASE
)
TEMPLATE_PREFIX = "log_tpl_"  # per-template line counts: log_tpl_<template_id>_<window>

BOUNDED_UNITS: dict[str, float] = {"percent": 100.0, "ratio": 1.0}  # unit -> full scale
RESOURCE_METRICS: tuple[str, ...] = ("cpu_pct", "mem_pct", "disk_pct")  # exhaustible resources
TTE_CAP_MINUTES = 7 * 24 * 60.0  # "not filling up": a week or more
SINCE_DEPLOY_CAP_MINUTES = 24 * 60.0
Z_CLIP = 50.0
# Smallest robust scale per unit (a flat series would otherwise make every wiggle extreme).
SCALE_FLOOR: dict[str, float] = {"percent": 1.0, "ratio": 0.002}
RELATIVE_SCALE_FLOOR = 0.05  # unbounded units: 5 % of the baseline
_IQR_TO_SIGMA = 1.349
# Which way risk moves with a feature, by what it measures: a fuller resource, filling faster or
# sooner, a more unusual level, more errors or a fresher deploy never make a failure less likely.
# Traffic itself is left free: a busy evening is normal, a hot key is not.
RISK_DIRECTIONS: tuple[tuple[re.Pattern[str], int], ...] = tuple(
    (re.compile(pattern), sign)
    for pattern, sign in (
        (r"(cpu_pct|mem_pct|disk_pct|error_rate|util_max)", 1),
        (r"(cpu_pct|mem_pct|disk_pct|util)_tte_.+", -1),
    )
)


def service_features(
    telemetry: pd.DataFrame,
    catalogue: pd.DataFrame,
    logs: pd.DataFrame | None = None,
    windows: Sequence[str] = ("30min", "2h"),
    baseline: str = "1D",
) -> pd.DataFrame:
    """``service, ds`` plus the features in the module docstring, sorted by ``(service, ds)``.

    ``windows`` are the trailing windows for trends and log counts, ``baseline`` the trailing
    history a level is compared with. The catalogue needs ``unique_id, service, metric`` and,
    optionally, ``unit`` (else metrics ending in ``_pct`` are percent and ``error_rate`` a ratio).
    """
    telemetry = validate_telemetry(telemetry)
    require_columns(catalogue, [ID_COL, "service", "metric"], "catalogue")
    wide, info = _wide_series(telemetry, catalogue)
    labels = {_label(w): pd.Timedelta(w) for w in windows}
    per_series = _series_features(wide, info, labels, pd.Timedelta(baseline))
    keys, present = _service_rows(wide, info)
    frame = _by_service(per_series, info, keys, present)
    parts = [keys, frame]
    if logs is not None:
        parts.append(_log_features(keys, logs, labels, pd.Timedelta(baseline)))
        parts.append(_template_counts(keys, logs, labels))
    return pd.concat(parts, axis=1)


def absent_means_zero(feature: str) -> bool:
    """Whether a feature missing from a frame means "no such log line" (a count of 0), not "unknown".

    Per-template counts exist only for templates present in the logs a frame was built from; a
    model trained on a template scoring a window without it has seen it zero times there.
    """
    return feature.startswith(TEMPLATE_PREFIX)


def risk_direction(feature: str) -> int:
    """+1 where more of the feature can only mean more risk, -1 where it can only mean less, 0 where
    domain knowledge says nothing; for monotone constraints (see ``RISK_DIRECTIONS``)."""
    return next((sign for pattern, sign in RISK_DIRECTIONS if pattern.fullmatch(feature)), 0)


def _label(window: str | pd.Timedelta) -> str:
    """Column-name suffix of a window: its string as given (``"30min"``), or minutes."""
    if isinstance(window, str):
        return window.strip()
    return f"{int(pd.Timedelta(window).total_seconds() // 60)}min"


# --- per-series maths on a wide (time x series) frame ------------------------------------------


def _wide_series(telemetry: pd.DataFrame, catalogue: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Telemetry as ``ds x unique_id`` (missing samples NaN) and each column's service, metric, unit."""
    cols = [c for c in (ID_COL, "service", "metric", "unit") if c in catalogue.columns]
    info = catalogue[cols].drop_duplicates(ID_COL).set_index(ID_COL)
    unknown = ~telemetry[ID_COL].isin(info.index)
    if unknown.any():
        missing = sorted(telemetry.loc[unknown, ID_COL].unique())
        raise ValueError(f"{len(missing)} telemetry series are not in the catalogue, e.g. {missing[:5]}")
    wide = telemetry.pivot(index=TIME_COL, columns=ID_COL, values=TARGET_COL).sort_index()
    wide.columns = wide.columns.astype(str)
    info = info.reindex(wide.columns)
    if "unit" not in info.columns:
        info["unit"] = np.where(
            info["metric"].str.endswith("_pct"),
            "percent",
            np.where(info["metric"] == "error_rate", "ratio", ""),
        )
    info = info.astype({"service": str, "metric": str, "unit": str})
    return wide, info


def _rolling_slope(wide: pd.DataFrame, window: pd.Timedelta) -> np.ndarray:
    """Least-squares slope per hour over ``(ds - window, ds]`` for every column (NaN under 3 samples)."""
    hours = ((wide.index - wide.index[0]) / pd.Timedelta(hours=1)).to_numpy(dtype="float64")[:, None]
    seen = wide.notna().to_numpy(dtype="float64")
    y = np.nan_to_num(wide.to_numpy(dtype="float64"))
    t = hours * seen

    def rsum(values: np.ndarray) -> np.ndarray:
        return pd.DataFrame(values, index=wide.index).rolling(window).sum().to_numpy()

    n, st, sy, stt, sty = rsum(seen), rsum(t), rsum(y), rsum(t * hours), rsum(y * hours)
    denom = n * stt - st**2
    with np.errstate(divide="ignore", invalid="ignore"):
        slope = (n * sty - st * sy) / denom
    return np.where((n >= 3) & (denom > 1e-9), slope, np.nan)


def _series_features(
    wide: pd.DataFrame, info: pd.DataFrame, windows: dict[str, pd.Timedelta], baseline: pd.Timedelta
) -> dict[str, np.ndarray]:
    """Feature name -> ``(T, n_series)`` array: level, robust z, slopes and times to exhaustion."""
    y = wide.to_numpy(dtype="float64")
    units = info["unit"].to_numpy()
    bounded = np.isin(units, list(BOUNDED_UNITS))
    rolling = wide.rolling(baseline, min_periods=12)
    median = rolling.median().to_numpy()
    iqr = rolling.quantile(0.75).to_numpy() - rolling.quantile(0.25).to_numpy()
    floor = np.array([SCALE_FLOOR.get(u, 0.0) for u in units])
    scale = np.maximum.reduce(
        [iqr / _IQR_TO_SIGMA, np.broadcast_to(floor, y.shape), RELATIVE_SCALE_FLOOR * np.abs(median)]
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        out = {"level": y, "z": np.clip((y - median) / np.where(scale > 0, scale, np.nan), -Z_CLIP, Z_CLIP)}
        relative = np.where(bounded, 1.0, 1.0 / np.where(np.abs(median) > 0, np.abs(median), np.nan))
    full = np.array([BOUNDED_UNITS.get(u, np.nan) for u in units])
    for label, window in windows.items():
        slope = _rolling_slope(wide, window)
        out[f"slope_{label}"] = (
            slope * relative
        )  # per hour: units for bounded metrics, share of baseline else
        with np.errstate(divide="ignore", invalid="ignore"):
            tte = np.where(slope > 0, (full - y) / slope * 60.0, TTE_CAP_MINUTES)
        out[f"tte_{label}"] = np.clip(np.where(np.isnan(y), np.nan, tte), 0.0, TTE_CAP_MINUTES)
    return out


# --- from instances to services -----------------------------------------------------------------


def _service_rows(wide: pd.DataFrame, info: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """The ``service, ds`` keys (each service at the times it has any sample) and each service's row mask."""
    seen = wide.notna().to_numpy()
    services = sorted(info["service"].unique())
    present = {s: seen[:, (info["service"] == s).to_numpy()].any(axis=1) for s in services}
    ds = wide.index
    keys = pd.DataFrame(
        {
            "service": pd.array(
                np.repeat(services, [int(present[s].sum()) for s in services]), dtype="string"
            ),
            TIME_COL: pd.DatetimeIndex(np.concatenate([ds[present[s]] for s in services]))
            .tz_convert("UTC")
            .astype(UTC_DTYPE),
        }
    )
    return keys, present


def _reduce(values: np.ndarray, how: str) -> np.ndarray:
    """NaN-skipping max / min / spread across instance columns (NaN only when all are missing)."""
    if how == "max":
        return np.fmax.reduce(values, axis=1)
    if how == "min":
        return np.fmin.reduce(values, axis=1)
    return np.fmax.reduce(values, axis=1) - np.fmin.reduce(values, axis=1)


def _by_service(
    per_series: dict[str, np.ndarray], info: pd.DataFrame, keys: pd.DataFrame, present: dict[str, np.ndarray]
) -> pd.DataFrame:
    """Instance features reduced to the worst instance per service, plus cross-metric summaries."""
    metrics = sorted(info["metric"].unique())
    blocks = []
    for service, rows in present.items():
        cols: dict[str, np.ndarray] = {}
        for metric in metrics:
            idx = np.flatnonzero(((info["service"] == service) & (info["metric"] == metric)).to_numpy())
            if idx.size == 0:
                continue
            unit = info["unit"].iloc[idx[0]]
            for name, values in per_series.items():
                block = values[rows][:, idx]
                if name == "level":
                    if unit in BOUNDED_UNITS:
                        cols[metric] = _reduce(block, "max")
                        cols[f"{metric}_spread"] = _reduce(block, "spread")
                    elif metric == "request_rate":  # a hot key loads one instance, a campaign all
                        seen = (~np.isnan(block)).sum(axis=1)
                        with np.errstate(divide="ignore", invalid="ignore"):
                            mean = np.nansum(block, axis=1) / seen
                            cols["request_rate_imbalance"] = _reduce(block, "max") / mean - 1.0
                elif name.startswith("tte_"):
                    if unit == "percent":
                        cols[f"{metric}_{name}"] = _reduce(block, "min")
                else:
                    cols[f"{metric}_{name}"] = _reduce(block, "max")
        blocks.append(pd.DataFrame(cols))
    frame = pd.concat(blocks, ignore_index=True)
    frame.index = keys.index
    return _cross_metric(frame)


def _cross_metric(frame: pd.DataFrame) -> pd.DataFrame:
    """Worst level, z and time to exhaustion over the resource metrics a service has."""
    resources = [m for m in RESOURCE_METRICS if m in frame.columns]
    if not resources:
        return frame
    extra = {
        "util_max": frame[resources].max(axis=1),
        "util_z_max": frame[[f"{m}_z" for m in resources]].max(axis=1),
    }
    for window in sorted({c.split("_tte_")[1] for c in frame.columns if "_tte_" in c}):
        extra[f"util_slope_{window}"] = frame[[f"{m}_slope_{window}" for m in resources]].max(axis=1)
        extra[f"util_tte_{window}"] = frame[[f"{m}_tte_{window}" for m in resources]].min(axis=1)
    return pd.concat([frame, pd.DataFrame(extra, index=frame.index)], axis=1)


# --- logs ---------------------------------------------------------------------------------------


def _log_features(
    keys: pd.DataFrame, logs: pd.DataFrame, windows: dict[str, pd.Timedelta], baseline: pd.Timedelta
) -> pd.DataFrame:
    """Per row: ERROR / WARN counts, ERROR lift over its trailing rate, deploys, minutes since a deploy."""
    require_columns(logs, list(LOG_COLUMNS), "logs")
    ts = pd.to_datetime(logs["ts"]).astype(UTC_DTYPE).dt.tz_localize(None).to_numpy(dtype="datetime64[us]")
    level = logs["level"].astype("string").str.upper().to_numpy(dtype=object)
    deploy = logs["message"].astype("string").str.contains(DEPLOY_PATTERN, na=False).to_numpy(dtype=bool)
    log_service = logs["service"].astype("string").to_numpy(dtype=object)
    services = keys["service"].to_numpy(dtype=object)
    ds = keys[TIME_COL].dt.tz_localize(None).to_numpy(dtype="datetime64[us]")
    kinds = {name: np.isin(level, raw) for name, raw in LOG_LEVELS.items()} | {"deploy": deploy}
    names = [f"log_{k}_{w}" for k in LOG_LEVELS for w in windows] + [f"log_error_lift_{w}" for w in windows]
    names += [f"deploys_{w}" for w in windows] + ["minutes_since_deploy"]
    out = {name: np.zeros(len(keys), dtype=np.float64) for name in names}
    for service in np.unique(services):
        rows = np.flatnonzero(services == service)
        mine = log_service == service
        times = {k: np.sort(ts[mine & mask]) for k, mask in kinds.items()}
        at = ds[rows]
        daily_errors = _counts_within(times["error"], at, baseline)
        for label, window in windows.items():
            errors = _counts_within(times["error"], at, window)
            out[f"log_error_{label}"][rows] = errors
            out[f"log_warn_{label}"][rows] = _counts_within(times["warn"], at, window)
            out[f"deploys_{label}"][rows] = _counts_within(times["deploy"], at, window)
            expected = daily_errors * (window / baseline)  # the usual count for a window this long
            out[f"log_error_lift_{label}"][rows] = errors / (expected + 1.0)
        out["minutes_since_deploy"][rows] = _minutes_since(times["deploy"], at, SINCE_DEPLOY_CAP_MINUTES)
    return pd.DataFrame(out, index=keys.index)


def _template_counts(
    keys: pd.DataFrame, logs: pd.DataFrame, windows: dict[str, pd.Timedelta]
) -> pd.DataFrame:
    """Per row and ERROR / WARN template: its lines of the row's service within each trailing window."""
    require_columns(logs, list(LOG_COLUMNS), "logs")
    level = logs["level"].astype("string").str.upper()
    alerting = level.isin([raw for name in ("error", "warn") for raw in LOG_LEVELS[name]]).to_numpy(
        dtype=bool
    )
    lines = logs.loc[alerting, ["ts", "service", "template_id"]]
    ts = pd.to_datetime(lines["ts"]).astype(UTC_DTYPE).dt.tz_localize(None).to_numpy(dtype="datetime64[us]")
    template = lines["template_id"].astype("string").fillna("unknown").to_numpy(dtype=object)
    log_service = lines["service"].astype("string").to_numpy(dtype=object)
    services = keys["service"].to_numpy(dtype=object)
    ds = keys[TIME_COL].dt.tz_localize(None).to_numpy(dtype="datetime64[us]")
    out: dict[str, np.ndarray] = {}
    for tid in sorted(set(template)):
        mine = template == tid
        for label, window in windows.items():
            counts = np.zeros(len(keys), dtype=np.float64)
            for service in np.unique(services):
                rows = np.flatnonzero(services == service)
                times = np.sort(ts[mine & (log_service == service)])
                counts[rows] = _counts_within(times, ds[rows], window)
            out[f"{TEMPLATE_PREFIX}{_safe_name(tid)}_{label}"] = counts
    return pd.DataFrame(out, index=keys.index)


def _safe_name(text: str) -> str:
    """A template id usable inside a feature name (LightGBM refuses some JSON characters)."""
    return re.sub(r"[^0-9A-Za-z]+", "-", str(text)).strip("-") or "unknown"


def _counts_within(times: np.ndarray, at: np.ndarray, span: pd.Timedelta) -> np.ndarray:
    """How many of the sorted ``times`` fall in ``(t - span, t]`` for each ``t`` in ``at``."""
    return np.searchsorted(times, at, "right") - np.searchsorted(times, at - span.to_timedelta64(), "right")


def _minutes_since(times: np.ndarray, at: np.ndarray, cap: float) -> np.ndarray:
    """Minutes since the latest of the sorted ``times`` at or before each ``t`` in ``at`` (``cap`` if none)."""
    last = np.searchsorted(times, at, "right") - 1
    if not len(times):
        return np.full(len(at), cap)
    since = (at - times[np.clip(last, 0, None)]) / np.timedelta64(1, "m")
    return np.where(last >= 0, np.minimum(since, cap), cap)
