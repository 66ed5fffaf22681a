"""Fault types from an incident's evidence (models.incidents.fault_types), and where they show up downstream."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from bench.fault_types import SIMULATOR_FAULT_TYPES, fault_type_accuracy, match_fault_types
from models.incidents.category import categorise
from models.incidents.fault_types import (
    COARSE_CATEGORY,
    FAULT_TYPES,
    RULES,
    FaultEvidence,
    classify_fault,
    fault_rule,
)
from models.incidents.settings import StreamSettings
from models.incidents.stream import IncidentStream
from models.incidents.stream_builder import incident_rows

T = 2.0  # surprise at which a kind counts as moved
LOUD = 6.0

# name -> (evidence, expected fault type); each case is the mechanism its rule describes.
CASES: dict[str, tuple[FaultEvidence, str]] = {
    "a full disk explains the failures after it": (
        FaultEvidence(root={"errors": LOUD, "disk": 0.5}, exhausted={"disk"}), "disk_full"
    ),
    "failures after a restart that emptied a filled heap": (
        FaultEvidence(root={"errors": LOUD}, fall={"memory": 0.4}, memory_peak_percent=82.0), "memory_leak"
    ),
    "failures after a restart that only emptied the caches": (
        FaultEvidence(root={"errors": LOUD}, fall={"memory": 0.15}, memory_peak_percent=65.0), "bad_deploy"
    ),
    "callers wait on the wire, the root's own time is flat": (
        FaultEvidence(root={"network_latency": LOUD, "call_latency": LOUD, "server_latency": 0.5}), "network_delay"
    ),
    "memory climbing into its limit": (
        FaultEvidence(root={"cpu": LOUD, "memory": 1.0}, rise={"memory": 0.06, "cpu": 1.0},
                      memory_peak_percent=100.0),
        "memory_leak",
    ),
    "failed requests with no restart and no busy CPU": (
        FaultEvidence(root={"errors": LOUD, "server_latency": LOUD}, rise={"server_latency": 3.0}), "exception"
    ),
    "a CPU jumping from near idle to a whole core": (
        FaultEvidence(root={"cpu": LOUD, "server_latency": LOUD, "traffic": LOUD},
                      rise={"cpu": 40.0, "traffic": 2.0}),
        "cpu_contention",
    ),
    "a busy CPU on a heap growing near its limit": (
        FaultEvidence(root={"cpu": LOUD, "traffic": LOUD}, rise={"cpu": 0.8, "traffic": 1.0, "memory": 0.1},
                      memory_peak_percent=93.0),
        "memory_leak",
    ),
    "a busy CPU carrying much more traffic": (
        FaultEvidence(root={"cpu": LOUD, "traffic": LOUD}, rise={"cpu": 0.9, "traffic": 1.2}), "saturation"
    ),
    "a busy CPU on the same traffic": (
        FaultEvidence(root={"cpu": LOUD}, rise={"cpu": 2.0, "traffic": 0.05}), "cpu_consumed"
    ),
    "slower answers with nothing else moving": (
        FaultEvidence(root={"server_latency": LOUD}, rise={"server_latency": 5.0}), "exception"
    ),
    "memory growing alone": (FaultEvidence(root={"memory": LOUD}), "memory_leak"),
    "nothing moved at the root": (FaultEvidence(root={"traffic": 1.0}), "unknown"),
}


@pytest.mark.parametrize("name", list(CASES))
def test_each_rule_names_the_fault_its_mechanism_makes(name: str) -> None:
    evidence, expected = CASES[name]
    fault, confidence = classify_fault(evidence, T)
    assert fault == expected
    assert confidence == RULES[fault_rule(evidence, T)][1]


def test_every_named_type_is_known_and_shows_as_a_coarse_category() -> None:
    from foresight.schemas import INCIDENT_CATEGORIES

    assert {fault for fault, _ in RULES.values()} <= set(FAULT_TYPES)
    assert set(COARSE_CATEGORY) == set(FAULT_TYPES) - {"unknown"}
    assert set(COARSE_CATEGORY.values()) <= set(INCIDENT_CATEGORIES)
    assert set(SIMULATOR_FAULT_TYPES.values()) <= set(FAULT_TYPES)
    assert all(0.0 <= confidence < 1.0 for _, confidence in RULES.values())
    assert RULES["nothing"] == ("unknown", 0.0)


def test_the_fine_type_agrees_with_the_coarse_category_on_the_rules_cases() -> None:
    # The pages keep the coarse category; a fault type must not contradict it where both read
    # the same evidence (failed requests -> errors, a busy CPU -> saturation, the wire -> latency).
    for name in ("failed requests with no restart and no busy CPU", "a busy CPU on the same traffic",
                 "callers wait on the wire, the root's own time is flat", "a full disk explains the failures after it"):
        evidence, _ = CASES[name]
        fault, _ = classify_fault(evidence, T)
        coarse = categorise(evidence.root, evidence.incident, T, evidence.exhausted)
        assert COARSE_CATEGORY[fault] == coarse, name


def test_a_chronically_full_memory_that_does_not_grow_is_no_leak() -> None:
    # Nezha's memory shares are of the pod's request and sit above 100 % on some pods for hours.
    evidence = FaultEvidence(root={"server_latency": LOUD}, rise={"memory": 0.0}, memory_peak_percent=148.0)
    assert classify_fault(evidence, T)[0] == "exception"


def test_failures_elsewhere_while_the_root_is_cpu_bound_are_read_at_the_root() -> None:
    busy = {"cpu": LOUD, "traffic": LOUD}
    loaded = FaultEvidence(root=busy, incident={"errors": LOUD}, rise={"cpu": 0.8, "traffic": 1.0})
    assert classify_fault(loaded, T)[0] == "saturation"
    own = FaultEvidence(root={**busy, "errors": LOUD}, incident={"errors": LOUD}, rise={"cpu": 0.8, "traffic": 1.0})
    assert classify_fault(own, T)[0] == "exception"  # its own requests fail: the handler


def _cpu_jump_stream(idle: float, busy: float) -> tuple[str, float, str]:
    """A two-service system whose callee's CPU goes from ``idle`` to ``busy`` percent, its
    latency with it: the first incident's fault type, confidence and evidence JSON."""
    rng = np.random.default_rng(3)
    catalogue = pd.DataFrame(
        {
            "unique_id": ["api/cpu", "api/lat", "db/cpu", "db/lat", "db/mem"],
            "service": ["api", "api", "db", "db", "db"],
            "metric": ["cpu_usage", "server_latency", "cpu_usage", "server_latency", "memory_usage_rate"],
            "unit": ["percent", "seconds", "percent", "seconds", "percent"],
        }
    )
    stream = IncidentStream(catalogue, {"api": ["db"]}, StreamSettings())
    start = pd.Timestamp("2026-01-01", tz="UTC")
    raised = []
    for t in range(60):
        hit = t >= 45
        row = np.array([
            20 + rng.normal(0, 1),
            0.1 + rng.normal(0, 0.002) + (0.2 if hit else 0.0),
            (busy if hit else idle) + rng.normal(0, 0.1),
            0.05 + rng.normal(0, 0.001) + (0.2 if hit else 0.0),
            40 + rng.normal(0, 0.2),
        ])
        raised += stream.step(start + pd.Timedelta(minutes=t), row)
    first = raised[0]
    return first.fault_type, first.fault_type_confidence, first.evidence


def test_the_stream_names_the_fault_type_of_each_incident_it_raises() -> None:
    fault, confidence, _ = _cpu_jump_stream(idle=1.0, busy=95.0)  # a burner on an idle pod
    assert (fault, confidence) == RULES["cpu_jump"]
    fault, confidence, _ = _cpu_jump_stream(idle=30.0, busy=95.0)  # its own code, three times busier
    assert (fault, confidence) == RULES["cpu_busy"]


def test_the_detect_flow_rows_carry_the_fault_type_in_their_evidence() -> None:
    evidence = json.dumps({"series": [], "ranked_services": ["db"]})
    raised = pd.DataFrame(
        {
            "opened_at": [pd.Timestamp("2026-01-01 00:05", tz="UTC")],
            "closed_at": pd.Series([pd.NaT], dtype="datetime64[ns, UTC]"),
            "services": ["db;api"],
            "category": ["saturation"],
            "score": [8.0],
            "severity": ["warning"],
            "evidence": [evidence],
            "reopened": [0],
            "fault_type": ["cpu_contention"],
            "fault_type_confidence": [0.8],
        }
    )
    rows = incident_rows(raised, pd.DataFrame(columns=["unique_id", "service", "resource_id"]), pd.Timedelta("15min"))
    payload = json.loads(rows.iloc[0]["evidence"])
    assert rows.iloc[0]["category"] == "saturation"  # the pages keep the coarse category
    assert (payload["fault_type"], payload["fault_type_confidence"]) == ("cpu_contention", 0.8)


def test_simulated_incidents_match_the_first_incident_rooted_at_their_service_in_time() -> None:
    at = pd.Timestamp("2026-04-20 12:00", tz="UTC")
    truth = pd.DataFrame(
        {
            "service": ["cart", "search", "frontend"],
            "start": [at, at + pd.Timedelta("3h"), at + pd.Timedelta("6h")],
            "end": [at + pd.Timedelta("30min"), at + pd.Timedelta("4h"), pd.NaT],
            "category": ["errors", "resource_leak", "disk"],
        }
    )
    raised = pd.DataFrame(
        {
            "opened_at": [at - pd.Timedelta("90min"), at + pd.Timedelta("10min"), at + pd.Timedelta("150min"),
                          at + pd.Timedelta("3h")],
            "services": ["cart", "cart;frontend", "search", "frontend;search"],
            "fault_type": ["exception", "bad_deploy", "cpu_consumed", "memory_leak"],
            "fault_type_confidence": [0.4, 0.95, 0.25, 0.85],
        }
    )
    matches = match_fault_types(raised, truth)
    # cart: the 90-minute-early incident is outside the lead, the next one matches; search: the one
    # 30 minutes before its start, not the frontend-rooted one; frontend: none opened at its start.
    assert matches["detected"].tolist() == [True, True, False]
    assert matches["injected"].tolist() == ["bad_deploy", "memory_leak", "disk_full"]
    assert matches["named"].tolist()[:2] == ["bad_deploy", "cpu_consumed"]
    assert fault_type_accuracy(matches) == 0.5
    assert fault_type_accuracy(matches.iloc[2:]) is None
