"""How each incident category bends an instance's signals, precursor first, failure second.

- ``resource_leak``: memory grows with the requests served (a leak per request) for hours until
  the container is OOM-killed at ``start``; it restarts (memory drops, one scrape lost), drops
  out of the load balancer for a few minutes (its peers take the load) and errors spike. In the
  ``container_oom`` variant the kill comes at the container's cgroup limit: the JVM heap is full
  but host ``mem_pct`` only reaches the incident's ``level`` (~80–85 %).
- ``disk``: something writes outside log rotation; the disk fills with load for hours to ~99 %
  at ``start``, writes then fail (errors, slower requests) until the files are cleaned at ``end``.
  In the ``prefilled_volume`` variant the volume has sat at ``level`` (80–88 %) for days before
  (a data import); after the incident it is resized, so it drops back to its usual level.
- ``saturation``: a hot-key surge drives the instance's CPU towards and past its capacity over
  20–60 minutes; latency breaks the SLO (``start`` is the first breach), requests time out.
- ``errors``: a bad release is canaried onto the instance (deploy a few minutes before ``start``),
  error ratio jumps and latency rises a little until the rollback at ``end``.

Functions return arrays to add to or multiply into one instance's row; they never mutate inputs.
"""

from __future__ import annotations

import numpy as np

from simulator.scenarios import PlannedIncident

CATEGORIES: tuple[str, ...] = ("resource_leak", "disk", "saturation", "errors")
OOM_OUT_OF_LB_MINUTES = 10.0  # a restarted container is out of the load balancer this long
LEAK_TARGET_PCT = 101.0  # the leak pushes past the limit: the kernel kills at 100 %
DISK_FULL_PCT = 99.3
SATURATION_AT_START = 1.0  # CPU share of the load when the ramp ends: the SLO breaks about here


def load_ramp(load: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """Share of the load served in ``[lo, t]`` out of ``[lo, hi]``: a ramp that rises faster when busy."""
    cum = np.cumsum(load[lo : hi + 1])
    return cum / cum[-1] if cum[-1] > 0 else np.linspace(0.0, 1.0, hi - lo + 1)


def surge_multiplier(inc: PlannedIncident, load_share: np.ndarray, n: int, step_minutes: int) -> np.ndarray:
    """Multiplier on the instance's offered load for a saturation incident.

    ``load_share`` is the CPU share of its load without the surge; the surge ramps convexly so
    utilisation reaches ``SATURATION_AT_START`` at the planned start, overshoots to the incident's
    magnitude, holds, and eases off over the last quarter of the incident.
    """
    mult = np.ones(n)
    p, s, e = inc.precursor, inc.start, inc.end
    base = max(float(load_share[s]), 1e-3)
    at_start = SATURATION_AT_START / base
    peak = max(inc.magnitude / base, at_start)
    ramp = np.linspace(0.0, 1.0, s - p + 1) ** 1.5
    mult[p : s + 1] = 1.0 + (at_start - 1.0) * ramp
    ease = max(1, (e - s) // 4)
    over = max(1, 15 // step_minutes)
    mult[s : e - ease] = np.interp(np.arange(s, e - ease), [s, s + over], [at_start, peak])
    mult[e - ease : e + 1] = np.linspace(peak, 1.0, e + 1 - (e - ease))
    return mult


def oom_dropout(inc: PlannedIncident, n: int, step_minutes: int) -> np.ndarray:
    """Share of its normal traffic the OOM-killed instance keeps while it restarts (0.05 .. 1)."""
    keep = np.ones(n)
    out = max(1, int(round(OOM_OUT_OF_LB_MINUTES / step_minutes)))
    back = min(n, inc.start + out + 2)
    keep[inc.start : inc.start + out] = 0.05
    keep[inc.start + out : back] = np.linspace(0.4, 0.9, back - (inc.start + out))
    return keep


PREFILL_RAMP_MINUTES = 180.0  # how long the data import that filled a prefilled volume took


def leak_extra(
    inc: PlannedIncident, mem_base: np.ndarray, load: np.ndarray, target: float = LEAK_TARGET_PCT
) -> np.ndarray:
    """Memory the leak adds: grows with load served, reaching ``target`` % at ``start``."""
    extra = np.zeros_like(mem_base)
    p, s = inc.precursor, inc.start
    need = max(target - float(mem_base[s - 1]), 0.0)
    extra[p:s] = need * load_ramp(load, p, s - 1) ** 1.3
    return extra


def prefill_extra(inc: PlannedIncident, disk_base: np.ndarray, step_minutes: int) -> np.ndarray:
    """Disk a prefilled volume carries: raised to ``level`` from ``since`` (over a few hours) to ``end``."""
    extra = np.zeros_like(disk_base)
    if inc.variant != "prefilled_volume":
        return extra
    lo, p, e = inc.since, inc.precursor, inc.end
    offset = max(inc.level - float(np.median(disk_base[lo:p])), 0.0)
    ramp = min(p - lo, max(1, int(round(PREFILL_RAMP_MINUTES / step_minutes))))
    extra[lo:e] = offset
    extra[lo : lo + ramp] = offset * np.linspace(0.0, 1.0, ramp)
    return extra


def disk_extra(inc: PlannedIncident, disk_base: np.ndarray, load: np.ndarray) -> np.ndarray:
    """Disk the runaway writer adds: fills with load to ``DISK_FULL_PCT`` at ``start``, held until ``end``."""
    extra = np.zeros_like(disk_base)
    p, s, e = inc.precursor, inc.start, inc.end
    need = DISK_FULL_PCT - float(disk_base[s])
    extra[p : s + 1] = need * load_ramp(load, p, s) ** 1.2
    extra[s:e] = DISK_FULL_PCT + np.linspace(0.0, 0.6, e - s) - disk_base[s:e]
    return extra


def error_add(inc: PlannedIncident, n: int, rng: np.random.Generator) -> np.ndarray:
    """Extra error ratio during the failure phase (saturation errors come from latency instead)."""
    add = np.zeros(n)
    s, e = inc.start, inc.end
    if inc.category == "errors":
        add[s:e] = inc.magnitude * rng.uniform(0.75, 1.15, e - s)
    elif inc.category == "resource_leak":
        add[s:e] = inc.magnitude * np.exp(-np.arange(e - s) / max(1.0, (e - s) / 3.0))
    elif inc.category == "disk":
        add[s:e] = inc.magnitude * rng.uniform(0.8, 1.2, e - s)
    return add


def latency_factor(inc: PlannedIncident, n: int) -> np.ndarray:
    """Multiplier on own latency: a bad release and a full disk slow requests, a cold start too."""
    factor = np.ones(n)
    s, e = inc.start, inc.end
    if inc.category == "errors":
        factor[s:e] = 1.3
    elif inc.category == "disk":
        factor[s:e] = 1.5
    elif inc.category == "resource_leak":
        factor[s : min(n, s + 4)] = 1.8  # cold caches after the restart
    return factor
