"""What kind of problem an incident is, from which kinds of metrics are anomalous where.

Every metric name, free text from any system, maps to a *kind* (:func:`metric_kind`, by the
vocabulary of :mod:`models.incidents.metric_vocabulary`): ``cpu``, ``memory``, ``disk``,
``server_latency`` (time a service takes to answer, measured at it), ``call_latency`` (time its
callers wait for it: its answer time plus the wire), ``network_latency`` (the wire alone: the
callers' view of a call minus the callee's), ``client_latency`` (time it waits for others), ``errors``,
``traffic`` (load, bytes, syscalls) or ``infrastructure`` (the node under a pod: shared, so not
evidence about the pod). Each kind rises or falls when it is a problem (:data:`KIND_DIRECTIONS`;
a success rate, free memory or available disk falls: :func:`metric_direction`).

:func:`categorise` turns the per-kind surprise of an incident's top-ranked service (and the
incident as a whole for errors) into one of :data:`foresight.schemas.INCIDENT_CATEGORIES`. The
rules, in order: a disk that is full at the root explains whatever follows (failed writes);
failed requests seen anywhere are the users' symptom of a failing handler (a busy CPU makes
answers slow, not wrong); a saturated CPU at the root explains its slow answers; a wait on the
wire without a slower server is the network; memory growth without the others is a leak.
Pure.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping

from models.incidents.metric_vocabulary import metric_unit, vocabulary_falls, vocabulary_kind

KINDS: tuple[str, ...] = (
    "cpu",
    "memory",
    "disk",
    "server_latency",
    "call_latency",
    "network_latency",
    "client_latency",
    "errors",
    "traffic",
    "infrastructure",
)
# +1: a rise is the problem; -1: a fall; 0: either way.
KIND_DIRECTIONS: dict[str, int] = {
    "cpu": 1,
    "memory": 1,
    "disk": 1,
    "server_latency": 1,
    "call_latency": 1,
    "network_latency": 1,
    "client_latency": 1,
    "errors": 1,
    "traffic": 0,
    "infrastructure": 1,
}
# Kinds that describe the service itself (used for root-cause evidence); traffic follows callers.
OWN_KINDS: frozenset[str] = frozenset(
    {"cpu", "memory", "disk", "server_latency", "call_latency", "network_latency", "errors"}
)
# Resources whose exhaustion makes a service fail (writes fail on a full disk), and the share of
# capacity from which they count as full. Not memory: a memory percentage is often of the pod's
# request rather than its limit (Nezha's reach 148 %), and a pod at 97 % of it during a network
# delay there is no leak.
CAPACITY_KINDS: frozenset[str] = frozenset({"disk"})
FULL_AT = 0.95
_SHARE_SCALE: dict[str, float] = {"percent": 100.0, "%": 100.0, "ratio": 1.0}


def exhausted_kinds(metrics: Iterable[tuple[str, str, float]], full_at: float = FULL_AT) -> set[str]:
    """The capacity kinds (:data:`CAPACITY_KINDS`) among ``(metric, unit, peak value)`` whose peak
    reached ``full_at`` of capacity; only shares of capacity in use (``percent`` or ``ratio``, from
    the unit or else the name: :func:`models.incidents.metric_vocabulary.metric_unit`) say so."""
    out = set()
    for metric, unit, peak in metrics:
        kind = metric_kind(metric)
        scale = _SHARE_SCALE.get(unit.strip().lower() or metric_unit(metric))
        used = metric_direction(metric) > 0  # not a share left free
        if kind in CAPACITY_KINDS and used and scale is not None and peak >= full_at * scale:
            out.add(kind)
    return out


def metric_kind(metric: str) -> str:
    """The kind of a metric name (:func:`models.incidents.metric_vocabulary.vocabulary_kind`; ``traffic``
    when nothing more specific matches)."""
    return vocabulary_kind(metric)


def metric_direction(metric: str) -> int:
    """+1 when a rise of ``metric`` is a problem, -1 when a fall is, 0 when both are."""
    kind = metric_kind(metric)
    if vocabulary_falls(metric, kind):
        return -1
    return KIND_DIRECTIONS[kind]


def categorise(
    root: Mapping[str, float],
    incident: Mapping[str, float],
    threshold: float,
    exhausted: Collection[str] = (),
) -> str:
    """The category of an incident from per-kind surprise at its top-ranked service (``root``)
    and over all its services (``incident``); a kind counts when its surprise >= ``threshold``.

    ``exhausted`` names the root's capacity kinds that are (nearly) full right now
    (:func:`exhausted_kinds`): a full disk explains the failed and slow requests that follow,
    however unsurprising its level is by then (the baseline follows a slow fill).
    """

    def hot(kinds: Mapping[str, float], kind: str) -> bool:
        return kinds.get(kind, 0.0) >= threshold

    if "disk" in exhausted:
        return "disk"
    if hot(root, "errors") or hot(incident, "errors"):
        return "errors"
    if hot(root, "cpu"):
        return "saturation"
    if hot(root, "network_latency") and root.get("network_latency", 0.0) >= root.get("server_latency", 0.0):
        return "latency"
    if hot(root, "server_latency") or hot(root, "call_latency"):
        return "saturation"
    if hot(root, "memory"):
        return "resource_leak"
    if hot(root, "disk"):
        return "disk"
    if hot(root, "network_latency"):
        return "latency"
    # Only traffic moved at the root (load, bytes, syscalls): the handler behaves differently.
    return "errors"
