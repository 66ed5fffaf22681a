"""Wire latency: the time a call spends between caller and callee, from an edge measured at both ends.

An edge's latency seen by the caller minus the same edge seen by the callee grows under a network
delay on the callee while the callee's own time does not (step 2 of the stream,
:mod:`models.incidents.stream`). Here: which two series of a catalogue are one edge's two views
(:func:`wire_pairs`, :func:`edge_view`) and the metric name of the latency derived from them. Pure.
"""

from __future__ import annotations

import pandas as pd

from models.incidents.category import metric_kind
from models.incidents.metric_vocabulary import metric_tokens

# An edge's latency seen by the caller / by the callee: ``edge`` and one of these tokens in its name.
_CALLER_VIEW: frozenset[str] = frozenset({"source", "caller"})
_CALLEE_VIEW: frozenset[str] = frozenset({"destination", "callee", "target"})
WIRE_METRIC = "edge_wire_latency"


def wire_pairs(catalogue: pd.DataFrame) -> list[tuple[str, str, str]]:
    """``(caller-view id, callee-view id, wire metric)`` for every edge measured from both ends.

    An edge's latency seen by the caller minus the same edge seen by the callee is the time spent
    between them (network, proxies, queues before the handler): it grows under a network delay
    while the callee's own time does not, and stays flat when the callee itself is slow. The two
    views are latency series of one ``resource_id`` named alike but for the view
    (:func:`edge_view`: ``edge_source_latency_p50`` and ``edge_destination_latency_p50``).
    """
    if "resource_id" not in catalogue.columns:
        return []
    callee_view: dict[tuple[str, str], str] = {}
    caller_view: list[tuple[str, str, str]] = []
    for uid, resource, metric in zip(
        catalogue["unique_id"].astype(str), catalogue["resource_id"].astype(str), catalogue["metric"].astype(str),
        strict=True,
    ):
        view = edge_view(metric)
        if view is None:
            continue
        side, rest = view
        if side == "callee":
            callee_view[(resource, rest)] = uid
        else:
            caller_view.append((uid, resource, rest))
    return [
        (uid, callee_view[(resource, rest)], f"{WIRE_METRIC}{rest}")
        for uid, resource, rest in caller_view
        if (resource, rest) in callee_view
    ]


def edge_view(metric: str) -> tuple[str, str] | None:
    """``("caller" | "callee", what is left of the name after the view)`` for an edge latency
    named with ``edge`` and a view token (``edge_source_latency_p50`` -> ``("caller", "_p50")``:
    the part after ``latency``), else None."""
    tokens = metric_tokens(metric)
    if "edge" not in tokens or metric_kind(metric) not in ("call_latency", "server_latency"):
        return None
    words = set(tokens)
    side = "caller" if words & _CALLER_VIEW else "callee" if words & _CALLEE_VIEW else None
    if side is None:
        return None
    rest = [t for t in tokens if t not in ("edge", "latency") and t not in _CALLER_VIEW | _CALLEE_VIEW]
    return side, "".join(f"_{t}" for t in rest)
