"""Root-cause ranking: which service most likely started a problem, given the call graph.

In a request-serving system slowness and errors propagate *upstream*: when a callee is slow,
its callers' latencies rise too, so the loudest service is often a victim. The ranking is a
personalised PageRank on the anomaly-weighted call graph (the random-walk idea of MicroRCA,
Wu et al., NOMS 2020, and CloudRanger):

- a walker at service ``u`` moves to a callee ``v`` with weight ``a(v)`` (the problem may lie
  further down), back to a caller ``w`` with weight ``backward * a(w)`` (it may have come from
  above, less likely), or stays with weight ``a(u)`` (``u``'s own anomaly explains itself);
- with probability ``1 - damping`` it restarts at a service drawn in proportion to ``a``.

Walkers pile up at anomalous services whose callees are healthy: the root cause ranks first,
its callers, mildly anomalous because of it, after it. ``a`` is each service's own evidence
(surprise of its own metrics), so a healthy service ranks last whatever its neighbours.

``degree_neutral`` (the default) makes the chance of moving down to *some* callee as large as the
strongest callee's evidence, ``max a(v)``, shared among the callees in proportion to ``a(v)``,
instead of the sum of their evidence: otherwise a service with many callees (an entry service,
an orchestrator) leaks its weight to the background noise of all of them and can never be its
own root cause, while a leaf with one mildly anomalous metric keeps everything it receives.

Without a call graph (or with no call between the services that have evidence) no walk can move
blame anywhere, and the ranking is the services' own evidence, strongest first: the graph only
refines it. What counts as a service's own evidence can lean on the *kind* of metric that moved
(:func:`evidence_weights`): a service's CPU, memory, disk or the wire into it do not rise because
a callee is slow, while its answer time and failed requests do (:data:`INHERITABLE_KINDS`). Pure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

CallGraph = Mapping[str, Sequence[str]]
# Kinds (models.incidents.category.metric_kind) a service shows when a service it calls is slow
# or failing: its own answers wait for the callee's or fail with them.
INHERITABLE_KINDS: frozenset[str] = frozenset({"server_latency", "call_latency", "client_latency", "errors"})


def evidence_weights(kinds: Sequence[str] | np.ndarray, inherited_weight: float = 1.0) -> np.ndarray:
    """Per metric kind, the weight of its surprise in a service's ranking evidence:
    ``inherited_weight`` for :data:`INHERITABLE_KINDS`, 1 for the rest (resources, the wire)."""
    if not 0.0 < inherited_weight <= 1.0:
        raise ValueError(f"inherited_weight must be within (0, 1], got {inherited_weight}")
    inheritable = np.isin(np.asarray(kinds, dtype=str), sorted(INHERITABLE_KINDS))
    return np.where(inheritable, inherited_weight, 1.0)


def rank_root_causes(
    evidence: Mapping[str, float],
    call_graph: CallGraph,
    *,
    damping: float = 0.85,
    backward: float = 0.1,
    iterations: int = 100,
    degree_neutral: bool = True,
) -> list[tuple[str, float]]:
    """``(service, probability)`` pairs, most likely root cause first (ties: stronger evidence,
    then name). ``evidence`` maps services to non-negative anomaly strength; services in the
    graph without evidence count as healthy (0)."""
    if not 0.0 < damping < 1.0:
        raise ValueError(f"damping must be within (0, 1), got {damping}")
    if backward < 0:
        raise ValueError(f"backward must not be negative, got {backward}")
    bad = {s: v for s, v in evidence.items() if not np.isfinite(v) or v < 0}
    if bad:
        raise ValueError(f"evidence must be finite and non-negative, got {bad}")
    services = sorted(set(evidence) | set(call_graph) | {c for cs in call_graph.values() for c in cs})
    if not services:
        return []
    index = {s: i for i, s in enumerate(services)}
    a = np.array([float(evidence.get(s, 0.0)) for s in services])
    if a.sum() <= 0:
        return [(s, 1.0 / len(services)) for s in sorted(services, key=lambda s: s)]
    n = len(services)
    calls = np.zeros((n, n), dtype=bool)  # calls[u, v]: u calls v
    for caller, callees in call_graph.items():
        for callee in callees:
            if callee != caller:
                calls[index[caller], index[callee]] = True
    evident = a > 0
    personal = a / a.sum()
    if not calls[np.ix_(evident, evident)].any():
        # No call links two anomalous services: walkers can only stay where they restart, so the
        # ranking is the evidence itself (a healthy neighbour draws no weight either way).
        return _ordered(services, personal, a)
    down = calls * a[None, :]  # from caller u down to callee v
    if degree_neutral:
        total = down.sum(axis=1)
        share = np.divide(down.max(axis=1), total, out=np.ones(n), where=total > 0)
        down *= share[:, None]
    # weights[u, v]: from u to v (stay, move down to a callee, move back up to a caller)
    weights = np.diag(a) + down + backward * calls.T * a[None, :]
    out = weights.sum(axis=1, keepdims=True)
    # A service with no weight to go anywhere (healthy, healthy neighbours) restarts.
    transition = np.where(out > 0, weights / np.where(out > 0, out, 1.0), personal[None, :])
    rank = personal.copy()
    for _ in range(iterations):
        updated = damping * rank @ transition + (1 - damping) * personal
        if np.abs(updated - rank).sum() < 1e-12:
            rank = updated
            break
        rank = updated
    return _ordered(services, rank, a)


def _ordered(services: Sequence[str], rank: np.ndarray, a: np.ndarray) -> list[tuple[str, float]]:
    """``(service, rank)`` pairs by rank, then stronger evidence, then name."""
    order = sorted(range(len(services)), key=lambda i: (-rank[i], -a[i], services[i]))
    return [(services[i], float(rank[i])) for i in order]
