"""Which fault an incident most likely is, with a confidence, from the evidence at its top service.

The coarse category (:func:`models.incidents.category.categorise`) says what the users feel
(errors, latency, saturation); the fault type says what to do about it: find the process burning
a pod's CPU, roll back a release, restart a leaking service, clean a disk. :func:`classify_fault`
reads a :class:`FaultEvidence` (per-kind surprise at the top-ranked service, the *root*, and over
the incident; the root's relative rises and falls; its memory share) with these rules, in order:

1. ``disk_full``: a disk at the root is (nearly) full; the failed and slow requests follow from it.
2. Failed requests, and the root's memory fell by :data:`RESTART_FALL` or more: its process
   restarted. ``memory_leak`` when it fell by :data:`LEAK_FALL` or more (an out-of-memory kill
   empties a heap that had filled), else ``bad_deploy`` (a restart onto a new version only empties
   the caches).
3. ``network_delay``: the wire between the root and its callers (their view minus its own time)
   slowed at least as much as its own answers, or its callers waited while its own time did not.
4. ``memory_leak``: the root's memory share rose (by :data:`MEMORY_RISE` or more) to
   :data:`MEMORY_FULL_PERCENT` or more: a leak at its end, just before the kill.
5. Failed requests (at the root, or elsewhere while the root's CPU is not busy): the handler
   itself fails. ``exception``: on the dev data an exception and an early wrong ``return`` move
   the same metrics the same ways (docs/fault_types.md), so the commoner of the two is named,
   with a confidence of about a half.
6. CPU busy at the root: ``cpu_contention`` when it rose by :data:`CPU_JUMP` times its expected
   level or more (a second process burning a core in an otherwise light pod); ``memory_leak``
   when its memory share is :data:`MEMORY_HIGH_PERCENT` or more and still growing (the garbage
   collector fighting a leak); ``saturation`` when its traffic rose by :data:`TRAFFIC_SURGE` or
   more with it (more load than it can serve); else ``cpu_consumed`` (its own code burns more CPU
   for the same load).
7. Slower answers at the root with none of the above: ``exception`` (a failing code path that
   shows no failed-request metric; a CPU cause would show at the root's CPU).
8. Memory growing without the others: ``memory_leak``; a disk filling: ``disk_full``; the wire
   alone: ``network_delay``; nothing moved: ``unknown``.

Each rule's confidence (:data:`RULES`) is how often it named the right type where it fired on the
dev data, smoothed and rounded down (docs/fault_types.md), so an incident's confidence reads as a
plain probability of being right. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

from foresight.schemas import FAULT_TYPES as FAULT_TYPES  # re-exported: the fault types named here

# Fault type -> the coarse category (foresight.schemas.INCIDENT_CATEGORIES) it shows as.
COARSE_CATEGORY: dict[str, str] = {
    "cpu_contention": "saturation",
    "cpu_consumed": "saturation",
    "saturation": "saturation",
    "network_delay": "latency",
    "exception": "errors",
    "return": "errors",
    "bad_deploy": "errors",
    "memory_leak": "resource_leak",
    "disk_full": "disk",
}
CPU_JUMP = 10.0  # relative CPU rise (to 11x its expected level) that only a second, burning process makes
TRAFFIC_SURGE = 0.5  # relative traffic rise with which a busy CPU is load-driven
RESTART_FALL = 0.08  # relative fall of the root's memory that means its process restarted
LEAK_FALL = 0.25  # a restart's memory fall this large emptied a heap that had filled (an OOM kill)
MEMORY_FULL_PERCENT = 97.0  # memory share (percent of the limit) that a rise to is a leak at its end
MEMORY_HIGH_PERCENT = 90.0  # memory share from which a busy CPU is the collector fighting a leak
MEMORY_RISE = 0.02  # relative memory rise within the incident's first steps: it is still growing
# Rule -> (fault type, confidence). A confidence is the rule's share right where it fired on the
# dev data (both Nezha days, seven simulator seeds; docs/fault_types.md) with one right and one
# wrong call added, (right + 1) / (fired + 2), rounded down to 0.05; rules that never fired
# there get 0.3. Each rule's counts: docs/fault_types.md, *The rules*.
RULES: dict[str, tuple[str, float]] = {
    "disk_full": ("disk_full", 0.95),
    "restart_after_leak": ("memory_leak", 0.8),
    "restart": ("bad_deploy", 0.95),
    "wire": ("network_delay", 0.85),
    "memory_full": ("memory_leak", 0.85),
    "failing_handler": ("exception", 0.4),
    "cpu_jump": ("cpu_contention", 0.8),
    "heap_pressure": ("memory_leak", 0.6),
    "load": ("saturation", 0.8),
    "cpu_busy": ("cpu_consumed", 0.3),
    "slow_handler": ("exception", 0.3),
    "memory_growth": ("memory_leak", 0.3),
    "disk_growth": ("disk_full", 0.3),
    "wire_alone": ("network_delay", 0.3),
    "nothing": ("unknown", 0.0),
}
RULE_CONFIDENCE: dict[str, float] = {rule: confidence for rule, (_, confidence) in RULES.items()}


@dataclass(frozen=True)
class FaultEvidence:
    """What moved during an incident's first steps at its top-ranked service (the *root*).

    ``root`` / ``incident``: per metric kind (:data:`models.incidents.category.KINDS`), the largest
    surprise (``-log10 p``, harmful direction) at the root / over all ranked services. ``rise`` /
    ``fall``: per kind at the root, the largest relative rise (``observed / expected - 1``) and
    fall (``1 - observed / expected``) of any of its series. ``memory_peak_percent``: the root's
    highest memory share (percent of its limit; None when no series is a share). ``exhausted``:
    the root's capacity kinds that are full (:func:`models.incidents.category.exhausted_kinds`).
    """

    root: Mapping[str, float]
    incident: Mapping[str, float] = field(default_factory=dict)
    rise: Mapping[str, float] = field(default_factory=dict)
    fall: Mapping[str, float] = field(default_factory=dict)
    memory_peak_percent: float | None = None
    exhausted: Collection[str] = ()


def classify_fault(evidence: FaultEvidence, threshold: float) -> tuple[str, float]:
    """``(fault type, confidence)`` of an incident from its ``evidence``; a kind counts as moved
    when its surprise reaches ``threshold`` (the rules: module doc)."""
    return RULES[fault_rule(evidence, threshold)]


def fault_rule(evidence: FaultEvidence, threshold: float) -> str:
    """The name (a key of :data:`RULES`) of the first rule of the module doc that fires."""
    root, rise, fall = evidence.root, evidence.rise, evidence.fall

    def hot(kind: str, where: Mapping[str, float] = root) -> bool:
        return where.get(kind, 0.0) >= threshold

    failing = hot("errors") or hot("errors", evidence.incident)
    if "disk" in evidence.exhausted:
        return "disk_full"
    if failing and fall.get("memory", 0.0) >= RESTART_FALL:
        return "restart_after_leak" if fall["memory"] >= LEAK_FALL else "restart"
    if hot("network_latency") and root["network_latency"] >= root.get("server_latency", 0.0):
        return "wire"
    if hot("call_latency") and not hot("server_latency"):
        return "wire"
    peak = evidence.memory_peak_percent
    if peak is not None and peak >= MEMORY_FULL_PERCENT and rise.get("memory", 0.0) >= MEMORY_RISE:
        return "memory_full"
    if hot("errors") or (failing and not hot("cpu")):
        return "failing_handler"
    if hot("cpu"):
        if rise.get("cpu", 0.0) >= CPU_JUMP:
            return "cpu_jump"
        if peak is not None and peak >= MEMORY_HIGH_PERCENT and rise.get("memory", 0.0) >= MEMORY_RISE:
            return "heap_pressure"
        if hot("traffic") and rise.get("traffic", 0.0) >= TRAFFIC_SURGE:
            return "load"
        return "cpu_busy"
    if hot("server_latency") or hot("call_latency"):
        return "slow_handler"
    if hot("memory"):
        return "memory_growth"
    if hot("disk"):
        return "disk_growth"
    if hot("network_latency"):
        return "wire_alone"
    return "nothing"
