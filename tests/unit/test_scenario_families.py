"""Scenario families (simulator.scenario_families): seeded, sized, labelled systems."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from foresight.schemas import CATALOGUE_COLUMNS, validate_telemetry
from models.incidents.category import metric_kind
from simulator.scenario_families import (
    FAMILIES,
    FAULT_KINDS,
    generate_family,
    simulate_system,
)
from simulator.scenario_families.families import draw_system, generate_system
from simulator.scenario_families.plan import (
    FAULT_GAP_MINUTES,
    STRESS_CLEARANCE_MINUTES,
    WARMUP_MINUTES,
    Event,
)
from simulator.scenario_families.synthesis import (
    LoadShape,
    apply_fault,
    apply_stress,
    base_state,
    measures,
)
from simulator.scenario_families.topology import Topology, random_topology
from simulator.scenario_families.vocabulary import vocabulary
from simulator.seeding import rng_for
from simulator.timegrid import build_grid


def test_the_same_arguments_give_the_same_systems_and_another_seed_other_ones() -> None:
    a = generate_system("small-graph", 2, seed=7)
    b = generate_system("small-graph", 2, seed=7)
    c = generate_system("small-graph", 2, seed=8)
    pd.testing.assert_frame_equal(a.telemetry, b.telemetry)
    pd.testing.assert_frame_equal(a.catalogue, b.catalogue)
    assert a.faults == b.faults and a.call_graph == b.call_graph
    assert a.faults != c.faults or not a.telemetry["y"].equals(c.telemetry["y"])


def test_a_system_does_not_depend_on_how_many_systems_are_asked_for() -> None:
    family = generate_family("small-no-graph", systems=2, seed=3)
    alone = generate_system("small-no-graph", 1, seed=3)
    pd.testing.assert_frame_equal(family[1].telemetry, alone.telemetry)
    assert [d.name for d in family] == ["small-no-graph/000", "small-no-graph/001"]
    # Each system has its own span of time, so one family's days can be scored together by time.
    assert family[0].telemetry["ds"].max() < family[1].telemetry["ds"].min()


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_every_family_draws_systems_within_its_ranges(name: str) -> None:
    spec = FAMILIES[name]
    for seed in range(6):
        draw = draw_system(spec, rng_for(seed, name), steps=1440, step_minutes=1, days=1)
        assert spec.services[0] <= draw.topology.n <= spec.services[1]
        # At most the drawn count: what does not fit between the warm-up and the gaps is dropped.
        assert (1 if spec.faults_per_day[0] else 0) <= len(draw.faults) <= spec.faults_per_day[1]
        assert {f.kind for f in draw.faults} <= set(spec.fault_kinds)
        assert draw.graph_known in ((True,) if spec.graph_known == 1 else (False,) if spec.graph_known == 0 else (True, False))


@pytest.mark.parametrize("n", [5, 17, 100])
def test_topologies_are_dags_from_their_entries_with_every_service_called(n: int) -> None:
    topo = random_topology(n, entries=2, rng=np.random.default_rng(n))
    assert topo.n == n and len(set(topo.services)) == n
    assert all(a < b for a, b in topo.calls)  # acyclic by construction
    assert all(topo.callers(j) for j in range(topo.entries, n))
    assert not any(topo.callers(j) for j in range(topo.entries))
    with pytest.raises(ValueError, match="at most"):
        random_topology(200, entries=1, rng=np.random.default_rng(0))


def test_the_call_graph_is_handed_out_only_when_known() -> None:
    known, draw = simulate_system("small-graph", 0, seed=1)
    unknown, hidden = simulate_system("small-no-graph", 0, seed=1)
    assert set(known.call_graph) == set(known.catalogue["service"]) == set(draw.topology.services)
    assert sum(len(v) for v in known.call_graph.values()) == len(draw.topology.calls)
    # Not handed out, but still there: the callers of a hidden graph see their callees' faults.
    assert unknown.call_graph == {} and hidden.topology.calls
    assert set(unknown.catalogue["service"]) == set(hidden.topology.services)


def test_days_have_foresights_shapes_and_the_generic_vocabulary() -> None:
    day = generate_system("small-graph", 0, seed=0)
    validate_telemetry(day.telemetry)
    assert list(day.catalogue.columns) == list(CATALOGUE_COLUMNS)
    assert set(day.telemetry["unique_id"]) == set(day.catalogue["unique_id"])
    assert len(day.telemetry) == len(day.catalogue) * 1440
    metrics = set(day.catalogue["metric"])
    assert {"cpu_usage", "memory_rss_bytes", "latency_p99_seconds", "requests_per_second", "error_ratio"} <= metrics
    # What today's metric classification reads from the generic names.
    kinds = {m: metric_kind(m) for m in metrics}
    assert kinds["error_ratio"] == "errors" and kinds["memory_rss_bytes"] == "memory"
    assert kinds["latency_p99_seconds"] == "server_latency" and kinds["disk_used_percent"] == "disk"
    ratio = day.telemetry[day.telemetry["unique_id"].str.endswith("/error_ratio")]["y"]
    assert ratio.between(0, 1).all()


def test_nezha_like_systems_carry_edge_latencies_and_varied_ones_draw_names_per_system() -> None:
    day = generate_system("nezha-like", 0, seed=0)
    assert {"pod_server_latency_p95", "pod_success_rate", "edge_source_latency_p50"} <= set(day.catalogue["metric"])
    edges = day.catalogue[day.catalogue["metric"] == "edge_source_latency_p50"]
    assert len(edges) == sum(len(v) for v in day.call_graph.values())
    names = {vocabulary("varied", np.random.default_rng(s)) for s in range(8)}
    assert len(names) > 1


def _sample(day, service: str, metric: str) -> pd.Series:  # type: ignore[no-untyped-def]
    uid = f"scenario/{service}-0/{metric}"
    return day.telemetry[day.telemetry["unique_id"] == uid].set_index("ds")["y"]


def test_faults_are_labelled_where_injected_spaced_and_clear_of_benign_stress() -> None:
    seen = set()
    for k in range(3):
        day, draw = simulate_system("small-graph", k, seed=11)
        ds = pd.DatetimeIndex(day.telemetry["ds"].unique())
        assert len(day.faults) == len(draw.faults)
        for fault, ev in zip(day.faults, draw.faults, strict=True):
            seen.add(fault.kind)
            assert fault.service == draw.topology.services[ev.service] and fault.pod == f"{fault.service}-0"
            # Injected within the minute before the first sample that shows it.
            assert ds[ev.start - 1] < fault.inject_time < ds[ev.start]
            assert fault.inject_time == fault.inject_time.floor("ms")  # a clean time, as fault lists give
            assert ev.first >= WARMUP_MINUTES
        for a, b in zip(draw.faults, draw.faults[1:], strict=False):
            assert b.first - a.end >= FAULT_GAP_MINUTES
        for st in draw.stress:
            for f in draw.faults:
                assert st.end + STRESS_CLEARANCE_MINUTES <= f.first or st.start >= f.end + STRESS_CLEARANCE_MINUTES
    assert len(seen) >= 4


def _chain_topology() -> Topology:
    """entry -> mid -> leaf, every call waiting for the whole callee."""
    return Topology(("web-gateway", "order-svc", "stock-store"), 1, ((0, 1), (1, 2)), np.ones(2), np.ones(2))


@pytest.mark.parametrize(
    ("kind", "moves", "still"),
    [
        ("cpu_contention", {("cpu_pct", 2), ("latency_p95_s", 2), ("latency_p95_s", 0)}, set()),
        ("network_delay", {("latency_p95_s", 1), ("latency_p95_s", 0), ("client_latency_p95_s", 2)},
         {("latency_p95_s", 2), ("cpu_pct", 2)}),
        ("exception", {("error_ratio", 2), ("error_ratio", 0)}, {("cpu_pct", 2)}),
        ("return", {("error_ratio", 1)}, {("cpu_pct", 2)}),
        ("bad_deploy", {("error_ratio", 2), ("latency_p95_s", 2)}, set()),
        ("saturation", {("cpu_pct", 2), ("latency_p95_s", 2)}, set()),
    ],
)
def test_a_fault_moves_its_service_and_its_callers_see_it(kind: str, moves: set, still: set) -> None:  # type: ignore[type-arg]
    topo = _chain_topology()
    grid = build_grid(pd.Timestamp("2026-01-06", tz="UTC"), 1, 1)
    rng = np.random.default_rng(5)
    state = base_state(grid, topo, LoadShape(noise=0.5), rng, [])
    apply_fault(state, topo, Event(kind, 2, 600, 610, 0.8), rng, 1)
    out = measures(state, topo, rng, 1, 0.5)
    for measure, i in moves | still:
        before = np.median(out[measure][i, 560:600])
        during = np.median(out[measure][i, 602:610])
        ratio = during / max(before, 1e-9)
        if (measure, i) in moves:
            assert ratio > 1.5, (measure, i, before, during)
        else:
            assert 0.7 < ratio < 1.4, (measure, i, before, during)


def test_a_memory_leak_grows_before_its_label_and_the_kill_comes_at_it() -> None:
    for k in range(40):
        day, draw = simulate_system("small-graph", k, seed=2)
        leaks = [(f, ev) for f, ev in zip(day.faults, draw.faults, strict=True) if f.kind == "memory_leak"]
        if leaks:
            break
    fault, ev = leaks[0]
    memory = _sample(day, fault.service, "memory_rss_bytes").to_numpy()
    assert ev.precursor >= 0 and ev.start - ev.precursor >= 30
    assert memory[ev.start - 1] > 1.3 * memory[ev.precursor - 1]  # grew towards the limit
    assert memory[ev.start + 1] < 0.9 * memory[ev.start - 1]  # killed and restarted at the label


def test_a_coarser_sampling_labels_faults_within_the_step_before_they_show() -> None:
    day, draw = simulate_system("small-graph", 0, seed=0, step_minutes=5)
    ds = pd.DatetimeIndex(day.telemetry["ds"].unique())
    assert len(ds) == 288 and (ds[1] - ds[0]) == pd.Timedelta("5min")
    assert draw.faults
    for fault, ev in zip(day.faults, draw.faults, strict=True):
        assert ds[ev.start - 1] < fault.inject_time < ds[ev.start]


def test_unknown_names_are_refused_with_the_choices() -> None:
    with pytest.raises(ValueError, match="small-graph"):
        generate_family("no-such-family", systems=1)
    with pytest.raises(ValueError, match="generic"):
        vocabulary("klingon", np.random.default_rng(0))
    assert set(FAULT_KINDS) >= {"cpu_contention", "return", "memory_leak", "disk_full", "bad_deploy", "saturation"}


def test_benign_stress_changes_nothing_outside_its_episode() -> None:
    topo = _chain_topology()
    grid = build_grid(pd.Timestamp("2026-01-06", tz="UTC"), 1, 1)
    state = base_state(grid, topo, LoadShape(noise=0.5), np.random.default_rng(1), [])
    before = state.extra_share.copy(), state.latency_factor.copy()
    apply_stress(state, Event("noisy_neighbour", 1, 300, 330, 1.0), np.random.default_rng(2), 1)
    outside = np.r_[0:300, 330:1440]
    assert np.array_equal(state.extra_share[:, outside], before[0][:, outside])
    assert np.array_equal(state.latency_factor[:, outside], before[1][:, outside])
    assert 0.15 <= state.extra_share[1, 300:330].max() <= 0.2
