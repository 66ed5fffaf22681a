"""The per-series detector resumed from its kept state (models.anomaly.state_resume): a chain of
runs, each feeding only the new rows, scores exactly what one replay of all the data scores, and
builds the same incidents from those scores; a state that does not fit replays, saying why."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import foresight.cli as cli
from models.anomaly.base import DETECTORS
from models.anomaly.state_resume import (
    DetectorState,
    PartScores,
    advance_scores,
    detector_key,
    replay_scores,
    unusable_reason,
)
from models.anomaly.stepped import is_stepped
from models.incidents.base import IncidentInputs
from models.incidents.pipeline import IncidentPipeline
from models.incidents.settings import PipelineSettings
from simulator import SimulatorSource

END = pd.Timestamp("2026-03-05", tz="UTC")
HOUR = pd.Timedelta(hours=1)


@pytest.fixture(scope="module")
def fleet() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Three days of the simulated fleet, the services of a few series (enough for its faults)."""
    batch = SimulatorSource(seed=3, days=3, end=END).fetch()
    services = sorted(batch.catalogue["service"].unique())[:3]
    catalogue = batch.catalogue[batch.catalogue["service"].isin(services)]
    telemetry = batch.telemetry[batch.telemetry["unique_id"].isin(catalogue["unique_id"])]
    return telemetry.reset_index(drop=True), catalogue.reset_index(drop=True)


def _fitted(name: str, telemetry: pd.DataFrame):
    return DETECTORS.get(name).for_incidents().fit(telemetry[telemetry["ds"] < telemetry["ds"].min() + 12 * HOUR])


def _chain(detector, telemetry: pd.DataFrame, splits: list[pd.Timestamp], since: pd.Timestamp) -> list[PartScores]:
    """A first run up to ``splits[0]``, then one run per later split resuming from the pickled state."""
    runs = [replay_scores(detector, telemetry[telemetry["ds"] <= splits[0]], since)]
    for split in splits[1:]:
        state = pickle.loads(pickle.dumps(runs[-1].state))  # what the checkpoint store does with it
        runs.append(advance_scores(state, telemetry[telemetry["ds"] <= split], since))
    return runs


@pytest.mark.parametrize("name", ["streaming_ensemble", "streaming"])
def test_a_chain_of_resumed_runs_scores_what_one_replay_scores(fleet, name: str) -> None:
    telemetry, _ = fleet
    detector = _fitted(name, telemetry)
    start = telemetry["ds"].min()
    since = start + 30 * HOUR  # the reported window: the last 42 hours
    whole = replay_scores(detector, telemetry, since)
    expected = detector.predict(telemetry)
    pd.testing.assert_frame_equal(whole.scores, expected[expected["ds"] >= since].reset_index(drop=True))
    assert (whole.scores["score"] > 0.99).sum() >= 3, "some anomalies, so the comparison compares something"

    # an odd minute: a split falls mid-block of the staggered nearest-neighbour member
    splits = [start + 31 * HOUR + pd.Timedelta(minutes=35), start + 40 * HOUR, start + 40 * HOUR + pd.Timedelta(minutes=5),
              start + 55 * HOUR, telemetry["ds"].max()]
    runs = _chain(detector, telemetry, splits, since)
    for split, run in zip(splits, runs, strict=True):
        upto = whole.scores[whole.scores["ds"] <= split].reset_index(drop=True)
        pd.testing.assert_frame_equal(run.scores, upto, obj=f"scores of the run up to {split}")
        assert run.late == 0
    for before, split, run in zip(splits, splits[1:], runs[1:], strict=False):
        assert run.steps == telemetry.loc[(telemetry["ds"] > before) & (telemetry["ds"] <= split), "ds"].nunique()


def test_the_roll_up_builds_the_same_incidents_from_resumed_scores(fleet) -> None:
    telemetry, catalogue = fleet
    detector = _fitted("streaming_ensemble", telemetry)
    since = telemetry["ds"].min() + 30 * HOUR
    pipeline = IncidentPipeline(detector, PipelineSettings(mode="rollup"))
    whole = pipeline.incidents(IncidentInputs(telemetry, catalogue, since=since,
                                              scores=replay_scores(detector, telemetry, since).scores)).incidents
    assert len(whole) >= 1
    [*_, last] = _chain(detector, telemetry, [since + 5 * HOUR, since + 20 * HOUR, telemetry["ds"].max()], since)
    chained = pipeline.incidents(IncidentInputs(telemetry, catalogue, since=since, scores=last.scores)).incidents
    pd.testing.assert_frame_equal(chained, whole)


def test_the_kept_scores_follow_the_window_and_late_samples_are_counted_not_rescored(fleet) -> None:
    telemetry, _ = fleet
    detector = _fitted("streaming", telemetry)
    start = telemetry["ds"].min()
    split = start + 40 * HOUR
    first = replay_scores(detector, telemetry[telemetry["ds"] <= split], start + 30 * HOUR)
    assert first.state.kept.shape == (first.state.last_row - first.state.kept_from + 1, len(first.state.ids))
    # one series' last sample before the split arrives only now, and the window has moved on
    uid = first.state.ids[0]
    held = telemetry[(telemetry["unique_id"] == uid) & (telemetry["ds"] == split)]
    earlier = telemetry[(telemetry["ds"] <= split)].drop(held.index)
    first = replay_scores(detector, earlier, start + 30 * HOUR)
    second = advance_scores(first.state, telemetry[telemetry["ds"] <= split + HOUR], start + 32 * HOUR)
    assert second.late == 1 and second.steps == 12
    assert second.scores["ds"].min() >= start + 32 * HOUR
    late_row = second.scores[(second.scores["unique_id"] == uid) & (second.scores["ds"] == split)]
    assert late_row["score"].tolist() == [0.0], "scored when its row was fed: missing then"
    assert second.state.kept_from <= second.state.first_row_at(start + 32 * HOUR) + 1


def test_a_state_that_does_not_fit_says_why(fleet) -> None:
    telemetry, _ = fleet
    detector = _fitted("streaming_ensemble", telemetry)
    start = telemetry["ds"].min()
    since = start + 30 * HOUR
    key = detector_key(detector, "3")
    part = replay_scores(detector, telemetry[telemetry["ds"] <= start + 40 * HOUR], since)
    state = DetectorState(key, [part.state])
    assert unusable_reason(state, key, telemetry, since) is None
    assert "champion changed (checkpoint of version 3, now 4)" in str(
        unusable_reason(state, detector_key(detector, "4"), telemetry, since))
    other = DETECTORS.get("streaming_ensemble").for_incidents(coarse_block=4).fit(telemetry[telemetry["ds"] < since])
    assert "parameters" in str(unusable_reason(state, detector_key(other, "3"), telemetry, since))
    recent = telemetry[telemetry["ds"] > start + 41 * HOUR]
    assert "older than the loaded window" in str(unusable_reason(state, key, recent, since))
    assert "ahead of the newest telemetry" in str(
        unusable_reason(state, key, telemetry[telemetry["ds"] <= start + 39 * HOUR], since))
    assert "longer lookback" in str(unusable_reason(state, key, telemetry, since - 2 * HOUR))
    newcomer = telemetry.tail(5).assign(unique_id="cart/i-new/cpu_pct")  # a series with new samples
    assert "does not score" in str(unusable_reason(state, key, pd.concat([telemetry, newcomer]), since))
    # one whose samples all lie before the day of late samples is not scored either way: no reason
    gone = telemetry.head(5).assign(unique_id="cart/i-gone/cpu_pct")
    assert unusable_reason(state, key, pd.concat([telemetry, gone]), since) is None
    newest_only = DetectorState(key, [replay_scores(detector, telemetry[telemetry["ds"] <= start + 40 * HOUR], since,
                                                    keep_window=False).state])
    assert unusable_reason(newest_only, key, telemetry, since, keep_window=False) is None
    assert "kept no window of scores" in str(unusable_reason(newest_only, key, telemetry, since))


def test_a_detector_without_a_step_wise_state_is_not_stepped() -> None:
    assert is_stepped(DETECTORS.get("streaming_ensemble")()) and is_stepped(DETECTORS.get("streaming")())
    assert not is_stepped(DETECTORS.get("robust_seasonal")())


def test_first_row_at_never_passes_a_row_a_later_sample_snaps_to() -> None:
    detector = DETECTORS.get("streaming")()
    ds = pd.date_range("2026-03-01", periods=300, freq="5min", tz="UTC")
    frame = pd.DataFrame({"unique_id": "a", "ds": ds, "y": np.sin(np.arange(300.0))})
    state = replay_scores(detector.fit(frame), frame, ds[100]).state
    for since in [ds[100], ds[100] + pd.Timedelta(seconds=150), ds[100] + pd.Timedelta(seconds=151)]:
        later = pd.Series([since, since + pd.Timedelta(seconds=149), since + pd.Timedelta(minutes=7)])
        assert (state.row_of(later) >= state.first_row_at(since)).all()


def test_cli_full_replay_reaches_the_detect_flow_only(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[dict[str, object]] = []

    def fake_flow(**kwargs: object) -> dict[str, object]:
        calls.append(kwargs)
        return {"ok": True}

    monkeypatch.setattr(cli, "_flow", lambda name: fake_flow)
    runner = CliRunner()
    assert runner.invoke(cli.app, ["run", "detect", "--full-replay"]).exit_code == 0
    assert runner.invoke(cli.app, ["run", "detect"]).exit_code == 0
    assert calls == [{"config_file": None, "full_replay": True}, {"config_file": None}]
    refused = runner.invoke(cli.app, ["run", "train", "--full-replay"])
    assert refused.exit_code != 0 and "only applies to the detect flow" in refused.output and len(calls) == 2


def test_without_the_window_a_resumed_run_reports_each_series_newest_score_as_a_replay_does(fleet) -> None:
    """The stream mode reads no scores: only each series' newest goes out (the Pushgateway)."""
    telemetry, _ = fleet
    detector = _fitted("streaming_ensemble", telemetry)
    start = telemetry["ds"].min()
    since = start + 30 * HOUR
    # a series that stops reporting after the first run keeps its newest score of then
    quiet = sorted(telemetry["unique_id"].unique())[0]
    telemetry = telemetry[(telemetry["unique_id"] != quiet) | (telemetry["ds"] <= start + 40 * HOUR)]
    whole = replay_scores(detector, telemetry, since).scores
    runs = [replay_scores(detector, telemetry[telemetry["ds"] <= start + 40 * HOUR], since, keep_window=False)]
    for split in (start + 40 * HOUR + pd.Timedelta(minutes=5), start + 55 * HOUR, telemetry["ds"].max()):
        state = pickle.loads(pickle.dumps(runs[-1].state))
        runs.append(advance_scores(state, telemetry[telemetry["ds"] <= split], since))
        assert state.kept is None
        newest = _newest(runs[-1].scores)
        assert quiet in set(newest["unique_id"])
        pd.testing.assert_frame_equal(newest, _newest(whole[whole["ds"] <= split]), obj=f"newest scores up to {split}")
    new_rows = (telemetry["ds"] > start + 55 * HOUR).sum()
    assert len(runs[-1].scores) == new_rows + 1, "the new rows' scores and the quiet series' newest, no more"


def _newest(scores: pd.DataFrame) -> pd.DataFrame:
    newest = scores.sort_values("ds", kind="stable").drop_duplicates("unique_id", keep="last")
    return newest.sort_values("unique_id").reset_index(drop=True)
