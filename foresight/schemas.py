"""Foresight's data model: the table shapes every connector emits and every model consumes.

Documented for people in ``docs/data-model.md``; this module is the executable version.

- telemetry: long format ``unique_id, ds (UTC), y`` (one sample per row)
- catalogue: ``unique_id`` -> source, metric, labels, service, resource id, instance type, unit
- logs: ``ts (UTC), service, resource_id, level, template_id, message``
- incidents: ``incident_id, service, category, start, end, severity``
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pandas as pd

ID_COL, TIME_COL, TARGET_COL = "unique_id", "ds", "y"
TELEMETRY_COLUMNS: tuple[str, ...] = (ID_COL, TIME_COL, TARGET_COL)

CATALOGUE_COLUMNS: tuple[str, ...] = (
    "unique_id",
    "source",
    "metric",
    "labels",  # JSON object as text, e.g. '{"instance": "i-0abc", "job": "node"}'
    "service",
    "resource_id",
    "instance_type",
    "unit",
)
LOG_COLUMNS: tuple[str, ...] = ("ts", "service", "resource_id", "level", "template_id", "message")
INCIDENT_COLUMNS: tuple[str, ...] = ("incident_id", "service", "category", "start", "end", "severity")

# Units the contracts know bounds for; a series with another unit only gets finiteness checks.
UNIT_BOUNDS: dict[str, tuple[float | None, float | None]] = {
    "percent": (0.0, 100.0),
    "ratio": (0.0, 1.0),
    "requests_per_second": (0.0, None),
    "seconds": (0.0, None),
    "bytes": (0.0, None),
    "count": (0.0, None),
}

INCIDENT_CATEGORIES: tuple[str, ...] = ("resource_leak", "disk", "saturation", "errors", "latency")
SEVERITIES: tuple[str, ...] = ("critical", "error", "warning", "info")  # PagerDuty's values
# What an incident most likely is (models.incidents.fault_types); here so settings can check
# the fault types a runbook is configured for.
FAULT_TYPES: tuple[str, ...] = (
    "cpu_contention", "cpu_consumed", "network_delay", "exception", "return", "memory_leak", "disk_full",
    "bad_deploy", "saturation", "unknown",
)

UTC_DTYPE = pd.DatetimeTZDtype(unit="us", tz="UTC")


class SchemaError(ValueError):
    """A frame does not have the shape the data model requires."""


class DuplicateSamplesError(SchemaError):
    """Two or more rows share ``(unique_id, ds)``; ``.duplicates`` holds them."""

    def __init__(self, duplicates: pd.DataFrame) -> None:
        self.duplicates = duplicates
        sample = duplicates.head(3)[[ID_COL, TIME_COL]].to_dict("records")
        super().__init__(f"{len(duplicates)} rows share (unique_id, ds), e.g. {sample}")


@dataclass(frozen=True)
class SeriesInfo:
    """One row of the series catalogue."""

    unique_id: str
    source: str
    metric: str
    labels: str
    service: str
    resource_id: str
    instance_type: str
    unit: str


def catalogue_row(
    uid: str, source: str, metric: str, service: str, resource: str, unit: str, labels: dict[str, str]
) -> dict[str, str]:
    """One catalogue row (:data:`CATALOGUE_COLUMNS`); ``labels`` stored as sorted JSON, no instance type."""
    return {
        "unique_id": uid,
        "source": source,
        "metric": metric,
        "labels": json.dumps(labels, sort_keys=True),
        "service": service,
        "resource_id": resource,
        "instance_type": "",
        "unit": unit,
    }


def empty_telemetry() -> pd.DataFrame:
    return pd.DataFrame(
        {
            ID_COL: pd.Series([], dtype="string"),
            TIME_COL: pd.Series([], dtype=UTC_DTYPE),
            TARGET_COL: pd.Series([], dtype="float64"),
        }
    )


def empty_incident_history() -> pd.DataFrame:
    """Known incidents (:data:`INCIDENT_COLUMNS`) when there are none yet, e.g. a new system."""
    return pd.DataFrame(
        {c: pd.Series([], dtype=UTC_DTYPE if c in ("start", "end") else "string") for c in INCIDENT_COLUMNS}
    )


def require_columns(df: pd.DataFrame, columns: tuple[str, ...] | list[str], what: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise SchemaError(f"{what}: missing column(s) {missing}; got {list(df.columns)}")


def validate_telemetry(df: pd.DataFrame, *, allow_empty: bool = False) -> pd.DataFrame:
    """Check a clean telemetry frame (what models get): types, UTC, finite, no duplicates.

    Returns the frame sorted by ``(unique_id, ds)`` with canonical dtypes. Raises
    :class:`SchemaError` naming the problem; this is a guard, not a cleaner: cleaning with a
    quarantine happens in :mod:`foresight.contracts`.
    """
    require_columns(df, TELEMETRY_COLUMNS, "telemetry")
    if df.empty and not allow_empty:
        raise SchemaError("telemetry: the frame is empty")
    ds = df[TIME_COL]
    if not isinstance(ds.dtype, pd.DatetimeTZDtype):
        raise SchemaError(f"telemetry: column 'ds' must be timezone-aware UTC datetimes, got {ds.dtype}")
    if str(ds.dtype.tz) != "UTC":
        raise SchemaError(f"telemetry: column 'ds' must be in UTC, got {ds.dtype.tz}")
    if not pd.api.types.is_float_dtype(df[TARGET_COL]):
        raise SchemaError(f"telemetry: column 'y' must be float, got {df[TARGET_COL].dtype}")
    values = df[TARGET_COL].to_numpy(dtype="float64")
    bad = ~np.isfinite(values)
    if bad.any():
        raise SchemaError(f"telemetry: {int(bad.sum())} non-finite value(s) (NaN/inf) in 'y'")
    dupes = df.duplicated([ID_COL, TIME_COL], keep=False)
    if dupes.any():
        raise DuplicateSamplesError(df[dupes])
    out = df[list(TELEMETRY_COLUMNS)].astype({ID_COL: "string", TIME_COL: UTC_DTYPE})
    return out.sort_values([ID_COL, TIME_COL], kind="stable").reset_index(drop=True)
