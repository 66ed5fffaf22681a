"""From the plan to numbers: six metrics per instance on the grid, as (instance, time) arrays.

The model, per instance:

- **traffic** = service peak x daily profile (business-local, evening peak, night trough; a
  later, flatter weekend) x growth x promotion x slow AR(1) noise, split over instances by
  slightly uneven load-balancer weights with fast AR(1) noise of their own;
- **CPU** = idle + requests x CPU cost / vCPUs (+ GC work when the heap is nearly full),
  soft-capped at 100 %; served requests plateau at capacity;
- **latency p95** = own floor x queueing factor ``1 + 0.35 rho / (1 - rho)`` (sharp near
  saturation) x GC / incident factors x noise, plus the latency of the services it calls;
- **errors** = small baseline growing with load, transient blips, incident errors, time-outs
  past the SLO, plus a share of its callees' errors;
- **memory** = floor + caches that fill after each restart (a slow sawtooth reset by deploys
  and OOM kills) + a short GC sawtooth + in-flight requests;
- **disk** = floor + slow data growth + logs written with load, dropped by daily log rotation.

Benign stress (:mod:`stress`: campaign surges, nightly backups, high healthy heaps, retry storms)
and incidents (:mod:`effects`) bend these base signals.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from simulator import effects, stress
from simulator.benign_stress import BenignStress
from simulator.fleet import CALL_GRAPH, Fleet
from simulator.scenarios import PlannedIncident, Promotion, Scenario
from simulator.seeding import rng_for
from simulator.timegrid import TimeGrid

METRIC_UNITS: dict[str, str] = {
    "cpu_pct": "percent",
    "mem_pct": "percent",
    "disk_pct": "percent",
    "request_rate": "requests_per_second",
    "latency_p95": "seconds",
    "error_rate": "ratio",
}
GROWTH_PER_DAY = 0.0054  # about +12 % traffic over three weeks
CALL_WEIGHT: dict[tuple[str, str], float] = {  # share of a callee's p95 that shows in its caller's
    ("frontend", "cart"): 0.35, ("frontend", "catalog"): 0.35, ("frontend", "search"): 0.3,
    ("frontend", "checkout"): 0.3, ("checkout", "payments"): 0.8, ("checkout", "cart"): 0.4,
}
IDLE_CPU_SHARE = 0.04  # OS, agents and sidecars
ERROR_PROPAGATION = 0.6  # share of a callee's failed calls that fail the caller's request
LOG_ROTATION_MINUTE_UTC = 6 * 60 + 25  # cron.daily
_HOURS = np.array([0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 21, 22, 23, 24], dtype=float)
# Relative traffic at those local hours: trough before dawn, evening peak; weekends start later.
_WEEKDAY = np.array([0.42, 0.26, 0.20, 0.26, 0.55, 0.74, 0.82, 0.78, 0.80, 0.92, 1.0, 1.0, 0.88, 0.64, 0.42])
_WEEKEND = np.array([0.50, 0.33, 0.22, 0.21, 0.32, 0.58, 0.80, 0.85, 0.84, 0.86, 0.9, 0.88, 0.80, 0.64, 0.50])


@dataclass(frozen=True)
class Signals:
    """Metric -> (n_instances, T) array, each instance's SLO, and incidents with data-refined starts.

    ``heap_pct`` is what the application itself sees of its heap (it writes it in GC log lines);
    it equals ``mem_pct`` except where a container's limit sits below the host's memory. It is
    never emitted as telemetry.
    """

    values: dict[str, np.ndarray]
    slo_s: np.ndarray
    incidents: tuple[PlannedIncident, ...]
    heap_pct: np.ndarray


def ar1(
    rng: np.random.Generator, shape: tuple[int, int], tau_minutes: float, sd: float, step_minutes: int
) -> np.ndarray:
    """Stationary AR(1) noise along the last axis with correlation time ``tau_minutes`` and s.d. ``sd``.

    Computed as the AR(1) impulse response (``phi ** k``, truncated at 1e-6) convolved with the
    innovations by FFT, after a burn-in as long as the kernel: exact to 1e-6 and fully vectorised.
    """
    phi = float(np.exp(-step_minutes / tau_minutes))
    lags = int(np.ceil(np.log(1e-6) / np.log(phi))) + 1
    rows, n = shape
    innovations = rng.standard_normal((rows, n + lags)) * sd * np.sqrt(1.0 - phi**2)
    size = n + 2 * lags
    kernel = np.fft.rfft(phi ** np.arange(lags), size)
    return np.fft.irfft(np.fft.rfft(innovations, size) * kernel, size)[:, lags : lags + n]


def _periodic_profile(values: np.ndarray) -> np.ndarray:
    """The hourly knots as a smooth per-minute table over one day (linear, then a 2-hour circular mean)."""
    minutes = np.interp(np.arange(24 * 60) / 60.0, _HOURS, values)
    window = np.ones(120) / 120.0
    padded = np.concatenate([minutes[-60:], minutes, minutes[:59]])
    return np.convolve(padded, window, mode="valid")


def daily_profile(grid: TimeGrid) -> np.ndarray:
    """Relative traffic by local time of day (about 1.0 at the weekday evening peak)."""
    minute = np.floor(grid.local_hour * 60.0).astype(int) % (24 * 60)
    return np.where(grid.weekend, _periodic_profile(_WEEKEND)[minute], _periodic_profile(_WEEKDAY)[minute])


def promotion_curve(promo: Promotion | None, n: int, step_minutes: int) -> np.ndarray:
    """Fractional extra traffic from the promotion: fast rise, plateau, slow decay (0 outside)."""
    extra = np.zeros(n)
    if promo is None:
        return extra
    length = promo.end - promo.start
    x = np.arange(length) * step_minutes / 60.0
    rise = 1.0 - np.exp(-x / 1.5)
    decay = np.clip((length * step_minutes / 60.0 - x) / 10.0, 0.0, 1.0)
    extra[promo.start : promo.end] = (promo.peak - 1.0) * rise * decay
    return extra


def service_traffic(seed: int, fleet: Fleet, grid: TimeGrid, promo: Promotion | None) -> np.ndarray:
    """Service-wide offered requests/s, (n_services, T)."""
    rng = rng_for(seed, "traffic")
    n = len(grid)
    base = daily_profile(grid) * np.exp(GROWTH_PER_DAY * grid.elapsed_days)
    promo_extra = promotion_curve(promo, n, grid.step_minutes)
    # Conversion rises in a promotion: checkout and payments get proportionally more traffic.
    boost = np.array([1.3 if s.name in ("checkout", "payments") else 1.0 for s in fleet.services])
    peaks = np.array([s.peak_rps for s in fleet.services])
    noise = ar1(rng, (len(fleet.services), n), 120.0, 0.06, grid.step_minutes)
    return peaks[:, None] * base * (1.0 + boost[:, None] * promo_extra) * np.exp(noise)


def instance_traffic(
    seed: int, fleet: Fleet, grid: TimeGrid, svc_rps: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per-instance offered requests/s and load-balancer shares, (n_instances, T) and (n_instances,)."""
    rng = rng_for(seed, "balancer")
    svc = fleet.service_index
    weights = 1.0 + 0.04 * rng.standard_normal(len(svc))
    totals = np.bincount(svc, weights=weights)
    share = weights / totals[svc]
    noise = ar1(rng, (len(svc), len(grid)), 30.0, 0.03, grid.step_minutes)
    return svc_rps[svc] * share[:, None] * np.exp(noise), share


def cpu_cost(fleet: Fleet, share: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """CPU seconds per request and vCPUs per instance, sized so a weekday peak hits the service target."""
    svc = fleet.service_index
    vcpus = np.array([i.vcpus for i in fleet.instances], dtype=float)
    peak_util = np.array([s.peak_utilisation for s in fleet.services])[svc]
    peak_rps = np.array([s.peak_rps for s in fleet.services])[svc] * share
    return (peak_util - IDLE_CPU_SHARE) * vcpus / peak_rps, vcpus


def soft_cap(x: np.ndarray, p: float = 10.0) -> np.ndarray:
    """Smooth min(x, 1): linear well below 1, saturating to 1 above."""
    x = np.maximum(x, 0.0)
    return x / (1.0 + x**p) ** (1.0 / p)


def restart_age_hours(seed: int, restarts: np.ndarray, step_minutes: int) -> np.ndarray:
    """Hours since each instance last (re)started, given a bool (n_instances, T) restart mask."""
    rng = rng_for(seed, "uptime")
    n_inst, n = restarts.shape
    booted = -np.asarray(rng.uniform(2, 60, n_inst)) * 60.0 / step_minutes  # started before the span
    idx = np.where(restarts, np.arange(n)[None, :], booted[:, None])
    return (np.arange(n)[None, :] - np.maximum.accumulate(idx, axis=1)) * step_minutes / 60.0


def memory(seed: int, fleet: Fleet, grid: TimeGrid, age_h: np.ndarray, load_rel: np.ndarray) -> np.ndarray:
    """Memory % without leaks: caches filling after restart, GC sawtooth, in-flight requests, noise."""
    rng = rng_for(seed, "memory")
    n_inst, n = age_h.shape
    svc = fleet.service_index
    floor = np.array([s.mem_floor_pct for s in fleet.services])[svc] + rng.uniform(-2, 2, n_inst)
    growth = np.array([s.mem_growth_pct for s in fleet.services])[svc]
    tau_h = np.asarray(rng.uniform(18, 40, n_inst))
    period = np.asarray(rng.uniform(20, 60, n_inst)) / grid.step_minutes
    phase = np.asarray(rng.uniform(0, 1, n_inst))
    gc_saw = 1.8 * ((np.arange(n)[None, :] / period[:, None] + phase[:, None]) % 1.0)
    caches = growth[:, None] * (1.0 - np.exp(-age_h / tau_h[:, None]))
    noise = ar1(rng, (n_inst, n), 15.0, 0.5, grid.step_minutes)
    return floor[:, None] + caches + gc_saw + 3.0 * load_rel + noise


def disk(seed: int, fleet: Fleet, grid: TimeGrid, load_rel: np.ndarray) -> np.ndarray:
    """Disk % without incidents: slow data growth plus logs written with load, cut by daily rotation."""
    rng = rng_for(seed, "disk")
    n_inst, n = load_rel.shape
    svc = fleet.service_index
    floor = np.array([s.disk_floor_pct for s in fleet.services])[svc] + rng.uniform(-4, 4, n_inst)
    per_day = np.array([s.disk_log_pct_per_day for s in fleet.services])[svc] * rng.uniform(0.8, 1.2, n_inst)
    written = np.cumsum(load_rel, axis=1) * (per_day / grid.steps_per_day)[:, None]
    start_minute = grid.start.hour * 60 + grid.start.minute
    minute_of_day = (start_minute + np.arange(n) * grid.step_minutes) % (24 * 60)
    # The first sample at or after the cron time sees the rotation, whatever the step.
    after = minute_of_day >= LOG_ROTATION_MINUTE_UTC
    rotated = after & (minute_of_day - grid.step_minutes < LOG_ROTATION_MINUTE_UTC)
    last = np.maximum.accumulate(np.where(rotated, np.arange(n), 0))
    since_rotation = written - written[:, last] + 0.5 * per_day[:, None]  # compressed archives stay
    trend = np.asarray(rng.uniform(0.1, 0.45, n_inst))[:, None] * grid.elapsed_days[None, :]
    return floor[:, None] + trend + since_rotation + 0.02 * rng.standard_normal((n_inst, n))


def queueing_factor(rho: np.ndarray) -> np.ndarray:
    """Latency inflation from queueing: mild at moderate load, sharp near saturation."""
    rho = np.clip(rho, 0.0, 0.99)
    return 1.0 + 0.35 * rho / (1.0 - rho)


def call_order() -> list[str]:
    """Services ordered callees first, so a caller's latency can include its callees'."""
    order: list[str] = []

    def visit(name: str) -> None:
        for callee in CALL_GRAPH[name]:
            visit(callee)
        if name not in order:
            order.append(name)

    for name in CALL_GRAPH:
        visit(name)
    return order


def propagate(fleet: Fleet, own: np.ndarray, combine: dict[tuple[str, str], float]) -> np.ndarray:
    """Add each callee's service-mean value, weighted per edge, to its callers' instances."""
    total = own.copy()
    for service in call_order():
        rows = fleet.instances_of(service)
        for callee in CALL_GRAPH[service]:
            total[rows] += combine[(service, callee)] * total[fleet.instances_of(callee)].mean(axis=0)
    return total


def _by_category(incidents: tuple[PlannedIncident, ...]) -> dict[str, list[PlannedIncident]]:
    """Incidents grouped by category (every category present, possibly empty)."""
    return {c: [i for i in incidents if i.category == c] for c in effects.CATEGORIES}


def _benign(scenario: Scenario, kind: str) -> list[BenignStress]:
    """The scenario's benign stress episodes of one kind."""
    return [b for b in scenario.benign if b.kind == kind]


def offered_load(
    seed: int, fleet: Fleet, grid: TimeGrid, scenario: Scenario
) -> tuple[np.ndarray, np.ndarray]:
    """Offered requests/s per instance with surges and OOM drop-outs applied, and the CPU share it costs."""
    n, step = len(grid), grid.step_minutes
    incidents = _by_category(scenario.incidents)
    svc_rps = service_traffic(seed, fleet, grid, scenario.promotion)
    offered, share = instance_traffic(seed, fleet, grid, svc_rps)
    cost, vcpus = cpu_cost(fleet, share)
    per_request = cost / vcpus  # CPU share one request/s costs
    for ev in _benign(scenario, "traffic_surge"):  # campaigns: the whole service gets busier
        rows = list(ev.instances)
        spec = fleet.spec(ev.service)
        peak = stress.surge_peak_share(ev.level, spec.latency_floor_s, spec.slo_p95_s, IDLE_CPU_SHARE)
        offered[rows] *= stress.surge_multiplier(ev, offered[rows] * per_request[rows, None], peak, n)
    for inc in incidents["saturation"]:
        load_share = offered[inc.instance] * per_request[inc.instance]
        offered[inc.instance] *= effects.surge_multiplier(inc, load_share, n, step)
    for inc in incidents["resource_leak"]:
        keep = effects.oom_dropout(inc, n, step)
        lost = offered[inc.instance] * (1.0 - keep)
        peers = [k for k in fleet.instances_of(inc.service) if k != inc.instance]
        offered[inc.instance] *= keep
        for k in peers:  # the load balancer moves the restarting instance's share to its peers
            offered[k] += lost / len(peers)
    return offered, offered * per_request[:, None]


def memory_with_leaks(
    seed: int, fleet: Fleet, grid: TimeGrid, scenario: Scenario, offered: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Host memory % and the application's heap % (restarts reset caches, leaks fill the heap,
    healthy heaps settle high).

    The two differ only for a container OOM: its heap reaches the container's limit while the
    host, with room to spare, shows the incident's lower ``level``.
    """
    restarts = np.zeros(offered.shape, dtype=bool)
    for d in scenario.deploys:
        restarts[d.instance, d.at] = True
    leaks = _by_category(scenario.incidents)["resource_leak"]
    for inc in leaks:
        restarts[inc.instance, inc.start] = True
    load_rel = offered / offered.mean(axis=1, keepdims=True)
    mem = memory(seed, fleet, grid, restart_age_hours(seed, restarts, grid.step_minutes), load_rel)
    for ev in _benign(scenario, "heap_plateau"):
        k = ev.instances[0]
        extra = stress.heap_plateau_extra(ev, mem[k], grid.step_minutes)
        if restarts[k, ev.end]:
            extra[ev.end :] = 0.0  # the restart resets the heap: no slow trim afterwards
        mem[k] += extra
    heap = mem.copy()
    for inc in leaks:
        k = inc.instance
        heap[k] += effects.leak_extra(inc, mem[k], offered[k])
        host_target = inc.level if inc.variant == "container_oom" else effects.LEAK_TARGET_PCT
        mem[k] += effects.leak_extra(inc, mem[k], offered[k], host_target)
    return np.clip(mem, 0.0, 100.0), np.clip(heap, 0.0, 100.0)


def disk_with_fills(
    seed: int, fleet: Fleet, grid: TimeGrid, scenario: Scenario, offered: np.ndarray
) -> np.ndarray:
    """Disk % with nightly backups, prefilled volumes and runaway writers filling it before incidents."""
    disk_pct = disk(seed, fleet, grid, offered / offered.mean(axis=1, keepdims=True))
    for ev in _benign(scenario, "batch_disk"):
        disk_pct[ev.instances[0]] += stress.batch_disk_extra(ev, disk_pct[ev.instances[0]])
    for inc in _by_category(scenario.incidents)["disk"]:
        disk_pct[inc.instance] += effects.prefill_extra(inc, disk_pct[inc.instance], grid.step_minutes)
        disk_pct[inc.instance] += effects.disk_extra(inc, disk_pct[inc.instance], offered[inc.instance])
    return np.clip(disk_pct, 0.0, 100.0)


def generate_signals(seed: int, fleet: Fleet, grid: TimeGrid, scenario: Scenario) -> Signals:
    """All six metrics for every instance over the grid, incidents included."""
    n, step = len(grid), grid.step_minutes
    shape = (len(fleet.instances), n)
    svc = fleet.service_index
    rng = rng_for(seed, "noise")

    offered, load_util = offered_load(seed, fleet, grid, scenario)
    mem, heap = memory_with_leaks(seed, fleet, grid, scenario, offered)
    idle = IDLE_CPU_SHARE
    served = offered * np.minimum(1.0, (1.0 - idle) / np.maximum(load_util, 1e-9))  # plateaus at capacity
    gc_pressure = np.clip((heap - 85.0) / 15.0, 0.0, 1.0) ** 2  # a nearly full heap makes GC work hard
    background = np.zeros(shape)  # CPU share of work besides serving requests (backups)
    stress_rng = rng_for(seed, "benign-signals")
    for ev in _benign(scenario, "batch_disk"):
        background[ev.instances[0]] += stress.batch_cpu_share(ev, n, stress_rng)
    util = soft_cap(idle + load_util + background + 0.25 * gc_pressure)
    cpu = np.clip(100.0 * util + ar1(rng, shape, 10.0, 1.0, step), 0.0, 100.0)

    floor = np.array([s.latency_floor_s for s in fleet.services])[svc]
    own_latency = floor[:, None] * queueing_factor(util) * (1.0 + 1.5 * gc_pressure)
    own_latency *= np.exp(ar1(rng, shape, 10.0, 0.08, step))
    for inc in scenario.incidents:
        own_latency[inc.instance] *= effects.latency_factor(inc, n)
    latency = propagate(fleet, own_latency, CALL_WEIGHT)
    slo = np.array([s.slo_p95_s for s in fleet.services])[svc]

    base_err = np.array([s.base_error_ratio for s in fleet.services])[svc]
    load_rel = offered / offered.mean(axis=1, keepdims=True)
    own_err = base_err[:, None] * (0.6 + 0.4 * load_rel) * np.exp(ar1(rng, shape, 20.0, 0.3, step))
    own_err += scenario.error_blips
    for ev in _benign(scenario, "retry_storm"):
        own_err[list(ev.instances)] += stress.retry_storm_errors(ev, n, stress_rng)
    own_err += 0.15 * np.clip((latency / slo[:, None] - 1.0) / 3.0, 0.0, 1.0)  # time-outs past the SLO
    for inc in scenario.incidents:
        own_err[inc.instance] += effects.error_add(inc, n, rng)
    error_weight = {edge: ERROR_PROPAGATION * w for edge, w in CALL_WEIGHT.items()}

    counting_noise = rng.standard_normal(shape) * np.sqrt(served / (60.0 * step))  # Poisson counts
    values = {
        "cpu_pct": cpu,
        "mem_pct": mem,
        "disk_pct": disk_with_fills(seed, fleet, grid, scenario, offered),
        "request_rate": np.maximum(served + counting_noise, 0.0),
        "latency_p95": latency,
        "error_rate": np.clip(propagate(fleet, own_err, error_weight), 0.0, 1.0),
    }
    return Signals(values, slo, _refine_saturation_starts(scenario.incidents, latency, slo), heap)


def _refine_saturation_starts(
    incidents: tuple[PlannedIncident, ...], latency: np.ndarray, slo: np.ndarray
) -> tuple[PlannedIncident, ...]:
    """A saturation incident starts at its first SLO breach after the surge began (ground truth from data)."""
    out = []
    for inc in incidents:
        if inc.category == "saturation":
            lo = inc.precursor + max(1, (inc.start - inc.precursor) // 2)
            breach = np.flatnonzero(latency[inc.instance, lo : inc.end] > slo[inc.instance])
            if breach.size:
                inc = replace(inc, start=lo + int(breach[0]))
        out.append(inc)
    return tuple(out)
