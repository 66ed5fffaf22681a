"""Build the Grafana capacity dashboard (``foresight-capacity.json``) with grafana-foundation-sdk.

The dashboard reads the forecast store (:mod:`connectors.forecast_store`) through a PostgreSQL
datasource (plugin type ``grafana-postgresql-datasource``, picked by the ``datasource``
variable). The SDK has no PostgreSQL query builder, so :class:`PostgresQuery` implements its
dataquery protocol and emits Grafana's SQL query model in code mode.

Variables: ``datasource``; ``service``, ``metric`` and ``series`` (chained queries on the
``series`` table). The forecast panel repeats once per selected series, so each copy plots one
series' actuals, forecast and interval band (``yhat_lower`` .. ``yhat_upper``) and threshold.

:func:`sql_queries` returns every SQL statement in a dashboard with the template variables and
the Grafana macros it uses expanded, so tests run them on a real database. Expanded macros, as
Grafana's PostgreSQL datasource expands them:

- ``$__timeFilter(col)`` -> ``col BETWEEN '<from ISO UTC>' AND '<to ISO UTC>'``
- ``$__timeFrom()`` / ``$__timeTo()`` -> ``'<from ISO UTC>'`` / ``'<to ISO UTC>'``

Any other ``$__`` macro raises, so a query cannot use a macro the tests do not expand.

Run ``python -m dashboards.build`` to regenerate ``dashboards/foresight-capacity.json``.
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Self

import pandas as pd
from grafana_foundation_sdk.builders import bargauge, common, dashboard, table, timeseries
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common as common_models
from grafana_foundation_sdk.models import dashboard as dashboard_models

DATASOURCE_TYPE = "grafana-postgresql-datasource"
DASHBOARD_UID = "foresight-capacity"
DASHBOARD_TITLE = "Foresight: capacity forecasts and runway"
OUTPUT = Path(__file__).with_name("foresight-capacity.json")

# Values :func:`sql_queries` substitutes by default (simulator names); tests pass their own.
SAMPLE_VARIABLES: dict[str, list[str]] = {
    "service": ["checkout"],
    "metric": ["cpu_pct"],
    "series": ["checkout/i-0a1b2c3d4e5f60001/cpu_pct"],
}

_DS = dashboard_models.DataSourceRef(type_val=DATASOURCE_TYPE, uid="${datasource}")
_SERVICE_METRIC = "p.service IN ($service) AND p.metric IN ($metric)"

VARIABLE_QUERIES: dict[str, str] = {
    "service": "SELECT DISTINCT service FROM series ORDER BY 1",
    "metric": "SELECT DISTINCT metric FROM series WHERE service IN ($service) ORDER BY 1",
    "series": (
        "SELECT unique_id FROM series WHERE service IN ($service) AND metric IN ($metric) ORDER BY 1"
    ),
}

FORECAST_SQL = """SELECT ds AS "time", yhat AS "forecast", yhat_lower AS "lower", yhat_upper AS "upper"
FROM forecasts
WHERE unique_id IN ($series) AND $__timeFilter(ds)
ORDER BY ds"""

ACTUALS_SQL = """SELECT ds AS "time", y AS "actual"
FROM actuals
WHERE unique_id IN ($series) AND $__timeFilter(ds)
ORDER BY ds"""

THRESHOLD_SQL = """SELECT f.ds AS "time", p.threshold AS "threshold"
FROM forecasts f JOIN capacity_plan p ON p.unique_id = f.unique_id
WHERE f.unique_id IN ($series) AND p.threshold IS NOT NULL AND $__timeFilter(f.ds)
ORDER BY f.ds"""

RUNWAY_SQL = f"""SELECT p.unique_id AS "series", p.service, p.resource_id, p.metric,
  p.current, p.peak_p90, p.threshold, p.days_to_threshold,
  p.threshold_date, p.threshold_date_earliest, p.threshold_date_latest, p.capacity_needed
FROM capacity_plan p
WHERE {_SERVICE_METRIC}
ORDER BY p.days_to_threshold ASC NULLS LAST, p.unique_id"""

CAPACITY_NEEDED_SQL = f"""SELECT p.unique_id AS "series", p.capacity_needed AS "capacity needed"
FROM capacity_plan p
WHERE {_SERVICE_METRIC} AND p.capacity_needed IS NOT NULL
ORDER BY p.capacity_needed DESC, p.unique_id
LIMIT 20"""


# -- a PostgreSQL dataquery for the SDK ----------------------------------------------------------
class PostgresQuery(cogvariants.Dataquery):
    """Grafana's SQL query model for ``grafana-postgresql-datasource`` (raw SQL, code mode)."""

    def __init__(
        self,
        ref_id: str = "",
        raw_sql: str = "",
        format: str = "time_series",
        datasource: dashboard_models.DataSourceRef | None = None,
    ) -> None:
        self.ref_id, self.raw_sql, self.format, self.datasource = ref_id, raw_sql, format, datasource

    def to_json(self) -> dict[str, object]:
        return {
            "refId": self.ref_id,
            "datasource": self.datasource.to_json() if self.datasource else None,
            "rawSql": self.raw_sql,
            "format": self.format,
            "editorMode": "code",
            "rawQuery": True,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Self:
        ds = data.get("datasource")
        ref = dashboard_models.DataSourceRef(type_val=ds.get("type"), uid=ds.get("uid")) if ds else None
        return cls(data.get("refId", ""), data.get("rawSql", ""), data.get("format", "time_series"), ref)


class PostgresQueryBuilder(cogbuilder.Builder[PostgresQuery]):
    """Builder for :class:`PostgresQuery`, usable wherever the SDK takes a target builder."""

    def __init__(self, ref_id: str, raw_sql: str) -> None:
        self._internal = PostgresQuery(ref_id=ref_id, raw_sql=raw_sql, datasource=_DS)

    def build(self) -> PostgresQuery:
        return self._internal

    def format(self, fmt: str) -> Self:
        if fmt not in ("time_series", "table"):
            raise ValueError(f"PostgreSQL query format must be 'time_series' or 'table', got {fmt!r}")
        self._internal.format = fmt
        return self

    def datasource(self, ref: dashboard_models.DataSourceRef) -> Self:
        self._internal.datasource = ref
        return self


# -- the dashboard ---------------------------------------------------------------------------------
def build_capacity_dashboard() -> dict[str, Any]:
    """The capacity dashboard as Grafana JSON (a plain dict)."""
    board = (
        dashboard.Dashboard(DASHBOARD_TITLE)
        .uid(DASHBOARD_UID)
        .description("Capacity forecasts, runway to thresholds and capacity needed (Foresight store).")
        .tags(["foresight", "capacity", "forecast"])
        .timezone("utc")
        .time("now-7d", "now+7d")
        .refresh("15m")
        .editable()
        .tooltip(dashboard_models.DashboardCursorSync.CROSSHAIR)
        .with_variable(_datasource_variable())
        .with_variable(_query_variable("service", "Service"))
        .with_variable(_query_variable("metric", "Metric"))
        .with_variable(_query_variable("series", "Series"))
        .with_panel(_runway_table())
        .with_panel(_capacity_needed_gauge())
        .with_panel(_forecast_panel())
    )
    return json.loads(json.dumps(board.build(), cls=JSONEncoder))


def _datasource_variable() -> dashboard.DatasourceVariable:
    return dashboard.DatasourceVariable("datasource").label("Forecast store").type(DATASOURCE_TYPE)


def _query_variable(name: str, label: str) -> dashboard.QueryVariable:
    return (
        dashboard.QueryVariable(name)
        .label(label)
        .datasource(_DS)
        .query(VARIABLE_QUERIES[name])
        .multi(True)
        .include_all(True)
        .refresh(dashboard_models.VariableRefresh.ON_DASHBOARD_LOAD)
        .sort(dashboard_models.VariableSort.ALPHABETICAL_ASC)
    )


def _steps(*steps: tuple[float | None, str]) -> dashboard.ThresholdsConfig:
    return (
        dashboard.ThresholdsConfig()
        .mode(dashboard_models.ThresholdsMode.ABSOLUTE)
        .steps([dashboard_models.Threshold(value=v, color=c) for v, c in steps])
    )


def _prop(id_val: str, value: object) -> dashboard_models.DynamicConfigValue:
    return dashboard_models.DynamicConfigValue(id_val=id_val, value=value)


def _forecast_panel() -> timeseries.Panel:
    """One series' actuals, forecast, interval band and threshold; repeated per selected series."""
    hidden_line = [
        _prop("custom.lineWidth", 0),
        _prop("custom.hideFrom", {"legend": True, "tooltip": False, "viz": False}),
    ]
    band = [_prop("custom.fillBelowTo", "lower"), _prop("custom.fillOpacity", 20), *hidden_line]
    legend = (
        common.VizLegendOptions()
        .show_legend(True)
        .display_mode(common_models.LegendDisplayMode.LIST)
        .placement(common_models.LegendPlacement.BOTTOM)
    )
    return (
        timeseries.Panel()
        .id(3)
        .title("$series")
        .description("Actuals (recent), forecast (yhat) and its interval band (yhat_lower..yhat_upper).")
        .datasource(_DS)
        .repeat("series")
        .repeat_direction("h")
        .max_per_row(2)
        .height(9)
        .span(12)
        .with_target(PostgresQueryBuilder("A", ACTUALS_SQL))
        .with_target(PostgresQueryBuilder("B", FORECAST_SQL))
        .with_target(PostgresQueryBuilder("C", THRESHOLD_SQL))
        .line_width(1)
        .fill_opacity(0)
        .show_points(common_models.VisibilityMode.NEVER)
        .span_nulls(True)
        .override_by_name("upper", band)
        .override_by_name("lower", hidden_line)
        .override_by_name("forecast", [_prop("custom.lineStyle", {"fill": "dash", "dash": [10, 10]})])
        .override_by_name("threshold", [_prop("color", {"mode": "fixed", "fixedColor": "red"})])
        .legend(legend)
    )


def _runway_table() -> table.Panel:
    """Every planned series, soonest to reach its threshold first."""
    return (
        table.Panel()
        .id(1)
        .title("Capacity runway")
        .description("Days until the forecast reaches the threshold (empty: not within the horizon).")
        .datasource(_DS)
        .height(10)
        .span(14)
        .with_target(PostgresQueryBuilder("A", RUNWAY_SQL).format("table"))
        .sort_by([common.TableSortByFieldState().display_name("days_to_threshold").desc(False)])
        .override_by_name(
            "days_to_threshold",
            [
                _prop("unit", "d"),
                _prop("decimals", 1),
                _prop("custom.cellOptions", {"type": "color-background"}),
                _prop("thresholds", _steps((None, "red"), (7, "orange"), (30, "green")).build().to_json()),
            ],
        )
    )


def _capacity_needed_gauge() -> bargauge.Panel:
    """The factor each series' capacity must scale by (peak p90 / target utilisation), largest first."""
    return (
        bargauge.Panel()
        .id(2)
        .title("Capacity needed")
        .description("Factor capacity must scale by to keep the p90 peak at target (1.25 = +25 %).")
        .datasource(_DS)
        .height(10)
        .span(10)
        .with_target(PostgresQueryBuilder("A", CAPACITY_NEEDED_SQL).format("table"))
        .orientation(common_models.VizOrientation.HORIZONTAL)
        .display_mode(common_models.BarGaugeDisplayMode.GRADIENT)
        .reduce_options(common.ReduceDataOptions().values(True).calcs([]).fields("/capacity needed/"))
        .min(0)
        .decimals(2)
        .thresholds(_steps((None, "green"), (1.0, "orange"), (1.5, "red")))
    )


# -- SQL extraction and macro expansion (pure) ------------------------------------------------------
_MACRO = re.compile(r"\$__(\w+)\(([^)]*)\)")
_VARIABLE = re.compile(r"\$\{(\w+)\}|\$(?!__)(\w+)")


def sql_queries(
    dashboard_json: Mapping[str, Any],
    *,
    variables: Mapping[str, str | Sequence[str]] | None = None,
    time_from: pd.Timestamp | None = None,
    time_to: pd.Timestamp | None = None,
) -> list[str]:
    """Every SQL statement of a dashboard (panel targets, then variable queries), ready to run.

    Template variables become SQL string lists (``'a','b'``, as Grafana formats multi-value
    variables for SQL datasources) from ``variables`` (default :data:`SAMPLE_VARIABLES`); the
    time macros expand with ``[time_from, time_to]`` (default now -7 days .. now +7 days).
    """
    values = dict(SAMPLE_VARIABLES if variables is None else variables)
    now = pd.Timestamp.now(tz="UTC")
    start = _utc(time_from) if time_from is not None else now - pd.Timedelta(days=7)
    end = _utc(time_to) if time_to is not None else now + pd.Timedelta(days=7)
    return [expand_sql(sql, values, start, end) for sql in _raw_sql(dashboard_json)]


def expand_sql(
    sql: str, variables: Mapping[str, str | Sequence[str]], start: pd.Timestamp, end: pd.Timestamp
) -> str:
    """Expand the supported Grafana macros, then ``$var`` / ``${var}`` template variables."""
    lo, hi = _quote(_iso(start)), _quote(_iso(end))

    def macro(match: re.Match[str]) -> str:
        name, arg = match.group(1), match.group(2).strip()
        if name == "timeFilter" and arg:
            return f"{arg} BETWEEN {lo} AND {hi}"
        if name == "timeFrom" and not arg:
            return lo
        if name == "timeTo" and not arg:
            return hi
        raise ValueError(
            f"unsupported Grafana macro $__{name}({arg}); "
            "supported: $__timeFilter(col), $__timeFrom(), $__timeTo()"
        )

    def variable(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name not in variables:
            raise KeyError(f"no sample value for dashboard variable ${name}; given: {sorted(variables)}")
        value = variables[name]
        items = [value] if isinstance(value, str) else list(value)
        if not items:
            raise ValueError(f"dashboard variable ${name} has no values")
        return ",".join(_quote(str(v)) for v in items)

    expanded = _MACRO.sub(macro, sql)
    if "$__" in expanded:
        raise ValueError(f"unexpanded Grafana macro in: {expanded}")
    return _VARIABLE.sub(variable, expanded)


def _raw_sql(board: Mapping[str, Any]) -> Iterator[str]:
    for panel in _panels(board.get("panels") or []):
        for target in panel.get("targets") or []:
            if target.get("rawSql"):
                yield target["rawSql"]
    for var in (board.get("templating") or {}).get("list") or []:
        query = var.get("query")
        if var.get("type") == "query" and query:
            yield query["rawSql"] if isinstance(query, Mapping) else str(query)


def _panels(panels: list[Mapping[str, Any]]) -> Iterator[Mapping[str, Any]]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels") or [])


def _utc(ts: pd.Timestamp) -> pd.Timestamp:
    ts = pd.Timestamp(ts)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def _iso(ts: pd.Timestamp) -> str:
    return ts.strftime("%Y-%m-%dT%H:%M:%SZ")


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


# -- entry point -------------------------------------------------------------------------------------
def write_dashboard(path: Path = OUTPUT) -> Path:
    """Write the capacity dashboard JSON (stable key order, trailing newline) to ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(build_capacity_dashboard(), indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return path


def main(argv: Sequence[str] | None = None) -> None:
    """CLI: regenerate ``dashboards/foresight-capacity.json`` (or ``--out PATH``)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUTPUT, help=f"output file (default {OUTPUT})")
    args = parser.parse_args(argv)
    print(write_dashboard(args.out))


if __name__ == "__main__":
    main()
