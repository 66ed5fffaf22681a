"""The incident pipeline as one registered model: what the gate judges is what pages.

An :class:`IncidentPipeline` holds a per-series anomaly detector (its scores go to the
Pushgateway and panels, and are the roll-up mode's input), the :class:`PipelineSettings` of the
mode that builds incidents, and the page budget's calibration learned when it was fitted. The
train flow fits, evaluates (:mod:`models.incidents.evaluation`) and registers it as the
``anomaly-detector`` model; the detect flow loads the champion and pages with
:meth:`IncidentPipeline.incidents`. It is served through MLflow pyfunc as an ``anomaly`` model
(``predict`` is the detector's scores).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any, ClassVar, Self

import pandas as pd

from models.incidents.base import INCIDENT_BUILDERS, BuiltIncidents, IncidentBuilder, IncidentInputs
from models.incidents.settings import PipelineSettings

if TYPE_CHECKING:
    from foresight.settings import DetectConfig
    from models.incidents.stream_resume import Resumed, StreamState

log = logging.getLogger(__name__)


def builder_for(settings: PipelineSettings) -> IncidentBuilder:
    """The builder registered for ``settings.mode`` (:data:`~models.incidents.base.INCIDENT_BUILDERS`),
    made from ``settings``; an unknown mode raises, listing the modes there are."""
    return INCIDENT_BUILDERS.get(settings.mode)(settings)


class IncidentPipeline:
    """A fitted detector, the incident mode's settings and the page calibration, as one model."""

    family: ClassVar[str] = "anomaly"

    def __init__(self, detector: Any, settings: PipelineSettings | None = None,
                 calibration: Mapping[str, float] | None = None) -> None:
        self.detector = detector
        self.settings = settings or PipelineSettings()
        self.calibration: dict[str, float] = dict(calibration or {})

    @property
    def name(self) -> str:
        """``<mode>+<detector>``, e.g. ``stream+streaming_ensemble``."""
        return f"{self.settings.mode}+{self.detector.name}"

    @property
    def builder(self) -> IncidentBuilder:
        return builder_for(self.settings)

    def get_params(self) -> dict[str, Any]:
        """The mode's settings and the detector's, flat (``detector.*``), for the registry."""
        return {**self.settings.as_params(), "detector": self.detector.name,
                **{f"detector.{k}": v for k, v in self.detector.get_params().items()}}

    def serving_distributions(self) -> tuple[str, ...]:
        return tuple(self.detector.serving_distributions())

    def clone(self) -> Self:
        """Unfitted: the detector cloned, the same settings, no calibration."""
        return type(self)(self.detector.clone(), self.settings)

    @property
    def is_fitted(self) -> bool:
        return bool(self.detector.is_fitted)

    @property
    def context_length(self) -> pd.Timedelta:
        """How much history before the scored window the detector's baselines need."""
        return pd.Timedelta(self.detector.context_length)

    def fit(self, telemetry: pd.DataFrame, catalogue: pd.DataFrame | None = None,
            call_graph: Mapping[str, Sequence[str]] | None = None,
            calibration: Mapping[str, float] | None = None) -> Self:
        """Fit the detector on ``telemetry``; then the page calibration: ``calibration`` when
        given (already replayed), else, in stream mode with a page budget and a ``catalogue``,
        the opening thresholds its replay of ``telemetry`` ends with."""
        self.detector = self.detector.fit(telemetry)
        if calibration is not None:
            self.calibration = dict(calibration)
        elif catalogue is not None and self.calibrates:
            inputs = IncidentInputs(telemetry, catalogue, since=telemetry["ds"].max(), call_graph=call_graph)
            self.calibration = self.builder.build(inputs).calibration
        return self

    @property
    def calibrates(self) -> bool:
        """Whether this pipeline learns a page calibration (stream mode with a page budget)."""
        return self.settings.mode == "stream" and self.settings.stream.page_budget_per_day is not None

    def predict(self, telemetry: pd.DataFrame) -> pd.DataFrame:
        """The detector's per-series scores (``unique_id, ds, y, score``)."""
        return self.detector.predict(telemetry)

    def incidents(self, inputs: IncidentInputs) -> BuiltIncidents:
        """Incidents by this pipeline's mode; the learned calibration is the page budget's prior
        unless ``inputs`` brings one. The roll-up mode scores ``inputs.telemetry`` itself when
        ``inputs.scores`` is None."""
        builder = self.builder
        if not inputs.calibration and self.calibration:
            inputs = replace(inputs, calibration=self.calibration)
        if builder.needs_scores and inputs.scores is None:
            inputs = replace(inputs, scores=self.predict(inputs.telemetry))
        return builder.build(inputs)

    def resumable_incidents(self, inputs: IncidentInputs, state: StreamState | None, model_version: str, *,
                            no_state_reason: str = "no checkpoint") -> tuple[BuiltIncidents, Resumed | None]:
        """:meth:`incidents`, resuming the stream mode from ``state`` (the detect flow's checkpoint,
        :mod:`models.incidents.stream_resume`) when it fits; a mode that keeps no state between
        runs (the roll-up) builds as :meth:`incidents` does and resumes nothing (None)."""
        builder = self.builder
        resume = getattr(builder, "resume", None)
        if resume is None:
            return self.incidents(inputs), None
        if not inputs.calibration and self.calibration:
            inputs = replace(inputs, calibration=self.calibration)
        built, resumed = resume(inputs, state, model_version, no_state_reason=no_state_reason)
        return built, resumed

    def __repr__(self) -> str:
        return f"IncidentPipeline({self.settings.mode!r}, {self.detector!r}, calibrated={len(self.calibration)})"


def as_pipeline(model: Any, cfg: DetectConfig) -> IncidentPipeline:
    """``model`` if it is a pipeline; a bare detector registered before pipelines existed is
    wrapped with the settings ``cfg`` describes (no calibration: the budget starts online)."""
    if isinstance(model, IncidentPipeline):
        return model
    log.warning("the registered %s is a bare detector (registered before incident pipelines); it pages with "
                "the configured incident settings until the next train run registers a pipeline",
                getattr(model, "name", type(model).__name__))
    return IncidentPipeline(model, PipelineSettings.from_detect(cfg))
