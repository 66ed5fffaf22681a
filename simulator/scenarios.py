"""What happens to the fleet over the span: releases, a promotion, incidents, benign stress,
blips and gaps.

Everything here is a plan in grid indices drawn from the seed; :mod:`signals` turns it into
numbers. Incidents are spread evenly over the span after a clean three-day warm-up, one per
slot, categories balanced, and never overlap on an instance (precursor included, with a guard).
Some incidents are the less tidy variants real fleets see: a container OOM-killed at its cgroup
limit while host memory shows only ~80 %, a disk filling on a volume that was already high.
Releases are ordinary weekday rolling deploys; a release freeze holds around every incident so a
restart never hides a precursor.

Benign stress is what makes static thresholds noisy in real fleets and is *not* an incident:
flash-sale traffic surges pushing CPU to 85–92 %, nightly backups filling a disk to 85–92 % before
their cleanup, JVM heaps sitting healthily at 80–90 %, client retry storms. It happens more often
than incidents (about six times a week across the fleet) and never in an incident's lead-up; it
is planned in :mod:`simulator.benign_stress`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from simulator.benign_stress import BenignStress, plan_benign_stress
from simulator.fleet import Fleet
from simulator.seeding import rng_for
from simulator.timegrid import TimeGrid, business_days, local_index

WARMUP_DAYS = 3
INCIDENTS_PER_DAY = 0.62  # about 11 incidents over a 21-day span

# Category -> services it plausibly hits (CPU-bound tiers saturate, JVM tiers leak, ...).
CATEGORY_SERVICES: dict[str, tuple[str, ...]] = {
    "resource_leak": ("cart", "catalog", "checkout", "search", "frontend"),
    "disk": ("frontend", "cart", "checkout", "catalog", "payments", "search"),
    "saturation": ("frontend", "search", "catalog", "checkout"),
    "errors": ("frontend", "cart", "checkout", "catalog", "payments", "search"),
}
# Category -> (precursor lead minutes range, impact duration minutes range).
CATEGORY_TIMING: dict[str, tuple[tuple[float, float], tuple[float, float]]] = {
    "resource_leak": ((240.0, 720.0), (10.0, 25.0)),
    "disk": ((360.0, 1200.0), (30.0, 90.0)),
    "saturation": ((20.0, 50.0), (30.0, 90.0)),  # the SLO breach lands a little after the ramp
    "errors": ((5.0, 10.0), (20.0, 50.0)),
}
GUARD_MINUTES = 120.0  # quiet time kept between two incidents on one instance

# Incident variants (drawn from their own stream, so the incident plan itself does not move).
# Every other leak is killed at a container's cgroup limit (host memory ~80 %), every other disk
# incident fills a volume that was already high.
CONTAINER_OOM_HOST_PCT = (79.0, 86.0)  # host mem_pct when the container is killed
PREFILLED_DISK_PCT = (80.0, 88.0)  # where the volume sat before the runaway writer
PREFILL_DAYS_BEFORE = (1.0, 4.0)  # when it got there (a data import / retention change)


@dataclass(frozen=True)
class PlannedIncident:
    """One incident on one instance, in grid indices: precursor from ``precursor``, failure from ``start``."""

    category: str
    service: str
    instance: int
    precursor: int
    start: int
    end: int
    magnitude: float  # category-specific size (peak error ratio, surge strength, ...)
    version: str = ""  # the bad release, for ``errors``
    # "" (the classic form), "container_oom" (leak; ``level`` = host mem % at the kill) or
    # "prefilled_volume" (disk; ``level`` = where the volume sat since ``since``).
    variant: str = ""
    level: float = 0.0
    since: int = -1


@dataclass(frozen=True)
class Deploy:
    """One instance restarting onto a version: a release, a canary of a bad release, or a rollback."""

    service: str
    instance: int
    at: int
    version: str
    kind: str  # "release" | "canary" | "rollback"


@dataclass(frozen=True)
class Promotion:
    """A marketing promotion: traffic ramps to ``peak`` times normal, then decays."""

    start: int
    end: int
    peak: float


@dataclass(frozen=True)
class Scenario:
    incidents: tuple[PlannedIncident, ...]
    deploys: tuple[Deploy, ...]
    promotion: Promotion | None
    error_blips: np.ndarray  # (n_instances, T) extra error ratio from transient blips
    scrape_gaps: np.ndarray  # (n_instances, T) bool: the scrape of this instance failed
    benign: tuple[BenignStress, ...] = ()


def plan_promotion(seed: int, grid: TimeGrid) -> Promotion | None:
    """One promotion of a day and a half in the middle third of the span (spans of a week or more).

    Kept off the first and last thirds so week-on-week growth stays readable at both ends.
    """
    days = len(grid) // grid.steps_per_day
    if days < 7:
        return None
    rng = rng_for(seed, "promotion")
    # Local day k + 1 is the UTC day k (the span starts at a UTC midnight, the evening before locally).
    day = business_days(grid)[int(rng.integers(days // 3 + 1, max(days // 3 + 2, 2 * days // 3 - 1)))]
    start = local_index(grid, day, 7.0)
    end = min(start + grid.steps(float(rng.uniform(30, 40)) * 60), len(grid) - 1)
    return Promotion(start, end, float(rng.uniform(1.45, 1.7)))


def _incident_start_hour(category: str, rng: np.random.Generator) -> float:
    """Local hour a failure tends to begin at: saturation at the evening peak, deploys in office hours."""
    if category == "saturation":
        return float(rng.uniform(18.5, 21.5))
    if category == "errors":
        return float(rng.uniform(10.0, 16.5))
    return float(rng.uniform(0.0, 24.0))


def plan_incidents(seed: int, fleet: Fleet, grid: TimeGrid) -> tuple[PlannedIncident, ...]:
    """Incidents one per slot after the warm-up, categories balanced, never overlapping on an instance."""
    rng = rng_for(seed, "incidents")
    days = len(grid) / grid.steps_per_day
    usable = days - WARMUP_DAYS - 0.5
    n = int(round(usable * INCIDENTS_PER_DAY)) if usable > 0 else 0
    if n == 0:
        return ()
    cats: list[str] = []
    while len(cats) < n:
        cats.extend(rng.permutation(list(CATEGORY_TIMING)).tolist())
    warmup_end = WARMUP_DAYS * grid.steps_per_day
    busy: dict[int, list[tuple[int, int]]] = {}
    guard = grid.steps(GUARD_MINUTES)
    local_days = business_days(grid)
    planned: list[PlannedIncident] = []
    for k, category in enumerate(cats[:n]):
        slot_day = WARMUP_DAYS + (k + float(rng.uniform(0.15, 0.85))) * usable / n
        day = local_days[min(int(slot_day) + 1, len(local_days) - 1)]
        (lead_lo, lead_hi), (dur_lo, dur_hi) = CATEGORY_TIMING[category]
        lead = grid.steps(float(rng.uniform(lead_lo, lead_hi)))
        duration = grid.steps(float(rng.uniform(dur_lo, dur_hi)))
        start = local_index(grid, day, _incident_start_hour(category, rng))
        start = min(max(start, warmup_end + lead), len(grid) - duration - 2)
        if start - lead < warmup_end:
            continue  # span too short for this one
        instance = _free_instance(rng, fleet, category, busy, start - lead - guard, start + duration + guard)
        if instance is None:
            continue
        busy.setdefault(instance, []).append((start - lead - guard, start + duration + guard))
        planned.append(
            PlannedIncident(
                category,
                fleet.instances[instance].service,
                instance,
                start - lead,
                start,
                start + duration,
                _magnitude(category, rng),
            )
        )
    return tuple(sorted(planned, key=lambda p: p.start))


def _magnitude(category: str, rng: np.random.Generator) -> float:
    """The category-specific size of one incident."""
    if category == "errors":
        return float(rng.uniform(0.06, 0.3))  # peak error ratio of the bad release
    if category == "saturation":
        return float(rng.uniform(1.12, 1.3))  # CPU share of the load the surge peaks at
    return float(rng.uniform(0.05, 0.2))  # error ratio while OOM-restarting / writing to a full disk


def _free_instance(
    rng: np.random.Generator,
    fleet: Fleet,
    category: str,
    busy: dict[int, list[tuple[int, int]]],
    lo: int,
    hi: int,
) -> int | None:
    """A random instance of a plausible service with nothing planned in ``[lo, hi)``, if any."""
    # Least-hit services first (ties in random order), so incidents spread over the fleet.
    candidates = list(CATEGORY_SERVICES[category])
    tiebreak = rng.permutation(len(candidates))
    hits = {s: sum(fleet.instances[i].service == s for i in busy for _ in busy[i]) for s in candidates}
    order = sorted(range(len(candidates)), key=lambda k: (hits[candidates[k]], tiebreak[k]))
    services = [candidates[k] for k in order]
    for service in services:
        for instance in rng.permutation(fleet.instances_of(service)).tolist():
            if all(hi <= a or lo >= b for a, b in busy.get(instance, [])):
                return int(instance)
    return None


def plan_deploys(
    seed: int, fleet: Fleet, grid: TimeGrid, incidents: tuple[PlannedIncident, ...]
) -> tuple[tuple[Deploy, ...], tuple[PlannedIncident, ...]]:
    """Weekday rolling releases per service, frozen around incidents, plus each bad canary and its rollback.

    Returns the deploys and the incidents with the bad release's version filled in.
    """
    rng = rng_for(seed, "deploys")
    freeze = grid.steps(6 * 60)
    deploys: list[Deploy] = []
    versions = {s.name: [1, int(rng.integers(4, 12)), 0] for s in fleet.services}
    incidents_by_service: dict[str, list[PlannedIncident]] = {}
    for inc in incidents:
        incidents_by_service.setdefault(inc.service, []).append(inc)
    releases: list[tuple[int, str]] = []
    for day in business_days(grid):
        if day.day_of_week >= 5:
            continue
        for spec in fleet.services:
            if rng.uniform() < 0.5:
                releases.append((local_index(grid, day, float(rng.uniform(10.0, 17.0))), spec.name))
    events: list[tuple[int, str, PlannedIncident | None]] = [(at, service, None) for at, service in releases]
    events += [(inc.precursor, inc.service, inc) for inc in incidents if inc.category == "errors"]
    out_incidents: list[PlannedIncident] = []
    for at, service, planned in sorted(events, key=lambda e: (e[0], e[1])):
        v = versions[service]
        if planned is None:
            near = any(
                i.precursor - freeze <= at <= i.end + freeze for i in incidents_by_service.get(service, [])
            )
            if near or at <= 0 or at >= len(grid) - 1:
                continue
            v[2] += 1
            version = f"v{v[0]}.{v[1]}.{v[2]}"
            for k, instance in enumerate(fleet.instances_of(service)):
                deploys.append(Deploy(service, instance, min(at + k, len(grid) - 1), version, "release"))
            continue
        current, bad = f"v{v[0]}.{v[1]}.{v[2]}", f"v{v[0]}.{v[1]}.{v[2] + 1}"
        v[2] += 1  # the bad version number is burnt; the next release skips it
        deploys.append(Deploy(service, planned.instance, planned.precursor, bad, "canary"))
        deploys.append(Deploy(service, planned.instance, planned.end, current, "rollback"))
        out_incidents.append(replace(planned, version=bad))
    others = [i for i in incidents if i.category != "errors"]
    merged = tuple(sorted([*others, *out_incidents], key=lambda p: p.start))
    return tuple(sorted(deploys, key=lambda d: (d.at, d.instance))), merged


def plan_blips_and_gaps(
    seed: int, fleet: Fleet, grid: TimeGrid, incidents: tuple[PlannedIncident, ...]
) -> tuple[np.ndarray, np.ndarray]:
    """Transient error blips (a few a week per instance) and failed scrapes (a few per instance per span).

    An OOM kill also loses the scrape at the moment of the restart, as it does in real life.
    """
    rng = rng_for(seed, "blips")
    n_inst, n = len(fleet.instances), len(grid)
    days = n / grid.steps_per_day
    blips = np.zeros((n_inst, n))
    gaps = np.zeros((n_inst, n), dtype=bool)
    for i in range(n_inst):
        for at in rng.integers(0, n, size=rng.poisson(days / 3.5)):
            length = int(rng.integers(1, 4))
            blips[i, at : at + length] += rng.uniform(0.006, 0.03)
        for at in rng.integers(0, n, size=rng.poisson(days / 6.0)):
            gaps[i, at : at + int(rng.integers(1, 5))] = True
    for inc in incidents:
        if inc.category == "resource_leak":
            gaps[inc.instance, inc.start] = True
    return blips, gaps


def plan_variants(
    seed: int, grid: TimeGrid, incidents: tuple[PlannedIncident, ...]
) -> tuple[PlannedIncident, ...]:
    """Turn every other leak into a container OOM and every other disk incident into the fill of an
    already-high volume (which one starts is drawn from the seed), so a span holds both forms."""
    rng = rng_for(seed, "incident-variants")
    phase = {"resource_leak": int(rng.integers(2)), "disk": int(rng.integers(2))}
    seen = {"resource_leak": 0, "disk": 0}
    out = []
    for inc in incidents:
        level, days_before = float(rng.uniform()), float(rng.uniform(*PREFILL_DAYS_BEFORE))
        if inc.category in seen:
            use_variant = (seen[inc.category] + phase[inc.category]) % 2 == 1
            seen[inc.category] += 1
            if use_variant and inc.category == "resource_leak":
                lo, hi = CONTAINER_OOM_HOST_PCT
                inc = replace(inc, variant="container_oom", level=lo + (hi - lo) * level)
            elif use_variant:
                lo, hi = PREFILLED_DISK_PCT
                since = max(0, inc.precursor - grid.steps(days_before * 24 * 60))
                inc = replace(inc, variant="prefilled_volume", level=lo + (hi - lo) * level, since=since)
        out.append(inc)
    return tuple(out)


def plan_scenario(seed: int, fleet: Fleet, grid: TimeGrid) -> Scenario:
    """The whole plan for a seed on a grid."""
    incidents = plan_incidents(seed, fleet, grid)
    deploys, incidents = plan_deploys(seed, fleet, grid, incidents)
    incidents = plan_variants(seed, grid, incidents)
    blips, gaps = plan_blips_and_gaps(seed, fleet, grid, incidents)
    benign = plan_benign_stress(seed, fleet, grid, incidents, deploys)
    return Scenario(incidents, deploys, plan_promotion(seed, grid), blips, gaps, benign)
