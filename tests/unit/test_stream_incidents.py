"""Streaming incidents in the detect flow's shape (models.incidents.stream_builder) and the
incident pipeline the detect flow pages with (models.incidents.pipeline): its mode, settings and
page calibration."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench.datasets.nezha import NezhaDay, load_nezha
from foresight.settings import DetectConfig
from models.anomaly.base import DETECTORS
from models.incidents.base import INCIDENT_COLUMNS, INCIDENT_OUTPUT_COLUMNS, IncidentInputs, incident_id
from models.incidents.category import categorise, exhausted_kinds
from models.incidents.pipeline import IncidentPipeline, as_pipeline
from models.incidents.settings import PipelineSettings, RollupSettings, StreamSettings
from models.incidents.share_units import failed_share_unit
from models.incidents.stream import IncidentStream
from models.incidents.stream_builder import StreamBuilder, incident_rows, tail_score
from support.nezha import write_nezha_day

# The synthetic day starts 03:51:19; its fault shows in the row of 05:42 (row 110) on.
FAULT_SEEN_AT = pd.Timestamp("2022-08-22 05:42", tz="UTC")
T0 = pd.Timestamp("2026-05-04 10:00", tz="UTC")
# The champion detector's scores: none (the stream reads raw telemetry).
NO_SCORES = pd.DataFrame({"unique_id": [], "ds": pd.Series([], dtype="datetime64[ns, UTC]"), "score": []})


def _day(tmp_path: Path, **kwargs: object) -> NezhaDay:
    write_nezha_day(tmp_path, minutes=150, fault_minute=110, fault_service="cartservice", **kwargs)  # type: ignore[arg-type]
    return load_nezha(tmp_path)[0]


def _graph(day: NezhaDay) -> dict[str, list[str]]:
    return {caller: list(callees) for caller, callees in day.call_graph.items()}


def stream_incidents(
    telemetry: pd.DataFrame, catalogue: pd.DataFrame, call_graph: dict[str, list[str]] | None = None, *,
    resolve_after: str | pd.Timedelta = "30min", since: pd.Timestamp | None = None,
) -> pd.DataFrame:
    builder = StreamBuilder(StreamSettings(), RollupSettings(resolve_after=pd.Timedelta(resolve_after)))
    return builder.build(IncidentInputs(telemetry, catalogue, since=since, call_graph=call_graph)).incidents


def _page(cfg: DetectConfig, day: NezhaDay, since: pd.Timestamp, risk: pd.DataFrame | None = None,
          calibration: dict[str, float] | None = None) -> pd.DataFrame:
    """What the detect flow pages with a pipeline of ``cfg``'s settings and no detector scores."""
    pipeline = IncidentPipeline(DETECTORS.get("streaming")(), PipelineSettings.from_detect(cfg), calibration)
    inputs = IncidentInputs(day.telemetry, day.catalogue, since=since, scores=NO_SCORES, risk=risk,
                            call_graph=_graph(day))
    return pipeline.incidents(inputs).incidents


def test_a_fault_becomes_one_detect_flow_incident_on_its_service(tmp_path: Path) -> None:
    day = _day(tmp_path)
    incidents = stream_incidents(day.telemetry, day.catalogue, _graph(day), resolve_after="30min")
    assert list(incidents.columns) == [*INCIDENT_OUTPUT_COLUMNS, "ranked_services"] == list(INCIDENT_COLUMNS)
    assert len(incidents) == 1
    hit = incidents.iloc[0]
    assert hit["service"] == "cartservice" and hit["ranked_services"].split(";")[0] == "cartservice"
    assert hit["start"] == FAULT_SEEN_AT and pd.notna(hit["end"]) and hit["end"] > hit["start"]
    assert hit["category"] == "saturation" and hit["severity"] in ("warning", "error", "critical")
    assert hit["window_start"] == FAULT_SEEN_AT.floor("30min")
    assert hit["incident_id"] == incident_id("cartservice", hit["window_start"])
    assert 0.999 < hit["score"] <= 1.0  # evidence >= 6 (-log10 p) as a tail probability
    evidence = json.loads(hit["evidence"])
    assert evidence["evidence_level"] >= 6.0 and evidence["open_threshold"] >= 6.0
    top = evidence["series"][0]  # Grafana annotations name these ids
    assert top["unique_id"] in set(day.catalogue["unique_id"]) and top["resource_id"]
    assert hit["resource_id"] == day.catalogue.set_index("unique_id").loc[top["unique_id"], "resource_id"]


def test_overlapping_replays_give_the_same_incident_ids(tmp_path: Path) -> None:
    day = _day(tmp_path)
    telemetry = day.telemetry
    later = telemetry[telemetry["ds"] >= telemetry["ds"].min() + pd.Timedelta(minutes=40)]
    kwargs = {"call_graph": _graph(day), "resolve_after": pd.Timedelta(minutes=30)}
    full = stream_incidents(telemetry, day.catalogue, **kwargs)  # type: ignore[arg-type]
    overlap = stream_incidents(later, day.catalogue, **kwargs)  # type: ignore[arg-type]
    assert len(full) == 1
    assert list(overlap["incident_id"]) == list(full["incident_id"])


def test_two_problems_of_one_service_in_one_window_get_two_identities() -> None:
    # db fails at 10:02 and afresh at 10:10 (two incidents, as Nezha injects faults); web at 10:05.
    opened = [T0 + pd.Timedelta(minutes=m) for m in (2, 10, 5)]
    raised = pd.DataFrame({
        "opened_at": opened, "closed_at": [o + pd.Timedelta(minutes=4) for o in opened],
        "services": ["db;web", "db", "web"], "category": "saturation", "score": 8.0, "severity": "error",
        "evidence": json.dumps({"series": [], "ranked_services": []}), "reopened": 0,
    })
    catalogue = pd.DataFrame({"unique_id": ["db/cpu", "web/cpu"], "service": ["db", "web"], "metric": "cpu_usage"})
    out = incident_rows(raised, catalogue, pd.Timedelta(minutes=30)).set_index("start")
    assert out["incident_id"].is_unique  # three problems, three pages
    assert list(out["window_start"]) == [T0, T0, opened[1]]  # db's second keys by its own start
    assert out.loc[opened[0], "incident_id"] == incident_id("db", T0)  # the first keeps the window


def test_an_incident_still_open_at_the_newest_sample_has_no_end(tmp_path: Path) -> None:
    day = _day(tmp_path)
    cut = day.telemetry[day.telemetry["ds"] <= FAULT_SEEN_AT + pd.Timedelta(minutes=3)]
    incidents = stream_incidents(cut, day.catalogue, _graph(day))
    assert len(incidents) == 1 and pd.isna(incidents["end"].iloc[0])


def test_since_keeps_only_incidents_raised_in_the_reported_window(tmp_path: Path) -> None:
    day = _day(tmp_path)
    graph = _graph(day)
    before = stream_incidents(day.telemetry, day.catalogue, graph, since=FAULT_SEEN_AT)
    after = stream_incidents(
        day.telemetry, day.catalogue, graph, since=FAULT_SEEN_AT + pd.Timedelta(minutes=1)
    )
    assert len(before) == 1 and after.empty
    assert list(after.columns) == list(INCIDENT_COLUMNS)


def test_no_telemetry_gives_an_empty_frame_with_the_columns(tmp_path: Path) -> None:
    day = _day(tmp_path)
    empty = stream_incidents(day.telemetry.iloc[:0], day.catalogue, None)
    assert empty.empty and list(empty.columns) == list(INCIDENT_COLUMNS)


def test_evidence_maps_to_a_probability_like_score() -> None:
    np.testing.assert_allclose(tail_score(np.array([0.0, 2.0, 6.0, 40.0])), [0.0, 0.99, 0.999999, 1 - 1e-12])


@pytest.mark.parametrize(
    ("metric", "unit", "point"),
    [
        ("error_rate", "ratio", 0.01),  # the simulator's failed share, 0..1
        ("http_error_percent", "percent", 1.0),
        ("pod_success_rate", "percent", 1.0),  # Nezha's
        ("success_rate", "", 0.01),  # a success rate with no unit is taken as a ratio
        ("errors_total", "count", 0.0),  # a count of failures is not a share: no floor
        ("latency_p95", "ratio", 0.0),  # not an errors metric
    ],
)
def test_a_share_of_failed_requests_has_a_percentage_point_floor(
    metric: str, unit: str, point: float
) -> None:
    assert failed_share_unit(metric, unit) == point


def _error_ratio_stream() -> IncidentStream:
    catalogue = pd.DataFrame(
        {
            "unique_id": ["api/err", "api/cpu"],
            "service": ["api", "api"],
            "metric": ["error_rate", "cpu_pct"],
            "unit": ["ratio", "percent"],
        }
    )
    return IncidentStream(catalogue, {"api": []})


def test_an_error_ratio_blip_of_a_fraction_of_a_point_opens_nothing_and_an_outage_does() -> None:
    """An error ratio sits near 0: without an absolute floor its tiny spread made a blip of 0.3
    percentage points a many-sigma failure (the simulator's false alarms)."""
    rng = np.random.default_rng(5)
    stream = _error_ratio_stream()
    raised = []
    for i in range(120):
        error = 0.002 + rng.normal(0, 0.0002) + (0.003 if i == 80 else 0.0)  # a 0.3-point blip
        raised += stream.step(T0 + pd.Timedelta(minutes=5 * i), np.array([error, 30 + rng.normal(0, 1)]))
    assert raised == []
    outage = stream.step(T0 + pd.Timedelta(minutes=5 * 120), np.array([0.2, 30.0]))  # 20 % failing
    assert len(outage) == 1 and outage[0].category == "errors"


@pytest.mark.parametrize(
    ("metric", "unit", "peak", "full"),
    [
        ("disk_pct", "percent", 99.0, True),  # the simulator's
        ("disk_used_ratio", "ratio", 0.97, True),
        ("disk_pct", "percent", 80.0, False),
        ("disk_used_bytes", "bytes", 1e12, False),  # no capacity in the unit: cannot say
        ("mem_pct", "percent", 99.0, False),  # memory % is often of the request (see CAPACITY_KINDS)
    ],
)
def test_a_disk_is_full_from_95_percent_of_its_capacity(
    metric: str, unit: str, peak: float, full: bool
) -> None:
    assert exhausted_kinds([(metric, unit, peak)]) == ({"disk"} if full else set())


def test_a_full_disk_at_the_root_explains_the_failed_requests() -> None:
    assert categorise({"errors": 5.0}, {"errors": 5.0}, 2.0, exhausted={"disk"}) == "disk"
    assert categorise({"errors": 5.0}, {"errors": 5.0}, 2.0) == "errors"


@pytest.mark.parametrize(("disk_level", "category"), [(99.0, "disk"), (60.0, "errors")])
def test_failed_writes_on_a_slowly_filled_disk_are_a_disk_incident(disk_level: float, category: str) -> None:
    """The fill is slow, so the baseline follows it and the disk is not surprising when writes
    fail: only its level says why (the simulator's runaway writers were all called errors)."""
    catalogue = pd.DataFrame(
        {
            "unique_id": ["api/err", "api/disk"],
            "service": ["api", "api"],
            "metric": ["error_rate", "disk_pct"],
            "unit": ["ratio", "percent"],
        }
    )
    stream = IncidentStream(catalogue, {"api": []})
    rng = np.random.default_rng(6)
    fill = np.linspace(disk_level - 30, disk_level, 100)
    raised = []
    for i, disk in enumerate(fill):
        raised += stream.step(T0 + pd.Timedelta(minutes=5 * i), np.array([0.002 + rng.normal(0, 2e-4), disk]))
    assert raised == []
    failing = stream.step(T0 + pd.Timedelta(minutes=500), np.array([0.3, disk_level]))
    assert len(failing) == 1 and failing[0].category == category


def _cfg(builder: str) -> DetectConfig:
    return DetectConfig(incident_builder=builder)  # type: ignore[arg-type]


def test_the_flow_builds_stream_incidents_from_telemetry_when_configured(tmp_path: Path) -> None:
    day = _day(tmp_path)
    start = day.telemetry["ds"].min() + pd.Timedelta(minutes=60)
    stream = _page(_cfg("stream"), day, start)
    rollup = _page(_cfg("rollup"), day, start)
    assert list(stream["service"]) == ["cartservice"] and stream["start"].iloc[0] >= start
    assert rollup.empty  # the roll-up reads the champion's scores only, and there are none


def test_the_stream_is_the_default_builder_and_unknown_builders_are_refused() -> None:
    assert DetectConfig().incident_builder == "stream"
    assert DetectConfig(incident_builder="rollup").incident_builder == "rollup"
    with pytest.raises(ValueError, match="incident_builder"):
        _cfg("magic")


def test_stream_params_reach_the_stream_builder_and_unknown_ones_are_named(tmp_path: Path) -> None:
    day = _day(tmp_path)
    start = day.telemetry["ds"].min() + pd.Timedelta(minutes=60)
    strict = DetectConfig(incident_builder="stream", stream_params={"open_threshold": 1e6, "sustain_threshold": 1e6,
                                                                    "split_threshold": 1e6})
    assert _page(strict, day, start).empty
    typo = DetectConfig(incident_builder="stream", stream_params={"open_treshold": 9.0})
    with pytest.raises(ValueError, match="open_treshold.*open_threshold"):
        _page(typo, day, start)


def _risk(services: list[str], start: pd.Timestamp, minutes: int, level: float = 0.9) -> pd.DataFrame:
    """Failure risk at ``level`` for ``minutes`` minutes from ``start`` on each of ``services``."""
    ds = pd.date_range(start, periods=minutes, freq="1min")
    return pd.concat(
        [pd.DataFrame({"service": s, "ds": ds, "risk": level}) for s in services], ignore_index=True
    ).astype({"ds": "datetime64[us, UTC]"})


def test_in_stream_mode_the_failure_predictor_still_warns_where_the_stream_sees_nothing(tmp_path: Path) -> None:
    day = _day(tmp_path)
    start = day.telemetry["ds"].min() + pd.Timedelta(minutes=60)
    streamed = _page(_cfg("stream"), day, start)
    [fault] = streamed.itertuples()
    # High risk on a quiet service, and on the faulty one while its incident is open.
    risk = _risk(["frontend"], start, 20)
    risk = pd.concat([risk, _risk(["cartservice"], fault.start, 5)], ignore_index=True)
    both = _page(_cfg("stream"), day, start, risk)
    assert sorted(both["service"]) == ["cartservice", "frontend"]  # the fault pages once, not twice
    warning = both[both["service"] == "frontend"].iloc[0]
    assert warning["severity"] == "warning" and warning["ranked_services"].split(";")[0] == "frontend"
    assert both[both["service"] == "cartservice"].iloc[0]["incident_id"] == fault.incident_id
    assert list(both.columns) == list(streamed.columns)


def test_a_warning_before_the_stream_sees_the_fault_and_the_incident_share_one_page(tmp_path: Path) -> None:
    day = _day(tmp_path)
    start = day.telemetry["ds"].min() + pd.Timedelta(minutes=60)
    [fault] = _page(_cfg("stream"), day, start).itertuples()
    early = fault.start - pd.Timedelta(minutes=40)
    risk = _risk(["cartservice"], early, 45)  # warns 40 minutes ahead and stays high into the fault
    [one] = _page(_cfg("stream"), day, start, risk).itertuples()
    # paged when the predictor's warning opened (after the roll-up's `for:` of three samples)
    assert one.service == "cartservice" and early < one.start < fault.start - pd.Timedelta(minutes=30)
    assert one.incident_id != fault.incident_id  # the warning's id: same dedup key, same page
    assert one.category == fault.category and one.ranked_services == fault.ranked_services


def test_a_trained_calibration_is_the_page_budgets_prior_and_the_replay_returns_its_own(tmp_path: Path) -> None:
    day = _day(tmp_path)
    start = day.telemetry["ds"].min() + pd.Timedelta(minutes=60)
    cfg = _cfg("stream")
    assert len(_page(cfg, day, start)) == 1
    # 150 minutes are too few hourly blocks for a fit of its own: the prior decides.
    strict = {sv: 1e6 for sv in day.catalogue["service"]}
    assert _page(cfg, day, start, calibration=strict).empty
    built = StreamBuilder().build(IncidentInputs(day.telemetry, day.catalogue, call_graph=_graph(day),
                                                 calibration=strict))
    assert set(built.calibration) >= set(day.catalogue["service"]) and set(built.calibration.values()) == {1e6}
    off = DetectConfig(incident_builder="stream", stream_params={"page_budget_per_day": None})
    assert len(_page(off, day, start, calibration=strict)) == 1


def test_fitting_a_stream_pipeline_learns_its_calibration_and_a_clone_forgets_it(tmp_path: Path) -> None:
    import pickle

    day = _day(tmp_path)
    pipeline = IncidentPipeline(DETECTORS.get("streaming")(), PipelineSettings.from_detect(_cfg("stream")))
    fitted = pipeline.clone().fit(day.telemetry, day.catalogue, _graph(day))
    assert set(fitted.calibration) >= set(day.catalogue["service"]) and min(fitted.calibration.values()) >= 6.0
    assert fitted.clone().calibration == {} and fitted.is_fitted and not fitted.clone().is_fitted
    kept = pickle.loads(pickle.dumps(fitted))  # what MLflow stores and the detect flow loads
    assert kept.calibration == fitted.calibration and kept.settings == fitted.settings
    assert kept.name == "stream+streaming" and kept.get_params()["stream.open_threshold"] == 6.0
    rollup = IncidentPipeline(DETECTORS.get("streaming")(), PipelineSettings.from_detect(_cfg("rollup")))
    assert rollup.clone().fit(day.telemetry, day.catalogue, _graph(day)).calibration == {}  # nothing to calibrate


def test_a_bare_detector_champion_pages_with_the_configured_settings(caplog: pytest.LogCaptureFixture) -> None:
    detector = DETECTORS.get("streaming")()
    cfg = DetectConfig(incident_builder="rollup", anomaly_threshold=0.999)
    with caplog.at_level("WARNING"):
        wrapped = as_pipeline(detector, cfg)
    assert wrapped.detector is detector and wrapped.settings == PipelineSettings.from_detect(cfg)
    assert "bare detector" in caplog.text
    assert as_pipeline(wrapped, DetectConfig()) is wrapped  # a pipeline keeps its own settings
