"""Seeded generator of labelled microservice systems, so detection is exercised on hundreds of them.

``generate_family(name, systems=N, seed=S, days=D)`` returns ``N`` days as
:class:`connectors.labels.incident_layout.IncidentDay` (telemetry, catalogue, call graph or ``{}`` when not handed
out, labelled faults), ready for ``bench.incidents.run_days``. :data:`FAMILIES` names the families.

Module map: ``topology`` (services and the call DAG), ``vocabulary`` (metric names and units),
``plan`` (fault and benign-stress schedule), ``synthesis`` (the metric maths, faults' and stress's
effects, propagation to callers), ``families`` (family specs, one system's draw, the day frames).
"""

from simulator.scenario_families.families import (
    FAMILIES,
    FamilySpec,
    generate_family,
    generate_system,
    simulate_system,
)
from simulator.scenario_families.plan import FAULT_KINDS, NEZHA_FAULT_KINDS, STRESS_KINDS
from simulator.scenario_families.vocabulary import VOCABULARIES

__all__ = [
    "FAMILIES",
    "FAULT_KINDS",
    "NEZHA_FAULT_KINDS",
    "STRESS_KINDS",
    "VOCABULARIES",
    "FamilySpec",
    "generate_family",
    "generate_system",
    "simulate_system",
]
