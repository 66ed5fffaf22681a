"""Pure builders of CloudWatch requests: metric specs, ListMetrics filters, GetMetricData batches.

No I/O here (the source runs what these build), so every rule of the API is unit-tested:

- query ids match ``^[a-z][a-zA-Z0-9_]*$`` and are unique across a fetch (``m<index>``), with a
  mapping id -> :class:`MetricSpec` to turn results back into series;
- at most 500 queries per GetMetricData call, and at most 100,800 datapoints
  (queries x periods) per call: longer ranges are split into consecutive, disjoint sub-ranges;
- ``StartTime`` and ``EndTime`` are floored to the period, so each call returns whole periods
  only (the period still in progress is left for the next run) and consecutive sub-ranges and
  incremental runs meet exactly on a period boundary: a datapoint comes back once per read.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

MAX_QUERIES_PER_CALL = 500
MAX_DATAPOINTS_PER_CALL = 100_800
QUERY_ID_PATTERN = re.compile(r"^[a-z][a-zA-Z0-9_]*$")
SCAN_BY = "TimestampAscending"

_SIMPLE_STATS = frozenset({"Average", "Maximum", "Minimum", "Sum", "SampleCount", "IQM"})
# pNN(.N), tmNN, wmNN, tcNN, tsNN and their range forms such as TM(10%:90%) or PR(:300).
_EXTENDED_STAT = re.compile(r"^(?:(?:p|tm|wm|tc|ts)\d{1,2}(?:\.\d+)?|(?:TM|WM|TC|TS|PR)\([^()]*\))$")
_HIGH_RESOLUTION_PERIODS = frozenset({1, 5, 10, 30})


class MissingDimensionError(ValueError):
    """A metric lacks the dimension that names its service or resource."""

    def __init__(self, metric: str, dimension: str, role: str, dimensions: Mapping[str, str]) -> None:
        self.metric, self.dimension, self.role, self.dimensions = metric, dimension, role, dict(dimensions)
        super().__init__(f"metric {metric} has no dimension {dimension!r} to name its {role}; "
                         f"its dimensions are {sorted(self.dimensions)}")


class DuplicateSeriesError(ValueError):
    """Two different CloudWatch queries would feed one ``unique_id``; ``.duplicates`` lists them."""

    def __init__(self, duplicates: dict[str, list[MetricSpec]]) -> None:
        self.duplicates = duplicates
        sample = {uid: [s.describe() for s in specs] for uid, specs in list(duplicates.items())[:3]}
        super().__init__(f"{len(duplicates)} unique_id(s) would be fed by more than one query, e.g. {sample}; "
                         "give each metric a distinct 'metric' name")


def is_valid_stat(stat: str) -> bool:
    """True for the statistics GetMetricData accepts (simple, percentiles, trimmed means...)."""
    return stat in _SIMPLE_STATS or bool(_EXTENDED_STAT.match(stat))


def is_valid_period(period: int) -> bool:
    """CloudWatch periods: 1, 5, 10, 30 s (high resolution) or any multiple of 60 s."""
    return period in _HIGH_RESOLUTION_PERIODS or (period > 0 and period % 60 == 0)


def snake_case(name: str) -> str:
    """``CPUUtilization`` -> ``cpu_utilization``, ``HTTPCode_Target_5XX_Count`` -> ``http_code_target_5xx_count``."""
    spaced = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name)
    spaced = re.sub(r"([a-z])([A-Z])", r"\1_\2", spaced)
    spaced = re.sub(r"([0-9])([A-Z][a-z])", r"\1_\2", spaced)  # Ec2Instance, but not 5XX
    return re.sub(r"[^0-9a-zA-Z]+", "_", spaced).strip("_").lower()


@dataclass(frozen=True)
class MetricSpec:
    """One concrete CloudWatch metric statistic and the series it becomes."""

    namespace: str
    metric_name: str
    dimensions: tuple[tuple[str, str], ...]  # sorted by name: equal metrics compare equal
    stat: str
    period: int
    unit: str  # the catalogue's unit (contract bounds), not CloudWatch's Unit filter
    service: str
    resource: str
    metric: str  # the series' metric name, snake_case(metric_name) unless configured

    @property
    def unique_id(self) -> str:
        return f"{self.service}/{self.resource}/{self.metric}"

    @property
    def labels(self) -> str:
        """The catalogue's ``labels``: what to ask CloudWatch for to get this series again."""
        return json.dumps({"namespace": self.namespace, "metric_name": self.metric_name,
                           "dimensions": dict(self.dimensions), "stat": self.stat, "period": self.period},
                          sort_keys=True)

    def metric_stat(self) -> dict[str, Any]:
        """The ``MetricStat`` element of a MetricDataQuery."""
        return {
            "Metric": {"Namespace": self.namespace, "MetricName": self.metric_name,
                       "Dimensions": [{"Name": k, "Value": v} for k, v in self.dimensions]},
            "Period": self.period,
            "Stat": self.stat,
        }

    def describe(self) -> str:
        dims = ",".join(f"{k}={v}" for k, v in self.dimensions)
        return f"{self.namespace}/{self.metric_name}{{{dims}}} {self.stat}@{self.period}s"


def resolve_spec(*, namespace: str, metric_name: str, dimensions: Mapping[str, str], stat: str, period: int,
                 unit: str, metric: str | None = None, service: str | None = None,
                 service_dimension: str | None = None, resource: str | None = None,
                 resource_dimension: str | None = None) -> MetricSpec:
    """A :class:`MetricSpec` with service and resource taken from static names or dimensions."""
    if not is_valid_stat(stat):
        raise ValueError(f"metric {namespace}/{metric_name}: unknown statistic {stat!r}")
    if not is_valid_period(period):
        raise ValueError(f"metric {namespace}/{metric_name}: period {period} s is not 1, 5, 10, 30 or a multiple of 60")
    label = f"{namespace}/{metric_name}"
    return MetricSpec(
        namespace=namespace, metric_name=metric_name, dimensions=tuple(sorted(dimensions.items())),
        stat=stat, period=period, unit=unit,
        service=_named(label, "service", service, service_dimension, dimensions),
        resource=_named(label, "resource", resource, resource_dimension, dimensions),
        metric=metric or snake_case(metric_name),
    )


def _named(label: str, role: str, static: str | None, dimension: str | None, dimensions: Mapping[str, str]) -> str:
    if (static is None) == (dimension is None):
        raise ValueError(f"metric {label}: give exactly one of {role!r} or '{role}_dimension'")
    if static is not None:
        return static
    assert dimension is not None
    if dimension not in dimensions:
        raise MissingDimensionError(label, dimension, role, dimensions)
    return dimensions[dimension]


def list_metrics_request(namespace: str, metric_name: str | None,
                         dimension_filters: Mapping[str, str | None]) -> dict[str, Any]:
    """ListMetrics parameters; a filter value of None matches any value of that dimension."""
    request: dict[str, Any] = {"Namespace": namespace}
    if metric_name:
        request["MetricName"] = metric_name
    if dimension_filters:
        request["Dimensions"] = [{"Name": k} if v is None else {"Name": k, "Value": v}
                                 for k, v in sorted(dimension_filters.items())]
    return request


def listed_dimensions(listed: Mapping[str, Any]) -> dict[str, str]:
    """A ListMetrics ``Metrics`` element's dimensions as a dict."""
    return {d["Name"]: d["Value"] for d in listed.get("Dimensions", [])}


def unique_specs(specs: Iterable[MetricSpec]) -> list[MetricSpec]:
    """Specs without exact repeats, sorted by unique_id; different queries for one id raise."""
    distinct = sorted(set(specs), key=lambda s: (s.unique_id, s.describe()))
    by_id: dict[str, list[MetricSpec]] = {}
    for spec in distinct:
        by_id.setdefault(spec.unique_id, []).append(spec)
    clashes = {uid: group for uid, group in by_id.items() if len(group) > 1}
    if clashes:
        raise DuplicateSeriesError(clashes)
    return distinct


def align_window(start: pd.Timestamp, end: pd.Timestamp, period: int) -> tuple[pd.Timestamp, pd.Timestamp]:
    """``[start, end)`` floored to whole periods (UTC): only complete periods are read."""
    step = pd.Timedelta(seconds=period)
    return start.tz_convert("UTC").floor(step), end.tz_convert("UTC").floor(step)


@dataclass(frozen=True)
class QueryBatch:
    """One GetMetricData call: up to 500 queries of one period over an aligned sub-range."""

    start: pd.Timestamp
    end: pd.Timestamp
    period: int
    specs: Mapping[str, MetricSpec] = field(hash=False)  # query id -> spec, in query order

    @property
    def n_periods(self) -> int:
        return int((self.end - self.start) / pd.Timedelta(seconds=self.period))

    @property
    def max_datapoints(self) -> int:
        return self.n_periods * len(self.specs)

    def queries(self) -> list[dict[str, Any]]:
        return [{"Id": qid, "MetricStat": spec.metric_stat(), "ReturnData": True} for qid, spec in self.specs.items()]

    def request(self) -> dict[str, Any]:
        """Keyword arguments for ``client.get_metric_data`` (without ``NextToken``)."""
        return {"MetricDataQueries": self.queries(), "StartTime": self.start.to_pydatetime(),
                "EndTime": self.end.to_pydatetime(), "ScanBy": SCAN_BY}


def query_ids(specs: Sequence[MetricSpec]) -> dict[str, MetricSpec]:
    """Stable, API-valid, unique ids: ``m0``, ``m1``... in the order given."""
    ids = {f"m{i}": spec for i, spec in enumerate(specs)}
    assert all(QUERY_ID_PATTERN.match(qid) for qid in ids)
    return ids


def build_batches(specs: Sequence[MetricSpec], start: pd.Timestamp, end: pd.Timestamp, *,
                  max_queries: int = MAX_QUERIES_PER_CALL,
                  max_datapoints: int = MAX_DATAPOINTS_PER_CALL) -> list[QueryBatch]:
    """Every GetMetricData call needed to read ``specs`` over ``[start, end)``.

    Queries are grouped by period (one call has one time range, aligned to its period), cut into
    chunks of at most ``max_queries``, and each chunk's aligned range is cut into consecutive
    sub-ranges of at most ``max_datapoints // len(chunk)`` periods. A window shorter than a
    period yields no call for that period.
    """
    if not 1 <= max_queries <= MAX_QUERIES_PER_CALL:
        raise ValueError(f"max_queries must be within [1, {MAX_QUERIES_PER_CALL}], got {max_queries}")
    if not 1 <= max_datapoints <= MAX_DATAPOINTS_PER_CALL:
        raise ValueError(f"max_datapoints must be within [1, {MAX_DATAPOINTS_PER_CALL}], got {max_datapoints}")
    ids = query_ids(specs)
    chunk_size = min(max_queries, max_datapoints)  # at least one period must fit in a call
    batches: list[QueryBatch] = []
    for period in sorted({s.period for s in specs}):
        aligned_start, aligned_end = align_window(start, end, period)
        if aligned_end <= aligned_start:
            continue
        same_period = [(qid, spec) for qid, spec in ids.items() if spec.period == period]
        for i in range(0, len(same_period), chunk_size):
            chunk = dict(same_period[i:i + chunk_size])
            span = pd.Timedelta(seconds=period) * (max_datapoints // len(chunk))
            for sub_start in pd.date_range(aligned_start, aligned_end, freq=span, inclusive="left"):
                batches.append(QueryBatch(sub_start, min(sub_start + span, aligned_end), period, chunk))
    return batches
