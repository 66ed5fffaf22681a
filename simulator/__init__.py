"""The built-in telemetry simulator: a small web-shop fleet with realistic load and incidents.

Importing this package registers the ``simulator`` source in :data:`connectors.sources.base.SOURCES`.

Module map: ``fleet`` (services, call graph, instances), ``timegrid`` (samples and business
calendar), ``scenarios`` (releases, promotion, incidents and their variants, benign stress,
blips, scrape gaps), ``signals`` (the metric maths), ``effects`` (what each incident category
does), ``stress`` (what benign stress does: campaign surges, nightly backups, high healthy
heaps, retry storms), ``logs`` (log lines), ``source`` (the frames and the registered source).
``scenario_families`` generates other systems than this fleet: seeded, labelled, 5 to 100
services, for the incident benchmarks (docs/scenarios.md).
"""

from simulator.fleet import CALL_GRAPH, INSTANCE_TYPES, SERVICE_NAMES, build_fleet
from simulator.logs import LOG_TEMPLATES
from simulator.signals import METRIC_UNITS
from simulator.source import SimulatorSource, simulate, slice_batch

__all__ = [
    "CALL_GRAPH",
    "INSTANCE_TYPES",
    "LOG_TEMPLATES",
    "METRIC_UNITS",
    "SERVICE_NAMES",
    "SimulatorSource",
    "build_fleet",
    "simulate",
    "slice_batch",
]
