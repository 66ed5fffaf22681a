"""Every query of a dashboard, with template variables and macros expanded, ready to run (pure).

Tests run the SQL on a real PostgreSQL forecast store and the PromQL on a real Prometheus, so a
dashboard cannot ship a query that does not run. Expansion follows Grafana's own rules:

SQL (PostgreSQL datasource):

- ``$__timeFilter(col)`` -> ``col BETWEEN '<from ISO UTC>' AND '<to ISO UTC>'``
- ``$__timeFrom()`` / ``$__timeTo()`` -> ``'<from ISO UTC>'`` / ``'<to ISO UTC>'``
- ``$var`` / ``${var}`` of a multi-value or include-all variable -> quoted, comma-separated
  values (``'a','b'``); of a single-value variable -> the value with ``'`` doubled but *not*
  quoted (the query writes ``'$var'``), as Grafana's SQL datasources do

Any other ``$__`` macro raises, so a query cannot use a macro the tests do not expand.

PromQL (Prometheus datasource):

- ``$__rate_interval``, ``$__interval``, ``$__range`` -> the durations given
- ``${var:raw}`` -> the value as is (a whole PromQL expression stored per series)
- ``$var`` / ``${var}`` of a multi-value or include-all variable -> regex-escaped values, joined
  as ``(a|b)`` when more than one (for ``=~`` matchers); of a single-value variable -> the value

Prometheus query variables use Grafana's ``label_values(metric, label)``; they come back as
:class:`LabelValuesQuery` (Grafana answers them with ``/api/v1/label/<label>/values``).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from dashboards.targets import POSTGRES_TYPE, PROMETHEUS_TYPE
from foresight.timeutil import utc_timestamp

_SQL_MACRO = re.compile(r"\$__(\w+)\(([^)]*)\)")
_VARIABLE = re.compile(r"\$\{(\w+)(?::(\w+))?\}|\$(?!__)(\w+)")
_PROM_BUILTIN = re.compile(r"\$__(rate_interval|interval|range)\b")
_LABEL_VALUES = re.compile(r"^\s*label_values\(\s*(?P<metric>[^,]+?)\s*,\s*(?P<label>\w+)\s*\)\s*$")
_REGEX_SPECIAL = re.compile(r"([\\^$*+?.()|{}\[\]])")

Values = Mapping[str, str | Sequence[str]]


@dataclass(frozen=True)
class PromQuery:
    """One expanded PromQL target: its panel, refId, expression and whether it is instant."""

    panel: str
    ref_id: str
    expr: str
    instant: bool


@dataclass(frozen=True)
class LabelValuesQuery:
    """A Prometheus query variable ``label_values(metric, label)``."""

    variable: str
    metric: str
    label: str


# -- SQL -------------------------------------------------------------------------------------------
def sql_queries(
    dashboard_json: Mapping[str, Any],
    *,
    variables: Values,
    time_from: pd.Timestamp,
    time_to: pd.Timestamp,
) -> list[str]:
    """Every SQL statement of a dashboard (panel targets, then SQL variable queries), expanded."""
    start, end = utc_timestamp(time_from, "time_from"), utc_timestamp(time_to, "time_to")
    multi = multi_value_variables(dashboard_json)
    return [expand_sql(sql, variables, start, end, multi=multi) for sql in raw_sql(dashboard_json)]


def expand_sql(
    sql: str,
    variables: Values,
    start: pd.Timestamp,
    end: pd.Timestamp,
    *,
    multi: Collection[str] | None = None,
) -> str:
    """Expand the supported Grafana macros, then ``$var`` / ``${var}`` template variables.

    ``multi`` names the multi-value / include-all variables (quoted and comma-joined); the others
    are substituted unquoted. ``None`` treats every variable as multi-value.
    """
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
        name = match.group(1) or match.group(3)
        values = _values(variables, name)
        if multi is None or name in multi:
            return ",".join(_quote(v) for v in values)
        if len(values) != 1:
            raise ValueError(f"single-value variable ${name} was given {len(values)} values")
        return values[0].replace("'", "''")

    expanded = _SQL_MACRO.sub(macro, sql)
    if "$__" in expanded:
        raise ValueError(f"unexpanded Grafana macro in: {expanded}")
    return _VARIABLE.sub(variable, expanded)


def raw_sql(board: Mapping[str, Any]) -> Iterator[str]:
    """The unexpanded SQL of every panel target and every PostgreSQL query variable."""
    for panel in panels(board):
        for target in panel.get("targets") or []:
            if target.get("rawSql"):
                yield target["rawSql"]
    for var in _query_variables(board, POSTGRES_TYPE):
        query = var["query"]
        yield query["rawSql"] if isinstance(query, Mapping) else str(query)


# -- PromQL ----------------------------------------------------------------------------------------
def promql_queries(
    dashboard_json: Mapping[str, Any],
    *,
    variables: Values,
    rate_interval: str = "1m",
    interval: str = "15s",
    range_: str = "1h",
) -> list[PromQuery]:
    """Every Prometheus target of a dashboard with variables and built-ins expanded."""
    multi = multi_value_variables(dashboard_json)
    builtins = {"rate_interval": rate_interval, "interval": interval, "range": range_}
    out = []
    for panel in panels(dashboard_json):
        for target in panel.get("targets") or []:
            if "expr" not in target:
                continue
            expr = expand_promql(target["expr"], variables, multi=multi, builtins=builtins)
            out.append(
                PromQuery(
                    str(panel.get("title")),
                    str(target.get("refId")),
                    expr,
                    bool(target.get("instant")) and not target.get("range"),
                )
            )
    return out


def expand_promql(
    expr: str,
    variables: Values,
    *,
    multi: set[str] | frozenset[str] = frozenset(),
    builtins: Mapping[str, str] | None = None,
) -> str:
    """Expand Grafana's PromQL built-ins and template variables the way its Prometheus datasource does."""
    given = dict(builtins or {"rate_interval": "1m", "interval": "15s", "range": "1h"})

    def builtin(match: re.Match[str]) -> str:
        return given[match.group(1)]

    def variable(match: re.Match[str]) -> str:
        name, fmt = match.group(1) or match.group(3), match.group(2)
        values = _values(variables, name)
        if fmt == "raw":
            return ",".join(values)
        if fmt is not None:
            raise ValueError(f"unsupported variable format ${{{name}:{fmt}}} (supported: raw)")
        if name in multi:
            escaped = [_REGEX_SPECIAL.sub(r"\\\1", v) for v in values]
            return escaped[0] if len(escaped) == 1 else "(" + "|".join(escaped) + ")"
        return values[0]

    expanded = _PROM_BUILTIN.sub(builtin, expr)
    if "$__" in expanded:
        raise ValueError(f"unsupported Grafana built-in in PromQL: {expanded}")
    return _VARIABLE.sub(variable, expanded)


def label_values_queries(board: Mapping[str, Any]) -> list[LabelValuesQuery]:
    """Every Prometheus query variable, parsed; anything but ``label_values(metric, label)`` raises."""
    out = []
    for var in _query_variables(board, PROMETHEUS_TYPE):
        query = var["query"]
        text = query.get("query", "") if isinstance(query, Mapping) else str(query)
        match = _LABEL_VALUES.match(text)
        if match is None:
            raise ValueError(f"variable {var['name']}: unsupported Prometheus variable query {text!r}")
        out.append(LabelValuesQuery(var["name"], match.group("metric"), match.group("label")))
    return out


# -- walking a dashboard ---------------------------------------------------------------------------
def panels(board: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    """Every panel, including those nested in collapsed rows."""

    def walk(items: list[Mapping[str, Any]]) -> Iterator[Mapping[str, Any]]:
        for panel in items:
            yield panel
            yield from walk(panel.get("panels") or [])

    yield from walk(board.get("panels") or [])


def multi_value_variables(board: Mapping[str, Any]) -> set[str]:
    """Names of the variables Grafana formats as lists (multi-value or include-all)."""
    return {
        v["name"]
        for v in (board.get("templating") or {}).get("list") or []
        if v.get("multi") or v.get("includeAll")
    }


def _query_variables(board: Mapping[str, Any], plugin: str) -> Iterator[Mapping[str, Any]]:
    for var in (board.get("templating") or {}).get("list") or []:
        if (
            var.get("type") == "query"
            and var.get("query")
            and (var.get("datasource") or {}).get("type") == plugin
        ):
            yield var


def _values(variables: Values, name: str) -> list[str]:
    if name not in variables:
        raise KeyError(f"no sample value for dashboard variable ${name}; given: {sorted(variables)}")
    value = variables[name]
    items = [value] if isinstance(value, str) else [str(v) for v in value]
    if not items:
        raise ValueError(f"dashboard variable ${name} has no values")
    return items


def _iso(ts: pd.Timestamp) -> str:
    return ts.strftime("%Y-%m-%dT%H:%M:%SZ")


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
