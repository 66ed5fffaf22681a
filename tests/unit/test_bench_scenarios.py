"""Scenario bench (bench.scenarios): event scores, type accuracy, a tiny family end to end."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from bench.detection_corpora import INCIDENTS
from bench.incidents import IncidentFigures
from bench.scenarios import coarse_accuracy, event_scores, found_by_kind, run, scenario_corpora, type_accuracy
from foresight.cli import app
from simulator.scenario_families import FAMILIES, FamilySpec

TINY = FamilySpec(
    "5 services, call graph known, loud instant faults", (5, 5), entries=(1, 1),
    fault_kinds=("cpu_contention", "exception"), faults_per_day=(3, 3), stress_per_day=(1, 1),
    noise=(0.5, 0.5), bursts_per_day=(0.0, 0.0),
)


def figures(faults: int, detected: int, incidents: int) -> IncidentFigures:
    return IncidentFigures(
        faults=faults, detected=detected, incidents=incidents, false_alarms=incidents - detected, days=2.0,
        median_delay_seconds=None, ac_at_1=None, ac_at_3=None, fault_type_accuracy=None,
    )


def test_event_scores_are_matched_incidents_over_incidents_and_detected_over_faults() -> None:
    precision, recall, f1 = event_scores(figures(faults=10, detected=8, incidents=16))
    assert (precision, recall) == (0.5, 0.8)
    assert f1 == pytest.approx(2 * 0.5 * 0.8 / 1.3)
    assert event_scores(figures(faults=0, detected=0, incidents=3)) == (0.0, None, None)  # fault-free
    assert event_scores(figures(faults=4, detected=0, incidents=0)) == (None, 0.0, None)


def test_type_accuracy_wants_the_fault_type_itself_and_coarse_accuracy_its_class() -> None:
    matches = pd.DataFrame(
        {
            "detected": [True, True, True, True, False],
            "kind": ["memory_leak", "network_delay", "disk_full", "bad_deploy", "exception"],
            "category": ["memory_leak", "network_delay", "exception", "return", None],
            "coarse_category": ["resource_leak", "saturation", "errors", "errors", None],
        }
    )
    assert type_accuracy(matches) == 0.5
    assert coarse_accuracy(matches) == 0.5  # the leak and the bad deploy's "errors"
    assert type_accuracy(matches.assign(detected=False)) is None
    assert coarse_accuracy(matches.drop(columns="coarse_category")) is None
    assert found_by_kind(matches.assign(kind=["exception", "return", "exception", "exception", "exception"])) == (
        "exception 3/4;return 1/1"
    )


def test_a_tiny_family_replays_end_to_end_from_the_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(FAMILIES, "tiny", TINY)
    out = tmp_path / "families.csv"
    # 5-minute sampling keeps the replay short (288 steps).
    result = CliRunner().invoke(app, ["bench", "scenarios", "--family", "tiny", "--systems", "1", "--seed", "4",
                                      "--step-minutes", "5", "--out", str(out)])
    assert result.exit_code == 0, result.output
    row = pd.read_csv(out).iloc[0]
    assert row["family"] == "tiny" and row["systems"] == 1 and row["with_graph"] == 1
    assert row["incidents_faults"] == 3
    assert row["incidents_detected"] >= 2  # loud CPU contention and exceptions on a quiet 5-service system
    assert row["f1"] > 0.5
    assert "tiny" in result.output and f"{row['incidents_detected']}/3" in result.output
    refused = CliRunner().invoke(app, ["bench", "scenarios", "--family", "nope"])
    assert refused.exit_code != 0 and "small-graph" in refused.output


def test_run_refuses_an_unknown_family_before_generating_anything() -> None:
    with pytest.raises(ValueError, match="large-no-graph"):
        run(["small-graph", "nope"], systems=1)


def test_each_family_is_an_incident_corpus_generated_only_when_loaded(tmp_path: Path) -> None:
    corpora = scenario_corpora(systems=2, seed=3)
    assert [c.name for c in corpora] == [f"scenarios/{name}" for name in FAMILIES]
    assert all(c.kind == INCIDENTS for c in corpora)
    days = {c.name: c for c in corpora}["scenarios/small-no-graph"].load(tmp_path)
    assert [d.name for d in days] == ["small-no-graph/000", "small-no-graph/001"]
    assert all(d.call_graph == {} for d in days)
