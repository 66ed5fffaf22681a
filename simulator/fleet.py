"""The simulated fleet: services, their call graph, EC2-like instances and their sizing.

Six services of a small web shop run on ``instances_per_service`` EC2-like instances each.
Every service has its own scale (peak requests per second), cost per request, latency floor,
latency SLO, memory and disk profile; instance types are fixed per service the way a team would
pick them (compute-optimised for CPU-bound tiers, memory-optimised for the cart cache, a
burstable ``t3`` for the low-volume payments adapter). The fleet is provisioned for its load:
the CPU cost per request is set so that, at the configured instance count, an instance peaks at
the service's ``peak_utilisation`` on an ordinary weekday evening.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simulator.seeding import rng_for

# Who calls whom: latency and errors of a callee propagate to its callers.
CALL_GRAPH: dict[str, tuple[str, ...]] = {
    "frontend": ("cart", "catalog", "search", "checkout"),
    "checkout": ("payments", "cart"),
    "cart": (),
    "catalog": (),
    "payments": (),
    "search": (),
}

# (vCPUs, memory GiB) of the EC2 instance types the fleet uses.
INSTANCE_TYPES: dict[str, tuple[int, int]] = {
    "c6i.large": (2, 4),
    "c6i.xlarge": (4, 8),
    "c6i.2xlarge": (8, 16),
    "m6i.large": (2, 8),
    "m6i.xlarge": (4, 16),
    "r6i.large": (2, 16),
    "t3.medium": (2, 4),
}

AVAILABILITY_ZONES: tuple[str, ...] = ("us-east-1a", "us-east-1b", "us-east-1c")


@dataclass(frozen=True)
class ServiceSpec:
    """How one service behaves; rates are service-wide, percentages are per instance."""

    name: str
    instance_type: str
    peak_rps: float  # service-wide requests/s at a weekday evening peak, start of the span
    peak_utilisation: float  # CPU share an instance reaches at that peak (fleet sizing target)
    latency_floor_s: float  # own p95 latency at low load, excluding calls to other services
    slo_p95_s: float  # latency p95 objective, including downstream calls
    base_error_ratio: float
    mem_floor_pct: float  # memory right after a restart
    mem_growth_pct: float  # how much caches/heap add before they plateau
    disk_floor_pct: float
    disk_log_pct_per_day: float  # log growth between daily rotations at average load


# name, instance type, peak rps, peak util, latency floor s, SLO s, base errors, mem floor %, mem growth %,
# disk floor %, disk log growth %/day
SERVICES: tuple[ServiceSpec, ...] = (
    ServiceSpec("frontend", "c6i.xlarge", 520.0, 0.42, 0.080, 1.00, 0.0008, 48.0, 14.0, 38.0, 4.0),
    ServiceSpec("cart", "r6i.large", 260.0, 0.36, 0.030, 0.40, 0.0005, 56.0, 16.0, 30.0, 2.5),
    ServiceSpec("checkout", "m6i.large", 60.0, 0.32, 0.110, 1.30, 0.0015, 52.0, 12.0, 44.0, 3.0),
    ServiceSpec("catalog", "m6i.xlarge", 380.0, 0.40, 0.045, 0.50, 0.0006, 57.0, 16.0, 52.0, 3.5),
    ServiceSpec("payments", "t3.medium", 45.0, 0.30, 0.240, 1.10, 0.0020, 45.0, 10.0, 35.0, 2.0),
    ServiceSpec("search", "c6i.2xlarge", 210.0, 0.44, 0.095, 0.80, 0.0007, 50.0, 15.0, 47.0, 5.0),
)
SERVICE_NAMES: tuple[str, ...] = tuple(s.name for s in SERVICES)


@dataclass(frozen=True)
class Instance:
    """One EC2-like instance running one service."""

    instance_id: str
    service: str
    instance_type: str
    az: str
    vcpus: int


@dataclass(frozen=True)
class Fleet:
    """The instances in a fixed order (by service, then instance id) and their services."""

    services: tuple[ServiceSpec, ...]
    instances: tuple[Instance, ...]

    @property
    def service_index(self) -> np.ndarray:
        """For each instance, the position of its service in ``services``."""
        names = [s.name for s in self.services]
        return np.array([names.index(i.service) for i in self.instances])

    def instances_of(self, service: str) -> list[int]:
        """Positions of the instances that run ``service``."""
        return [k for k, i in enumerate(self.instances) if i.service == service]

    def spec(self, service: str) -> ServiceSpec:
        """The spec of a service by name."""
        return next(s for s in self.services if s.name == service)


def instance_id(rng: np.random.Generator) -> str:
    """A realistic EC2 instance id: ``i-`` and 17 lowercase hex digits."""
    return "i-0" + "".join(f"{d:x}" for d in rng.integers(0, 16, size=16))


def build_fleet(seed: int, instances_per_service: int = 2) -> Fleet:
    """The fleet for a seed: ids and availability zones are drawn from the seed, the rest is fixed."""
    if instances_per_service < 1:
        raise ValueError(f"services_instances must be at least 1, got {instances_per_service}")
    rng = rng_for(seed, "fleet")
    instances: list[Instance] = []
    for spec in SERVICES:
        ids = sorted(instance_id(rng) for _ in range(instances_per_service))
        first_az = int(rng.integers(len(AVAILABILITY_ZONES)))
        for k, iid in enumerate(ids):
            az = AVAILABILITY_ZONES[(first_az + k) % len(AVAILABILITY_ZONES)]
            vcpus = INSTANCE_TYPES[spec.instance_type][0]
            instances.append(Instance(iid, spec.name, spec.instance_type, az, vcpus))
    return Fleet(SERVICES, tuple(instances))
