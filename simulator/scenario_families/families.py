"""Named, seeded families of generated systems, each day returned as a labelled ``IncidentDay``.

``generate_family("large-no-graph", systems=20, seed=0, days=1)`` draws 20 systems from the
family's ranges (services, entries, whether the call graph is handed out, vocabulary, noise,
load shape, fault and stress counts) and simulates each one: the same arguments give the same
systems, and system ``k`` of a family does not depend on how many systems are asked for. Each
system occupies its own span of time (system ``k`` starts ``k * days`` days after ``start``), so
the days of one family can be scored together by time, as the incident benchmark matches them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from connectors.labels.incident_layout import Fault, IncidentDay
from foresight.schemas import CATALOGUE_COLUMNS, UTC_DTYPE, catalogue_row
from simulator.scenario_families import plan, synthesis
from simulator.scenario_families.topology import Topology, random_topology
from simulator.scenario_families.vocabulary import EDGE_METRICS, vocabulary
from simulator.seeding import rng_for
from simulator.timegrid import build_grid

SOURCE_NAME = "scenario"
DEFAULT_START = pd.Timestamp("2026-01-05", tz="UTC")  # a Monday


@dataclass(frozen=True)
class FamilySpec:
    """The ranges one family's systems are drawn from (inclusive integer ranges, uniform floats)."""

    description: str
    services: tuple[int, int]
    graph_known: float = 1.0  # probability that a system's call graph is handed out
    entries: tuple[int, int] = (1, 3)
    vocabulary: str = "generic"
    fault_kinds: tuple[str, ...] = plan.FAULT_KINDS
    faults_per_day: tuple[int, int] = (4, 6)
    stress_kinds: tuple[str, ...] = plan.STRESS_KINDS
    stress_per_day: tuple[int, int] = (3, 6)
    noise: tuple[float, float] = (0.7, 1.3)
    daily_amplitude: tuple[float, float] = (0.3, 0.8)
    trend_per_day: tuple[float, float] = (-0.03, 0.08)
    bursts_per_day: tuple[float, float] = (0.0, 4.0)
    entry_rps: tuple[float, float] = (5.0, 200.0)  # range of an entry's peak requests/s


FAMILIES: dict[str, FamilySpec] = {
    "small-graph": FamilySpec("5-15 services, call graph known", (5, 15)),
    "large-graph": FamilySpec("40-100 services, call graph known", (40, 100)),
    "small-no-graph": FamilySpec("5-15 services, no call graph handed out", (5, 15), graph_known=0.0),
    "large-no-graph": FamilySpec("40-100 services, no call graph handed out", (40, 100), graph_known=0.0),
    "nezha-like": FamilySpec(
        "8-15 services, Nezha's metric names and edge latencies, its five fault types", (8, 15),
        vocabulary="nezha", fault_kinds=plan.NEZHA_FAULT_KINDS,
    ),
    "varied-vocabulary": FamilySpec(
        "10-30 services, metric names drawn per system from other tools' synonyms", (10, 30),
        graph_known=0.5, vocabulary="varied",
    ),
    "noisy": FamilySpec(
        "10-40 services, 2-3x noise, little traffic, more bursts and benign stress", (10, 40), graph_known=0.5,
        noise=(2.0, 3.0), stress_per_day=(6, 10), bursts_per_day=(6.0, 12.0), entry_rps=(0.3, 10.0),
    ),
    "fault-free": FamilySpec(
        "10-50 services, benign stress only: every incident is a false alarm", (10, 50), graph_known=0.5,
        faults_per_day=(0, 0), stress_per_day=(4, 8),
    ),
}


@dataclass(frozen=True)
class SystemDraw:
    """One system's draw from its family (kept for reporting and tests)."""

    topology: Topology
    graph_known: bool
    vocabulary: tuple[tuple[str, str, str], ...]
    load: synthesis.LoadShape
    faults: list[plan.Event]
    stress: list[plan.Event]
    inject_lead_seconds: tuple[float, ...]  # per fault: injected this long before its first sample


def family(name: str) -> FamilySpec:
    """The family called ``name``; an unknown name raises listing the choices."""
    if name not in FAMILIES:
        raise ValueError(f"unknown scenario family {name!r}; choose one of: {', '.join(FAMILIES)}")
    return FAMILIES[name]


def draw_system(spec: FamilySpec, rng: np.random.Generator, steps: int, step_minutes: int, days: int) -> SystemDraw:
    """A system's topology, vocabulary, load shape and plan from ``spec``'s ranges."""
    n = int(rng.integers(spec.services[0], spec.services[1] + 1))
    entries = int(rng.integers(spec.entries[0], min(spec.entries[1], max(1, n // 3)) + 1))
    topology = random_topology(n, entries, rng)
    load = synthesis.LoadShape(
        daily_amplitude=float(rng.uniform(*spec.daily_amplitude)),
        trend_per_day=float(rng.uniform(*spec.trend_per_day)),
        bursts_per_day=float(rng.uniform(*spec.bursts_per_day)),
        noise=float(rng.uniform(*spec.noise)),
        entry_rps=spec.entry_rps,
    )
    n_faults = sum(int(rng.integers(spec.faults_per_day[0], spec.faults_per_day[1] + 1)) for _ in range(days))
    n_stress = sum(int(rng.integers(spec.stress_per_day[0], spec.stress_per_day[1] + 1)) for _ in range(days))
    faults = plan.plan_faults(rng, topology, steps, step_minutes, spec.fault_kinds, n_faults)
    stress = plan.plan_stress(rng, topology, steps, step_minutes, spec.stress_kinds, n_stress, faults)
    return SystemDraw(
        topology=topology,
        graph_known=bool(rng.uniform() < spec.graph_known),
        vocabulary=vocabulary(spec.vocabulary, rng),
        load=load,
        faults=faults,
        stress=stress,
        # A fault shows from the first sample after its injection, as a scrape rounded up sees it.
        inject_lead_seconds=tuple(float(x) for x in rng.uniform(1.0, 60.0 * step_minutes, len(faults))),
    )


def generate_system(
    name: str,
    index: int,
    seed: int = 0,
    days: int = 1,
    step_minutes: int = 1,
    start: pd.Timestamp = DEFAULT_START,
) -> IncidentDay:
    """System ``index`` of family ``name`` under ``seed``: ``days`` days at ``step_minutes``."""
    return simulate_system(name, index, seed, days, step_minutes, start)[0]


def simulate_system(
    name: str,
    index: int,
    seed: int = 0,
    days: int = 1,
    step_minutes: int = 1,
    start: pd.Timestamp = DEFAULT_START,
) -> tuple[IncidentDay, SystemDraw]:
    """:func:`generate_system` and the draw behind it."""
    spec = family(name)
    if index < 0:
        raise ValueError(f"index must not be negative, got {index}")
    begin = pd.Timestamp(start).tz_convert("UTC") + pd.Timedelta(days=index * days)
    grid = build_grid(begin + pd.Timedelta(days=days), days, step_minutes)
    rng = rng_for(seed, "scenario-family", name, str(index))
    draw = draw_system(spec, rng, len(grid), step_minutes, days)
    state = synthesis.base_state(grid, draw.topology, draw.load, rng, draw.stress)
    for ev in draw.stress:
        synthesis.apply_stress(state, ev, rng, step_minutes)
    for ev in draw.faults:
        synthesis.apply_fault(state, draw.topology, ev, rng, step_minutes)
    edges = draw.graph_known and spec.vocabulary == "nezha"
    values = synthesis.measures(state, draw.topology, rng, step_minutes, draw.load.noise, edges=edges)
    day = _as_day(f"{name}/{index:03d}", grid.ds, draw, values, edges)
    return day, draw


def generate_family(
    name: str,
    systems: int = 10,
    seed: int = 0,
    days: int = 1,
    step_minutes: int = 1,
    start: pd.Timestamp = DEFAULT_START,
) -> list[IncidentDay]:
    """``systems`` labelled systems of family ``name`` (:data:`FAMILIES`), ``days`` days each."""
    if systems < 0:
        raise ValueError(f"systems must not be negative, got {systems}")
    return [generate_system(name, k, seed, days, step_minutes, start) for k in range(systems)]


def pod_of(service: str) -> str:
    """The one pod a generated service runs as."""
    return f"{service}-0"


def _as_day(
    name: str, ds: pd.DatetimeIndex, draw: SystemDraw, values: dict[str, np.ndarray], edges: bool
) -> IncidentDay:
    """The measures as long telemetry, a catalogue, the call graph (if handed out) and the faults."""
    topo = draw.topology
    blocks: list[np.ndarray] = []
    rows: list[dict[str, str]] = []
    for measure, metric, unit in draw.vocabulary:
        for service in topo.services:
            pod = pod_of(service)
            rows.append(catalogue_row(f"{SOURCE_NAME}/{pod}/{metric}", SOURCE_NAME, metric, service, pod, unit,
                                      {"pod": pod}))
        blocks.append(values[measure])
    if edges:
        for caller, callee in topo.calls:
            a, b = topo.services[caller], topo.services[callee]
            edge = f"{a}->{b}"
            for view, metric in zip(("source", "destination"), EDGE_METRICS, strict=True):
                rows.append(catalogue_row(f"{SOURCE_NAME}/{edge}/{metric}", SOURCE_NAME, metric, b, edge, "seconds",
                                          {"caller": a, "callee": b}))
                blocks.append(values[f"edge:{caller}:{callee}:{view}"][None, :])
    matrix = np.vstack(blocks)
    ids = np.array([r["unique_id"] for r in rows], dtype=object)
    naive = ds.tz_convert(None).to_numpy().astype("datetime64[us]")  # not an object array of Timestamps
    telemetry = pd.DataFrame(
        {
            "unique_id": pd.array(np.repeat(ids, len(ds)), dtype="string"),
            "ds": pd.DatetimeIndex(np.tile(naive, len(rows))).tz_localize("UTC"),
            "y": matrix.reshape(-1).astype("float64"),
        }
    )
    telemetry["ds"] = telemetry["ds"].astype(UTC_DTYPE)
    faults = [
        Fault(
            inject_time=pd.Timestamp(ds[ev.start]) - pd.Timedelta(milliseconds=int(round(lead * 1000))),
            pod=pod_of(topo.services[ev.service]),
            service=topo.services[ev.service],
            kind=ev.kind,
        )
        for ev, lead in zip(draw.faults, draw.inject_lead_seconds, strict=True)
    ]
    return IncidentDay(
        name=name,
        telemetry=telemetry,
        catalogue=pd.DataFrame(rows, columns=list(CATALOGUE_COLUMNS)),
        call_graph=topo.call_graph() if draw.graph_known else {},
        faults=faults,
    )
