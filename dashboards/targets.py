"""Datasource references and query targets shared by the Foresight dashboards.

Two datasources, each picked by a dashboard variable so one JSON works on any Grafana:

- the forecast store, plugin ``grafana-postgresql-datasource`` (variable ``datasource``). The SDK
  has no PostgreSQL query builder, so :class:`PostgresQuery` implements its dataquery protocol
  and emits Grafana's SQL query model in code mode;
- Prometheus (variable ``prometheus``), through the SDK's own Prometheus dataquery builder.

Panels mixing both use Grafana's ``-- Mixed --`` datasource and set the datasource per target.
"""

from __future__ import annotations

from typing import Any, Self

from grafana_foundation_sdk.builders import dashboard, prometheus
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.models import dashboard as dashboard_models
from grafana_foundation_sdk.models import prometheus as prometheus_models

POSTGRES_TYPE = "grafana-postgresql-datasource"
PROMETHEUS_TYPE = "prometheus"
POSTGRES_VARIABLE = "datasource"
PROMETHEUS_VARIABLE = "prometheus"

STORE = dashboard_models.DataSourceRef(type_val=POSTGRES_TYPE, uid="${" + POSTGRES_VARIABLE + "}")
PROMETHEUS = dashboard_models.DataSourceRef(type_val=PROMETHEUS_TYPE, uid="${" + PROMETHEUS_VARIABLE + "}")
MIXED = dashboard_models.DataSourceRef(type_val="datasource", uid="-- Mixed --")
GRAFANA = dashboard_models.DataSourceRef(type_val="grafana", uid="-- Grafana --")


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
        self._internal = PostgresQuery(ref_id=ref_id, raw_sql=raw_sql, datasource=STORE)

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


def sql(ref_id: str, raw_sql: str, *, table: bool = False) -> PostgresQueryBuilder:
    """A forecast-store SQL target (``table`` format for tables and bar gauges)."""
    target = PostgresQueryBuilder(ref_id, raw_sql)
    return target.format("table") if table else target


def promql(ref_id: str, expr: str, *, legend: str = "", instant: bool = False) -> prometheus.Dataquery:
    """A Prometheus target in code mode (range query unless ``instant``)."""
    target = (
        prometheus.Dataquery()
        .ref_id(ref_id)
        .datasource(PROMETHEUS)
        .expr(expr)
        .editor_mode(prometheus_models.QueryEditorMode.CODE)
        .legend_format(legend or "__auto")
    )
    return target.instant().format(prometheus_models.PromQueryFormat.TABLE) if instant else target.range()


def datasource_variable(
    name: str, label: str, plugin: str, *, default_uid: str, default_name: str
) -> dashboard.DatasourceVariable:
    """A datasource picker for ``plugin``, preselecting the provisioned datasource (Grafana falls
    back to the first datasource of the type when that one does not exist)."""
    current = dashboard_models.VariableOption(selected=True, text=default_name, value=default_uid)
    return dashboard.DatasourceVariable(name).label(label).type(plugin).current(current)


def service_variable(query: str, datasource: Any) -> dashboard.QueryVariable:
    """The ``service`` picker of a Prometheus dashboard: the services ``query`` (a
    ``label_values(...)``) finds, several at once or all, refreshed with the time range."""
    return (
        dashboard.QueryVariable("service")
        .label("Service")
        .datasource(datasource)
        .query(query)
        .multi(True)
        .include_all(True)
        .refresh(dashboard_models.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(dashboard_models.VariableSort.ALPHABETICAL_ASC)
    )


def steps(*values: tuple[float | None, str]) -> dashboard.ThresholdsConfig:
    return (
        dashboard.ThresholdsConfig()
        .mode(dashboard_models.ThresholdsMode.ABSOLUTE)
        .steps([dashboard_models.Threshold(value=v, color=c) for v, c in values])
    )


def prop(id_val: str, value: object) -> dashboard_models.DynamicConfigValue:
    return dashboard_models.DynamicConfigValue(id_val=id_val, value=value)


RED = prop("color", {"mode": "fixed", "fixedColor": "red"})
DASHED = prop("custom.lineStyle", {"fill": "dash", "dash": [10, 10]})
"""Field overrides: a threshold line is red, a forecast line dashed, an operating limit both."""

