"""From a topology, a load shape and a plan to per-service measures, (n_services, T) arrays.

The model, per service:

- **requests/s**: entry services take the outside load (daily and weekly seasonality from the
  business calendar, a trend, short bursts, slow noise); every call passes ``fan_out`` callee
  requests per caller request down the DAG;
- **CPU** share = idle + requests x cost (sized so the day's peak sits at 5-55 % utilisation),
  soft-capped near 100 %; **latency** = own floor x queueing factor x fault effects, plus the
  ``latency_share`` of each callee's latency (and any network delay on the call): callers see
  their callees' slowness; **errors**: the own failure probability plus ``latency_share`` of each
  callee's, observed as a binomial share of the minute's requests (so quiet services are noisy);
- **memory** and **disk** percent: a floor, GC sawtooth / slow growth, noise.

Faults and benign stress bend these (see :func:`apply_fault` and :func:`apply_stress`). Pure:
every random number comes from the generator passed in.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simulator.effects import load_ramp
from simulator.scenario_families.plan import Event
from simulator.scenario_families.topology import Topology
from simulator.signals import ar1, daily_profile, queueing_factor, soft_cap
from simulator.timegrid import TimeGrid

IDLE_SHARE = 0.03
MIN_RPS = 1.0  # a service serves at least this much (a quiet minute still sees ~60 requests)
# Latency percentiles of a minute: relative noise of a busy service, plus more the fewer requests
# the minute holds, and an occasional slow request (GC pause, cold cache) that lifts the tail
# percentiles (p95, p99), not the median.
LATENCY_NOISE = 0.15
LATENCY_COUNT_NOISE = 0.5  # / sqrt(requests in the sample)
SLOW_REQUEST_CHANCE = 0.03  # per service and sample, times the noise scale
CPU_NOISE = 0.12  # relative, per sample
MAX_QUEUE_RHO = 0.97  # queueing inflation stops growing here (time-outs take over)


@dataclass(frozen=True)
class LoadShape:
    """How the outside load moves: seasonality depth, trend, bursts, and the noise scale."""

    daily_amplitude: float = 0.6  # 0: flat; 1: the full business-hours profile
    trend_per_day: float = 0.02  # relative growth per day
    bursts_per_day: float = 2.0  # short benign bursts of outside load (x1.2 - x1.6, 2 - 10 min)
    noise: float = 1.0  # multiplies every noise amplitude
    entry_rps: tuple[float, float] = (5.0, 200.0)  # peak requests/s at an entry (log-uniform)


@dataclass
class SystemState:
    """The components the measures are built from; faults and stress edit these in place."""

    rps: np.ndarray  # served requests/s
    load_share: np.ndarray  # CPU share the requests cost (what requests queue on)
    extra_share: np.ndarray  # CPU share taken by something else (contention, a hog, a neighbour)
    latency_factor: np.ndarray  # multiplies the own latency
    own_error: np.ndarray  # own failure probability
    memory_pct: np.ndarray
    disk_pct: np.ndarray
    network_delay: np.ndarray  # seconds added to every call into the service
    floor_s: np.ndarray  # (n,) own latency floor
    limit_millicores: np.ndarray
    limit_bytes: np.ndarray


def outside_load(grid: TimeGrid, topology: Topology, shape: LoadShape, rng: np.random.Generator) -> np.ndarray:
    """Offered requests/s at each entry service, (entries, T)."""
    n, e = len(grid), topology.entries
    profile = daily_profile(grid)
    seasonal = 1.0 - shape.daily_amplitude + shape.daily_amplitude * profile / profile.max()
    low, high = shape.entry_rps
    base = np.exp(rng.uniform(np.log(low), np.log(high), e))[:, None] * seasonal * np.exp(shape.trend_per_day * grid.elapsed_days)
    load = base * np.exp(ar1(rng, (e, n), 60.0, 0.04 * shape.noise, grid.step_minutes))
    bursts = rng.poisson(shape.bursts_per_day * n * grid.step_minutes / 1440.0)
    for _ in range(bursts):
        row, at = int(rng.integers(e)), int(rng.integers(n))
        length = grid.steps(rng.uniform(2.0, 10.0))
        load[row, at : at + length] *= rng.uniform(1.2, 1.6)
    return load


def spread_load(topology: Topology, outside: np.ndarray) -> np.ndarray:
    """Requests/s of every service: the outside load at the entries, passed down the calls."""
    rps = np.zeros((topology.n, outside.shape[1]))
    rps[: topology.entries] = outside
    for (caller, callee), fan in zip(topology.calls, topology.fan_out, strict=True):
        rps[callee] += fan * rps[caller]  # calls go from lower to higher positions: callers are done
    return np.maximum(rps, MIN_RPS)


def base_state(
    grid: TimeGrid, topology: Topology, shape: LoadShape, rng: np.random.Generator, stress: list[Event]
) -> SystemState:
    """Every service's components without faults (benign traffic spikes included: they change the load)."""
    n, t = topology.n, len(grid)
    outside = outside_load(grid, topology, shape, rng)
    for ev in stress:
        if ev.kind == "traffic_spike":
            outside[ev.service] *= _bump(t, ev.start, ev.end, 1.2 + 0.4 * ev.severity)
    quiet = spread_load(topology, outside_load_without_stress(outside, stress, t))
    rps = spread_load(topology, outside) * np.exp(ar1(rng, (n, t), 30.0, 0.03 * shape.noise, grid.step_minutes))
    peak_util = np.exp(rng.uniform(np.log(0.05), np.log(0.55), n))
    cost = (peak_util - IDLE_SHARE) / quiet.max(axis=1)
    load_share = IDLE_SHARE + rps * cost[:, None]
    floor_s = np.exp(rng.uniform(np.log(0.003), np.log(0.15), n))
    memory = (
        rng.uniform(25.0, 60.0, n)[:, None]
        + _sawtooth(rng, n, t, grid.step_minutes)
        + 3.0 * rps / rps.max(axis=1, keepdims=True)
        + ar1(rng, (n, t), 15.0, 0.4 * shape.noise, grid.step_minutes)
    )
    disk = (
        rng.uniform(15.0, 70.0, n)[:, None]
        + rng.uniform(0.05, 0.8, n)[:, None] * grid.elapsed_days[None, :]
        + 0.03 * shape.noise * rng.standard_normal((n, t))
    )
    return SystemState(
        rps=rps,
        load_share=load_share,
        extra_share=np.zeros((n, t)),
        latency_factor=np.exp(ar1(rng, (n, t), 20.0, 0.06 * shape.noise, grid.step_minutes)),
        own_error=np.exp(rng.uniform(np.log(1e-5), np.log(2e-3), n))[:, None] * np.ones((1, t)),
        memory_pct=memory,
        disk_pct=disk,
        network_delay=np.zeros((n, t)),
        floor_s=floor_s,
        limit_millicores=rng.choice([500.0, 1000.0, 2000.0, 4000.0], n),
        limit_bytes=rng.choice([0.5, 1.0, 2.0, 4.0], n) * 2.0**30,
    )


def outside_load_without_stress(outside: np.ndarray, stress: list[Event], t: int) -> np.ndarray:
    """The outside load with benign spikes taken out again (capacity is sized on ordinary days)."""
    quiet = outside.copy()
    for ev in stress:
        if ev.kind == "traffic_spike":
            quiet[ev.service] /= _bump(t, ev.start, ev.end, 1.2 + 0.4 * ev.severity)
    return quiet


def _sawtooth(rng: np.random.Generator, n: int, t: int, step_minutes: int) -> np.ndarray:
    """A garbage collector's saw: memory climbs, drops at each collection."""
    period = rng.uniform(10.0, 40.0, n) / step_minutes
    phase = rng.uniform(0.0, 1.0, n)
    return rng.uniform(0.5, 2.5, n)[:, None] * ((np.arange(t)[None, :] / period[:, None] + phase[:, None]) % 1.0)


def _bump(t: int, start: int, end: int, peak: float) -> np.ndarray:
    """A multiplier rising smoothly from 1 to ``peak`` over ``[start, end)`` and back (cosine)."""
    mult = np.ones(t)
    end = min(end, t)
    if end > start:
        mult[start:end] = 1.0 + (peak - 1.0) * 0.5 * (1.0 - np.cos(np.linspace(0.0, 2.0 * np.pi, end - start)))
    return mult


def _span(ev: Event, t: int) -> slice:
    return slice(ev.start, min(ev.end, t))


def apply_stress(state: SystemState, ev: Event, rng: np.random.Generator, step_minutes: int) -> None:
    """A benign episode (traffic spikes are already in the load, :func:`base_state`)."""
    i, t = ev.service, state.rps.shape[1]
    if ev.kind == "deploy":
        # New version: slightly different cost and latency from now on, caches warm up again.
        state.load_share[i, ev.start :] = IDLE_SHARE + (state.load_share[i, ev.start :] - IDLE_SHARE) * rng.uniform(0.92, 1.1)
        state.latency_factor[i, ev.start :] *= rng.uniform(0.9, 1.12)
        drop = rng.uniform(3.0, 10.0) * np.exp(-np.arange(t - ev.start) * step_minutes / 60.0)
        state.memory_pct[i, ev.start :] -= drop
        state.own_error[i, _span(ev, t)] += rng.uniform(0.0, 0.004)
    elif ev.kind == "noisy_neighbour":
        state.extra_share[i] += (0.05 + 0.15 * ev.severity) * (_bump(t, ev.start, ev.end, 2.0) - 1.0)
        state.latency_factor[i] *= _bump(t, ev.start, ev.end, 1.05 + 0.2 * ev.severity)
    elif ev.kind != "traffic_spike":
        raise ValueError(f"unknown stress kind {ev.kind!r}")


def apply_fault(
    state: SystemState, topology: Topology, ev: Event, rng: np.random.Generator, step_minutes: int
) -> None:
    """A labelled fault: what it does to the injected service (its callers follow by propagation)."""
    i, t, s = ev.service, state.rps.shape[1], _span(ev, state.rps.shape[1])
    sev = ev.severity
    cpu_now = state.load_share[i, s] + state.extra_share[i, s]
    if ev.kind in ("cpu_contention", "cpu_consumed"):
        target = rng.uniform(0.92, 1.08)
        state.extra_share[i, s] += np.maximum(target - cpu_now, 0.0)
        low, high = (2.0, 30.0) if ev.kind == "cpu_contention" else (1.2, 6.0)
        state.latency_factor[i, s] *= np.exp(np.log(low) + sev * (np.log(high) - np.log(low)))
        if ev.kind == "cpu_contention":  # the stressor allocates too
            state.memory_pct[i, s] += rng.uniform(10.0, 40.0)
    elif ev.kind == "network_delay":
        typical = float(np.median(state.floor_s[i] * state.latency_factor[i]))
        state.network_delay[i, s] += typical * (0.5 + 14.5 * sev**2) + rng.uniform(0.002, 0.05)
    elif ev.kind == "exception":
        state.own_error[i, s] += 0.01 + 0.49 * sev**2
        state.latency_factor[i, s] *= np.exp(rng.uniform(0.0, np.log(3.0)))
    elif ev.kind == "return":
        # Wrong answers look fine to the service (it may answer faster or slower); its callers fail on them.
        harm = 0.01 + 0.39 * sev**2
        callers = topology.callers(i)
        for c in callers:
            state.own_error[c, s] += harm
        state.own_error[i, s] += harm * (0.2 if callers else 1.0)
        state.latency_factor[i, s] *= rng.uniform(0.7, 2.0)
    elif ev.kind == "memory_leak":
        _memory_leak(state, ev, rng, step_minutes)
    elif ev.kind == "disk_full":
        # Something writes outside log rotation: the disk fills with the load, then writes fail.
        lo = ev.first
        base = state.disk_pct[i, lo : ev.start]
        state.disk_pct[i, lo : ev.start] += (99.5 - base) * load_ramp(state.rps[i], lo, ev.start - 1) ** 1.2
        state.disk_pct[i, s] = 99.5 + 0.3 * rng.uniform(size=s.stop - ev.start)
        state.own_error[i, s] += 0.1 + 0.4 * sev  # writes fail
        state.latency_factor[i, s] *= rng.uniform(1.5, 3.0)
    elif ev.kind == "bad_deploy":
        state.memory_pct[i, ev.start :] -= rng.uniform(5.0, 15.0) * np.exp(-np.arange(t - ev.start) * step_minutes / 45.0)
        state.own_error[i, s] += 0.01 + 0.29 * sev**2
        state.latency_factor[i, s] *= rng.uniform(1.1, 2.5)
        state.extra_share[i, s] += rng.uniform(0.05, 0.2)
    elif ev.kind == "saturation":
        # A hot key: the service's own work grows past its capacity within a few minutes.
        peak = rng.uniform(1.05, 1.4) / max(float(np.median(cpu_now)), 0.05)
        ramp = np.minimum(1.0, (np.arange(s.stop - ev.start) + 1) / 3.0)
        mult = 1.0 + (peak - 1.0) * ramp
        state.load_share[i, s] = IDLE_SHARE + (state.load_share[i, s] - IDLE_SHARE) * mult
        over = np.maximum(state.load_share[i, s] + state.extra_share[i, s] - 1.0, 0.0)
        state.own_error[i, s] += np.minimum(0.5, over * rng.uniform(0.5, 1.5))  # time-outs
    else:
        raise ValueError(f"unknown fault kind {ev.kind!r}")


def _memory_leak(state: SystemState, ev: Event, rng: np.random.Generator, step_minutes: int) -> None:
    """Memory grows with the requests served from ``first`` to the limit; at ``start`` the
    container is OOM-killed: it restarts (memory drops), fails requests and serves few for a few
    minutes, then memory refills its caches."""
    i, t = ev.service, state.rps.shape[1]
    lo = ev.first
    base = state.memory_pct[i, lo : ev.start]
    state.memory_pct[i, lo : ev.start] += (rng.uniform(97.0, 100.0) - base) * load_ramp(state.rps[i], lo, ev.start - 1) ** 1.3
    state.memory_pct[i, ev.start :] -= rng.uniform(8.0, 15.0) * np.exp(-np.arange(t - ev.start) * step_minutes / 30.0)
    back = _span(ev, t)
    state.own_error[i, back] += (0.2 + 0.4 * ev.severity) * np.exp(-np.arange(back.stop - back.start) / 2.0)
    state.rps[i, back] *= np.linspace(0.2, 1.0, back.stop - back.start)
    state.latency_factor[i, back] *= np.linspace(3.0, 1.0, back.stop - back.start)


def measures(
    state: SystemState,
    topology: Topology,
    rng: np.random.Generator,
    step_minutes: int,
    noise: float,
    edges: bool = False,
) -> dict[str, np.ndarray]:
    """Every measure of :data:`vocabulary.MEASURES` as (n, T) arrays; with ``edges`` also each
    call's p50 latency seen by the caller (``edge:<caller>:<callee>:source``, network delay
    included) and by the callee (``...:destination``), as (T,) arrays."""
    n, t = state.rps.shape
    cpu_share = soft_cap(state.load_share + state.extra_share)
    cpu_pct = 100.0 * cpu_share * np.exp(CPU_NOISE * noise * rng.standard_normal((n, t)))
    cpu_pct = np.maximum(cpu_pct + ar1(rng, (n, t), 5.0, 0.6 * noise, step_minutes), 0.0)
    own = state.floor_s[:, None] * queueing_factor(np.minimum(state.load_share, MAX_QUEUE_RHO)) * state.latency_factor
    total = own.copy()
    waits = np.zeros((n, t))
    p_fail = state.own_error.copy()
    # Calls are sorted by caller and go to higher positions: walking them backwards completes every
    # callee's total before any of its callers reads it.
    for k in range(len(topology.calls) - 1, -1, -1):
        caller, callee = topology.calls[k]
        share = topology.latency_share[k]
        seen = total[callee] + state.network_delay[callee]
        waits[caller] += share * seen
        total[caller] += share * seen
        p_fail[caller] = 1.0 - (1.0 - p_fail[caller]) * (1.0 - share * p_fail[callee])
    waits += state.network_delay  # a delayed pod's own outgoing calls wait too
    counts = rng.poisson(state.rps * 60.0 * step_minutes).astype(np.int64)  # requests in each sample
    requests = np.maximum(counts, 1)
    failed = rng.binomial(requests, np.clip(p_fail, 0.0, 1.0)) / requests
    mem = np.clip(state.memory_pct, 1.0, 100.0)

    def jitter(scale: float) -> np.ndarray:
        return np.exp(scale * noise * rng.standard_normal((n, t)))

    spread = LATENCY_NOISE * noise + LATENCY_COUNT_NOISE / np.sqrt(requests)
    slow = np.where(rng.uniform(size=(n, t)) < SLOW_REQUEST_CHANCE * noise, rng.uniform(1.5, 5.0, (n, t)), 1.0)
    p95 = total * np.exp(spread * rng.standard_normal((n, t))) * slow**0.6
    out = {
        "cpu_pct": cpu_pct,
        "cpu_millicores": cpu_pct / 100.0 * state.limit_millicores[:, None],
        "mem_pct": mem,
        "mem_bytes": mem / 100.0 * state.limit_bytes[:, None],
        "mem_mib": mem / 100.0 * state.limit_bytes[:, None] / 2.0**20,
        "disk_pct": np.clip(state.disk_pct, 0.0, 100.0),
        "disk_ratio": np.clip(state.disk_pct, 0.0, 100.0) / 100.0,
        "latency_p50_s": 0.55 * total * np.exp(0.5 * spread * rng.standard_normal((n, t))),
        "latency_p95_s": p95,
        "latency_p99_s": p95 * np.asarray(rng.uniform(1.2, 1.8, n))[:, None] * jitter(0.08) * slow**0.4,
        "client_latency_p95_s": (waits + 0.0005) * jitter(0.05),
        "rps": counts / (60.0 * step_minutes),
        "error_ratio": failed,
        "error_pct": 100.0 * failed,
        "success_pct": 100.0 * (1.0 - failed),
    }
    out["latency_p99_ms"] = 1000.0 * out["latency_p99_s"]
    if edges:
        for caller, callee in topology.calls:
            wire = rng.uniform(0.0005, 0.003) * np.exp(0.1 * noise * rng.standard_normal(t))
            seen_by_callee = 0.55 * total[callee] * np.exp(0.04 * noise * rng.standard_normal(t))
            out[f"edge:{caller}:{callee}:destination"] = seen_by_callee
            out[f"edge:{caller}:{callee}:source"] = seen_by_callee + wire + state.network_delay[callee]
    return out
