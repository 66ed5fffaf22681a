"""The failure predictor's contributions as sentences an on-call engineer can read.

:func:`feature_sentence` turns one ``{feature, value, contribution}`` of
:func:`models.failure.base.top_features` into a sentence naming the metric, what it did and
which way it moved the risk: ``util_tte_30min = 90.0, +3.85`` reads "busiest resource full in
~90 min at its 30min trend (raises the risk)". The names are those of
:mod:`features.windows` (levels, ``_z``, ``_slope_<w>``, ``_tte_<w>``, ``_spread``, log counts
and lifts, deploys, per-template counts); a name it does not know reads as ``name = value``.
Pure.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from features.windows import SINCE_DEPLOY_CAP_MINUTES, TEMPLATE_PREFIX, TTE_CAP_MINUTES

METRIC_LABELS: dict[str, str] = {
    "cpu_pct": "CPU",
    "mem_pct": "memory",
    "disk_pct": "disk",
    "error_rate": "error ratio",
    "util": "busiest resource",
    "request_rate": "request rate",
}
LIFT_NOTABLE = 1.5  # a log rate this many times its usual one (or its inverse) is a rise (a fall)
_WINDOWED = re.compile(r"^(?P<metric>.+)_(?P<stat>slope|tte)_(?P<window>[^_]+)$")
_LOG = re.compile(r"^log_(?P<level>error|warn)_(?P<lift>lift_)?(?P<window>[^_]+)$")
_TEMPLATE = re.compile(rf"^{TEMPLATE_PREFIX}(?P<template>.+)_(?P<window>[^_]+)$")
_DEPLOYS = re.compile(r"^deploys_(?P<window>[^_]+)$")


def feature_sentence(feature: str, value: float | None, contribution: float) -> str:
    """One contribution as a sentence ending in which way it moved the risk."""
    direction = (
        "raises the risk" if contribution > 0 else "lowers the risk" if contribution < 0 else "no effect"
    )
    return f"{_describe(str(feature), value)} ({direction})"


def feature_sentences(top: Sequence[Mapping[str, Any]]) -> list[str]:
    """:func:`feature_sentence` of each ``{feature, value, contribution}``, in their order."""
    return [
        feature_sentence(str(t["feature"]), t.get("value"), float(t.get("contribution") or 0.0)) for t in top
    ]


def metric_label(metric: str) -> str:
    """A feature's metric as words (``mem_pct`` -> ``memory``)."""
    return METRIC_LABELS.get(metric, metric.replace("_", " "))


def _describe(feature: str, value: float | None) -> str:
    if value is None or not math.isfinite(float(value)):
        return f"{feature.replace('_', ' ')} unknown"
    v = float(value)
    if match := _TEMPLATE.match(feature):
        return f"{v:.0f} ERROR/WARN lines of log template {match['template']} in the last {match['window']}"
    if match := _LOG.match(feature):
        level = match["level"].upper()
        if match["lift"]:
            if 1 / LIFT_NOTABLE < v < LIFT_NOTABLE:
                return f"{level} log lines at their usual rate ({v:.1f}x over the last {match['window']})"
            trend = "rising" if v >= LIFT_NOTABLE else "falling"
            return f"{level} log lines {trend}: {v:.1f}x their usual rate over the last {match['window']}"
        return f"{v:.0f} {level} log lines in the last {match['window']}"
    if match := _DEPLOYS.match(feature):
        return f"{v:.0f} deploy{'s' if v != 1 else ''} in the last {match['window']}"
    if feature == "minutes_since_deploy":
        return (
            "no deploy in the last day"
            if v >= SINCE_DEPLOY_CAP_MINUTES
            else f"a deploy {minutes_text(v)} ago"
        )
    if feature == "request_rate_imbalance":
        return f"busiest instance takes {v * 100:.0f} % more requests than the average"
    if match := _WINDOWED.match(feature):
        label, window = metric_label(match["metric"]), match["window"]
        if match["stat"] == "tte":
            if v >= TTE_CAP_MINUTES:
                return f"{label} not filling up at its {window} trend"
            return f"{label} full in ~{minutes_text(v)} at its {window} trend"
        return f"{label} {'rising' if v > 0 else 'falling' if v < 0 else 'flat'} {_rate(match['metric'], abs(v))} over the last {window}"
    if feature.endswith("_z_max") or feature.endswith("_z"):
        metric = feature.removesuffix("_max").removesuffix("_z")
        side = "above" if v >= 0 else "below"
        return f"{metric_label(metric)} {abs(v):.1f} standard deviations {side} its normal"
    if feature.endswith("_spread"):
        metric = feature.removesuffix("_spread")
        return f"{metric_label(metric)} differs by {_level(metric, v)} between its instances"
    if feature == "util_max":
        return f"busiest resource at {v:.0f} %"
    if feature in METRIC_LABELS:
        return f"{metric_label(feature)} at {_level(feature, v)}"
    return f"{feature} = {v:.3g}"


def minutes_text(minutes: float) -> str:
    """``90`` -> ``90 min``, ``200`` -> ``3.3 h``, ``3000`` -> ``2.1 days``."""
    if minutes < 120:
        return f"{minutes:.0f} min"
    if minutes < 48 * 60:
        return f"{minutes / 60:.1f} h"
    return f"{minutes / 1440:.1f} days"


def _level(metric: str, v: float) -> str:
    if metric == "error_rate":
        return f"{v * 100:.2g} %"
    if metric.endswith("_pct") or metric == "util":
        return f"{v:.0f} %"
    return f"{v:.3g}"


def _rate(metric: str, v: float) -> str:
    if metric == "error_rate":
        return f"{v * 100:.2g} percentage points an hour"
    if metric.endswith("_pct") or metric == "util":
        return f"{v:.2g} percentage points an hour"
    return f"{v * 100:.2g} % of its normal an hour"
