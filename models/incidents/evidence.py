"""Severity and evidence of an incident: one rule and one record for both incident builders.

Both builders measure how unusual an incident is as a *surprise*, ``-log10`` of a tail
probability, and open it when the surprise reaches a *bar*:

- the roll-up (:mod:`models.incidents.rollup`): the surprise is ``-log10(1 - score)`` of the
  incident's highest anomaly score (a calibrated tail probability), the bar
  ``-log10(1 - anomaly_threshold)``;
- the stream (:mod:`models.incidents.stream`): the surprise is the incident's evidence level
  (summed ``-log10 p`` at its opening), the bar the opening threshold its system had when it
  opened, so a threshold a page budget raised still means the same.

**Severity** (:func:`severity`): ``critical`` when the surprise is at least ``bar + 2`` (the
incident is 100x rarer than the paging line), ``error`` at ``bar + 1`` (10x rarer), else
``warning``. An incident with no surprise (NaN: raised by failure risk alone, it has not
happened yet) is a ``warning``. For the roll-up this is its earlier rule, the tail probability
``1 - score`` within 1 % or 10 % of ``1 - anomaly_threshold``.

**Evidence** (:func:`evidence_payload`): one JSON object with sorted keys:

- ``series``: the top series behind the incident, most telling first, each a
  :func:`series_record` (``unique_id``, ``service``, ``metric``, ``kind``, ``resource_id``,
  ``surprise``, ``observed``, ``expected``, ``anomalous_samples``; null where the builder does
  not know a value: the roll-up has no observed or expected values, the stream does not count
  anomalous samples);
- ``ranked_services``: likely root causes, most likely first (at most :data:`TOP_RANKED`; null
  where the builder ranks elsewhere);
- ``evidence_level`` (the surprise above; null when risk alone raised it) and ``open_threshold``
  (the bar above), so severity can be read off the record;
- ``fault_type`` / ``fault_type_confidence`` (:mod:`models.incidents.fault_types`);
- ``max_risk``: the failure predictor's highest risk during the incident (null when none);
- ``anomalous_series``: how many series were anomalous (the roll-up: reached the anomaly
  threshold; the stream: reached ``kind_threshold`` in its ranking look-back);
- ``page_score`` only where the stream's page budget has calibrated one.

Pure: no I/O.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, overload

import numpy as np
import pandas as pd

from models.incidents.category import metric_kind

SEVERITIES: tuple[str, ...] = ("critical", "error", "warning")
CRITICAL_DECADES = 2.0  # surprise above the bar (decades of rarity) from which an incident is critical
ERROR_DECADES = 1.0  # ... and from which it is an error
TOP_RANKED = 5  # ranked services an evidence record names
EVIDENCE_KEYS: frozenset[str] = frozenset(
    {
        "series", "ranked_services", "evidence_level", "open_threshold", "fault_type",
        "fault_type_confidence", "max_risk", "anomalous_series",
    }
)  # plus "page_score" where the stream's page budget gives one
SERIES_KEYS: frozenset[str] = frozenset(
    {
        "unique_id", "service", "metric", "kind", "resource_id", "surprise", "observed", "expected",
        "anomalous_samples",
    }
)


@overload
def severity(surprise: float, bar: float) -> str: ...


@overload
def severity(surprise: np.ndarray | pd.Series | Sequence[float], bar: float | np.ndarray) -> list[str]: ...


def severity(
    surprise: float | np.ndarray | pd.Series | Sequence[float], bar: float | np.ndarray
) -> str | list[str]:
    """``critical`` / ``error`` / ``warning`` as ``surprise`` is ``bar + 2``, ``bar + 1`` or less
    (NaN: ``warning``); one label for a scalar, a list for an array (the module doc)."""
    s = np.asarray(surprise, dtype="float64")
    b = np.asarray(bar, dtype="float64")
    labels = np.select(
        [np.isnan(s), s >= b + CRITICAL_DECADES, s >= b + ERROR_DECADES],
        ["warning", "critical", "error"],
        default="warning",
    )
    return str(labels) if labels.ndim == 0 else [str(label) for label in labels]


def score_surprise(score: float | np.ndarray | pd.Series) -> np.ndarray:
    """``-log10(1 - score)`` of calibrated tail probabilities, exactly: a score of 1 is ``inf``
    (the rule compares it as such; JSON values are capped by the builder), NaN stays NaN."""
    tail = np.clip(1.0 - np.asarray(score, dtype="float64"), 0.0, 1.0)
    with np.errstate(divide="ignore"):
        return -np.log10(tail)


def series_record(
    *,
    unique_id: str,
    service: str | None,
    metric: str | None,
    resource_id: str | None,
    surprise: float | None,
    kind: str | None = None,
    observed: float | None = None,
    expected: float | None = None,
    anomalous_samples: int | None = None,
) -> dict[str, Any]:
    """One evidence series with :data:`SERIES_KEYS`; ``kind`` defaults to the metric's
    (:func:`models.incidents.category.metric_kind`); unknown values are None."""
    if kind is None and metric is not None:
        kind = metric_kind(str(metric))
    return {
        "unique_id": str(unique_id),
        "service": _text(service),
        "metric": _text(metric),
        "kind": _text(kind),
        "resource_id": _text(resource_id),
        "surprise": _number(surprise, 3),
        "observed": _number(observed, 6),
        "expected": _number(expected, 6),
        "anomalous_samples": _count(anomalous_samples),
    }


def evidence_payload(
    *,
    series: Sequence[dict[str, Any]],
    ranked_services: Sequence[str] | None,
    evidence_level: float | None,
    open_threshold: float | None,
    fault_type: str = "unknown",
    fault_type_confidence: float = 0.0,
    max_risk: float | None = None,
    anomalous_series: int | None = None,
    page_score: float | None = None,
) -> str:
    """The evidence record (:data:`EVIDENCE_KEYS`, the module doc) as compact JSON, keys sorted;
    ``page_score`` only when given."""
    payload: dict[str, Any] = {
        "series": list(series),
        "ranked_services": None if ranked_services is None else [str(s) for s in ranked_services][:TOP_RANKED],
        "evidence_level": _number(evidence_level, 6),
        "open_threshold": _number(open_threshold, 6),
        "fault_type": str(fault_type),
        "fault_type_confidence": round(float(fault_type_confidence), 3),
        "max_risk": _number(max_risk, 6),
        "anomalous_series": _count(anomalous_series),
    }
    if not _missing(page_score):
        payload["page_score"] = _number(page_score, 6)
    return json.dumps(payload, sort_keys=True)


def _missing(value: object) -> bool:
    return value is None or (not isinstance(value, str) and bool(pd.isna(value)))


def _count(value: int | None) -> int | None:
    return None if value is None or _missing(value) else int(value)


def _text(value: object) -> str | None:
    return None if _missing(value) else str(value)


def _number(value: float | None, digits: int) -> float | None:
    """``value`` rounded, or None when it is missing or not finite (JSON has no NaN or inf)."""
    if value is None:
        return None
    number = float(value)
    return round(number, digits) if np.isfinite(number) else None
