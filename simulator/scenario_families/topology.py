"""Random service topologies: named services and a call DAG from one or a few entry services.

Services are numbered so every call goes from a lower to a higher number (a DAG by construction);
the first ``entries`` services take the outside traffic. Every other service has at least one
caller, so a fault anywhere can travel upstream to an entry.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_ENTRY_NAMES = ("web-gateway", "mobile-api", "partner-api", "admin-portal")
_DOMAINS = (
    "order", "payment", "user", "search", "inventory", "shipping", "pricing", "auth", "notify", "review",
    "media", "geo", "ledger", "quote", "session", "profile", "basket", "route", "stock", "coupon",
)
_ROLES = ("svc", "api", "worker", "store", "cache")


@dataclass(frozen=True)
class Topology:
    """Services (entries first), calls between them and how each call weighs on its caller."""

    services: tuple[str, ...]
    entries: int  # the first ``entries`` services receive the outside traffic
    calls: tuple[tuple[int, int], ...]  # (caller, callee) positions, caller < callee
    fan_out: np.ndarray  # per call: callee requests per caller request
    latency_share: np.ndarray  # per call: share of the callee's latency its caller waits for

    @property
    def n(self) -> int:
        return len(self.services)

    def callees(self, i: int) -> list[int]:
        return [b for a, b in self.calls if a == i]

    def callers(self, i: int) -> list[int]:
        return [a for a, b in self.calls if b == i]

    def call_graph(self) -> dict[str, tuple[str, ...]]:
        """Caller -> callees by name, every service listed (a leaf with no callees too)."""
        return {name: tuple(sorted(self.services[b] for b in self.callees(i))) for i, name in enumerate(self.services)}


def service_names(n: int, entries: int, rng: np.random.Generator) -> tuple[str, ...]:
    """``n`` distinct service names, the first ``entries`` of them entry points."""
    if not 1 <= entries <= min(len(_ENTRY_NAMES), n):
        raise ValueError(f"entries must be between 1 and {min(len(_ENTRY_NAMES), n)}, got {entries}")
    inner = [f"{d}-{r}" for d in _DOMAINS for r in _ROLES]
    if n - entries > len(inner):
        raise ValueError(f"at most {len(inner) + entries} services, got {n}")
    picked = rng.choice(len(inner), size=n - entries, replace=False)
    return tuple(_ENTRY_NAMES[:entries]) + tuple(inner[int(i)] for i in picked)


def random_topology(n: int, entries: int, rng: np.random.Generator, extra_call_share: float = 0.4) -> Topology:
    """A random call DAG of ``n`` services: each non-entry service gets one caller among the
    services before it (entries favoured for the first ones), then ``extra_call_share * n`` more
    calls join random earlier/later pairs."""
    if n < 2:
        raise ValueError(f"a topology needs at least 2 services, got {n}")
    names = service_names(n, entries, rng)
    calls: set[tuple[int, int]] = set()
    for j in range(entries, n):
        # Callers come from a sliding window of earlier services: graphs get depth, not one star.
        lo = max(0, j - max(entries + 2, n // 4))
        calls.add((int(rng.integers(lo, j)), j))
    for _ in range(int(round(extra_call_share * n))):
        a, b = sorted(int(x) for x in rng.choice(n, size=2, replace=False))
        if b >= entries:
            calls.add((a, b))
    ordered = tuple(sorted(calls))
    fan_out = rng.uniform(0.3, 1.5, len(ordered))
    latency_share = rng.uniform(0.3, 1.0, len(ordered))
    return Topology(names, entries, ordered, fan_out, latency_share)
