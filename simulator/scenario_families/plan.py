"""When, where and how hard: the labelled faults and the benign stress of one generated system.

Faults are the types Foresight classifies: the Nezha data set's five (``cpu_contention``,
``cpu_consumed``, ``network_delay``, ``exception``, ``return``) and the simulator's
(``memory_leak``, ``disk_full``, ``bad_deploy``, ``saturation``). A day holds a handful, kept
``FAULT_GAP_MINUTES`` apart and out of the first ``WARMUP_MINUTES`` (a pipeline needs some history),
so there are long fault-free stretches in which any alarm is a false page. The two gradual faults
grow first (memory, disk: a *precursor* of 30 minutes to 3 hours) and are labelled at the moment
of harm (the OOM kill, the full disk), as the fleet simulator labels them. Benign stress
(``deploy``, ``traffic_spike``, ``noisy_neighbour``) is what an SRE would not want paged; it keeps
``STRESS_CLEARANCE_MINUTES`` away from every fault, so it never blurs a fault's label.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simulator.scenario_families.topology import Topology

NEZHA_FAULT_KINDS: tuple[str, ...] = ("cpu_contention", "cpu_consumed", "network_delay", "exception", "return")
FAULT_KINDS: tuple[str, ...] = (*NEZHA_FAULT_KINDS, "memory_leak", "disk_full", "bad_deploy", "saturation")
STRESS_KINDS: tuple[str, ...] = ("deploy", "traffic_spike", "noisy_neighbour")
WARMUP_MINUTES = 90.0
FAULT_GAP_MINUTES = 60.0  # from one fault's end to the next one's start
STRESS_CLEARANCE_MINUTES = 20.0
# Minutes a fault's effect lasts (from injection, or harm, to recovery), drawn uniformly per fault.
FAULT_MINUTES: dict[str, tuple[float, float]] = {
    "cpu_contention": (5, 12), "cpu_consumed": (5, 12), "network_delay": (5, 12), "exception": (5, 12),
    "return": (5, 12), "memory_leak": (4, 8), "disk_full": (5, 15), "bad_deploy": (10, 25),
    "saturation": (10, 25),
}
PRECURSOR_MINUTES: dict[str, tuple[float, float]] = {"memory_leak": (30, 180), "disk_full": (30, 180)}
STRESS_MINUTES: dict[str, tuple[float, float]] = {"deploy": (2, 3), "traffic_spike": (10, 60), "noisy_neighbour": (10, 40)}
_NEEDS_CALLER = frozenset({"network_delay", "return"})  # only visible through the service's callers


@dataclass(frozen=True)
class Event:
    """A fault or benign stress episode on service ``service`` over steps ``[start, end)``;
    ``severity`` in [0, 1] scales its effect within the kind's range. A gradual fault builds up
    from ``precursor`` (``start`` for the others) and harms from ``start``, its label."""

    kind: str
    service: int
    start: int
    end: int
    severity: float
    precursor: int = -1  # -1: no precursor (``start``)

    @property
    def first(self) -> int:
        """The first step the event touches."""
        return self.start if self.precursor < 0 else self.precursor


def _spaced_starts(
    rng: np.random.Generator, count: int, lo: int, hi: int, lengths: list[int], gap: int
) -> list[int] | None:
    """``count`` starts in ``[lo, hi)`` with ``gap`` steps after each event's end; None if they do not fit."""
    room = hi - lo - sum(lengths) - gap * max(count - 1, 0)
    if count == 0:
        return []
    if room < 0:
        return None
    # Spread the spare room at random over the count + 1 spaces around the events.
    cuts = np.sort(rng.integers(0, room + 1, size=count))
    starts, at = [], lo
    previous = 0
    for cut, length in zip(cuts, lengths, strict=True):
        at += int(cut) - previous
        previous = int(cut)
        starts.append(at)
        at += length + gap
    return starts


def plan_faults(
    rng: np.random.Generator,
    topology: Topology,
    steps: int,
    step_minutes: int,
    kinds: tuple[str, ...],
    count: int,
) -> list[Event]:
    """``count`` faults of ``kinds`` (fewer if the span is too short), in time order."""
    if not kinds or count <= 0:
        return []
    unknown = sorted(set(kinds) - set(FAULT_KINDS))
    if unknown:
        raise ValueError(f"unknown fault kind(s) {unknown}; choose from: {', '.join(FAULT_KINDS)}")
    chosen = [str(k) for k in rng.choice(list(kinds), size=count)]
    leads = [
        int(round(rng.uniform(*PRECURSOR_MINUTES[k]) / step_minutes)) if k in PRECURSOR_MINUTES else 0
        for k in chosen
    ]
    lengths = [
        lead + max(2, int(round(rng.uniform(*FAULT_MINUTES[k]) / step_minutes)))
        for k, lead in zip(chosen, leads, strict=True)
    ]
    warmup = int(round(WARMUP_MINUTES / step_minutes))
    gap = int(round(FAULT_GAP_MINUTES / step_minutes))
    starts = _spaced_starts(rng, count, warmup, steps, lengths, gap)
    while starts is None and chosen:
        chosen, lengths, leads = chosen[:-1], lengths[:-1], leads[:-1]
        starts = _spaced_starts(rng, len(chosen), warmup, steps, lengths, gap)
    with_callers = [i for i in range(topology.n) if topology.callers(i)]
    events = []
    for kind, first, length, lead in zip(chosen, starts or [], lengths, leads, strict=False):
        pool = with_callers if kind in _NEEDS_CALLER and with_callers else list(range(topology.n))
        service, severity = int(rng.choice(pool)), float(rng.uniform())
        events.append(Event(kind, service, first + lead, first + length, severity, first if lead else -1))
    return events


def plan_stress(
    rng: np.random.Generator,
    topology: Topology,
    steps: int,
    step_minutes: int,
    kinds: tuple[str, ...],
    count: int,
    faults: list[Event],
) -> list[Event]:
    """Up to ``count`` benign stress episodes of ``kinds``, each clear of every fault."""
    if not kinds or count <= 0:
        return []
    clearance = int(round(STRESS_CLEARANCE_MINUTES / step_minutes))
    busy = np.zeros(steps, dtype=bool)
    for f in faults:
        busy[max(0, f.first - clearance) : f.end + clearance] = True
    events: list[Event] = []
    for _ in range(count * 20):  # rejection sampling: a few tries per episode
        if len(events) == count:
            break
        kind = str(rng.choice(list(kinds)))
        length = max(2, int(round(rng.uniform(*STRESS_MINUTES[kind]) / step_minutes)))
        start = int(rng.integers(0, max(1, steps - length)))
        if busy[start : start + length].any():
            continue
        service = int(rng.integers(topology.entries)) if kind == "traffic_spike" else int(rng.integers(topology.n))
        busy[start : start + length] = True  # one episode at a time keeps their effects apart
        events.append(Event(kind, service, start, start + length, float(rng.uniform())))
    return sorted(events, key=lambda e: e.start)
