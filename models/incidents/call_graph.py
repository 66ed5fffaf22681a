"""What the call graph says about services: the *system* (connected part of the graph) each one
belongs to, and every service that calls one directly or through others. Pure."""

from __future__ import annotations

from collections.abc import Mapping, Sequence


def call_graph_systems(services: Sequence[str], call_graph: Mapping[str, Sequence[str]]) -> dict[str, int]:
    """Each service's *system*: the connected part of the call graph it belongs to (calls in
    either direction join services), numbered from 0 in ``services`` order. A service the graph
    does not mention is a system of its own; without any call graph all services are one system."""
    if not call_graph:
        return {str(sv): 0 for sv in services}
    parent: dict[str, str] = {}

    def root(sv: str) -> str:
        parent.setdefault(sv, sv)
        while parent[sv] != sv:
            parent[sv] = parent[parent[sv]]
            sv = parent[sv]
        return sv

    for caller, callees in call_graph.items():
        root(str(caller))
        for callee in callees:
            parent[root(str(callee))] = root(str(caller))
    numbers: dict[str, int] = {}
    return {str(sv): numbers.setdefault(root(str(sv)), len(numbers)) for sv in services}


def transitive_callers(call_graph: Mapping[str, Sequence[str]]) -> dict[str, frozenset[str]]:
    """Service -> every service that calls it directly or through others."""
    callers: dict[str, set[str]] = {}
    for caller, callees in call_graph.items():
        for callee in callees:
            if callee != caller:
                callers.setdefault(callee, set()).add(caller)
    closed: dict[str, frozenset[str]] = {}
    for service in callers:
        seen: set[str] = set()
        todo = list(callers[service])
        while todo:
            up = todo.pop()
            if up not in seen and up != service:
                seen.add(up)
                todo += callers.get(up, set())
        closed[service] = frozenset(seen)
    return closed
