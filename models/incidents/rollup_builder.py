"""The roll-up mode as an :class:`~models.incidents.base.IncidentBuilder`: the detector's
per-series scores and the failure risk rolled up per service (:mod:`models.incidents.rollup`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

import pandas as pd

from foresight.plugins import declares
from models.incidents.base import (
    INCIDENT_BUILDERS,
    BuiltIncidents,
    IncidentInputs,
    no_incidents,
    with_ranking,
)
from models.incidents.rollup import build_incidents
from models.incidents.settings import NoParams, PipelineSettings, RollupSettings


@dataclass(frozen=True)
class RollupBuilder:
    """Incidents per service from ``inputs.scores`` (and ``inputs.risk``); every service is a
    system of its own. No page budget: ``anomaly_threshold`` is the opening line."""

    settings: RollupSettings = field(default_factory=RollupSettings)
    name: str = "rollup"
    needs_scores: bool = True

    def build(self, inputs: IncidentInputs) -> BuiltIncidents:
        scores = inputs.scores
        if scores is None:
            raise ValueError("the rollup builder needs the detector's per-series scores (IncidentInputs.scores)")
        if inputs.since is not None:
            scores = scores[scores["ds"] >= inputs.since]
        risk = inputs.risk
        if risk is not None and inputs.since is not None:
            risk = risk[risk["ds"] >= inputs.since]
        cfg = self.settings
        raised = build_incidents(
            scores, risk, inputs.catalogue, anomaly_threshold=cfg.anomaly_threshold,
            risk_threshold=cfg.risk_threshold if inputs.risk_threshold is None else inputs.risk_threshold,
            min_series=cfg.min_series, resolve_after=cfg.resolve_after, min_active=cfg.min_active,
            call_graph=inputs.call_graph,
        )
        return BuiltIncidents(with_ranking(raised) if len(raised) else no_incidents())

    def risk_warnings(self, inputs: IncidentInputs) -> pd.DataFrame:
        """The incidents failure risk raises alone (no anomaly scores)."""
        if inputs.risk is None or inputs.risk.empty:
            return no_incidents()
        empty = pd.DataFrame({"unique_id": pd.Series([], dtype=str), "ds": inputs.risk["ds"].iloc[:0],
                              "score": pd.Series([], dtype="float64")})

        return self.build(replace(inputs, scores=empty)).incidents

    def systems(self, services: Sequence[str], call_graph: Mapping[str, Sequence[str]] | None) -> dict[str, str]:
        return {str(s): str(s) for s in services}


@INCIDENT_BUILDERS.register("rollup")
@declares(NoParams)
def rollup_builder(settings: PipelineSettings) -> RollupBuilder:
    """The roll-up mode with the pipeline's roll-up settings."""
    return RollupBuilder(settings.rollup)
