"""Pure decoding of Prometheus matrix results into Foresight's long telemetry and catalogue.

``unique_id`` is ``service/resource/name`` where service and resource come from the labels a
series option maps (``job`` / ``instance`` by default) and ``name`` is the catalogue metric name.
Labels beyond those two are appended as ``name{k=v,...}``, so a new label set (a new series, or
a label added by a deploy) is a new ``unique_id`` rather than a silent merge of two series.
Values stay as Prometheus sent them: ``"NaN"`` and ``"+Inf"`` become floats that the data
contract quarantines.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from foresight.schemas import CATALOGUE_COLUMNS, ID_COL, TARGET_COL, TIME_COL, UTC_DTYPE, empty_telemetry

# Stands in for a mapped label the series does not carry (e.g. an aggregate without ``instance``).
MISSING_LABEL = "_"
METRIC_NAME_LABEL = "__name__"


@dataclass(frozen=True)
class SeriesNaming:
    """How one configured series turns label sets into catalogue identities."""

    name: str
    unit: str
    service_label: str = "job"
    resource_label: str = "instance"
    service: str | None = None  # a static service overrides the service label


class LabelCollisionError(ValueError):
    """Distinct label sets map to one ``unique_id``; ``.unique_id`` and ``.label_sets`` say which."""

    def __init__(self, unique_id: str, label_sets: list[dict[str, str]]) -> None:
        self.unique_id, self.label_sets = unique_id, label_sets
        super().__init__(
            f"{len(label_sets)} label sets map to unique_id {unique_id!r}, e.g. {label_sets[:2]}; "
            "aggregate them in the PromQL (e.g. sum by (job, instance) (...))"
        )


def sanitise(value: str) -> str:
    """A label value usable as one ``/``-separated part of a ``unique_id``."""
    return value.replace("/", "_") or MISSING_LABEL


def identify(labels: Mapping[str, str], naming: SeriesNaming) -> tuple[str, str, str]:
    """``(unique_id, service, resource_id)`` for one label set (service and resource sanitised)."""
    service = sanitise(naming.service if naming.service is not None else labels.get(naming.service_label, ""))
    resource = sanitise(labels.get(naming.resource_label, ""))
    mapped = {naming.resource_label, METRIC_NAME_LABEL} | ({naming.service_label} if naming.service is None else set())
    extra = sorted((k, v) for k, v in labels.items() if k not in mapped)
    metric = naming.name + ("{" + ",".join(f"{k}={sanitise(v)}" for k, v in extra) + "}" if extra else "")
    return f"{service}/{resource}/{metric}", service, resource


def decode_matrix(
    result: Sequence[Mapping[str, Any]], naming: SeriesNaming, *, source: str,
    start: pd.Timestamp | None = None, end: pd.Timestamp | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Telemetry (``unique_id, ds, y``) and catalogue frames from a ``resultType: matrix`` payload.

    Samples outside ``[start, end)`` (when given) are dropped, which keeps chunk results disjoint
    even if a server answered a wider range than asked.
    """
    frames: list[pd.DataFrame] = []
    rows: list[dict[str, str]] = []
    seen: dict[str, dict[str, str]] = {}
    for series in result:
        labels = {str(k): str(v) for k, v in (series.get("metric") or {}).items()}
        uid, service, resource = identify(labels, naming)
        if uid in seen and seen[uid] != labels:
            raise LabelCollisionError(uid, [seen[uid], labels])
        seen[uid] = labels
        values = series.get("values") or []
        if not values:
            continue
        pairs = np.asarray(values, dtype=object)
        frames.append(pd.DataFrame({
            ID_COL: uid,
            TIME_COL: _timestamps(pairs[:, 0]),
            TARGET_COL: pairs[:, 1].astype(str).astype("float64"),  # "NaN", "+Inf" parse as floats
        }))
        rows.append(_catalogue_row(uid, labels, service, resource, naming, source))
    telemetry = pd.concat(frames, ignore_index=True) if frames else empty_telemetry()
    telemetry = telemetry.astype({ID_COL: "string"})
    if start is not None:
        telemetry = telemetry[telemetry[TIME_COL] >= start]
    if end is not None:
        telemetry = telemetry[telemetry[TIME_COL] < end]
    catalogue = pd.DataFrame(rows, columns=list(CATALOGUE_COLUMNS))
    return telemetry.reset_index(drop=True), catalogue


def counter_rates(telemetry: pd.DataFrame) -> pd.DataFrame:
    """Per-second rates from raw counter samples, treating any decrease as a counter reset.

    Between consecutive samples of a series the increase is ``v1 - v0``, or ``v1`` when
    ``v1 < v0`` (the counter restarted from zero, as PromQL's ``rate`` assumes). The rate is
    stamped at the later sample; each series' first sample has no predecessor and is dropped,
    which an incremental pull covers by re-reading an overlap of at least one step. Across a
    gap the rate is the average over the gap.
    """
    if telemetry.empty:
        return telemetry.copy()
    ordered = telemetry.sort_values([ID_COL, TIME_COL], kind="stable").reset_index(drop=True)
    grouped = ordered.groupby(ID_COL, sort=False, observed=True)
    values = ordered[TARGET_COL].to_numpy(dtype="float64")
    previous = grouped[TARGET_COL].shift(1).to_numpy(dtype="float64")
    elapsed = grouped[TIME_COL].diff().dt.total_seconds().to_numpy(dtype="float64")
    delta = values - previous
    increase = np.where(delta < 0, values, delta)  # reset: the counter counted up from zero again
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = increase / elapsed
    has_previous = (grouped.cumcount() > 0).to_numpy()
    return ordered.assign(**{TARGET_COL: rate})[has_previous].reset_index(drop=True)


def _timestamps(seconds: np.ndarray) -> pd.Series:
    """Prometheus' float epoch seconds as UTC datetimes, exact to the millisecond."""
    millis = np.rint(seconds.astype("float64") * 1000).astype("int64")
    return pd.Series(pd.to_datetime(millis, unit="ms", utc=True)).astype(UTC_DTYPE)


def _catalogue_row(uid: str, labels: dict[str, str], service: str, resource: str,
                   naming: SeriesNaming, source: str) -> dict[str, str]:
    return {
        "unique_id": uid, "source": source, "metric": naming.name,
        "labels": json.dumps(labels, sort_keys=True), "service": service, "resource_id": resource,
        "instance_type": labels.get("instance_type", ""), "unit": naming.unit,
    }
