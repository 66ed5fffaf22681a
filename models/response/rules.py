"""Which rule acts on an incident, and on what. Pure.

An incident, from the detect flow's frame or a stream event, is read into an
:class:`IncidentView` (its fault type comes from the evidence record,
:mod:`models.incidents.evidence`). The first rule of ``response.rules`` that matches it
(:func:`match_rule`) is the one that acts; :func:`fill_target` names what it acts on.
:func:`response_problems` checks what the settings schema cannot: fault type names and the
webhooks and commands rules name.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from foresight.settings import Settings, SettingsProblem
from foresight.settings_response import ResponseConfig, ResponseRule
from foresight.timeutil import utc_timestamp
from models.incidents.fault_types import FAULT_TYPES

SEVERITY_RANK: dict[str, int] = {"info": 0, "warning": 1, "error": 2, "critical": 3}


@dataclass(frozen=True)
class IncidentView:
    """What response needs of one incident. ``end`` None: still open."""

    incident_id: str
    service: str
    category: str
    fault_type: str
    severity: str
    start: pd.Timestamp
    end: pd.Timestamp | None = None
    resource_id: str = ""

    @property
    def open(self) -> bool:
        return self.end is None


def incident_view(record: Mapping[str, Any]) -> IncidentView:
    """An incident record (``INCIDENT_COLUMNS``, or a stream event's ``incident``) as a view;
    raises ``ValueError`` naming the first field it lacks."""
    for name in ("incident_id", "service", "start"):
        if _missing(record.get(name)):
            raise ValueError(f"incident {record.get('incident_id')!r} has no {name}")
    end = record.get("end")
    return IncidentView(
        incident_id=str(record["incident_id"]),
        service=str(record["service"]),
        category="" if _missing(record.get("category")) else str(record["category"]),
        fault_type=str(record.get("fault_type") or _fault_type(record.get("evidence"))),
        severity="warning" if _missing(record.get("severity")) else str(record["severity"]),
        start=utc_timestamp(record["start"], "incident start"),
        end=None if _missing(end) else utc_timestamp(end, "incident end"),
        resource_id="" if _missing(record.get("resource_id")) else str(record["resource_id"]),
    )


def incident_views(records: Iterable[Mapping[str, Any]]) -> list[IncidentView]:
    return [incident_view(record) for record in records]


def match_rule(config: ResponseConfig, incident: IncidentView) -> ResponseRule | None:
    """The first rule that matches ``incident`` (None: no rule does)."""
    for rule in config.rules:
        if rule.fault_types and incident.fault_type not in rule.fault_types:
            continue
        if rule.categories and incident.category not in rule.categories:
            continue
        if rule.services and incident.service not in rule.services:
            continue
        if SEVERITY_RANK.get(incident.severity, 0) < SEVERITY_RANK[rule.min_severity]:
            continue
        return rule
    return None


def fill_target(rule: ResponseRule, incident: IncidentView) -> str:
    """The rule's ``target`` with ``{service}`` and ``{resource_id}`` filled in."""
    return rule.target.replace("{service}", incident.service).replace(
        "{resource_id}", incident.resource_id or incident.service)


def response_problems(settings: Settings) -> list[SettingsProblem]:
    """Problems of ``settings.response`` beyond its schema, each as (key path, what is wrong)."""
    cfg = settings.response
    problems: list[SettingsProblem] = []
    for i, rule in enumerate(cfg.rules):
        for j, fault in enumerate(rule.fault_types):
            if fault not in FAULT_TYPES:
                problems.append((("response", "rules", i, "fault_types", j),
                                 f"unknown fault type {fault!r}; choose from: {', '.join(FAULT_TYPES)}"))
        for kind, configured in (("webhook", cfg.webhooks), ("command", cfg.commands)):
            name = getattr(rule, kind)
            if name is not None and name not in configured:
                problems.append((("response", "rules", i, kind),
                                 f"no {kind} {name!r} in response.{kind}s; configured: "
                                 f"{', '.join(sorted(configured)) or '(none)'}"))
    return problems


def _fault_type(evidence: Any) -> str:
    if isinstance(evidence, Mapping):
        return str(evidence.get("fault_type") or "unknown")
    if isinstance(evidence, str) and evidence:
        try:
            parsed = json.loads(evidence)
        except ValueError:
            return "unknown"
        if isinstance(parsed, Mapping):
            return str(parsed.get("fault_type") or "unknown")
    return "unknown"


def _missing(value: Any) -> bool:
    return value is None or (not isinstance(value, (str, list, dict)) and bool(pd.isna(value)))
