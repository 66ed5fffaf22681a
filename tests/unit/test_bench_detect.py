"""Incident-detection benchmark (bench.detect): the gate's roll-up, the stream builder, the CLI."""

from __future__ import annotations

import re
from dataclasses import astuple
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bench.detect import END, DetectFigures, builder_choices, mean_figures, run
from foresight.cli import app
from foresight.settings import DetectConfig
from foresight.timeutil import split_time
from models.anomaly.base import DETECTORS
from simulator import simulate

# Six days of seed 3: one ground-truth incident after the split, which both builders find, and
# false alarms from both, so no figure is trivially 0 or 1 everywhere.
SEED, DAYS = 3, 6
Figures = dict[tuple[int | None, str], DetectFigures]  # by (seed, builder); seed None: the mean


@pytest.fixture(scope="module")
def figures() -> Figures:
    return {(f.seed, f.builder): f for f in run(seeds=(SEED,), days=DAYS)}


@pytest.mark.slow
def test_figures_are_event_wise_rates_and_counts_that_agree(figures: Figures) -> None:
    assert set(figures) == {(SEED, "rollup:streaming"), (SEED, "stream"), (None, "rollup:streaming"), (None, "stream")}
    for f in figures.values():
        assert 0.0 <= f.recall <= 1.0 and 0.0 <= f.precision <= 1.0 and 0.0 <= f.f1 <= 1.0, f
        assert f.f1 == pytest.approx(2 * f.recall * f.precision / (f.recall + f.precision)), f
        assert f.incidents >= 1 and f.detected <= f.incidents and f.recall == pytest.approx(f.detected / f.incidents)
        assert 0 < f.false_alarms < f.raised, f
        assert f.seconds > 0


@pytest.mark.slow
def test_both_builders_are_judged_exactly_as_the_train_flows_gate_judges_them(
    figures: Figures, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from flows.families import TrainingData, anomaly_candidate, evaluate_anomaly
    from foresight.settings import load_settings

    batch = simulate(seed=SEED, days=DAYS, end=END)
    assert batch.incidents is not None
    data = TrainingData(batch.telemetry, batch.catalogue, batch.incidents, None)
    split = split_time(batch.telemetry["ds"], DetectConfig().train_fraction)
    monkeypatch.setenv("FORESIGHT_HOME", str(tmp_path))
    monkeypatch.setenv("FORESIGHT_SOURCES", '[{"name": "sim", "kind": "simulator"}]')  # its call graph
    for builder, env in (("rollup:streaming", {"INCIDENT_BUILDER": "rollup", "DETECTOR": "streaming"}),
                         ("stream", {"INCIDENT_BUILDER": "stream"})):
        for key, value in env.items():
            monkeypatch.setenv(f"FORESIGHT_DETECT__{key}", value)
        settings = load_settings()
        gate = evaluate_anomaly(anomaly_candidate(settings), data, settings, split)
        bench = figures[(SEED, builder)]
        assert gate.metric == "event_f1" and gate.value == bench.f1, builder
        assert (bench.recall, bench.precision, bench.false_alarms, bench.raised) == (
            gate.metrics["recall"], gate.metrics["precision"], gate.metrics["false_alarms"], len(gate.detail.raised))


@pytest.mark.slow
def test_the_mean_row_is_the_mean_of_the_seeds_rows(figures: Figures) -> None:
    for builder in ("rollup:streaming", "stream"):  # one seed: the mean is that seed's row
        assert astuple(figures[(None, builder)])[1:] == astuple(figures[(SEED, builder)])[1:]
    rows = [
        DetectFigures(1, "stream", 0.5, 1.0, 1 / 3, 3, 2, 1, 1, 2.0),
        DetectFigures(2, "stream", 0.0, 0.0, 0.0, 4, 4, 0, 2, 4.0),
        DetectFigures(1, "rollup:streaming", 1.0, 1.0, 1.0, 1, 0, 1, 1, 1.0),  # another builder's: left out
    ]
    mean = mean_figures(rows, "stream")
    assert mean == DetectFigures(None, "stream", 0.25, 0.5, pytest.approx(1 / 6), 3.5, 3.0, 0.5, 1.5, 3.0)
    with pytest.raises(ValueError, match="no figures for 'rollup:knn'"):
        mean_figures(rows, "rollup:knn")


def test_every_registered_detector_is_a_roll_up_builder_and_unknown_ones_are_refused() -> None:
    assert builder_choices() == [*(f"rollup:{name}" for name in DETECTORS.names()), "stream", "stream:windows"]
    with pytest.raises(ValueError, match="unknown builder.*'rollup:prophet'.*choose one of: .*rollup:streaming"):
        run(seeds=(SEED,), days=DAYS, builders=("stream", "rollup:prophet"))

    result = CliRunner().invoke(app, ["bench", "detect", "--days", "2", "--builder", "streaming"])
    assert result.exit_code == 2, result.output  # a usage error, before anything is simulated
    printed = set(re.findall(r"[\w:]+", result.output))
    assert "--builder" in result.output and set(builder_choices()) <= printed


@pytest.mark.slow
def test_the_command_prints_the_table_per_seed_and_the_mean() -> None:
    result = CliRunner().invoke(app, ["bench", "detect", "--seed", str(SEED), "--days", str(DAYS),
                                      "--builder", "stream"])
    assert result.exit_code == 0, result.output
    rows = [line.split() for line in result.output.splitlines() if " stream " in line]
    assert [row[:2] for row in rows] == [[str(SEED), "stream"], ["mean", "stream"]]
    assert all(len(row) == 9 for row in rows), rows  # every column, none cut at 80 characters
    assert "wall time:" in result.output and f"{DAYS} days per seed" in result.output


@pytest.mark.parametrize(("params", "problem"), [('{"open_treshold": 9}', "open_treshold.*open_threshold"),
                                                 ("[1, 2]", "stream_params"), ("{oops", "Expecting")])
def test_bad_stream_settings_are_refused_by_name_before_anything_runs(params: str, problem: str) -> None:
    result = CliRunner().invoke(app, ["bench", "detect", "--days", "2", "--stream-params", params])
    assert result.exit_code == 2, result.output
    assert "--stream-params" in result.output and re.search(problem, " ".join(result.output.split()))


@pytest.mark.slow
def test_windowed_replay_is_the_whole_replay_when_one_window_and_its_warm_up_cover_the_history() -> None:
    # Six days: the split falls 3.6 days in, within the streaming detector's context (the warm-up
    # the flow loads), so one 30-day window replays everything, as the stream builder does.
    wide = DetectConfig(lookback_hours=24 * 30)
    by_builder = {f.builder: f for f in run(seeds=(SEED,), days=DAYS, builders=("stream", "stream:windows"),
                                            cfg=wide) if f.seed is not None}
    whole, windows = by_builder["stream"], by_builder["stream:windows"]
    assert astuple(whole)[2:-1] == astuple(windows)[2:-1]
