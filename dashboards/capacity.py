"""The capacity dashboard (``foresight-capacity``): actuals against forecasts, runway, rightsizing.

Variables: ``datasource`` (the forecast store, PostgreSQL) and ``prometheus``; ``service`` and
``metric`` (multi-value, chained queries on the store's ``series`` table); ``series`` (one
series, for the forecast panel); ``promql`` (hidden: the selected series' PromQL from the
``series_promql`` table, see :mod:`connectors.sinks.series_promql`).

Panels:

- **Capacity runway**: every planned series, soonest to reach its threshold first. Three
  figures per series: the runway (days until the median forecast ``yhat`` reaches the
  threshold), the earliest plausible crossing (days until the upper band ``yhat_upper`` does) and
  the chance of crossing within the horizon, read from the same band
  (:mod:`models.capacity.runway`). Clicking a series opens its forecast below.
- **Capacity needed**: the factor each series' capacity must scale by to keep its p90 peak at
  the target utilisation.
- **Forecast vs actuals** (``-- Mixed --`` datasource): actuals straight from Prometheus
  (``${promql:raw}``) drawn against the forecast, its interval band and the threshold from the
  store. Series that do not come from Prometheus (simulator, files, CloudWatch, Kafka) have no
  PromQL; the hidden variable then holds an always-empty expression and their actuals come from
  the store's ``actuals`` table instead, so every series shows exactly one actuals line.
- **Rightsizing**, **Monthly savings** (total and per service) and **Scheduled scaling actions**
  from the store's ``rightsizing`` and ``scaling_actions`` tables.
"""

from __future__ import annotations

import json
from typing import Any

from grafana_foundation_sdk.builders import bargauge, common, dashboard, stat, table, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common as common_models
from grafana_foundation_sdk.models import dashboard as dashboard_models

from dashboards.provisioning import (
    STORE_NAME,
    STORE_UID,
    prometheus_variable,
)
from dashboards.series_units import UNIT_SQL, unit_from_catalogue
from dashboards.targets import (
    DASHED,
    MIXED,
    POSTGRES_TYPE,
    POSTGRES_VARIABLE,
    PROMETHEUS_VARIABLE,
    RED,
    STORE,
    datasource_variable,
    promql,
    prop,
    sql,
    steps,
)

UID = "foresight-capacity"
TITLE = "Foresight: capacity forecasts and runway"
FILENAME = "foresight-capacity.json"

# ``series`` is single-value, which Grafana's SQL datasources substitute unquoted (only ' is
# doubled), hence ``'$series'``; multi-value ``service`` / ``metric`` come quoted and comma-joined.
# The hidden ``promql`` variable's value for a series without PromQL: a valid expression that
# always returns nothing (Prometheus answers an empty string with an error).
NO_PROMQL = "vector(1) unless vector(1)"

_SERVICE_METRIC = "p.service IN ($service) AND p.metric IN ($metric)"

VARIABLE_QUERIES: dict[str, str] = {
    "service": "SELECT DISTINCT service FROM series ORDER BY 1",
    "metric": "SELECT DISTINCT metric FROM series WHERE service IN ($service) ORDER BY 1",
    "series": ("SELECT unique_id FROM series WHERE service IN ($service) AND metric IN ($metric) ORDER BY 1"),
    "model": (
        "SELECT f.model_name FROM forecasts f WHERE f.unique_id = '$series'\n"
        "ORDER BY f.created_at DESC, f.ds DESC LIMIT 1"
    ),
    "promql": (
        "SELECT promql FROM series_promql WHERE unique_id = '$series'\n"
        f"UNION ALL SELECT '{NO_PROMQL}'\n"
        "WHERE NOT EXISTS (SELECT 1 FROM series_promql WHERE unique_id = '$series')"
    ),
}

ACTUALS_PROMQL = "${promql:raw}"

STORE_ACTUALS_SQL = """SELECT a.ds AS "time", a.y AS "actual"
FROM actuals a
WHERE a.unique_id = '$series' AND $__timeFilter(a.ds)
  AND NOT EXISTS (SELECT 1 FROM series_promql q WHERE q.unique_id = a.unique_id)
ORDER BY a.ds"""

FORECAST_SQL = """SELECT ds AS "time", yhat AS "forecast", yhat_lower AS "lower", yhat_upper AS "upper"
FROM forecasts
WHERE unique_id = '$series' AND $__timeFilter(ds)
ORDER BY ds"""

THRESHOLD_SQL = """SELECT f.ds AS "time", p.threshold AS "threshold"
FROM forecasts f JOIN capacity_plan p ON p.unique_id = f.unique_id
WHERE f.unique_id = '$series' AND p.threshold IS NOT NULL AND $__timeFilter(f.ds)
ORDER BY f.ds"""

RUNWAY_SQL = f"""SELECT p.unique_id AS "series", p.service, p.resource_id, p.metric,
  (SELECT MAX(f.model_name) FROM forecasts f WHERE f.unique_id = p.unique_id) AS "model",
  p.current, p.peak_p90, p.threshold, p.days_to_threshold, p.days_to_threshold_earliest,
  p.crossing_probability, p.threshold_date, p.threshold_date_earliest, p.threshold_date_latest, p.capacity_needed
FROM capacity_plan p
WHERE {_SERVICE_METRIC}
ORDER BY p.days_to_threshold ASC NULLS LAST, p.crossing_probability DESC NULLS LAST, p.unique_id"""

CAPACITY_NEEDED_SQL = f"""SELECT p.unique_id AS "series", p.capacity_needed AS "capacity needed"
FROM capacity_plan p
WHERE {_SERVICE_METRIC} AND p.capacity_needed IS NOT NULL
ORDER BY p.capacity_needed DESC, p.unique_id
LIMIT 20"""

RIGHTSIZING_SQL = """SELECT r.service, r.instance_count, r.current_instance_type, r.recommended_instance_type,
  r.action, r.current_monthly_cost, r.recommended_monthly_cost, r.monthly_cost_change, r.monthly_savings,
  r.exceed_probability, r.current_exceed_probability, r.peak_upper_utilisation, r.reason
FROM rightsizing r
WHERE r.service IN ($service)
ORDER BY r.monthly_savings DESC NULLS LAST, r.service"""

# Signed, over every service: a fleet that only upsizes must not read "savings $0". Rows an older
# Foresight wrote have no monthly_cost_change: their saving, negated, is the same figure.
NET_COST_CHANGE_SQL = """SELECT COALESCE(SUM(COALESCE(r.monthly_cost_change, -r.monthly_savings)), 0)
  AS "net cost change per month"
FROM rightsizing r
WHERE r.service IN ($service)"""

SAVINGS_BY_SERVICE_SQL = """SELECT r.service, r.monthly_savings AS "monthly savings"
FROM rightsizing r
WHERE r.service IN ($service) AND r.monthly_savings > 0
ORDER BY r.monthly_savings DESC, r.service"""

SCALING_ACTIONS_SQL = """SELECT a.start_time AS "time", a.service, a.asg_name, a.action_name,
  a.desired_capacity, a.min_size, a.max_size
FROM scaling_actions a
WHERE a.service IN ($service) AND $__timeFilter(a.start_time)
ORDER BY a.start_time, a.asg_name"""


def build() -> dict[str, Any]:
    """The capacity dashboard as Grafana JSON (a plain dict)."""
    board = (
        dashboard.Dashboard(TITLE)
        .uid(UID)
        .description("Capacity forecasts against actuals, runway to thresholds, rightsizing and savings.")
        .tags(["foresight", "capacity", "forecast"])
        .timezone("utc")
        .time("now-7d", "now+7d")
        .refresh("15m")
        .editable()
        .tooltip(dashboard_models.DashboardCursorSync.CROSSHAIR)
        .with_variable(
            datasource_variable(
                POSTGRES_VARIABLE,
                "Forecast store",
                POSTGRES_TYPE,
                default_uid=STORE_UID,
                default_name=STORE_NAME,
            )
        )
        .with_variable(prometheus_variable())
        .with_variable(_store_variable("service", "Service", multi=True))
        .with_variable(_store_variable("metric", "Metric", multi=True))
        .with_variable(_store_variable("series", "Series", multi=False))
        .with_variable(
            _store_variable("promql", "PromQL", multi=False).hide(dashboard_models.VariableHide.HIDE_VARIABLE)
        )
        .with_variable(
            _store_variable("model", "Model", multi=False).hide(dashboard_models.VariableHide.HIDE_VARIABLE)
        )
        .with_panel(_runway_table())
        .with_panel(_capacity_needed_gauge())
        .with_panel(_forecast_panel())
        .with_panel(_rightsizing_table())
        .with_panel(_net_cost_change())
        .with_panel(_savings_by_service())
        .with_panel(_scaling_actions())
    )
    return json.loads(json.dumps(board.build(), cls=JSONEncoder))


def _store_variable(name: str, label: str, *, multi: bool) -> dashboard.QueryVariable:
    return (
        dashboard.QueryVariable(name)
        .label(label)
        .datasource(STORE)
        .query(VARIABLE_QUERIES[name])
        .multi(multi)
        .include_all(multi)
        .refresh(dashboard_models.VariableRefresh.ON_DASHBOARD_LOAD)
        .sort(
            dashboard_models.VariableSort.ALPHABETICAL_ASC
            if name not in ("promql", "model")
            else dashboard_models.VariableSort.DISABLED
        )
    )


def _forecast_panel() -> timeseries.Panel:
    """The selected series: actuals (Prometheus, else the store), forecast, band and threshold."""
    hidden_line = [
        prop("custom.lineWidth", 0),
        prop("custom.hideFrom", {"legend": True, "tooltip": False, "viz": False}),
    ]
    band = [prop("custom.fillBelowTo", "lower"), prop("custom.fillOpacity", 20), *hidden_line]
    legend = (
        common.VizLegendOptions()
        .show_legend(True)
        .display_mode(common_models.LegendDisplayMode.LIST)
        .placement(common_models.LegendPlacement.BOTTOM)
    )
    return (
        timeseries.Panel()
        .id(3)
        .title("$series (model: $model)")
        .description(
            "Actuals from Prometheus (or the forecast store for series from other sources), "
            "forecast (yhat), its interval band (yhat_lower..yhat_upper) and the threshold, in the "
            "series' unit from the catalogue (percent axes 0-100); the title names the model that "
            "forecast it."
        )
        .datasource(MIXED)
        .height(10)
        .span(24)
        .with_target(promql("A", ACTUALS_PROMQL, legend="actual"))
        .with_target(sql("B", STORE_ACTUALS_SQL))
        .with_target(sql("C", FORECAST_SQL))
        .with_target(sql("D", THRESHOLD_SQL))
        .with_target(sql("E", UNIT_SQL, table=True))
        .with_transformation(unit_from_catalogue())
        .line_width(1)
        .fill_opacity(0)
        .show_points(common_models.VisibilityMode.NEVER)
        .span_nulls(True)
        .override_by_name("upper", band)
        .override_by_name("lower", hidden_line)
        .override_by_name("forecast", [DASHED])
        .override_by_name("threshold", [RED])
        .legend(legend)
    )


def _runway_table() -> table.Panel:
    """Every planned series, soonest to reach its threshold first."""
    return (
        table.Panel()
        .id(1)
        .title("Capacity runway")
        .description(
            "days_to_threshold: days until the median forecast reaches the threshold (the runway; "
            "empty: not within the horizon). days_to_threshold_earliest: the same for the upper band, "
            "the earliest plausible crossing. crossing_probability: the chance of reaching the "
            "threshold within the horizon, from the same band. Click a series to plot it."
        )
        .datasource(STORE)
        .height(10)
        .span(14)
        .with_target(sql("A", RUNWAY_SQL, table=True))
        .sort_by([common.TableSortByFieldState().display_name("days_to_threshold").desc(False)])
        .override_by_name(
            "days_to_threshold",
            [
                prop("unit", "d"),
                prop("decimals", 1),
                prop("custom.cellOptions", {"type": "color-background"}),
                prop("thresholds", steps((None, "red"), (7, "orange"), (30, "green")).build().to_json()),
            ],
        )
        .override_by_name("days_to_threshold_earliest", [prop("unit", "d"), prop("decimals", 1)])
        .override_by_name("crossing_probability", [
            prop("unit", "percentunit"), prop("decimals", 0), prop("min", 0), prop("max", 1),
            prop("custom.cellOptions", {"type": "color-background"}),
            prop("thresholds", steps((None, "green"), (0.1, "orange"), (0.5, "red")).build().to_json())])
        .override_by_name(
            "series",
            [
                prop(
                    "links",
                    [
                        {
                            "title": "Plot this series",
                            "url": f"/d/{UID}?var-series=${{__value.raw}}&${{__url_time_range}}"
                            f"&${{{POSTGRES_VARIABLE}:queryparam}}&${{{PROMETHEUS_VARIABLE}:queryparam}}",
                        }
                    ],
                )
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
        .datasource(STORE)
        .height(10)
        .span(10)
        .with_target(sql("A", CAPACITY_NEEDED_SQL, table=True))
        .orientation(common_models.VizOrientation.HORIZONTAL)
        .display_mode(common_models.BarGaugeDisplayMode.GRADIENT)
        .reduce_options(common.ReduceDataOptions().values(True).calcs([]).fields("/capacity needed/"))
        .min(0)
        .decimals(2)
        .thresholds(steps((None, "green"), (1.0, "orange"), (1.5, "red")))
    )


def _money(name: str) -> tuple[str, list[dashboard_models.DynamicConfigValue]]:
    return name, [prop("unit", "currencyUSD"), prop("decimals", 0)]


def _rightsizing_table() -> table.Panel:
    """Per service: current and recommended instance type, their monthly cost and the saving."""
    percent = [prop("unit", "percentunit"), prop("decimals", 1)]
    panel = (
        table.Panel()
        .id(4)
        .title("Rightsizing")
        .description(
            "Instance type per service that keeps the forecast's upper peak within capacity; "
            "exceed_probability is the chance demand exceeds the recommended capacity at that peak "
            "(current_exceed_probability: on the current type, the risk of changing nothing)."
        )
        .datasource(STORE)
        .height(9)
        .span(24)
        .with_target(sql("A", RIGHTSIZING_SQL, table=True))
        .sort_by([common.TableSortByFieldState().display_name("monthly_savings").desc(True)])
        .override_by_name("exceed_probability", percent)
        .override_by_name("current_exceed_probability", percent)
        .override_by_name("peak_upper_utilisation", [prop("unit", "percent"), prop("decimals", 1)])
    )
    for column in ("current_monthly_cost", "recommended_monthly_cost", "monthly_cost_change", "monthly_savings"):
        panel = panel.override_by_name(*_money(column))
    return panel


def _net_cost_change() -> stat.Panel:
    return (
        stat.Panel()
        .id(5)
        .title("Net cost change per month")
        .description("Sum of the signed monthly cost changes of the rightsizing recommendations shown: "
                     "negative saves, positive costs more; kept and held services count 0.")
        .datasource(STORE)
        .height(8)
        .span(6)
        .with_target(sql("A", NET_COST_CHANGE_SQL, table=True))
        .unit("currencyUSD")
        .decimals(0)
        .reduce_options(
            common.ReduceDataOptions().values(False).calcs(["lastNotNull"]).fields("/net cost change per month/")
        )
        .color_mode(common_models.BigValueColorMode.VALUE)
        .thresholds(steps((None, "green"), (0.005, "red")))
    )


def _savings_by_service() -> bargauge.Panel:
    return (
        bargauge.Panel()
        .id(6)
        .title("Savings by service")
        .description(
            "Monthly saving of each service's rightsizing recommendation (services that save money)."
        )
        .datasource(STORE)
        .height(8)
        .span(8)
        .with_target(sql("A", SAVINGS_BY_SERVICE_SQL, table=True))
        .orientation(common_models.VizOrientation.HORIZONTAL)
        .display_mode(common_models.BarGaugeDisplayMode.BASIC)
        .reduce_options(common.ReduceDataOptions().values(True).calcs([]).fields("/monthly savings/"))
        .unit("currencyUSD")
        .decimals(0)
        .min(0)
    )


def _scaling_actions() -> table.Panel:
    return (
        table.Panel()
        .id(7)
        .title("Scheduled scaling actions")
        .description(
            "Auto Scaling scheduled actions planned from the forecast, in the dashboard's time range."
        )
        .datasource(STORE)
        .height(8)
        .span(10)
        .with_target(sql("A", SCALING_ACTIONS_SQL, table=True))
    )
