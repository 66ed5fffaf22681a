"""The incident builder interface: what every mode of the incident pipeline takes and gives.

A builder turns what the detect flow has loaded (:class:`IncidentInputs`: telemetry with its
warm-up, the catalogue, optionally per-series anomaly scores, failure risk and the call graph)
into incidents in one table (:data:`INCIDENT_COLUMNS`), plus the page budget's calibration it
ended with (:class:`BuiltIncidents`). The same call builds the pages in the detect flow and the
incidents the champion gate scores in the train flow (:mod:`models.incidents.evaluation`), so
what is judged is what pages.

Builders register by mode in :data:`INCIDENT_BUILDERS` (``stream``: :mod:`.stream_builder`,
``rollup``: :mod:`.rollup_builder`), each as a factory of the pipeline's typed settings.

Identity: ``incident_id`` is a hash of the service and ``window_start`` (:func:`incident_id`),
so rebuilding incidents from overlapping detect runs yields the same ids and the PagerDuty
outbox de-duplicates on them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

import pandas as pd

from foresight.plugins import Registry
from foresight.schemas import UTC_DTYPE

if TYPE_CHECKING:
    from models.incidents.settings import PipelineSettings

INCIDENT_OUTPUT_COLUMNS: tuple[str, ...] = (
    "incident_id", "service", "category", "start", "end", "severity", "score", "evidence",
    "window_start", "resource_id",
)
# Every builder's output: the columns above and the likely causes, most likely first, ";"-joined
# (the incident's own service alone when nothing ranks them).
INCIDENT_COLUMNS: tuple[str, ...] = (*INCIDENT_OUTPUT_COLUMNS, "ranked_services")


@dataclass(frozen=True)
class IncidentInputs:
    """What a builder reads. ``telemetry`` (``unique_id, ds, y``) includes the warm-up before
    ``since``; only incidents raised at or after ``since`` are returned (None: all of them).
    ``scores`` (``unique_id, ds, score``) are the detector's per-series scores from ``since``;
    ``risk`` (``service, ds, risk``) the failure predictor's, alarming at ``risk_threshold``
    (None: the builder's own setting). ``calibration``: opening thresholds per service learned
    in training, the page budget's prior."""

    telemetry: pd.DataFrame
    catalogue: pd.DataFrame
    since: pd.Timestamp | None = None
    scores: pd.DataFrame | None = None
    risk: pd.DataFrame | None = None
    risk_threshold: float | None = None
    call_graph: Mapping[str, Sequence[str]] | None = None
    calibration: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class BuiltIncidents:
    """A builder's incidents (:data:`INCIDENT_COLUMNS`) and the opening threshold per service its
    page budget had calibrated by the end of the data (empty without a budget)."""

    incidents: pd.DataFrame
    calibration: dict[str, float] = field(default_factory=dict)


class IncidentBuilder(Protocol):
    """One mode of the incident pipeline (``stream`` or ``rollup``)."""

    @property
    def name(self) -> str: ...

    @property
    def needs_scores(self) -> bool:
        """Whether :meth:`build` reads ``IncidentInputs.scores`` (the per-series detector's output)."""
        ...

    def build(self, inputs: IncidentInputs) -> BuiltIncidents: ...

    def systems(self, services: Sequence[str], call_graph: Mapping[str, Sequence[str]] | None) -> dict[str, str]:
        """Service -> the system its incidents can span (a name): what a held-back source keeps
        open together and what the gate reports figures per."""
        ...


# Mode -> the builder of that mode, made from the pipeline's settings. The built-in builders' modules
# import this one; the registry imports them on its first read.
INCIDENT_BUILDERS: Registry[Callable[[PipelineSettings], IncidentBuilder]] = Registry(
    "incident builder", builtins=("models.incidents.stream_builder", "models.incidents.rollup_builder")
)


def incident_id(service: str, window_start: pd.Timestamp) -> str:
    """Deterministic id of a service's incident starting in ``window_start``."""
    key = f"{service}|{pd.Timestamp(window_start).tz_convert('UTC').isoformat()}"
    return "inc-" + hashlib.sha1(key.encode()).hexdigest()[:16]


def empty_incidents() -> pd.DataFrame:
    """An incident frame with no rows and :data:`INCIDENT_OUTPUT_COLUMNS`' dtypes."""
    return pd.DataFrame(
        {
            "incident_id": pd.Series([], dtype="string"),
            "service": pd.Series([], dtype="string"),
            "category": pd.Series([], dtype="string"),
            "start": pd.Series([], dtype=UTC_DTYPE),
            "end": pd.Series([], dtype=UTC_DTYPE),
            "severity": pd.Series([], dtype="string"),
            "score": pd.Series([], dtype="float64"),
            "evidence": pd.Series([], dtype="string"),
            "window_start": pd.Series([], dtype=UTC_DTYPE),
            "resource_id": pd.Series([], dtype="string"),
        }
    )


def no_incidents() -> pd.DataFrame:
    """A builder's output with no rows (:data:`INCIDENT_COLUMNS`)."""
    return empty_incidents().assign(ranked_services=pd.Series([], dtype="string"))


def with_ranking(incidents: pd.DataFrame) -> pd.DataFrame:
    """``incidents`` with :data:`INCIDENT_COLUMNS` exactly: a missing or empty ranking is the
    incident's own service."""
    out = incidents.copy()
    ranked = out["ranked_services"] if "ranked_services" in out.columns else pd.Series(pd.NA, index=out.index)
    ranked = ranked.astype("string")
    out["ranked_services"] = ranked.where(ranked.notna() & (ranked != ""), out["service"]).astype("string")
    return out[list(INCIDENT_COLUMNS)]
