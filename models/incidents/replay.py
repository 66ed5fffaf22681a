"""Replay long telemetry through the stream engine (:class:`~models.incidents.stream.IncidentStream`)
step by step in time order, and its incidents as one frame (:data:`STREAM_INCIDENT_COLUMNS`).
Pure: no I/O."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

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
    require_columns(telemetry, ["unique_id", "ds", "y"], "telemetry")
    catalogue = with_share_units(catalogue, telemetry)  # an error share of unstated unit, from its values
    known = telemetry["unique_id"].astype(str).isin(set(catalogue["unique_id"].astype(str)))
    stream = IncidentStream(
        catalogue[
            catalogue["unique_id"].astype(str).isin(set(telemetry.loc[known, "unique_id"].astype(str)))
        ],
        call_graph,
        settings,
        calibration,
    )
    wide = telemetry[known].pivot_table(index="ds", columns="unique_id", values="y", aggfunc="last")
    wide = wide.reindex(columns=stream.series).sort_index()
    raised: list[StreamIncident] = []
    for ds, row in zip(wide.index, wide.to_numpy(dtype="float64"), strict=True):
        raised += stream.step(pd.Timestamp(ds), row)
    return incidents_frame(raised), stream


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
