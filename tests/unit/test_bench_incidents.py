"""Incident benchmark (bench.incidents): the Nezha protocol's scoring and the CLI end to end."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from bench.datasets.nezha import Fault
from bench.incidents import fault_free_length, run, score_incidents
from foresight.cli import app
from support.nezha import write_nezha_day

T = pd.Timestamp("2022-08-22 04:00:00", tz="UTC")


def at(minutes: float) -> pd.Timestamp:
    return T + pd.Timedelta(minutes=minutes)


def test_scoring_follows_the_protocol_on_a_hand_computed_case() -> None:
    faults = [
        Fault(at(0), "cart-1", "cart", "cpu_contention"),  # detected at +2 min, cart first: AC@1, type ok
        Fault(
            at(10), "pay-1", "pay", "network_delay"
        ),  # detected at +5 min exactly, pay third, wrong type (its coarse class right)
        Fault(at(20), "ad-1", "ad", "exception"),  # only an incident 6 min later: missed
    ]
    incidents = pd.DataFrame(
        {
            "opened_at": [at(-1), at(2), at(3), at(15), at(26), at(300)],
            "services": ["x", "cart;web", "cart", "web;co;pay", "ad", "web"],
            "category": ["exception", "cpu_contention", "saturation", "cpu_consumed", "return", "unknown"],
            "coarse_category": ["errors", "saturation", "saturation", "latency", "errors", "latency"],
            "score": 1.0,
        }
    )
    figures, matches = score_incidents(incidents, faults, days=0.5)
    assert matches["detected"].tolist() == [True, True, False]
    assert figures.detected == 2 and figures.faults == 3 and figures.incidents == 6
    # at -1 (before the fault), the second one at +3, at +6 of the third fault, and at +300 are false alarms.
    assert figures.false_alarms == 4 and figures.false_alarms_per_day == 8.0
    assert figures.median_delay_seconds == 210.0  # median of 120 s and 300 s
    assert figures.ac_at_1 == 0.5 and figures.ac_at_3 == 1.0
    assert figures.fault_type_accuracy == 0.5  # the fine type is scored against the injected type itself
    assert figures.coarse_category_accuracy == 1.0
    assert matches["category_ok"].tolist() == [True, False, False]
    assert matches["coarse_ok"].tolist() == [True, True, False]
    assert figures.detection_rate == pytest.approx(2 / 3)
    assert matches["incident"].tolist()[:2] == [1, 3]  # the rows that detected the first two faults


def test_false_alarms_are_split_by_whether_they_open_in_an_hour_with_injections() -> None:
    # Faults at 04:00, 04:10, 04:20 make 04:00-05:00 the only fault hour.
    faults = [Fault(at(m), "a-1", "a", "return") for m in (0, 10, 20)]
    incidents = pd.DataFrame(
        {
            "opened_at": [at(-1), at(2), at(40), at(59.9), at(60), at(300)],
            "services": "a",
            "category": "errors",
            "score": 1.0,
        }
    )
    start, end = at(-120), at(12 * 60)  # 14 hours of data, one of them a fault hour
    free = fault_free_length(start, end, faults)
    assert free == pytest.approx(13 / 24)
    figures, _ = score_incidents(incidents, faults, days=14 / 24, fault_free_days=free)
    # The alarm at +2 detects the first fault; +40 and +59.9 are in the fault hour; -1 (03:59),
    # +60 (05:00) and +300 are in fault-free hours. The protocol's count is unchanged.
    assert figures.detected == 1 and figures.false_alarms == 5
    assert figures.false_alarms_in_fault_hours == 2 and figures.false_alarms_outside_fault_hours == 3
    assert figures.false_alarms_per_fault_free_day == pytest.approx(3 / (13 / 24))
    assert figures.to_dict()["false_alarms_in_fault_hours"] == 2
    with pytest.raises(ValueError, match="fault_free_days"):
        score_incidents(incidents, faults, days=0.5, fault_free_days=0.6)


def test_fault_free_time_counts_only_the_part_of_a_fault_hour_inside_the_data() -> None:
    faults = [Fault(at(m), "a-1", "a", "return") for m in (-5, 30, 150)]  # hours 03, 04 and 06
    # Data from 03:52 to 05:30: 8 minutes of hour 03 and all of hour 04 are fault time.
    assert fault_free_length(at(-8), at(90), faults) == pytest.approx(30 / 1440)
    assert fault_free_length(at(-8), at(90), []) == pytest.approx(98 / 1440)


def test_no_incidents_detect_nothing_and_report_no_rates() -> None:
    figures, _ = score_incidents(
        pd.DataFrame(columns=["opened_at", "services", "category", "score"]),
        [Fault(T, "a-1", "a", "return")],
        days=1.0,
    )
    assert (figures.detected, figures.false_alarms, figures.ac_at_1, figures.median_delay_seconds) == (
        0,
        0,
        None,
        None,
    )


def test_bench_incidents_cli_replays_a_synthetic_day_and_scores_it(tmp_path: Path) -> None:
    write_nezha_day(tmp_path / "data", minutes=150, fault_minute=110, fault_service="cartservice")
    out = tmp_path / "incidents.csv"
    result = CliRunner().invoke(
        app, ["bench", "incidents", "--data", str(tmp_path / "data"), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "1/1 (100.0%)" in result.output and "AC@1" in result.output
    assert "in fault-free hours" in result.output
    written = pd.read_csv(out)
    assert list(written.columns[:4]) == ["opened_at", "services", "category", "score"]
    assert len(written) == 1
    row = written.iloc[0]
    # The synthetic fault lifts the pod's CPU from 20 % to 90 %, no jump a second process makes:
    # the service's own code burning CPU (models.incidents.fault_types), shown as saturation on the pages.
    assert row["services"].split(";")[0] == "cartservice" and row["category"] == "cpu_consumed"
    assert row["coarse_category"] == "saturation" and 0 < row["fault_type_confidence"] < 1
    assert "Detected faults by injected type" in result.output
    opened = pd.Timestamp(row["opened_at"])
    assert opened.tzinfo is not None and opened == pd.Timestamp("2022-08-22 05:42", tz="UTC")
    strict = CliRunner().invoke(app, ["bench", "incidents", "--data", str(tmp_path / "data"), "--out", str(out),
                                      "--stream-params", '{"open_threshold": 1e6, "split_threshold": 1e6}'])
    assert strict.exit_code == 0 and "0/1 (0.0%)" in strict.output, strict.output  # the settings reach the stream
    typo = CliRunner().invoke(app, ["bench", "incidents", "--data", str(tmp_path / "data"), "--out", str(out),
                                    "--stream-params", '{"page_budget": 2}'])
    assert typo.exit_code != 0 and "page_budget_per_day" in typo.output


def test_a_network_delay_is_found_on_the_wire_and_rooted_at_the_callee(tmp_path: Path) -> None:
    write_nezha_day(
        tmp_path, minutes=150, fault_minute=110, fault_service="cartservice", fault_kind="network_delay"
    )
    figures, incidents, matches = run(tmp_path)
    assert figures.detected == 1 and figures.false_alarms == 0
    assert 0 < figures.fault_free_days < figures.days  # the fault's hour is not fault-free
    assert incidents.iloc[0]["services"].split(";")[0] == "cartservice"
    assert matches.iloc[0]["category"] == "network_delay" == matches.iloc[0]["kind"]
    assert matches.iloc[0]["coarse_category"] == "latency" and figures.fault_type_accuracy == 1.0
