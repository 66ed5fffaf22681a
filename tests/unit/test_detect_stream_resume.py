"""The detect flow's incident stream resumed from its state (models.incidents.stream_resume):
fed only the new steps, it raises what one replay of all the data raises, with the same ids."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest

from models.anomaly.base import DETECTORS
from models.incidents.base import IncidentInputs
from models.incidents.pipeline import IncidentPipeline
from models.incidents.settings import PipelineSettings, StreamSettings
from models.incidents.stream_resume import StreamState
from simulator import SimulatorSource
from simulator.fleet import CALL_GRAPH

pytestmark = pytest.mark.slow  # a second or more each: make test runs them, make test-fast does not

END = pd.Timestamp("2026-03-05", tz="UTC")
GRAPH = {caller: list(callees) for caller, callees in CALL_GRAPH.items()}


@pytest.fixture(scope="module")
def fleet() -> tuple[pd.DataFrame, pd.DataFrame]:
    batch = SimulatorSource(seed=3, days=4, end=END).fetch()
    return batch.telemetry, batch.catalogue


@pytest.fixture(scope="module")
def pipeline() -> IncidentPipeline:
    return IncidentPipeline(DETECTORS.get("streaming")(), PipelineSettings())


def _inputs(
    telemetry: pd.DataFrame, catalogue: pd.DataFrame, since: pd.Timestamp | None = None
) -> IncidentInputs:
    return IncidentInputs(telemetry, catalogue, since=since, call_graph=GRAPH)


def _resumed(
    pipeline: IncidentPipeline,
    telemetry: pd.DataFrame,
    catalogue: pd.DataFrame,
    state: StreamState | None,
    version: str = "1",
    since: pd.Timestamp | None = None,
):
    return pipeline.resumable_incidents(_inputs(telemetry, catalogue, since), state, version)


def _through_pickle(state: StreamState) -> StreamState:
    return pickle.loads(pickle.dumps(state))  # what the checkpoint store does with it


@pytest.fixture(scope="module")
def whole(fleet, pipeline) -> pd.DataFrame:
    telemetry, catalogue = fleet
    incidents = pipeline.incidents(_inputs(telemetry, catalogue)).incidents
    assert len(incidents) >= 3  # the fleet's faults, so the comparisons below compare something
    return incidents


def test_a_replay_from_no_state_is_the_builders_replay(fleet, pipeline, whole) -> None:
    telemetry, catalogue = fleet
    built, resumed = _resumed(pipeline, telemetry, catalogue, None)
    pd.testing.assert_frame_equal(built.incidents, whole)
    assert not resumed.report.resumed and resumed.report.full_replay_reason == "no checkpoint"
    assert resumed.report.steps_scored == telemetry["ds"].nunique()


def test_resuming_at_any_step_around_an_incident_gives_the_whole_replays_incidents(
    fleet, pipeline, whole
) -> None:
    telemetry, catalogue = fleet
    step = pd.Timedelta(minutes=5)
    splits = [start + k * step for start in whole["start"] for k in (-1, 0, 2)]  # before, at, inside
    for split in splits:
        _, first = _resumed(pipeline, telemetry[telemetry["ds"] <= split], catalogue, None)
        built, second = _resumed(pipeline, telemetry, catalogue, _through_pickle(first.state))
        pd.testing.assert_frame_equal(built.incidents, whole, obj=f"resumed after {split}")
        assert second.report.resumed and second.report.full_replay_reason == ""
        assert second.report.steps_scored == telemetry.loc[telemetry["ds"] > split, "ds"].nunique()
        assert second.report.late_samples == 0


def test_an_incident_open_at_the_checkpoint_resolves_later_under_the_id_it_was_paged_with(
    fleet, pipeline, whole
) -> None:
    telemetry, catalogue = fleet
    first_incident = whole.iloc[0]
    split = first_incident["start"] + pd.Timedelta(minutes=5)
    built, first = _resumed(pipeline, telemetry[telemetry["ds"] <= split], catalogue, None)
    [opened] = built.incidents.itertuples()
    assert pd.isna(opened.end) and opened.incident_id == first_incident["incident_id"]
    later, _ = _resumed(pipeline, telemetry, catalogue, _through_pickle(first.state))
    again = later.incidents.set_index("incident_id").loc[opened.incident_id]
    assert again["end"] == first_incident["end"] and pd.notna(again["end"])


def test_a_champion_or_settings_change_replays_in_full(fleet, pipeline) -> None:
    telemetry, catalogue = fleet
    part = telemetry[telemetry["ds"] <= telemetry["ds"].min() + pd.Timedelta(days=2)]
    _, first = _resumed(pipeline, part, catalogue, None, version="1")
    _, other_version = _resumed(pipeline, telemetry, catalogue, _through_pickle(first.state), version="2")
    assert not other_version.report.resumed and "champion changed" in other_version.report.full_replay_reason
    assert other_version.report.steps_scored == telemetry["ds"].nunique()

    stricter = IncidentPipeline(
        pipeline.detector, PipelineSettings(stream=StreamSettings.from_params({"open_threshold": 7.0}))
    )
    _, other_settings = _resumed(stricter, telemetry, catalogue, _through_pickle(first.state), version="1")
    assert not other_settings.report.resumed and "settings" in other_settings.report.full_replay_reason


def test_a_checkpoint_older_than_the_loaded_window_or_ahead_of_it_replays(fleet, pipeline) -> None:
    telemetry, catalogue = fleet
    day = pd.Timedelta(days=1)
    start = telemetry["ds"].min()
    _, first = _resumed(pipeline, telemetry[telemetry["ds"] <= start + day], catalogue, None)
    recent = telemetry[telemetry["ds"] > start + 2 * day]
    _, stale = _resumed(pipeline, recent, catalogue, _through_pickle(first.state))
    assert not stale.report.resumed and "older than the loaded window" in stale.report.full_replay_reason
    _, ahead = _resumed(
        pipeline, telemetry[telemetry["ds"] < start + day / 2], catalogue, _through_pickle(first.state)
    )
    assert not ahead.report.resumed and "ahead of the newest telemetry" in ahead.report.full_replay_reason


def test_a_series_the_stream_does_not_watch_replays(fleet, pipeline) -> None:
    telemetry, catalogue = fleet
    newcomer = "cart/i-new/cpu_pct"
    split = telemetry["ds"].min() + pd.Timedelta(days=2)
    _, first = _resumed(pipeline, telemetry[telemetry["ds"] <= split], catalogue, None)
    later = telemetry[telemetry["ds"] > split]
    extra = (
        later[later["unique_id"] == "cart/i-1/cpu_pct"].assign(unique_id=newcomer)
        if ("cart/i-1/cpu_pct" in set(later["unique_id"]))
        else later.iloc[:10].assign(unique_id=newcomer)
    )
    row = catalogue.iloc[[0]].assign(unique_id=newcomer)
    _, resumed = _resumed(
        pipeline, pd.concat([telemetry, extra]), pd.concat([catalogue, row]), _through_pickle(first.state)
    )
    assert not resumed.report.resumed and "does not watch" in resumed.report.full_replay_reason


def test_late_samples_are_counted_not_rescored(fleet, pipeline) -> None:
    telemetry, catalogue = fleet
    split = telemetry["ds"].min() + pd.Timedelta(days=2)
    late = (
        (telemetry["ds"] > split - pd.Timedelta(hours=1))
        & (telemetry["ds"] <= split)
        & (telemetry["unique_id"] == telemetry["unique_id"].iloc[0])
    )
    assert late.sum() == 12
    _, first = _resumed(pipeline, telemetry[(telemetry["ds"] <= split) & ~late], catalogue, None)
    steps_before = first.state.stream._steps
    _, second = _resumed(pipeline, telemetry, catalogue, _through_pickle(first.state))
    assert second.report.resumed and second.report.late_samples == 12
    assert second.state.stream._steps - steps_before == telemetry.loc[telemetry["ds"] > split, "ds"].nunique()


def test_an_incident_out_of_the_window_is_tracked_until_its_resolve_is_published(
    fleet, pipeline, whole
) -> None:
    telemetry, catalogue = fleet
    incident = whole.iloc[0]
    split = incident["start"] + pd.Timedelta(minutes=5)
    since = telemetry["ds"].min()
    _, first = _resumed(pipeline, telemetry[telemetry["ds"] <= split], catalogue, None, since=since)
    first.state.forget_resolved(since)
    later_since = split + pd.Timedelta(minutes=5)  # the incident started before the reported window
    until_closed = telemetry[telemetry["ds"] <= incident["end"]]
    built, second = _resumed(
        pipeline, until_closed, catalogue, _through_pickle(first.state), since=later_since
    )
    [row] = built.incidents.itertuples()
    assert row.incident_id == incident["incident_id"] and row.end == incident["end"], (
        "its resolve is reported"
    )
    held = _through_pickle(second.state)
    held.forget_resolved(later_since, kept_open={incident["service"]})  # a failed source holds it open
    assert [t.incident_id for t in held.tracked] == [row.incident_id]
    second.state.forget_resolved(later_since)
    assert second.state.tracked == []
    built, _ = _resumed(pipeline, telemetry, catalogue, _through_pickle(second.state), since=later_since)
    assert incident["incident_id"] not in set(built.incidents["incident_id"])


def test_the_roll_up_keeps_no_state(fleet) -> None:
    telemetry, catalogue = fleet
    rollup = IncidentPipeline(DETECTORS.get("streaming")().fit(telemetry), PipelineSettings(mode="rollup"))
    built, resumed = rollup.resumable_incidents(_inputs(telemetry.iloc[:5000], catalogue), None, "1")
    assert resumed is None and isinstance(built.incidents, pd.DataFrame)
    assert np.isfinite(built.incidents["score"]).all()
