"""Streaming surprise and streaming incidents (models.incidents.surprise, models.incidents.stream)."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest

from models.incidents.call_graph import call_graph_systems
from models.incidents.metric_vocabulary import metric_family
from models.incidents.replay import replay
from models.incidents.settings import StreamSettings
from models.incidents.stream import IncidentStream, onset_runs
from models.incidents.surprise import StreamingSurprise
from models.incidents.wire_latency import wire_pairs

T0 = pd.Timestamp("2026-05-04 10:00", tz="UTC")


def test_a_jump_far_beyond_recent_noise_is_surprising_and_ordinary_noise_is_not() -> None:
    rng = np.random.default_rng(1)
    scorer = StreamingSurprise(np.array([1, -1]))
    for _ in range(40):
        step = scorer.update(np.array([10 + rng.normal(0, 0.1), 50 + rng.normal(0, 0.1)]))
        assert step.surprise.max() < 2.5
    up = scorer.update(
        np.array([30.0, 80.0])
    )  # series 0 rises (a problem), series 1 rises (it only counts falls)
    assert up.surprise[0] > 3 and up.surprise[1] == 0.0  # 40 sigmas (at the 5 % floor): p ~ 3e-4
    assert up.expected[0] == pytest.approx(10, abs=0.1) and up.observed[0] == 30.0


def test_a_series_that_often_jumps_learns_that_its_jumps_are_ordinary() -> None:
    rng = np.random.default_rng(2)
    scorer = StreamingSurprise(np.array([1]))
    first = None
    for i in range(400):
        spike = i % 10 == 9  # a sparse p99: every tenth sample jumps ten-fold
        step = scorer.update(np.array([1 + rng.normal(0, 0.01) + (9 if spike else 0)]))
        if spike and first is None:
            first = float(step.surprise[0])
    assert first is not None and first > 3
    assert float(step.surprise[0]) < 1.5  # the 40th jump: one in ten, no surprise


def test_surprise_is_causal_a_later_sample_never_changes_earlier_scores() -> None:
    rng = np.random.default_rng(3)
    values = rng.normal(0, 1, (60, 3)).cumsum(axis=0)
    a, b = StreamingSurprise(np.array([1, 0, -1])), StreamingSurprise(np.array([1, 0, -1]))
    full = [a.update(v).surprise for v in values]
    part = [b.update(v).surprise for v in values[:30]]
    np.testing.assert_array_equal(np.stack(full[:30]), np.stack(part))


def test_a_series_with_no_sample_yet_scores_nothing_and_warns_nothing() -> None:
    scorer = StreamingSurprise(np.array([1, 1]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a RuntimeWarning would fail the test
        for value in (1.0, 1.1, 0.9, 1.0, 1.05, 0.95, 5.0):
            step = scorer.update(np.array([value, np.nan]))  # the second series never reports
    assert np.isnan(step.expected[1]) and step.surprise[1] == 0.0 and step.surprise[0] > 0


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="directions"):
        StreamingSurprise(np.array([2]))
    with pytest.raises(ValueError, match="sustain_threshold"):
        StreamSettings(open_threshold=3.0, sustain_threshold=4.0)


def test_metric_families_drop_percentile_and_unit_variants() -> None:
    assert metric_family("pod_server_latency_p95") == "pod_server_latency"
    assert metric_family("cpu_usage_rate") == metric_family("cpu_usage") == "cpu"


CATALOGUE = pd.DataFrame(
    [
        ("web/cpu", "web", "web-1", "cpu_usage_rate"),
        ("web/lat", "web", "web-1", "pod_server_latency_p95"),
        ("db/cpu", "db", "db-1", "cpu_usage_rate"),
        ("db/lat", "db", "db-1", "pod_server_latency_p95"),
        ("db/lat99", "db", "db-1", "pod_server_latency_p99"),
        ("db/bytes", "db", "db-1", "network_receive_bytes"),
    ],
    columns=["unique_id", "service", "resource_id", "metric"],
)
GRAPH = {"web": ("db",), "db": ()}


def telemetry(n: int = 120, fault: tuple[int, int] | None = (90, 96), seed: int = 4) -> pd.DataFrame:
    """Noisy flat series; during ``fault`` db's CPU and latency jump and web's latency rises a little."""
    rng = np.random.default_rng(seed)
    ds = pd.date_range(T0, periods=n, freq="1min")
    base = {
        "web/cpu": 20.0,
        "web/lat": 0.2,
        "db/cpu": 30.0,
        "db/lat": 0.01,
        "db/lat99": 0.02,
        "db/bytes": 1e4,
    }
    frames = []
    for uid, level in base.items():
        y = level * (1 + rng.normal(0, 0.02, n))
        if fault is not None:
            lo, hi = fault
            factor = {"db/cpu": 3.0, "db/lat": 20.0, "db/lat99": 20.0, "web/lat": 1.5}.get(uid, 1.0)
            y[lo:hi] *= factor
        frames.append(pd.DataFrame({"unique_id": uid, "ds": ds, "y": y}))
    return pd.concat(frames, ignore_index=True)


def test_a_fault_raises_one_incident_ranking_the_callee_first_with_category_and_evidence() -> None:
    out = replay(telemetry(), CATALOGUE, GRAPH)
    assert len(out) == 1
    row = out.iloc[0]
    assert row["opened_at"] == T0 + pd.Timedelta(minutes=90)  # at the first faulty sample
    assert row["services"].split(";")[0] == "db"
    assert row["category"] == "saturation"
    assert row["closed_at"] > row["opened_at"]
    evidence = json.loads(row["evidence"])
    top = evidence["series"][0]
    assert top["service"] == "db" and top["observed"] > 5 * top["expected"]


def _two_systems(shift_minutes: int) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, tuple[str, ...]]]:
    """Two unrelated copies of the web -> db system ("a:" and "b:"), db failing in each; b's
    fault starts ``shift_minutes`` after a's."""
    frames, catalogues = [], []
    for prefix, start in (("a:", 90), ("b:", 90 + shift_minutes)):
        frame = telemetry(fault=(start, start + 6), seed=4 if prefix == "a:" else 9)
        frames.append(frame.assign(unique_id=prefix + frame["unique_id"]))
        catalogues.append(CATALOGUE.assign(unique_id=prefix + CATALOGUE["unique_id"],
                                           service=prefix + CATALOGUE["service"]))
    graph = {prefix + caller: tuple(prefix + c for c in callees)
             for prefix in ("a:", "b:") for caller, callees in GRAPH.items()}
    return pd.concat(frames, ignore_index=True), pd.concat(catalogues, ignore_index=True), graph


@pytest.mark.parametrize("shift_minutes", [0, 2])
def test_problems_in_unrelated_systems_are_paged_apart_each_ranked_within_its_own_system(shift_minutes: int) -> None:
    frame, catalogue, graph = _two_systems(shift_minutes)
    out = replay(frame, catalogue, graph)
    assert len(out) == 2, out[["opened_at", "services"]]
    assert [s.split(";")[0] for s in out["services"]] == ["a:db", "b:db"]
    for row in out.itertuples():
        prefix = row.services[:2]
        assert all(s.startswith(prefix) for s in row.services.split(";"))  # no cause from the other system
    assert out.iloc[1]["opened_at"] - out.iloc[0]["opened_at"] == pd.Timedelta(minutes=shift_minutes)
    # One system (a call joins them): the second firing belongs to the incident still unfolding.
    joined = {**graph, "a:web": ("a:db", "b:web")}
    assert len(replay(frame, catalogue, joined)) == 1


def test_call_graph_systems_are_its_connected_parts() -> None:
    graph = {"web": ("api",), "api": ("db",), "batch": ("db",), "mail": ()}
    systems = call_graph_systems(["api", "batch", "db", "mail", "web", "cron"], graph)
    assert systems["web"] == systems["api"] == systems["db"] == systems["batch"] == 0
    assert len({systems["mail"], systems["cron"], 0}) == 3  # unconnected, unknown: systems of their own
    assert set(call_graph_systems(["x", "y"], {}).values()) == {0}  # no graph: one system


def test_a_quiet_system_raises_nothing_and_repeats_within_an_open_incident_are_suppressed() -> None:
    assert replay(telemetry(fault=None), CATALOGUE, GRAPH).empty
    stream = IncidentStream(CATALOGUE, GRAPH)
    wide = telemetry(fault=(90, 110)).pivot(index="ds", columns="unique_id", values="y")[stream.series]
    raised = [
        inc for ds, row in zip(wide.index, wide.to_numpy(), strict=True) for inc in stream.step(ds, row)
    ]
    assert len(raised) == 1  # twenty faulty minutes are one problem, not twenty pages


def test_traffic_alone_does_not_open_an_incident() -> None:
    frame = telemetry(fault=None)
    burst = (frame["unique_id"] == "db/bytes") & (frame["ds"] >= T0 + pd.Timedelta(minutes=90))
    frame.loc[burst, "y"] *= 50
    assert replay(frame, CATALOGUE, GRAPH).empty


def _surprises(values: np.ndarray, **settings: object) -> np.ndarray:
    scorer = StreamingSurprise(np.array([1]), **settings)  # type: ignore[arg-type]
    return np.array([scorer.update(np.array([v])).surprise[0] for v in values])


def _two_faults(seed: int = 5) -> np.ndarray:
    """Noisy flat series; a loud fault at 60-65, then a milder one at 76-79 on the same series."""
    values = 10 + np.random.default_rng(seed).normal(0, 0.1, 120)
    values[60:66] = 30.0
    values[76:80] = 14.0
    return values


def test_a_fault_does_not_contaminate_the_baseline_nor_mask_a_second_fault() -> None:
    values = _two_faults()
    clean = _surprises(values, gate=6.0, learn_delay=15)
    naive = _surprises(values)  # every sample joins the baseline and the tail at once
    # The first fault stays as surprising for its whole length instead of fading as it is learned.
    assert clean[60:66].min() > 3.5 and naive[60:66].min() < 2.0
    # The second fault, ten minutes later, is judged against normal behaviour, not the first.
    assert clean[76:80].min() > 2.0 and naive[76:80].max() < 1.5
    # The return to normal after each fault is not surprising.
    assert clean[66:76].max() == 0.0 and clean[80:].max() == 0.0


def test_a_lasting_level_shift_becomes_the_new_normal() -> None:
    values = 10 + np.random.default_rng(6).normal(0, 0.1, 160)
    values[60:] += 10
    surprise = StreamingSurprise(np.array([0]), gate=6.0, max_hold=15, learn_delay=15)
    scores = np.array([surprise.update(np.array([v])).surprise[0] for v in values])
    assert scores[60:75].min() > 3  # held out of the baseline while it might be a fault...
    assert scores[100:].max() == 0.0  # ...accepted once it has lasted max_hold samples


def test_floors_set_the_smallest_change_worth_a_sigma() -> None:
    # A success rate at exactly 100 %: its own spread is 0, so only a floor stops 99.9 % from
    # being a thousand sigmas; relative to its level (5 % of 100) a 5-point drop would be 1 sigma.
    rate = np.full(40, 100.0)
    rate[-1] = 95.0
    relative = StreamingSurprise(np.array([-1]))
    absolute = StreamingSurprise(np.array([-1]), rel_floor=0.0, abs_floor=0.25)
    last = [s.update(np.array([v])).surprise[0] for v in rate for s in (relative, absolute)][-2:]
    assert last[0] < 1.0 and last[1] > 2.5
    # floor_of: a difference of two latencies sitting at 0 takes its floor from the first one.
    diff = StreamingSurprise(np.array([1, 1]), floor_of=np.array([0, 0]))
    for _ in range(20):
        diff.update(np.array([0.2, 0.0]))
    step = diff.update(np.array([0.2, 0.005]))  # 5 ms more on the wire: half of 5 % of 200 ms
    assert step.deviation[1] == pytest.approx(0.5)


def test_bad_floors_are_refused() -> None:
    with pytest.raises(ValueError, match="abs_floor"):
        StreamingSurprise(np.array([1, 1]), abs_floor=np.array([0.1, -1.0]))
    with pytest.raises(ValueError, match="floor_of"):
        StreamingSurprise(np.array([1, 1]), floor_of=np.array([0, 2]))
    with pytest.raises(ValueError, match="gate"):
        StreamingSurprise(np.array([1]), gate=0.0)
    with pytest.raises(ValueError, match="split_threshold"):
        StreamSettings(open_threshold=6.0, split_threshold=5.0)


EDGE_CATALOGUE = pd.DataFrame(
    [
        ("web/cpu", "web", "web-1", "cpu_usage_rate"),
        ("web/lat", "web", "web-1", "pod_server_latency_p95"),
        ("api/cpu", "api", "api-1", "cpu_usage_rate"),
        ("api/lat", "api", "api-1", "pod_server_latency_p95"),
        ("db/cpu", "db", "db-1", "cpu_usage_rate"),
        ("db/lat", "db", "db-1", "pod_server_latency_p95"),
        ("web->db/src", "db", "web->db", "edge_source_latency_p50"),
        ("web->db/dst", "db", "web->db", "edge_destination_latency_p50"),
        ("api->db/src", "db", "api->db", "edge_source_latency_p50"),
        ("api->db/dst", "db", "api->db", "edge_destination_latency_p50"),
    ],
    columns=["unique_id", "service", "resource_id", "metric"],
)
EDGE_GRAPH = {"web": ("db",), "api": ("db",), "db": ()}
EDGE_BASE = {
    "web/cpu": 20.0,
    "web/lat": 0.2,
    "api/cpu": 25.0,
    "api/lat": 0.1,
    "db/cpu": 30.0,
    "db/lat": 0.01,
    "web->db/src": 0.012,
    "web->db/dst": 0.01,
    "api->db/src": 0.012,
    "api->db/dst": 0.01,
}


def edge_telemetry(*faults: tuple[dict[str, float], int, int], n: int = 150) -> pd.DataFrame:
    """Noisy flat series; each fault ``(factors, start, end)`` multiplies the series in
    ``factors`` by them from ``start`` to ``end`` (minutes)."""
    rng = np.random.default_rng(7)
    ds = pd.date_range(T0, periods=n, freq="1min")
    frames = []
    for uid, level in EDGE_BASE.items():
        y = level * (1 + rng.normal(0, 0.02, n))
        for factors, lo, hi in faults:
            y[lo:hi] *= factors.get(uid, 1.0)
        frames.append(pd.DataFrame({"unique_id": uid, "ds": ds, "y": y}))
    return pd.concat(frames, ignore_index=True)


NETWORK_DELAY = {"web->db/src": 25.0, "api->db/src": 25.0, "web/lat": 1.5, "api/lat": 2.0}
SLOW_DB = {
    "db/cpu": 3.0,
    "db/lat": 20.0,
    "web->db/src": 15.0,
    "web->db/dst": 18.0,
    "api->db/src": 15.0,
    "api->db/dst": 18.0,
    "web/lat": 1.5,
    "api/lat": 2.0,
}


def test_wire_latency_pairs_the_caller_and_callee_views_of_each_edge() -> None:
    pairs = wire_pairs(EDGE_CATALOGUE)
    assert sorted(pairs) == [
        ("api->db/src", "api->db/dst", "edge_wire_latency_p50"),
        ("web->db/src", "web->db/dst", "edge_wire_latency_p50"),
    ]
    stream = IncidentStream(EDGE_CATALOGUE, EDGE_GRAPH)
    assert list(stream.series) == list(EDGE_CATALOGUE["unique_id"])  # inputs unchanged
    wire = [i for i, uid in enumerate(stream.scored_series) if uid.endswith("#wire")]
    assert {stream.service[i] for i in wire} == {"db"}  # edge evidence belongs to the callee


def test_a_network_delay_on_a_callee_is_a_latency_incident_rooted_at_the_callee() -> None:
    out = replay(edge_telemetry((NETWORK_DELAY, 90, 94)), EDGE_CATALOGUE, EDGE_GRAPH)
    assert len(out) == 1
    row = out.iloc[0]
    assert row["services"].split(";")[0] == "db" and row["category"] == "latency"
    # The callee being slow itself (its own view of the calls grows too) is saturation instead.
    slow = replay(edge_telemetry((SLOW_DB, 90, 94)), EDGE_CATALOGUE, EDGE_GRAPH).iloc[0]
    assert slow["services"].split(";")[0] == "db" and slow["category"] == "saturation"
    # Without the wire latency the two look alike.
    blind = replay(
        edge_telemetry((NETWORK_DELAY, 90, 94)),
        EDGE_CATALOGUE,
        EDGE_GRAPH,
        StreamSettings(wire_latency=False),
    ).iloc[0]
    assert blind["category"] != "latency"


def test_a_second_fault_soon_after_the_first_is_a_second_incident_and_recovery_is_quiet() -> None:
    # A slowdown of db and, ten minutes later, a milder one: two incidents, the second seen at
    # once (judged against normal behaviour, not the first fault); the recoveries raise nothing.
    milder = {uid: 1 + (factor - 1) / 3 for uid, factor in SLOW_DB.items()}
    faults = edge_telemetry((SLOW_DB, 90, 95), (milder, 105, 109))
    out = replay(faults, EDGE_CATALOGUE, EDGE_GRAPH)
    assert [t - T0 for t in out["opened_at"]] == [pd.Timedelta(minutes=90), pd.Timedelta(minutes=105)]
    assert (out["services"].str.split(";").str[0] == "db").all()
    # Learning each sample at once, the first fault teaches db that such jumps are ordinary.
    naive = replay(faults, EDGE_CATALOGUE, EDGE_GRAPH, StreamSettings(gate=None))
    assert len(naive) == 1


def test_a_caller_firing_while_its_callee_is_hot_belongs_to_the_callees_incident() -> None:
    web_fault = {"web/cpu": 3.0, "web/lat": 20.0}
    db_fault = {k: v for k, v in SLOW_DB.items() if not k.endswith("/lat") or k == "db/lat"}
    # db breaks first; web (its caller) breaking while db is still failing is suppressed.
    one = replay(edge_telemetry((db_fault, 90, 100), (web_fault, 95, 99)), EDGE_CATALOGUE, EDGE_GRAPH)
    assert len(one) == 1 and one.iloc[0]["services"].split(";")[0] == "db"
    # web breaks first; db breaking on its own later is a second problem, not web's doing.
    two = replay(edge_telemetry((web_fault, 90, 100), (db_fault, 95, 99)), EDGE_CATALOGUE, EDGE_GRAPH)
    assert [s.split(";")[0] for s in two["services"]] == ["web", "db"]
    assert two.iloc[1]["opened_at"] == T0 + pd.Timedelta(minutes=95)
    # ...unless its evidence is below split_threshold: one problem at a time is paged.
    strict = StreamSettings(split_threshold=1e6)
    assert (
        len(
            replay(
                edge_telemetry((web_fault, 90, 100), (db_fault, 95, 99)), EDGE_CATALOGUE, EDGE_GRAPH, strict
            )
        )
        == 1
    )


def test_a_few_per_cent_of_failed_requests_make_an_errors_incident() -> None:
    catalogue = pd.concat(
        [
            EDGE_CATALOGUE,
            pd.DataFrame(
                [("web/ok", "web", "web", "service_success_rate", "percent")],
                columns=["unique_id", "service", "resource_id", "metric", "unit"],
            ),
        ],
        ignore_index=True,
    )
    frame = edge_telemetry(({"web/cpu": 3.0, "web/lat": 20.0}, 90, 95))
    ok = frame[frame["unique_id"] == "web/cpu"].assign(unique_id="web/ok", y=100.0)
    ok.loc[ok["ds"] >= T0 + pd.Timedelta(minutes=90), "y"] = 94.0  # 6 % of requests fail
    out = replay(pd.concat([frame, ok], ignore_index=True), catalogue, EDGE_GRAPH)
    assert len(out) == 1 and out.iloc[0]["category"] == "errors"
    # Judged relative to its ~100 % level, a 6-point drop would be ordinary: a CPU problem.
    relative = replay(
        pd.concat([frame, ok], ignore_index=True), catalogue, EDGE_GRAPH, StreamSettings(error_floor=5.0)
    )
    assert relative.iloc[0]["category"] == "saturation"


def test_refining_the_ranking_while_an_incident_unfolds_finds_a_root_that_fired_late() -> None:
    web_fault = {"web/cpu": 3.0, "web/lat": 20.0}
    frame = edge_telemetry((web_fault, 90, 97), (SLOW_DB, 91, 97))  # db breaks a minute later
    at_open = replay(frame, EDGE_CATALOGUE, EDGE_GRAPH, StreamSettings(refine_ranking=False))
    refined = replay(frame, EDGE_CATALOGUE, EDGE_GRAPH)  # refined by default
    assert len(at_open) == len(refined) == 1  # db firing in the first steps belongs to web's incident
    assert at_open.iloc[0]["services"].split(";")[0] == "web"
    assert refined.iloc[0]["services"].split(";")[0] == "db"
    assert refined.iloc[0]["opened_at"] == at_open.iloc[0]["opened_at"]


def test_failed_requests_keep_their_weight_while_the_ranking_looks_back_at_them() -> None:
    # No call graph: web's requests fail for two minutes (the users' harm, weighing error_weight),
    # then db's CPU and latency rise a little. Refined after web's failures ended, the ranking
    # still weighs them as when they happened, so the entry keeps the blame.
    frame, catalogue = _failing_requests(90.0)
    frame = frame[~frame["unique_id"].isin(["db/cpu", "db/lat"])]
    db = edge_telemetry(({"db/cpu": 1.3, "db/lat": 2.0}, 91, 96))
    ok = frame["unique_id"] == "web/ok"
    frame.loc[ok & (frame["ds"] >= T0 + pd.Timedelta(minutes=92)), "y"] = 100.0
    frame = pd.concat([frame, db[db["unique_id"].isin(["db/cpu", "db/lat"])]], ignore_index=True)
    out = replay(frame, catalogue, {})
    assert len(out) == 1 and out.iloc[0]["services"].split(";") == ["web", "db"]


def test_without_a_call_graph_inherited_kinds_can_weigh_less_than_a_services_own_resources() -> None:
    # db's CPU saturates (its own resource) and its answers slow a little; web, its caller, waits:
    # its latency soars. Counted alike, web's louder latency leads; discounted as what a caller
    # inherits from a slow callee, db's CPU does, and the call graph agrees either way.
    frame = edge_telemetry(({"web/lat": 20.0, "web/cpu": 1.1, "db/cpu": 3.0, "db/lat": 2.0}, 90, 96))
    top = {
        (weight, bool(graph)): replay(frame, EDGE_CATALOGUE, graph, StreamSettings(inherited_weight=weight))
        .iloc[0]["services"]
        .split(";")[0]
        for weight in (1.0, 0.75)
        for graph in ({}, EDGE_GRAPH)
    }
    assert top == {(1.0, False): "web", (0.75, False): "db", (1.0, True): "db", (0.75, True): "db"}
    with pytest.raises(ValueError, match="inherited_weight"):
        StreamSettings(inherited_weight=1.5)


def test_a_firing_held_back_by_an_open_incident_is_paged_once_that_incident_closes() -> None:
    web_fault = {"web/cpu": 3.0, "web/lat": 20.0}
    db_fault = {k: v for k, v in SLOW_DB.items() if not k.endswith("/lat") or k == "db/lat"}
    strict = StreamSettings(split_threshold=1e6)
    out = replay(edge_telemetry((web_fault, 90, 96), (db_fault, 94, 106)), EDGE_CATALOGUE, EDGE_GRAPH, strict)
    assert [s.split(";")[0] for s in out["services"]] == ["web", "db"]
    assert out.iloc[1]["opened_at"] >= out.iloc[0]["closed_at"]


def _failing_requests(success: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Quiet edge telemetry plus the web service's success rate, at ``success`` % for minutes
    90..93 and 100 % otherwise; the telemetry and its catalogue."""
    catalogue = pd.concat(
        [
            EDGE_CATALOGUE,
            pd.DataFrame(
                [("web/ok", "web", "web", "service_success_rate", "percent")],
                columns=["unique_id", "service", "resource_id", "metric", "unit"],
            ),
        ],
        ignore_index=True,
    )
    frame = edge_telemetry()
    ok = frame[frame["unique_id"] == "web/cpu"].assign(unique_id="web/ok", y=100.0)
    failing = (ok["ds"] >= T0 + pd.Timedelta(minutes=90)) & (ok["ds"] < T0 + pd.Timedelta(minutes=94))
    ok.loc[failing, "y"] = success
    return pd.concat([frame, ok], ignore_index=True), catalogue


def test_failed_requests_alone_open_an_errors_incident_without_corroboration() -> None:
    # Nothing but the entry service's success rate moves: 6 % of requests fail for four minutes.
    frame, catalogue = _failing_requests(94.0)
    out = replay(frame, catalogue, EDGE_GRAPH)
    assert len(out) == 1 and out.iloc[0]["category"] == "errors"
    assert out.iloc[0]["opened_at"] == T0 + pd.Timedelta(minutes=90)
    assert out.iloc[0]["services"].split(";")[0] == "web"
    # Weighed like any other single family, it waits for a second measurement that never comes.
    assert replay(frame, catalogue, EDGE_GRAPH, StreamSettings(error_weight=1.0)).empty
    with pytest.raises(ValueError, match="error_weight"):
        StreamSettings(error_weight=0.0)


def test_a_blip_of_a_point_or_so_of_failed_requests_needs_corroboration() -> None:
    # 1.5 % of requests fail for four minutes: many sigmas of a success rate that sits at 100 %,
    # but no harm that needs no corroboration (error_material, 3 points by default).
    frame, catalogue = _failing_requests(98.5)
    assert replay(frame, catalogue, EDGE_GRAPH).empty
    counted = replay(frame, catalogue, EDGE_GRAPH, StreamSettings(error_material=0.0))
    assert len(counted) == 1 and counted.iloc[0]["category"] == "errors"
    with pytest.raises(ValueError, match="error_material"):
        StreamSettings(error_material=-1.0)


def test_onset_runs_tell_a_run_after_a_calm_spell_from_a_flickering_family() -> None:
    # Three families over five steps: 0 calm then hot for three steps (an onset throughout);
    # 1 flickers hot / calm / hot (its second run began one calm step after the first: chronic);
    # 2 never hot.
    hot_steps = np.array(
        [
            [False, True, False],
            [True, False, False],
            [True, True, False],
            [True, False, False],
            [False, True, False],
        ]
    )
    resolve_after = 3
    calm = np.full(3, resolve_after)
    onset = np.zeros(3, dtype=bool)
    seen = []
    for hot in hot_steps:
        onset = onset_runs(hot, calm, onset, resolve_after)
        seen.append(onset.copy())
        calm = np.where(hot, 0, calm + 1)
    assert [bool(o[0]) for o in seen] == [False, True, True, True, False]
    assert [bool(o[1]) for o in seen] == [True, False, False, False, False]
    assert not np.stack(seen)[:, 2].any()


def test_a_callee_that_keeps_flickering_does_not_take_the_blame_for_its_callers_fault() -> None:
    # web calls db and api. From minute 80 api's latency jumps every other minute (never enough
    # to page on its own); at minute 90 web itself breaks. api is anomalous in the ranking window
    # and, as a callee, would absorb the blame; its anomaly did not start with this problem.
    catalogue = EDGE_CATALOGUE[~EDGE_CATALOGUE["unique_id"].str.contains("->")]
    graph = {"web": ("db", "api"), "api": (), "db": ()}
    frame = edge_telemetry(({"web/cpu": 3.0, "web/lat": 20.0}, 90, 94))
    frame = frame[frame["unique_id"].isin(catalogue["unique_id"])].reset_index(drop=True)
    flicker = (frame["unique_id"] == "api/lat") & (frame["ds"] >= T0 + pd.Timedelta(minutes=80))
    frame.loc[flicker & (frame["ds"].dt.minute % 2 == 0), "y"] *= 5
    out = replay(frame, catalogue, graph)
    assert len(out) == 1 and out.iloc[0]["opened_at"] == T0 + pd.Timedelta(minutes=90)
    assert out.iloc[0]["services"].split(";")[0] == "web"
    blind = replay(frame, catalogue, graph, StreamSettings(rank_onsets=False))
    assert blind.iloc[0]["services"].split(";")[0] == "api"


DB_BREAKS = {"db/cpu": 3.0, "db/lat": 20.0}


def _flap(smoulder: float) -> pd.DataFrame:
    """db breaks at 90-95 and again at 100-104; in between its latency stays ``smoulder`` times
    its normal level (1.0: back to normal), below what keeps the first incident open."""
    return edge_telemetry((DB_BREAKS, 90, 95), ({"db/lat": smoulder}, 95, 100), (DB_BREAKS, 100, 104))


def test_a_problem_that_smoulders_and_flares_up_again_re_opens_its_incident() -> None:
    out = replay(_flap(smoulder=2.0), EDGE_CATALOGUE, EDGE_GRAPH)
    assert len(out) == 1  # one problem, one page
    row = out.iloc[0]
    assert row["opened_at"] == T0 + pd.Timedelta(minutes=90) and row["reopened"] == 1
    assert row["closed_at"] > T0 + pd.Timedelta(minutes=104)  # its end covers the flare-up
    # Without re-opening, the flare-up two minutes after closing is paged again...
    never = replay(_flap(smoulder=2.0), EDGE_CATALOGUE, EDGE_GRAPH, StreamSettings(reopen_within=0))
    assert [t - T0 for t in never["opened_at"]] == [pd.Timedelta(minutes=90), pd.Timedelta(minutes=100)]
    # ...as it is when it comes later than reopen_within steps after the close.
    late = replay(_flap(smoulder=2.0), EDGE_CATALOGUE, EDGE_GRAPH, StreamSettings(reopen_within=1))
    assert len(late) == 2 and (late["reopened"] == 0).all()
    with pytest.raises(ValueError, match="reopen_within"):
        StreamSettings(reopen_within=-1)


def test_a_fresh_onset_on_the_same_service_soon_after_a_close_is_a_new_incident() -> None:
    # db back to normal for five minutes, then breaking again from calm: a second fault on the
    # same service (faults are injected back to back on one pod in the Nezha data), paged anew.
    out = replay(_flap(smoulder=1.0), EDGE_CATALOGUE, EDGE_GRAPH)
    assert [t - T0 for t in out["opened_at"]] == [pd.Timedelta(minutes=90), pd.Timedelta(minutes=100)]
    assert (out["services"].str.split(";").str[0] == "db").all() and (out["reopened"] == 0).all()


def test_a_new_problem_on_a_member_of_a_just_closed_incident_opens_a_second_incident() -> None:
    # db breaks and web, its caller, suffers with it (a member of db's incident); db then keeps
    # smouldering while web breaks on its own from calm: a new problem, not a flare-up of db's.
    frame = edge_telemetry(
        (DB_BREAKS, 90, 95),
        ({"web/lat": 5.0, "web/cpu": 2.0}, 91, 95),
        ({"db/lat": 2.0}, 95, 110),
        ({"web/cpu": 3.0, "web/lat": 20.0}, 100, 104),
    )
    stream = IncidentStream(EDGE_CATALOGUE, EDGE_GRAPH)
    wide = frame.pivot(index="ds", columns="unique_id", values="y")[stream.series]
    raised = [
        inc for ds, row in zip(wide.index, wide.to_numpy(), strict=True) for inc in stream.step(ds, row)
    ]
    assert [inc.services[0] for inc in raised] == ["db", "web"]
    first, second = raised
    assert "web" in first.members and first.reopened == 0
    assert first.closed_at is not None and first.closed_at < second.opened_at
    assert second.opened_at == T0 + pd.Timedelta(minutes=100)


def _spiky_system_pages(settings: StreamSettings, days: int = 3) -> tuple[list[int], IncidentStream]:
    """Ten services sampled every 5 minutes whose latency and CPU spike together about twice a
    day each (normal for them), one of them failing for good in the last hour; the steps paged."""
    rng = np.random.default_rng(0)
    services = [f"s{k}" for k in range(10)]
    catalogue = pd.DataFrame({
        "unique_id": [f"{s}/{m}" for s in services for m in ("lat", "cpu")],
        "service": [s for s in services for _ in range(2)],
        "metric": ["server_latency_p99", "cpu_usage"] * len(services),
    })
    stream = IncidentStream(catalogue, {}, settings)
    steps, paged = days * 288, []
    for i in range(steps):
        y = 100 + rng.normal(0, 1, size=2 * len(services))
        y += np.repeat(rng.random(len(services)) < 0.007, 2) * rng.exponential(20, size=y.size)
        if i >= steps - 12:
            y[:2] += 400
        paged += [i] * len(stream.step(T0 + pd.Timedelta(minutes=5 * i), y))
    return paged, stream


def test_a_page_budget_raises_a_noisy_systems_threshold_and_still_pages_its_fault() -> None:
    static, _ = _spiky_system_pages(StreamSettings(page_budget_per_day=None))
    budgeted, stream = _spiky_system_pages(StreamSettings(page_budget_per_day=2.0))
    last_day = 2 * 288
    assert [i for i in static if i >= 3 * 288 - 12] and [i for i in budgeted if i >= 3 * 288 - 12]  # the fault
    assert len([i for i in budgeted if i >= last_day]) <= len([i for i in static if i >= last_day]) - 2
    [report] = stream.calibration_report()
    assert report["open_threshold"] > 6.0 and report["tail"]["blocks"] >= 48
    assert set(stream.calibrated_thresholds().values()) == {report["open_threshold"]}
    assert IncidentStream(stream.series.to_frame(name="unique_id").assign(service="s", metric="cpu_usage"), {},
                          StreamSettings(page_budget_per_day=None)).calibrated_thresholds() == {}
