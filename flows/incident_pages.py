"""The detect flow's incidents as PagerDuty events: pages that explain themselves.

:func:`incident_events` gives each incident a trigger (and a resolve once it has ended) with

- the dedup key of the incident pipeline (:func:`connectors.sinks.pagerduty_outbox.incident_dedup_key`;
  an incident the outbox already holds under the key older versions wrote keeps that key);
- the summary and flat details of :func:`models.incidents.page_text.describe_incident`: the
  instance nearest exhaustion of a resource fault read from the telemetry
  (:func:`models.incidents.exhaustion.resource_outlook`), the failure predictor's top
  contributions at the incident's start as sentences;
- links, images and ``client_url`` from the sink settings
  (:class:`connectors.sinks.pagerduty_page_links.PageLinks`).

Pure but for the predictor's explanation (a model call).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from connectors.sinks.pagerduty_outbox import incident_dedup_key, resolve_event, trigger_event
from connectors.sinks.pagerduty_page_links import PageLinks
from models.failure.base import top_features
from models.incidents.exhaustion import resource_outlook, series_level
from models.incidents.page_text import FAULT_KINDS, RESOURCE_FAULTS, describe_incident, parse_evidence

DETECTOR, PREDICTOR = "anomaly-detector", "failure-predictor"  # the registered models behind a page


def incident_events(
    incidents: pd.DataFrame,
    *,
    links: PageLinks,
    known_keys: set[str],
    detector_version: str,
    predictor_version: str | None = None,
    predictor: Any = None,
    features: pd.DataFrame | None = None,
    telemetry: pd.DataFrame | None = None,
    catalogue: pd.DataFrame | None = None,
    mode: str | None = None,
) -> list[dict[str, Any]]:
    """Trigger (and, once ended, resolve) events for ``incidents``; ``known_keys`` are the outbox's
    dedup keys (:meth:`connectors.sinks.pagerduty_outbox.Outbox.dedup_keys`)."""
    units = _units(catalogue)
    versions = {DETECTOR: str(detector_version), PREDICTOR: predictor_version}
    events = []
    for incident in incidents.to_dict("records"):
        service = str(incident["service"])
        incident["dedup_key"] = incident_dedup_key(service, incident["window_start"], known_keys)
        evidence = _with_levels(parse_evidence(incident.get("evidence")), telemetry, incident["start"])
        text = describe_incident(
            {**incident, "evidence": evidence},
            top_features=_top_features(features, predictor, incident),
            outlook=_outlook(telemetry, catalogue, incident, evidence),
            raised_by=raised_by(evidence, mode, detector_version),
            versions=versions,
            units=units,
        )
        start, end = incident["start"], incident.get("end")
        events.append(
            trigger_event(
                {**incident, "category": text.category},  # the page's class: what the fault type says
                model_name=DETECTOR,
                model_version=str(detector_version),
                summary=text.summary,
                details=text.details,
                links=links.links(service, start, end, text.fault_type, text.category),
                images=links.images(service, start, end),
                client_url=links.client(service, start, end),
            )
        )
        if pd.notna(end):
            events.append(resolve_event(incident["dedup_key"]))
    return events


def raised_by(evidence: Mapping[str, Any], mode: str | None, detector_version: str) -> str:
    """Which part of the incident pipeline raised a page: its builder, or the failure predictor
    alone (a warning: no evidence level, a risk)."""
    pipeline = f"incident pipeline ({DETECTOR} v{detector_version}{f', {mode} mode' if mode else ''})"
    if evidence.get("evidence_level") is None and evidence.get("max_risk") is not None:
        return f"failure predictor warning, through the {pipeline}"
    return pipeline


def _top_features(
    features: pd.DataFrame | None, predictor: Any, incident: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """The failure predictor's top contributions at the incident's start (its explanation)."""
    if predictor is None or features is None or features.empty:
        return []
    rows = features[
        (features["service"] == incident["service"]) & (features["ds"] <= incident["start"])
    ].tail(1)
    return [] if rows.empty else top_features(predictor, rows, k=5)


def _outlook(
    telemetry: pd.DataFrame | None,
    catalogue: pd.DataFrame | None,
    incident: Mapping[str, Any],
    evidence: Mapping[str, Any],
) -> Any:
    fault = str(evidence.get("fault_type") or "unknown")
    if telemetry is None or catalogue is None or fault not in RESOURCE_FAULTS:
        return None
    return resource_outlook(
        telemetry,
        catalogue,
        service=str(incident["service"]),
        at=pd.Timestamp(incident["start"]),
        kinds=FAULT_KINDS[fault],
    )


def _with_levels(evidence: dict[str, Any], telemetry: pd.DataFrame | None, at: Any) -> dict[str, Any]:
    """``evidence`` with each series that carries no observed value (the roll-up's) given its value
    at ``at`` and its normal level from the telemetry."""
    series = evidence.get("series")
    if telemetry is None or telemetry.empty or not isinstance(series, list):
        return evidence
    filled = []
    for record in series:
        if isinstance(record, dict) and record.get("observed") is None and record.get("unique_id"):
            value, normal = series_level(telemetry, str(record["unique_id"]), pd.Timestamp(at))
            record = {**record, "observed": value, "expected": normal}
        filled.append(record)
    return {**evidence, "series": filled}


def _units(catalogue: pd.DataFrame | None) -> dict[str, str]:
    if catalogue is None or "unit" not in catalogue.columns:
        return {}
    cat = catalogue.drop_duplicates("unique_id")
    return {str(u): str(v) for u, v in zip(cat["unique_id"], cat["unit"], strict=True) if pd.notna(v)}
