"""Build Foresight's Grafana dashboards and provisioning files (grafana-foundation-sdk), and write them.

Dashboards (each module holds its queries and panels):

- :mod:`dashboards.capacity` -> ``foresight-capacity.json``: actuals from Prometheus against
  forecast bands from the forecast store, capacity runway, rightsizing and savings;
- :mod:`dashboards.incidents` -> ``foresight-incidents.json``: open incidents, failure risk and
  evidence series from the detect flow's Pushgateway metrics, incident annotations;
- :mod:`dashboards.realtime` -> ``foresight-realtime.json``: the stream processor's own metrics
  (lines/s, templates, error ratio, anomaly scores, incidents, lags), refreshed every 5 s;
- :mod:`dashboards.health` -> ``foresight-health.json``: Foresight's own flow runs (``foresight_flow_*``:
  last success, failures, durations, rows, promotions, pages) and the stream's lag and throughput.

:mod:`dashboards.provisioning` -> ``provisioning/datasources/foresight.yaml`` and
``provisioning/dashboards/foresight.yaml``; :mod:`dashboards.alerts` -> ``provisioning/alerting/foresight.yaml``
(Grafana alert rules: capacity runway under 7 days, an open critical incident, a stale pipeline). :mod:`dashboards.queries` expands every SQL and
PromQL query of a dashboard so tests run them on real servers.

Run ``python -m dashboards.build`` to regenerate the committed files (tests check they match).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from dashboards import capacity, health, incidents, realtime
from dashboards.alerts import alerting_files
from dashboards.provisioning import provisioning_files
from dashboards.queries import expand_sql, sql_queries
from dashboards.targets import POSTGRES_TYPE

FOLDER = Path(__file__).parent
OUTPUT = FOLDER / capacity.FILENAME  # the capacity dashboard, kept for existing callers
PROVISIONING = FOLDER / "provisioning"

# File name -> builder, for every dashboard Foresight ships.
DASHBOARDS: dict[str, Callable[[], dict[str, Any]]] = {
    capacity.FILENAME: capacity.build,
    incidents.FILENAME: incidents.build,
    realtime.FILENAME: realtime.build,
    health.FILENAME: health.build,
}

DATASOURCE_TYPE = POSTGRES_TYPE
DASHBOARD_UID = capacity.UID
build_capacity_dashboard = capacity.build
build_incidents_dashboard = incidents.build
__all__ = [
    "DASHBOARDS",
    "DATASOURCE_TYPE",
    "OUTPUT",
    "build_all",
    "build_capacity_dashboard",
    "build_incidents_dashboard",
    "dashboard_text",
    "expand_sql",
    "sql_queries",
    "write_all",
]


def build_all() -> dict[str, dict[str, Any]]:
    """Every dashboard as Grafana JSON, by file name."""
    return {name: builder() for name, builder in DASHBOARDS.items()}


def dashboard_text(board: dict[str, Any]) -> str:
    """The committed form of a dashboard: stable key order, two-space indent, trailing newline."""
    return json.dumps(board, indent=2, sort_keys=True) + "\n"


def write_dashboards(folder: Path = FOLDER) -> list[Path]:
    """Write every dashboard JSON into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, board in build_all().items():
        path = folder / name
        path.write_text(dashboard_text(board), encoding="utf-8")
        paths.append(path)
    return paths


def write_provisioning(folder: Path = PROVISIONING) -> list[Path]:
    """Write the Grafana provisioning YAML files (datasources, dashboards, alert rules) under ``folder``."""
    paths = []
    for relative, text in {**provisioning_files(), **alerting_files()}.items():
        path = folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        paths.append(path)
    return paths


def write_all(folder: Path = FOLDER) -> list[Path]:
    """Dashboards into ``folder`` and provisioning into ``folder/provisioning``."""
    return write_dashboards(folder) + write_provisioning(folder / "provisioning")


def main(argv: Sequence[str] | None = None) -> None:
    """CLI: regenerate the dashboards and provisioning files (or into ``--out DIR``)."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--out", type=Path, default=FOLDER, help=f"output folder (default {FOLDER})")
    args = parser.parse_args(argv)
    for path in write_all(args.out):
        print(path)


if __name__ == "__main__":
    main()
