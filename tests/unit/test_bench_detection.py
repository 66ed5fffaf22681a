"""Cross-corpus detection bench: leave-one-corpus-out, the objectives, the cadence-gap rule, the
baseline incident builder and detectors, the runner over a registry of small synthetic corpora, the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from bench.datasets.nezha import Fault, NezhaDay, load_nezha
from bench.detection import default_corpora, run
from bench.detection_corpora import (
    INCIDENTS,
    NAB,
    Corpus,
    NabCorpus,
    cadence_gap_slots,
    set_aside_gap_alarms,
)
from bench.loco import incident_objective, loco_select
from foresight.cli import app
from foresight.plugins import Registry, UnknownPluginError
from models.incidents.baseline import baseline_incidents, opening_steps, series_z
from support.nab_corpus import write_corpus
from support.nezha import write_nezha_day

T0 = pd.Timestamp("2024-03-01 00:00", tz="UTC")


# ---------------------------------------------------------------------------------------------
# loco_select and the objectives


def test_loco_picks_the_best_setting_on_the_other_corpora_and_reports_it_on_the_left_out_one() -> None:
    table = {  # setting -> objective per corpus
        "a": {"x": 0.9, "y": 0.1, "z": 0.1},
        "b": {"x": 0.2, "y": 0.6, "z": 0.6},
        "c": {"x": 0.5, "y": 0.5, "z": 0.2},
    }
    calls: list[tuple[str, str]] = []

    def evaluate(setting: str, corpus: str) -> float:
        calls.append((setting, corpus))
        return table[setting][corpus]

    choices = loco_select(["a", "b", "c"], ["x", "y", "z"], evaluate)
    assert {c: ch.setting for c, ch in choices.items()} == {"x": "b", "y": "a", "z": "a"}  # z: a ties c
    assert choices["x"].held_out_objective == pytest.approx(0.2)  # b on x: not the best x could have had
    assert choices["x"].others_objective == pytest.approx(0.6)
    assert choices["y"].others_objective == pytest.approx(0.5)
    assert sorted(calls) == sorted({(s, c) for s in "abc" for c in "xyz"})  # once per pair


def test_loco_breaks_ties_by_grid_order_and_treats_nan_as_worst() -> None:
    choices = loco_select([3, 2, 1], ["x", "y"], lambda s, c: float("nan") if s == 3 else 1.0)
    assert choices["x"].setting == 2 and choices["y"].setting == 2


@pytest.mark.parametrize("grid, corpora", [([], ["x", "y"]), ([1], ["x"]), ([1], ["x", "x"])])
def test_loco_refuses_what_it_cannot_do(grid: list[int], corpora: list[str]) -> None:
    with pytest.raises(ValueError):
        loco_select(grid, corpora, lambda s, c: 0.0)


def test_incident_objective_is_recall_within_budget_and_discounted_beyond() -> None:
    assert incident_objective(9, 10, 1.5) == pytest.approx(0.9)
    assert incident_objective(9, 10, 8.0) == pytest.approx(0.9 * 2 / 8)
    assert incident_objective(9, 10, None) == pytest.approx(0.9)
    assert incident_objective(0, 0, 4.0) == pytest.approx(0.5)  # fault-free: false alarms alone count
    with pytest.raises(ValueError):
        incident_objective(1, 2, 1.0, budget=0)


# ---------------------------------------------------------------------------------------------
# cadence gaps


def faults_at(minutes: list[float]) -> list[Fault]:
    return [Fault(T0 + pd.Timedelta(minutes=m), "p", "svc", "cpu_contention") for m in minutes]


def test_cadence_gap_slots_fill_missing_injections_and_one_after_the_last() -> None:
    faults = faults_at([0, 8, 16, 24, 48, 56])  # cadence 8; 24 -> 48 misses two slots
    slots = [(s - T0) / pd.Timedelta(minutes=1) for s in cadence_gap_slots(faults)]
    assert slots == pytest.approx([32, 40, 64])
    assert cadence_gap_slots(faults_at([0, 8])) == []


def test_only_false_alarms_on_a_gap_slot_are_set_aside() -> None:
    faults = faults_at([0, 8, 16, 24, 48, 56])
    opened = [1, 33, 41.5, 50, 90]  # detects 0; on slot 32; on slot 40; detects 48; elsewhere
    incidents = pd.DataFrame({"opened_at": [T0 + pd.Timedelta(minutes=m) for m in opened],
                              "services": "svc", "category": "saturation", "score": 1.0})
    kept, aside = set_aside_gap_alarms(incidents, faults)
    assert aside == 2
    assert [(t - T0) / pd.Timedelta(minutes=1) for t in kept["opened_at"]] == [1, 50, 90]


# ---------------------------------------------------------------------------------------------
# the baseline incident builder


def synthetic_day(name: str = "d1", spikes: dict[int, str] | None = None, seed: int = 0) -> NezhaDay:
    """Three services, two noisy series each and one constant, 1-minute samples for 2 hours;
    ``spikes``: minute -> service whose first series jumps there for three minutes."""
    rng = np.random.default_rng(seed)
    minutes = 120
    ds = pd.date_range(T0, periods=minutes, freq="1min")
    frames, rows = [], []
    spikes = spikes or {}
    for service in ("web", "cart", "pay"):
        for metric in ("cpu", "latency", "flat"):
            uid = f"{service}/{metric}"
            y = np.full(minutes, 5.0) if metric == "flat" else 10 + rng.normal(0, 1, minutes)
            for minute, where in spikes.items():
                if where == service and metric == "cpu":
                    y[minute : minute + 3] += 60
            frames.append(pd.DataFrame({"unique_id": uid, "ds": ds, "y": y}))
            rows.append({"unique_id": uid, "service": service, "metric": metric})
    telemetry = pd.concat(frames, ignore_index=True)
    catalogue = pd.DataFrame(rows)
    faults = [Fault(T0 + pd.Timedelta(minutes=m) - pd.Timedelta(seconds=30), s, s, "cpu_contention")
              for m, s in spikes.items()]
    return NezhaDay(name, telemetry, catalogue, {}, faults)


def test_baseline_incidents_open_on_a_spike_with_its_service_first() -> None:
    day = synthetic_day(spikes={80: "cart"})
    scores = series_z(day.telemetry, day.catalogue)
    assert np.all(scores.z[:, list(scores.ids).index("web/flat")] == 0)
    incidents = baseline_incidents(scores, threshold=20.0)
    assert len(incidents) == 1
    row = incidents.iloc[0]
    assert row["opened_at"] == T0 + pd.Timedelta(minutes=80)
    assert row["services"].split(";")[0] == "cart"
    assert len(row["services"].split(";")) == 3 and row["category"] == "unknown"
    assert row["closed_at"] == T0 + pd.Timedelta(minutes=83)


def test_baseline_incidents_are_causal() -> None:
    day = synthetic_day(spikes={80: "cart"})
    whole = series_z(day.telemetry, day.catalogue)
    cut = day.telemetry[day.telemetry["ds"] < T0 + pd.Timedelta(minutes=60)]
    early = series_z(cut, day.catalogue)
    np.testing.assert_allclose(whole.z[:60], early.z)


def test_a_lower_threshold_raises_at_least_as_many_incidents() -> None:
    scores = series_z(synthetic_day(spikes={60: "cart", 95: "pay"}).telemetry, synthetic_day().catalogue)
    counts = [len(baseline_incidents(scores, thr)) for thr in (3.0, 5.0, 20.0, 1e6)]
    assert counts == sorted(counts, reverse=True) and counts[-1] == 0 and counts[2] == 2


def test_suppression_opens_only_at_new_maxima_and_at_most_once_per_width() -> None:
    system = np.array([0, 9, 8, 10, 9, 0, 0, 0, 11, 0, 12], dtype=float)
    assert opening_steps(system, 5.0).tolist() == [1, 8, 10]  # upward crossings only
    assert opening_steps(system, 5.0, nms_width=3).tolist() == [1, 8]  # 3 is within 3 steps of 1; 10 of 8
    with pytest.raises(ValueError):
        baseline_incidents(series_z(synthetic_day().telemetry, synthetic_day().catalogue), 0.0)


def test_robust_z_detectors_score_in_the_unit_interval_and_agree_with_the_one_pass_scores() -> None:
    from models.anomaly.base import DETECTORS

    day = synthetic_day(spikes={80: "cart"})
    one = day.telemetry[day.telemetry["unique_id"] == "cart/cpu"].reset_index(drop=True)
    for name in ("robust_z", "robust_z_nms"):
        model = DETECTORS.get(name)()
        scored = model.fit(one.iloc[:40]).predict(one)
        assert scored["score"].between(0, 1).all()
        assert scored["score"].idxmax() == 80
        np.testing.assert_allclose(scored["score"], model.series_scores(one["ds"], one["y"].to_numpy()))


# ---------------------------------------------------------------------------------------------
# the runner and the CLI


def small_registry(tmp_path: Path) -> Registry[Corpus]:
    write_corpus(tmp_path / "nab")
    corpora: Registry[Corpus] = Registry("corpus")
    corpora.register("quiet")(Corpus("quiet", INCIDENTS, lambda root: [synthetic_day("q", {80: "cart"})]))
    corpora.register("busy")(Corpus("busy", INCIDENTS, lambda root: [
        synthetic_day("b", {50: "web", 90: "pay"}, seed=1)]))
    corpora.register("nab")(Corpus("nab", NAB, lambda root: NabCorpus(root / "nab")))
    return corpora


def test_run_scores_every_corpus_and_system_and_chooses_thresholds_without_the_corpus(tmp_path: Path) -> None:
    result = run(tmp_path, corpora=small_registry(tmp_path), grid=(5.0, 20.0, 1e6))
    frame = result.frame()
    assert len(frame) == 9 and set(frame["system"]) == {"foresight", "robust_z", "robust_z_nms"}
    assert sorted(result.order) == ["busy", "nab", "quiet"]
    foresight = frame[frame["system"] == "foresight"].set_index("corpus")["objective"]
    assert list(foresight.loc[result.order]) == sorted(foresight)  # worst first
    for system in ("robust_z", "robust_z_nms"):
        # incident corpora leave one corpus out; the NAB corpus leaves one of its categories out
        assert set(result.choices[system]) == {"busy", "quiet", "nab:artificialWithAnomaly", "nab:realThing"}
        for corpus in ("busy", "quiet"):
            choice = result.choices[system][corpus]
            row = frame[(frame["corpus"] == corpus) & (frame["system"] == system)].iloc[0]
            assert row["objective"] == pytest.approx(choice.held_out_objective)
            assert f"z >= {choice.setting:g} (leave-one-corpus-out)" in row["setting"]
        nab_row = frame[(frame["corpus"] == "nab") & (frame["system"] == system)].iloc[0]
        for category in ("artificialWithAnomaly", "realThing"):
            assert f"{result.choices[system]['nab:' + category].setting:g} ({category})" in nab_row["setting"]
    quiet = frame[(frame["corpus"] == "quiet") & (frame["system"] == "robust_z")].iloc[0]
    assert quiet["faults"] == 1 and np.isnan(quiet["fault_type_accuracy"])
    nab = frame[(frame["corpus"] == "nab") & (frame["system"] == "foresight")].iloc[0]
    assert -100 <= nab["nab_standard"] <= 100 and nab["threshold_fixed"] > 0


def test_run_refuses_an_unknown_corpus_before_reading(tmp_path: Path) -> None:
    with pytest.raises(UnknownPluginError, match="quiet"):
        run(tmp_path, ["nope"], corpora=small_registry(tmp_path))


def test_default_corpora_read_the_shared_data_layout(tmp_path: Path) -> None:
    write_nezha_day(tmp_path / "nezha-dev", name="2022-08-22", minutes=40, fault_minute=None)
    corpora = default_corpora()
    assert corpora.names() == ["nab-dev", "nezha-dev/2022-08-22", "nezha-dev/2023-01-29"]
    days = corpora.get("nezha-dev/2022-08-22").load(tmp_path)
    assert [d.name for d in days] == [d.name for d in load_nezha(tmp_path / "nezha-dev" / "2022-08-22")]
    assert corpora.get("nezha-dev/2022-08-22").set_aside_cadence_gaps
    assert not corpora.get("nezha-dev/2023-01-29").set_aside_cadence_gaps


def test_cli_prints_one_row_per_corpus_and_writes_csv_and_json(tmp_path: Path) -> None:
    write_corpus(tmp_path / "nab-dev")
    write_nezha_day(tmp_path / "nezha-dev", name="2022-08-22", minutes=90, fault_minute=60)
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["bench", "detection", "--data", str(tmp_path), "--corpus", "nab-dev",
                                      "--corpus", "nezha-dev/2022-08-22", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "nab-dev" in result.output and "nezha-dev/2022-08-22" in result.output
    assert "setting chosen without the held-out part" in result.output
    frame = pd.read_csv(out / "detection.csv")
    assert len(frame) == 6
    payload = json.loads((out / "detection.json").read_text())
    assert set(payload["loco"]["robust_z"]) == {
        "nab-dev:artificialWithAnomaly", "nab-dev:realThing", "nezha-dev/2022-08-22"}
    assert "in-sample" in frame.loc[frame["corpus"] == "nezha-dev/2022-08-22", "setting"].iloc[-1]


@pytest.mark.slow
def test_cli_runs_a_scenario_family_as_a_corpus_and_can_leave_them_out(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["bench", "detection", "--data", str(tmp_path), "--corpus",
                                      "scenarios/small-graph", "--scenario-systems", "1", "--out", str(out)])
    assert result.exit_code == 0, result.output
    frame = pd.read_csv(out / "detection.csv")
    assert set(frame["corpus"]) == {"scenarios/small-graph"}
    without = CliRunner().invoke(app, ["bench", "detection", "--data", str(tmp_path), "--corpus",
                                       "scenarios/small-graph", "--scenario-systems", "0"])
    assert without.exit_code != 0 and "scenarios/small-graph" in without.output


def test_cli_names_the_corpora_when_one_is_unknown(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["bench", "detection", "--data", str(tmp_path), "--corpus", "nope"])
    assert result.exit_code != 0
    assert "nab-dev" in result.output and "nope" in result.output


def test_mean_ad_fallback_keeps_a_mostly_constant_counter_that_ticks_at_a_modest_z() -> None:
    from models.anomaly.robust_z import trailing_robust_z

    y = np.zeros(200)
    y[::10] = 1.0  # one tick in ten: the MAD of any window is 0
    plain = trailing_robust_z(y, 60, 30)
    fallback = trailing_robust_z(y, 60, 30, mean_ad_fallback=True)
    assert plain[100] > 1e6  # a tick scores as if the series had never moved
    assert 1 < fallback[100] < 10
    np.testing.assert_array_equal(fallback[y == 0], 0.0)


def test_nab_categories_at_one_threshold_score_as_the_whole_corpus_does(tmp_path: Path) -> None:
    from bench.detection_corpora import NabEvaluation
    from models.evaluation.nab_scoring import score_at_threshold

    write_corpus(tmp_path / "nab")
    corpus = Corpus("nab", NAB, lambda root: NabCorpus(root / "nab"))
    evaluation = NabEvaluation(corpus, NabCorpus(tmp_path / "nab"))
    whole = score_at_threshold(evaluation._baseline_sweeps("robust_z"), evaluation.profiles["standard"], 5.0)
    split = evaluation.baseline_by_category("robust_z", {c: 5.0 for c in evaluation.categories()})
    assert split["nab_standard_fixed"] == pytest.approx(whole.score)
    assert split["objective"] == pytest.approx(whole.score / 100)


def test_foresight_stream_settings_can_be_chosen_leave_one_corpus_out(tmp_path: Path) -> None:
    corpora = small_registry(tmp_path)
    grid = [{"open_threshold": 1e6, "sustain_threshold": 4.0, "split_threshold": 1e6}, {}]  # never opens; shipped
    result = run(tmp_path, ["quiet", "busy"], corpora=corpora, grid=(20.0,), stream_grid=grid,
                 systems=("foresight",))
    assert set(result.choices["foresight"]) == {"quiet", "busy"}
    frame = result.frame().set_index("corpus")
    for corpus, choice in result.choices["foresight"].items():
        assert frame.loc[corpus, "objective"] == pytest.approx(choice.held_out_objective)
        assert frame.loc[corpus, "setting"].endswith("(leave-one-corpus-out)")
    never = run(tmp_path, ["quiet"], corpora=corpora, stream_grid=grid[:1], systems=("foresight",)).frame()
    assert never["detected"].iloc[0] == 0 and never["setting"].iloc[0].endswith("(in-sample)")


def test_cli_refuses_a_stream_grid_it_cannot_read(tmp_path: Path) -> None:
    for bad in ('{"open_threshold": 6}', '[{"no_such_setting": 1}]', "not json"):
        result = CliRunner().invoke(app, ["bench", "detection", "--data", str(tmp_path), "--stream-grid", bad])
        assert result.exit_code != 0 and "--stream-grid" in result.output


@pytest.mark.parametrize("name", ["robust_z", "robust_z_nms"])
def test_robust_z_detectors_score_a_later_window_as_the_whole_history_does(name: str) -> None:
    from models.anomaly.base import DETECTORS

    rng = np.random.default_rng(3)
    ds = pd.date_range(T0, periods=600, freq="5min")
    df = pd.concat([pd.DataFrame({"unique_id": u, "ds": ds, "y": rng.normal(0, 1, 600)}) for u in "ab"])
    whole = DETECTORS.get(name)(window="2h").fit(df).predict(df)
    cut = ds[400]
    later = DETECTORS.get(name)(window="2h").fit(df[df["ds"] < cut]).predict(df[df["ds"] >= cut])
    expected = whole[whole["ds"] >= cut].reset_index(drop=True)
    np.testing.assert_allclose(later["score"].to_numpy(), expected["score"].to_numpy())
    assert expected["score"].max() > 0.5  # not trivially equal: the window is scored
