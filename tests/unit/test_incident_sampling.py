"""Replaying incident data sampled every 1 s to 5 min (bench.incident_sampling, bench.incidents)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from bench.datasets.nezha import load_nezha
from bench.incident_sampling import aggregate, replay_grid, sampling_interval, settings_for_interval
from bench.incidents import day_length, run_days
from models.incidents.settings import StreamSettings
from support.nezha import write_nezha_day
from support.plain_incidents import START, plain_system


def test_sub_minute_samples_are_averaged_into_minutes_labelled_by_their_end() -> None:
    ds = START + pd.to_timedelta([10, 30, 60, 70, 130], unit="s")
    telemetry = pd.DataFrame({"unique_id": "a", "ds": ds, "y": [1.0, 3.0, 5.0, 10.0, 7.0]})
    assert sampling_interval(telemetry) == pd.Timedelta("25s")  # median gap of 20, 30, 10, 60 s
    grid, step = replay_grid(telemetry)
    assert step == pd.Timedelta("1min")
    assert grid["ds"].tolist() == [START + pd.Timedelta(minutes=m) for m in (1, 2, 3)]
    assert grid["y"].tolist() == [3.0, 10.0, 7.0]  # (1 + 3 + 5) / 3: a sample at the minute closes it
    coarse = aggregate(telemetry, pd.Timedelta("5min"))
    assert coarse["y"].tolist() == [5.2] and coarse["ds"].tolist() == [START + pd.Timedelta(minutes=5)]


def test_minute_and_coarser_data_replay_as_sampled() -> None:
    day = plain_system(interval="5min", minutes=60, fault_minute=None)
    grid, step = replay_grid(day.telemetry)
    assert step == pd.Timedelta("5min") and grid is day.telemetry
    assert day_length(day) == pytest.approx(60 / 1440)  # twelve 5-minute samples


def test_durations_keep_their_minutes_on_coarser_data_and_sample_counts_stay() -> None:
    base = StreamSettings()
    assert settings_for_interval(base, pd.Timedelta("1min")) == base
    five = settings_for_interval(base, pd.Timedelta("5min"))
    assert (five.resolve_after, five.rank_window, five.max_hold, five.learn_delay, five.reopen_within) == (
        1, 1, 3, 3, 3
    )
    assert (five.window, five.min_history, five.open_threshold) == (base.window, base.min_history, 6.0)
    assert settings_for_interval(replace(base, reopen_within=0), pd.Timedelta("2min")).reopen_within == 0


@pytest.mark.parametrize(("interval", "minutes", "delay_s"), [("1s", 80, 30), ("2min", 160, 90), ("5min", 200, 270)])
def test_a_fault_is_found_at_any_sampling_interval(interval: str, minutes: int, delay_s: float) -> None:
    fault_minute = minutes - 19.5
    day = plain_system(interval=interval, minutes=minutes, fault_minute=fault_minute)
    figures, incidents, _ = run_days([day])
    assert (figures.detected, figures.false_alarms) == (1, 0)
    assert figures.median_delay_seconds == delay_s  # the first bucket / sample holding the fault
    assert incidents.iloc[0]["services"].split(";")[0] == "db"


def test_a_nezha_day_aggregated_to_five_minutes_still_finds_its_fault(tmp_path: Path) -> None:
    write_nezha_day(tmp_path, minutes=240, fault_minute=200, fault_service="cartservice")
    (day,) = load_nezha(tmp_path)
    coarse = replace(day, telemetry=aggregate(day.telemetry, pd.Timedelta("5min")))
    figures, incidents, _ = run_days([coarse], window=pd.Timedelta("10min"))
    assert (figures.detected, figures.false_alarms) == (1, 0)
    assert incidents.iloc[0]["services"].split(";")[0] == "cartservice"
