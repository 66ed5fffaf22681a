"""What each benign stress kind does to an instance's signals (none of it is an incident).

- ``traffic_surge``: a campaign multiplies a service's offered load for an hour or two; the
  busiest instance's CPU peaks at the episode's level (85–92 %) and latency rises but stays
  within the SLO.
- ``batch_disk``: a nightly backup dumps to local disk (disk climbs to 85–92 %, compression costs
  some CPU), uploads for a while, then deletes the dump.
- ``heap_plateau``: a JVM's heap settles at 80–90 % of memory and stays there (GC keeps it in
  check) until the instance restarts or the cache is trimmed.
- ``retry_storm``: clients retry a flaky call for a few minutes: the error ratio jumps to 4–10 %.

Functions return arrays for one instance's row (or a service's rows) and never mutate inputs.
"""

from __future__ import annotations

import numpy as np

from simulator.benign_stress import BenignStress

BATCH_CPU_SHARE = (0.08, 0.15)  # CPU share a backup's compression costs while it writes
# A surge stays below this queueing-latency multiple of the SLO on its service (no breach).
SURGE_LATENCY_SLO_SHARE = 0.7
HEAP_TRIM_MINUTES = 45.0  # a heap plateau that ends without a restart decays over this long


def inverse_soft_cap(y: float, p: float = 10.0) -> float:
    """The raw utilisation whose soft cap (``signals.soft_cap``) is ``y`` (0 < y < 1)."""
    return y / (1.0 - y**p) ** (1.0 / p)


def surge_peak_share(level_pct: float, latency_floor_s: float, slo_s: float, idle: float) -> float:
    """The load CPU share a surge may reach: CPU at ``level_pct``, own latency under 70 % of the SLO."""
    # queueing factor 1 + 0.35 rho / (1 - rho) <= k  <=>  rho <= (k - 1) / (k - 0.65)
    k = SURGE_LATENCY_SLO_SHARE * slo_s / latency_floor_s
    rho_cap = (k - 1.0) / (k - 0.65) if k > 1.0 else 0.5
    rho = min(level_pct / 100.0, rho_cap)
    return max(inverse_soft_cap(rho) - idle, 0.05)


def surge_multiplier(ev: BenignStress, load_share: np.ndarray, peak_share: float, n: int) -> np.ndarray:
    """Multiplier on a service's offered load: smooth rise to the peak, hold, ease off by ``end``.

    ``load_share`` is the CPU share of the service's instances without the surge, (k, T); the
    multiplier is sized so the busiest instance stays at or under ``peak_share`` during the hold.
    """
    mult = np.ones(n)
    s, p, e = ev.start, ev.peak, ev.end
    hold_end = p + max(1, (e - p) * 2 // 3)
    busiest = float(load_share[:, p:hold_end].max()) if hold_end > p else float(load_share[:, p].max())
    top = max(1.0, peak_share / max(busiest, 1e-3))
    rise = 0.5 - 0.5 * np.cos(np.linspace(0.0, np.pi, p - s + 1))
    mult[s : p + 1] = 1.0 + (top - 1.0) * rise
    mult[p:hold_end] = top
    fall = 0.5 + 0.5 * np.cos(np.linspace(0.0, np.pi, e + 1 - hold_end))
    mult[hold_end : e + 1] = 1.0 + (top - 1.0) * fall
    return mult


def batch_disk_extra(ev: BenignStress, disk_base: np.ndarray) -> np.ndarray:
    """Disk the backup dump adds: a steady climb to ``level`` at ``peak``, held, deleted at ``end``."""
    extra = np.zeros_like(disk_base)
    s, p, e = ev.start, ev.peak, ev.end
    need = max(ev.level - float(disk_base[p]), 0.0)
    extra[s : p + 1] = need * np.linspace(0.0, 1.0, p - s + 1)
    extra[p:e] = ev.level - disk_base[p:e]  # the dump's size is fixed while it uploads
    return np.maximum(extra, 0.0)


def batch_cpu_share(ev: BenignStress, n: int, rng: np.random.Generator) -> np.ndarray:
    """CPU share the backup's compression costs while it writes (``start`` to ``peak``)."""
    extra = np.zeros(n)
    extra[ev.start : ev.peak] = rng.uniform(*BATCH_CPU_SHARE)
    return extra


def heap_plateau_extra(ev: BenignStress, mem: np.ndarray, step_minutes: int) -> np.ndarray:
    """Memory a settling heap adds: approaches ``level`` by ``peak`` and holds it to ``end``.

    The gap is measured against the instance's median memory over the episode, so the plateau
    keeps the ordinary GC sawtooth and load ripple on top of it.
    """
    extra = np.zeros_like(mem)
    s, p, e = ev.start, ev.peak, ev.end
    gap = max(ev.level - float(np.median(mem[s:e])), 0.0)
    tau = max(1.0, (p - s) / 3.0)
    extra[s:e] = gap * (1.0 - np.exp(-np.arange(e - s) / tau))
    trim = min(len(mem) - e, max(1, int(round(HEAP_TRIM_MINUTES / step_minutes))))
    extra[e : e + trim] = extra[e - 1] * np.linspace(1.0, 0.0, trim + 1)[1:]
    return extra


def retry_storm_errors(ev: BenignStress, n: int, rng: np.random.Generator) -> np.ndarray:
    """Extra error ratio while clients retry: about ``level`` from ``start`` to ``end``."""
    add = np.zeros(n)
    add[ev.start : ev.end] = ev.level * rng.uniform(0.8, 1.1, ev.end - ev.start)
    return add
