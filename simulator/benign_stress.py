"""Benign stress: episodes that look alarming on a dashboard but are no incident, planned from the seed.

Flash-sale traffic surges pushing CPU to 85–92 %, nightly backups filling a disk to 85–92 % before
their cleanup, JVM heaps sitting healthily at 80–90 %, client retry storms: what makes static
thresholds noisy in real fleets. About six a week across the fleet, never in an incident's
lead-up; :mod:`simulator.stress` turns an episode into numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from simulator.fleet import Fleet
from simulator.seeding import rng_for
from simulator.timegrid import TimeGrid, business_days, local_index

if TYPE_CHECKING:
    from simulator.scenarios import Deploy, PlannedIncident

BENIGN_PER_DAY = 0.9  # benign stress episodes per day across the fleet (incidents: 0.62)
# Kind -> share of benign episodes.
BENIGN_KINDS: dict[str, float] = {
    "traffic_surge": 0.3,  # flash sale / campaign e-mail: a service's traffic, CPU 85–92 %
    "batch_disk": 0.25,  # nightly backup dump on one instance: disk 85–92 %, then cleaned up
    "heap_plateau": 0.2,  # a JVM heap settling at 80–90 % and staying there healthily
    "retry_storm": 0.25,  # clients retrying a few minutes: error ratio 4–10 %, then gone
}
BENIGN_LEVELS: dict[str, tuple[float, float]] = {
    "traffic_surge": (85.0, 92.0),  # peak CPU %
    "batch_disk": (85.0, 92.0),  # peak disk %
    "heap_plateau": (80.0, 90.0),  # memory % the heap settles at
    "retry_storm": (0.04, 0.10),  # peak error ratio
}
BENIGN_GUARD_MINUTES = 180.0  # benign stress keeps this far from an incident of its service


@dataclass(frozen=True)
class BenignStress:
    """A stress episode that looks alarming on a dashboard but is no incident.

    ``level`` is the kind's peak (CPU %, disk %, memory %, error ratio, see ``BENIGN_LEVELS``),
    reached at ``peak``; the episode is over at ``end``.
    """

    kind: str
    service: str
    instances: tuple[int, ...]
    start: int
    peak: int
    end: int
    level: float


def _benign_hour(kind: str, rng: np.random.Generator) -> float:
    """Local hour a benign episode starts: campaigns at lunch or evening, backups at night."""
    if kind == "traffic_surge":
        return float(rng.choice([rng.uniform(11.0, 13.0), rng.uniform(17.5, 20.0)]))
    if kind == "batch_disk":
        return float(rng.uniform(1.0, 4.0))
    if kind == "retry_storm":
        return float(rng.uniform(8.0, 22.0))
    return float(rng.uniform(0.0, 24.0))


def _benign_shape(kind: str, rng: np.random.Generator, grid: TimeGrid) -> tuple[int, int]:
    """(steps from start to peak, steps from start to end) of one benign episode."""
    if kind == "traffic_surge":
        ramp = grid.steps(float(rng.uniform(20, 45)))
        return ramp, ramp + grid.steps(float(rng.uniform(40, 120))) + grid.steps(float(rng.uniform(30, 60)))
    if kind == "batch_disk":
        fill = grid.steps(float(rng.uniform(40, 120)))
        return fill, fill + grid.steps(float(rng.uniform(10, 40)))
    if kind == "heap_plateau":
        rise = grid.steps(float(rng.uniform(60, 180)))
        return rise, rise + grid.steps(float(rng.uniform(8, 36)) * 60)
    storm = grid.steps(float(rng.uniform(5, 15)))
    return 0, storm


def plan_benign_stress(
    seed: int,
    fleet: Fleet,
    grid: TimeGrid,
    incidents: tuple[PlannedIncident, ...],
    deploys: tuple[Deploy, ...],
) -> tuple[BenignStress, ...]:
    """Benign stress episodes, one per slot over the whole span, kinds drawn by ``BENIGN_KINDS``.

    An episode keeps ``BENIGN_GUARD_MINUTES`` away from every incident of its service (lead-up
    included), so the ground truth stays unambiguous; a heap plateau ends early at its
    instance's next restart (a deploy resets the heap).
    """
    rng = rng_for(seed, "benign")
    days = len(grid) / grid.steps_per_day
    n = int(round(days * BENIGN_PER_DAY))
    kinds = list(BENIGN_KINDS)
    weights = np.array(list(BENIGN_KINDS.values()))
    guard = grid.steps(BENIGN_GUARD_MINUTES)
    local_days = business_days(grid)
    restarts: dict[int, list[int]] = {}
    for d in deploys:
        restarts.setdefault(d.instance, []).append(d.at)
    planned: list[BenignStress] = []
    for k in range(n):
        kind = kinds[int(rng.choice(len(kinds), p=weights / weights.sum()))]
        slot_day = (k + float(rng.uniform(0.1, 0.9))) * days / n
        day = local_days[min(int(slot_day) + 1, len(local_days) - 1)]
        start = local_index(grid, day, _benign_hour(kind, rng))
        to_peak, to_end = _benign_shape(kind, rng, grid)
        service = fleet.services[int(rng.integers(len(fleet.services)))].name
        members = fleet.instances_of(service)
        one = int(rng.choice(members))
        lo, hi = BENIGN_LEVELS[kind]
        level = float(rng.uniform(lo, hi))
        end = min(start + to_end, len(grid) - 1)
        instances = tuple(members) if kind in ("traffic_surge", "retry_storm") else (one,)
        if kind == "heap_plateau":
            later = [a for a in restarts.get(one, []) if a > start + to_peak]
            end = min([end, *later])
        if end <= start or any(
            inc.service == service and start - guard < inc.end and end + guard > inc.precursor
            for inc in incidents
        ):
            continue  # too close to an incident of the service (or off the span): leave the slot quiet
        planned.append(BenignStress(kind, service, instances, start, min(start + to_peak, end), end, level))
    return tuple(planned)
