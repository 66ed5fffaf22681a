"""Replay long telemetry through the stream engine (:class:`~models.incidents.stream.IncidentStream`)
step by step in time order, and its incidents as one frame (:data:`STREAM_INCIDENT_COLUMNS`).
Pure: no I/O."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

import numpy as np
import pandas as pd

from foresight.schemas import require_columns
from models.incidents.settings import StreamSettings
from models.incidents.share_units import with_share_units
from models.incidents.stream import IncidentStream, StreamIncident

STREAM_INCIDENT_COLUMNS: tuple[str, ...] = (
    "opened_at",
    "closed_at",
    "services",
    "category",
    "score",
    "severity",
    "evidence",
    "reopened",
    "fault_type",
    "fault_type_confidence",
)


def replay(
    telemetry: pd.DataFrame,
    catalogue: pd.DataFrame,
    call_graph: Mapping[str, Sequence[str]],
    settings: StreamSettings | None = None,
    calibration: Mapping[str, float] | None = None,
) -> pd.DataFrame:
    """Feed long telemetry (``unique_id, ds, y``) through an :class:`IncidentStream` step by step,
    in time order; one row per incident with :data:`STREAM_INCIDENT_COLUMNS`."""
    return replay_stream(telemetry, catalogue, call_graph, settings, calibration)[0]


def replay_stream(
    telemetry: pd.DataFrame,
    catalogue: pd.DataFrame,
    call_graph: Mapping[str, Sequence[str]],
    settings: StreamSettings | None = None,
    calibration: Mapping[str, float] | None = None,
) -> tuple[pd.DataFrame, IncidentStream]:
    """:func:`replay`'s incidents and the stream after the last step (its calibration)."""
    stream = new_stream(telemetry, catalogue, call_graph, settings, calibration)
    raised: list[StreamIncident] = []
    for ds, row in step_rows(telemetry, stream):
        raised += stream.step(ds, row)
    return incidents_frame(raised), stream


def new_stream(
    telemetry: pd.DataFrame,
    catalogue: pd.DataFrame,
    call_graph: Mapping[str, Sequence[str]],
    settings: StreamSettings | None = None,
    calibration: Mapping[str, float] | None = None,
) -> IncidentStream:
    """A fresh :class:`IncidentStream` over the catalogued series that ``telemetry`` holds."""
    require_columns(telemetry, ["unique_id", "ds", "y"], "telemetry")
    catalogue = with_share_units(catalogue, telemetry)  # an error share of unstated unit, from its values
    present = set(telemetry["unique_id"].astype(str)) & set(catalogue["unique_id"].astype(str))
    return IncidentStream(
        catalogue[catalogue["unique_id"].astype(str).isin(present)], call_graph, settings, calibration
    )


def step_rows(telemetry: pd.DataFrame, stream: IncidentStream) -> Iterator[tuple[pd.Timestamp, np.ndarray]]:
    """``telemetry``'s time steps in order, each as ``(ds, values aligned with stream.series)``
    (NaN: no sample); series the stream does not watch are left out."""
    known = telemetry["unique_id"].astype(str).isin(set(stream.series))
    wide = telemetry[known].pivot_table(index="ds", columns="unique_id", values="y", aggfunc="last")
    wide = wide.reindex(columns=stream.series).sort_index()
    for ds, row in zip(wide.index, wide.to_numpy(dtype="float64"), strict=True):
        yield pd.Timestamp(ds), row


def incidents_frame(incidents: Sequence[StreamIncident]) -> pd.DataFrame:
    """Stream incidents as a frame with :data:`STREAM_INCIDENT_COLUMNS` (services ``;``-joined)."""
    rows = [
        {
            "opened_at": i.opened_at,
            "closed_at": i.closed_at,
            "services": ";".join(i.services),
            "category": i.category,
            "score": i.score,
            "severity": i.severity,
            "evidence": i.evidence,
            "reopened": i.reopened,
            "fault_type": i.fault_type,
            "fault_type_confidence": round(i.fault_type_confidence, 3),
        }
        for i in incidents
    ]
    frame = pd.DataFrame(rows, columns=list(STREAM_INCIDENT_COLUMNS))
    for col in ("opened_at", "closed_at"):
        frame[col] = pd.to_datetime(frame[col], utc=True)
    return frame
