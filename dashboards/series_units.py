"""The forecast panel's unit from the catalogue (``series.unit``), applied by Grafana at view time.

Grafana fixes a panel's unit in its JSON, but the capacity dashboard's forecast panel shows one
series at a time, chosen by a variable. Its query ``E`` reads the selected series' unit (mapped
to a Grafana unit id, :data:`GRAFANA_UNITS`) and, for percentages, the axis bounds 0..100;
Grafana's *Config from query results* transformation (``configFromData``) applies them to the
panel's other fields.
"""

from __future__ import annotations

from grafana_foundation_sdk.models import dashboard as dashboard_models

# Grafana unit ids for the catalogue's units (``series.unit``); percent axes run 0..100.
GRAFANA_UNITS: dict[str, str] = {
    "percent": "percent", "pct": "percent", "%": "percent", "ratio": "percentunit", "fraction": "percentunit",
    "seconds": "s", "milliseconds": "ms", "ms": "ms", "microseconds": "µs", "bytes": "bytes",
    "requests_per_second": "reqps", "rps": "reqps", "millicores": "short", "count": "short",
}
_UNIT_CASE = "CASE s.unit " + " ".join(f"WHEN '{k}' THEN '{v}'" for k, v in GRAFANA_UNITS.items()) + " ELSE 'short' END"
_PERCENT = "s.unit IN ('percent', 'pct', '%')"
UNIT_SQL = f"""SELECT {_UNIT_CASE} AS "unit",
  CASE WHEN {_PERCENT} THEN 0 END AS "min", CASE WHEN {_PERCENT} THEN 100 END AS "max"
FROM series s
WHERE s.unique_id = '$series'"""


def unit_from_catalogue() -> dashboard_models.DataTransformerConfig:
    """Grafana's *Config from query results*: query ``E`` (the series' unit, min and max) sets the
    other queries' field config, so one panel shows each series in its own unit."""
    return dashboard_models.DataTransformerConfig(
        id_val="configFromData",
        options={
            "configRefId": "E",
            "mappings": [
                {"fieldName": "unit", "handlerKey": "unit"},
                {"fieldName": "min", "handlerKey": "min"},
                {"fieldName": "max", "handlerKey": "max"},
            ],
        },
    )
