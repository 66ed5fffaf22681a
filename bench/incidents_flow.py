"""The detect flow's roll-up incident path on a Nezha day, for ``foresight bench incidents --pipeline flow``.

:mod:`bench.incidents` replays a day through the streaming incident pipeline (the detect flow's
default builder); this module instead takes the path the detect flow (:mod:`flows.detect`) takes
with ``detect.incident_builder: rollup``, so the same protocol scores that builder too:

1. the day is already in the detect flow's shapes (:mod:`bench.datasets.nezha`): long telemetry,
   a catalogue naming each series' service, and the call graph from the day's dependency file;
2. the default anomaly detector (:attr:`foresight.settings.DetectConfig.detector`, found in
   :func:`models.anomaly.base.detectors`) is fitted on the day's first ``fit_span`` only and scores
   every later sample with that span as its causal context (:meth:`AnomalyDetector.predict`
   prepends it), so no score sees a later sample and no fit sees a scored one. With no failure
   predictor trained, anomalies alone make incidents, as in a detect run without that champion;
3. the roll-up builder (:class:`models.incidents.rollup_builder.RollupBuilder`) builds the
   incidents with the given :class:`~foresight.settings.DetectConfig`'s settings (default: the
   shipped ones) and the call graph;
4. each incident becomes one protocol row: ``opened_at`` its ``start`` (when the flow would have
   raised it), ``services`` its ranked likely causes, ``category``, score, severity, ``closed_at``.

The detect flow fans scoring out per service; the registry's detectors score series
independently, so scoring the day's frame in one call gives the same scores.

Its figures on the Nezha dev days, and why the roll-up detects few of their faults (detector
warm-up, hysteresis longer than the faults' spacing, incidents per service): docs/incidents.md,
*Figures on the Nezha dev day*.
"""

from __future__ import annotations

import pandas as pd

from bench.datasets.nezha import NezhaDay
from foresight.settings import DetectConfig
from models.anomaly.base import DETECTORS, AnomalyDetector
from models.incidents.base import IncidentInputs
from models.incidents.rollup_builder import RollupBuilder
from models.incidents.settings import PipelineSettings

FIT_SPAN = pd.Timedelta("1h")


def default_detector(cfg: DetectConfig) -> AnomalyDetector:
    """A fresh instance of the detector ``cfg`` names, configured as the train flow's candidate
    (its ``incident_params``, then ``cfg.detector_params``)."""
    return DETECTORS.get(cfg.detector).for_incidents(**cfg.detector_params)


def causal_scores(
    telemetry: pd.DataFrame, detector: AnomalyDetector, fit_span: pd.Timedelta = FIT_SPAN
) -> pd.DataFrame:
    """``unique_id, ds, y, score`` of every sample after the first ``fit_span`` of ``telemetry``.

    The detector is fitted on that first span only and scores the rest with it as context, so a
    score uses samples at or before its own time and the fit uses none of the scored ones.
    """
    cut = telemetry["ds"].min() + fit_span
    history, scored = telemetry[telemetry["ds"] < cut], telemetry[telemetry["ds"] >= cut]
    if history.empty or scored.empty:
        raise ValueError(f"need telemetry both before and after {cut} (the first {fit_span} is fitted on)")
    return detector.fit(history).predict(scored)


def flow_incidents(
    day: NezhaDay,
    cfg: DetectConfig | None = None,
    detector: AnomalyDetector | None = None,
    fit_span: pd.Timedelta = FIT_SPAN,
) -> pd.DataFrame:
    """One day's incidents as the detect flow raises them, as protocol rows (``day`` column added)."""
    cfg = cfg or DetectConfig()
    scores = causal_scores(day.telemetry, detector or default_detector(cfg), fit_span)
    inputs = IncidentInputs(day.telemetry, day.catalogue, scores=scores, call_graph=day.call_graph)
    incidents = RollupBuilder(PipelineSettings.from_detect(cfg).rollup).build(inputs).incidents
    return protocol_rows(incidents).assign(day=day.name)


def protocol_rows(incidents: pd.DataFrame) -> pd.DataFrame:
    """The benchmark's columns from :func:`models.incidents.rollup.build_incidents` output.

    ``services`` is the ranked likely causes (the incident's own service alone when no call
    graph ranked them); a flow incident is never re-opened, so ``reopened`` is 0.
    """
    services = incidents["ranked_services"] if "ranked_services" in incidents.columns else incidents["service"]
    return pd.DataFrame(
        {
            "opened_at": incidents["start"],
            "services": services.astype("string"),
            "category": incidents["category"],
            "score": incidents["score"],
            "severity": incidents["severity"],
            "closed_at": incidents["end"],
            "evidence": incidents["evidence"],
            "reopened": 0,
        }
    ).sort_values("opened_at", kind="stable").reset_index(drop=True)
