"""What a page says: an incident row (and what else is known of it) as a summary and flat details.

:func:`describe_incident` reads the incident's evidence record (:mod:`models.incidents.evidence`)
and leads with what the evidence says most strongly:

- **what**: the likely fault type (:mod:`models.incidents.fault_types`) when one was named, shown
  in its coarse category (:data:`~models.incidents.fault_types.COARSE_CATEGORY`); the incident's
  own ``category`` otherwise. The category rules call anything with failed requests ``errors``
  (the users' symptom), while the fault type reads the root's memory, CPU and wire; a memory leak
  whose failing requests show first is paged as the leak.
- **where and how much** (the *headline*): for a resource fault (memory leak, full disk) the
  instance nearest exhaustion, when the telemetry was given (``outlook``:
  :func:`models.incidents.exhaustion.resource_outlook`), with its time to full; else the most
  surprising evidence series of the top-ranked service of the kinds the fault type is about
  (:data:`FAULT_KINDS`), else its most surprising series. The instance and metric named are the
  headline's, never merely those of the single most surprising series (a neighbour's CPU can
  tie with the leaking instance's error ratio).

The summary reads "[cart] i-09a8…: memory 92 % (normal 76 %), full in ~90 min. Likely memory
leak (confidence 0.8). Since 2026-12-06 16:15Z"; a failure predictor's warning (no series moved
yet) "[cart]: failure risk 0.93, busiest resource full in ~90 min at its 30min trend. Since ...". The details are one flat object of readable
keys with scalar values (no JSON inside strings): the headline, the fault, the evidence series
and the failure predictor's contributions as numbered sentences
(:mod:`models.failure.feature_sentences`), scores rounded. Pure.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from models.failure.feature_sentences import feature_sentences, minutes_text
from models.incidents.category import metric_kind
from models.incidents.exhaustion import ResourceOutlook
from models.incidents.fault_types import COARSE_CATEGORY
from models.incidents.metric_vocabulary import metric_unit

# Fault type -> the metric kinds its headline is taken from, most telling first.
FAULT_KINDS: dict[str, tuple[str, ...]] = {
    "memory_leak": ("memory",),
    "disk_full": ("disk",),
    "cpu_contention": ("cpu",),
    "cpu_consumed": ("cpu",),
    "saturation": ("cpu", "server_latency", "traffic"),
    "network_delay": ("network_latency", "call_latency", "client_latency"),
    "exception": ("errors", "server_latency"),
    "return": ("errors",),
    "bad_deploy": ("errors",),
}
RESOURCE_FAULTS: frozenset[str] = frozenset({"memory_leak", "disk_full"})
KIND_LABELS: dict[str, str] = {"cpu": "CPU", "memory": "memory", "disk": "disk", "errors": "error ratio"}
TOP_EVIDENCE = 5  # evidence series listed in the details


@dataclass(frozen=True)
class Headline:
    """The series a page leads with: where, which metric, its value against its normal."""

    service: str | None
    instance: str | None
    metric: str
    unit: str
    value: float | None
    normal: float | None
    minutes_to_full: float | None = None
    surprise: float | None = None

    def text(self) -> str:
        """``memory 92 % (normal 76 %), full in ~90 min``; ``error ratio unusual (as rare as 1 in
        10^4.5)`` for evidence that knows no values."""
        if self.value is None:
            rarity = f" (as rare as 1 in 10^{self.surprise:.1f})" if self.surprise is not None else ""
            return f"{metric_label(self.metric)} unusual{rarity}"
        out = f"{metric_label(self.metric)} {format_value(self.value, self.unit)}"
        if self.normal is not None:
            out += f" (normal {format_value(self.normal, self.unit)})"
        if self.minutes_to_full is not None:
            out += f", full in ~{minutes_text(self.minutes_to_full)}"
        return out


@dataclass(frozen=True)
class PageText:
    """A page's summary and ``custom_details``, and what it names (for links and runbooks)."""

    summary: str
    details: dict[str, Any]
    fault_type: str
    category: str
    instance: str | None
    headline: Headline | None = field(default=None, repr=False)


def describe_incident(
    incident: Mapping[str, Any],
    *,
    top_features: Sequence[Mapping[str, Any]] = (),
    outlook: ResourceOutlook | None = None,
    raised_by: str | None = None,
    versions: Mapping[str, str | None] | None = None,
    units: Mapping[str, str] | None = None,
) -> PageText:
    """The summary and flat details of one incident (:data:`models.incidents.base.INCIDENT_COLUMNS`
    plus ``dedup_key``): the module doc. ``top_features`` are the failure predictor's
    contributions at its start, ``outlook`` the instance nearest full of the resource its fault
    type is about, ``raised_by`` the component that raised it, ``versions`` model -> version,
    ``units`` series id -> unit (the catalogue's; else the unit a metric's name states)."""
    evidence = parse_evidence(incident.get("evidence"))
    service = str(incident["service"])
    fault_type = str(evidence.get("fault_type") or "unknown")
    confidence = _number(evidence.get("fault_type_confidence"))
    category = COARSE_CATEGORY.get(fault_type) or _text(incident.get("category")) or "incident"
    units = units or {}
    headline = pick_headline(evidence.get("series") or [], service, fault_type, outlook, units)
    instance = (headline.instance if headline else None) or _text(incident.get("resource_id"))
    start = pd.Timestamp(incident["start"])
    start = start.tz_localize("UTC") if start.tzinfo is None else start.tz_convert("UTC")
    what = fault_type.replace("_", " ") if fault_type != "unknown" else category.replace("_", " ")
    where = f"[{service}] {instance}" if instance else f"[{service}]"
    if headline is not None:
        summary = f"{where}: {headline.text()}. "
        summary += f"Likely {what}" + (
            f" (confidence {confidence:.2g})" if fault_type != "unknown" and confidence else ""
        )
    elif _number(evidence.get("max_risk")) is not None:  # the failure predictor's warning: nothing moved yet
        summary = f"{where}: failure risk {_number(evidence.get('max_risk')):.2f}"
        reasons = feature_sentences(list(top_features))[:1]
        summary += f", {reasons[0].rsplit(' (', 1)[0]}" if reasons else ""
    else:
        summary = f"{where}: {what}"
    summary += f". Since {start:%Y-%m-%d %H:%M}Z"
    details: dict[str, Any] = {
        "service": service,
        "instance": instance,
        "what": what,
        "fault_type": fault_type,
        "fault_type_confidence": confidence,
        "category": category,
        "incident_category": _text(incident.get("category")),
    }
    if headline is not None:
        details |= {
            "metric": headline.metric,
            "value": format_value(headline.value, headline.unit),
            "normal": format_value(headline.normal, headline.unit) if headline.normal is not None else None,
            "time_to_full": minutes_text(headline.minutes_to_full)
            if headline.minutes_to_full is not None
            else None,
        }
    details |= {
        "severity": _text(incident.get("severity")),
        "start": _iso(incident.get("start")),
        "end": _iso(incident.get("end")),
        "window_start": _iso(incident.get("window_start")),
        "incident_id": _text(incident.get("incident_id")),
        "ranked_services": _text(incident.get("ranked_services")) or service,
        "evidence_level": _rounded(evidence.get("evidence_level"), 2),
        "open_threshold": _rounded(evidence.get("open_threshold"), 2),
        "page_score": _rounded(evidence.get("page_score"), 3),
        # The score is 1 - 10^-evidence_level: shown only where there is no level to read instead.
        "score": None if evidence.get("evidence_level") is not None else _rounded(incident.get("score"), 4),
        "max_risk": _rounded(evidence.get("max_risk"), 3),
        "anomalous_series": evidence.get("anomalous_series"),
    }
    for i, series in enumerate((evidence.get("series") or [])[:TOP_EVIDENCE], start=1):
        details[f"evidence_{i}"] = evidence_sentence(series, units)
    for i, sentence in enumerate(feature_sentences(list(top_features)), start=1):
        details[f"risk_factor_{i}"] = sentence
    if raised_by:
        details["raised_by"] = raised_by
    for model, version in (versions or {}).items():
        details[f"{model.replace('-', '_')}_version"] = version
    if incident.get("dedup_key") is not None:
        details["dedup_key"] = str(incident["dedup_key"])
    return PageText(
        summary, {k: v for k, v in details.items() if v is not None}, fault_type, category, instance, headline
    )


def pick_headline(
    series: Sequence[Mapping[str, Any]],
    service: str,
    fault_type: str,
    outlook: ResourceOutlook | None = None,
    units: Mapping[str, str] | None = None,
) -> Headline | None:
    """The module doc's headline: the outlook for a resource fault, else the first evidence series
    of the service of the fault's kinds, else its first, else the first of any service."""
    if outlook is not None and fault_type in RESOURCE_FAULTS:
        return Headline(
            service,
            outlook.resource_id,
            outlook.metric,
            outlook.unit,
            outlook.value,
            outlook.normal,
            outlook.minutes_to_full,
        )
    records = [s for s in series if isinstance(s, Mapping) and s.get("metric")]
    own = [s for s in records if s.get("service") == service]
    kinds = FAULT_KINDS.get(fault_type, ())
    preferred = sorted((s for s in own if _kind(s) in kinds), key=lambda s: kinds.index(_kind(s)))
    chosen = next(iter(preferred or own or records), None)
    if chosen is None:
        return None
    metric = str(chosen["metric"])
    return Headline(
        _text(chosen.get("service")),
        _text(chosen.get("resource_id")),
        metric,
        series_unit(chosen, units),
        _number(chosen.get("observed")),
        _number(chosen.get("expected")),
        surprise=_number(chosen.get("surprise")),
    )


def evidence_sentence(series: Mapping[str, Any], units: Mapping[str, str] | None = None) -> str:
    """``cart i-09a8…: error ratio 3.5 % (normal 0.05 %), as rare as 1 in 10^4.5``."""
    metric = str(series.get("metric") or series.get("unique_id"))
    unit = series_unit(series, units)
    where = " ".join(str(p) for p in (series.get("service"), series.get("resource_id")) if p)
    observed = _number(series.get("observed"))
    shown = "unusual" if observed is None else format_value(observed, unit)
    text = f"{where}: {metric_label(metric)} {shown}"
    expected = _number(series.get("expected"))
    if expected is not None:
        text += f" (normal {format_value(expected, unit)})"
    surprise = _number(series.get("surprise"))
    if surprise is not None:
        text += f", as rare as 1 in 10^{surprise:.1f}"
    return text


def series_unit(series: Mapping[str, Any], units: Mapping[str, str] | None = None) -> str:
    """An evidence series' unit: the catalogue's for its id (a derived ``<id>#wire`` series has its
    source's), else the one its metric's name states."""
    uid = str(series.get("unique_id") or "")
    known = units or {}
    unit = known.get(uid) or known.get(uid.split("#", 1)[0])
    return str(unit) if unit else metric_unit(str(series.get("metric") or ""))


def metric_label(metric: str) -> str:
    """A metric as words: its kind for CPU, memory, disk and errors, else its name."""
    return KIND_LABELS.get(metric_kind(metric), metric.replace("_", " "))


def format_value(value: float | None, unit: str) -> str:
    """A value in its unit for people: ``92 %``, ``3.5 %`` (a ratio), ``306 ms``, ``1.2e+03``."""
    if value is None or not math.isfinite(value):
        return "unknown"
    unit = (unit or "").lower()
    if unit in ("percent", "%"):
        return f"{value:.0f} %" if abs(value) >= 10 else f"{value:.2g} %"
    if unit == "ratio":
        return f"{value * 100:.2g} %"
    if unit in ("seconds", "s"):
        return f"{value * 1000:.0f} ms" if abs(value) < 1 else f"{value:.2f} s"
    return f"{value:.3g}" + (f" {unit}" if unit and unit not in ("count", "none") else "")


def parse_evidence(value: Any) -> dict[str, Any]:
    """The evidence record as a dict ({} when missing or not a record)."""
    if isinstance(value, Mapping):
        return dict(value)
    if not isinstance(value, str) or not value.strip():
        return {}
    try:
        parsed = json.loads(value)
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _kind(series: Mapping[str, Any]) -> str:
    return str(series.get("kind") or metric_kind(str(series["metric"])))


def _text(value: Any) -> str | None:
    return (
        None
        if value is None or (not isinstance(value, str) and pd.isna(value)) or value == ""
        else str(value)
    )


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _rounded(value: Any, digits: int) -> float | None:
    number = _number(value)
    return None if number is None else round(number, digits)


def _iso(value: Any) -> str | None:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    ts = pd.Timestamp(value)
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    return ts.isoformat().replace("+00:00", "Z")
