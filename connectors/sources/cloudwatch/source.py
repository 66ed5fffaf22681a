"""The ``cloudwatch`` source: AWS CloudWatch metrics through GetMetricData, incrementally.

Options (validated by :class:`CloudWatchOptions`; credentials come from the standard boto3 chain
or ``profile``, never from options)::

    region: eu-west-1
    endpoint_url: https://monitoring.eu-west-1.amazonaws.com   # optional: VPC endpoint, moto
    metrics:
      - {namespace: AWS/EC2, metric_name: CPUUtilization, dimensions: {InstanceId: i-0abc},
         stat: Average, period: 300, unit: percent, service: cart, resource_dimension: InstanceId}
    discover:   # expanded with ListMetrics into one metric per dimension combination
      - {namespace: AWS/EC2, metric_name: CPUUtilization, dimensions: {InstanceId: null},
         stat: p95, period: 60, unit: percent, service: fleet, resource_dimension: InstanceId}
    retry_mode: standard   # the boto3 client is the one retry layer
    max_attempts: 5        # total attempts per request, the first included

Each call's pages are followed with ``NextToken`` until exhausted. A query that fails
(``InternalError``/``Forbidden``, or still ``PartialData`` after the last page) is isolated:
counted in :attr:`CloudWatchSource.last_report`, logged and recorded as a rejected message; the
fetch fails only when a request fails after the client's retries or when every query failed.
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, ClassVar, Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from connectors.sources.base import SOURCES, SourceBatch, Window, stream_start
from connectors.sources.cloudwatch.queries import (
    MAX_DATAPOINTS_PER_CALL,
    MAX_QUERIES_PER_CALL,
    MetricSpec,
    MissingDimensionError,
    QueryBatch,
    build_batches,
    is_valid_period,
    is_valid_stat,
    list_metrics_request,
    listed_dimensions,
    resolve_spec,
    unique_specs,
)
from connectors.sources.cloudwatch.results import (
    QueryResult,
    SeriesFailure,
    call_messages,
    catalogue_frame,
    failures,
    merge_pages,
    rejected_frame,
    telemetry_frame,
)

CloudWatchClient = Any  # a boto3 "cloudwatch" client (boto3 is imported lazily)

log = logging.getLogger(__name__)

_CREDENTIAL_WORDS = ("access_key", "secret", "session_token", "password", "credentials")
# A runaway NextToken loop is a bug upstream, not data: stop and say so.
MAX_PAGES_PER_CALL = 10_000


class CloudWatchOptionsError(ValueError):
    """The source's options are invalid; ``.errors`` holds pydantic's list of problems."""

    def __init__(self, source: str, errors: list[dict[str, Any]]) -> None:
        self.source, self.errors = source, errors
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or '(options)'}: {e['msg']}" for e in errors)
        super().__init__(f"cloudwatch source {source!r}: invalid option(s): {problems}")


class CloudWatchRequestError(RuntimeError):
    """A CloudWatch request failed after the client's retries; carries what was asked."""

    def __init__(self, operation: str, detail: str, cause: BaseException) -> None:
        self.operation, self.detail, self.cause = operation, detail, cause
        super().__init__(f"CloudWatch {operation} failed ({detail}): {cause}")


class AllSeriesFailedError(RuntimeError):
    """Every query of a fetch failed: nothing useful was read. ``.failures`` lists them."""

    def __init__(self, source: str, failed: list[SeriesFailure]) -> None:
        self.source, self.failures = source, failed
        sample = "; ".join(f.reason for f in failed[:3])
        super().__init__(f"cloudwatch source {source!r}: all {len(failed)} queries failed, e.g. {sample}")


class _SeriesOptions(BaseModel):
    """What turns a CloudWatch metric into a series: statistic, period, unit, service, resource."""

    model_config = ConfigDict(extra="forbid")

    namespace: str = Field(min_length=1)
    metric_name: str = Field(min_length=1)
    stat: str = "Average"
    period: int = 300
    unit: str = Field(min_length=1)
    metric: str | None = None  # the series' metric name; default: metric_name in snake_case
    service: str | None = None
    service_dimension: str | None = None
    resource: str | None = None
    resource_dimension: str | None = None

    @field_validator("stat")
    @classmethod
    def _known_stat(cls, value: str) -> str:
        if not is_valid_stat(value):
            raise ValueError(f"unknown statistic {value!r} (Average, Maximum, Minimum, Sum, SampleCount, p95...)")
        return value

    @field_validator("period")
    @classmethod
    def _api_period(cls, value: int) -> int:
        if not is_valid_period(value):
            raise ValueError(f"period {value} s is not 1, 5, 10, 30 or a multiple of 60")
        return value

    @model_validator(mode="after")
    def _one_name_each(self) -> _SeriesOptions:
        for role in ("service", "resource"):
            if (getattr(self, role) is None) == (getattr(self, f"{role}_dimension") is None):
                raise ValueError(f"give exactly one of {role!r} or '{role}_dimension'")
        return self

    def spec(self, dimensions: Mapping[str, str]) -> MetricSpec:
        return resolve_spec(namespace=self.namespace, metric_name=self.metric_name, dimensions=dimensions,
                            stat=self.stat, period=self.period, unit=self.unit, metric=self.metric,
                            service=self.service, service_dimension=self.service_dimension,
                            resource=self.resource, resource_dimension=self.resource_dimension)


class MetricOptions(_SeriesOptions):
    """One metric with fixed dimensions."""

    dimensions: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _named_dimensions_present(self) -> MetricOptions:
        for role in ("service", "resource"):
            name = getattr(self, f"{role}_dimension")
            if name is not None and name not in self.dimensions:
                raise ValueError(f"{role}_dimension {name!r} is not one of the dimensions {sorted(self.dimensions)}")
        return self


class DiscoverOptions(_SeriesOptions):
    """Metrics found with ListMetrics; a dimension filter of null matches any value."""

    dimensions: dict[str, str | None] = Field(default_factory=dict)


class CloudWatchOptions(BaseModel):
    """The ``cloudwatch`` source's options."""

    model_config = ConfigDict(extra="forbid")

    region: str = Field(min_length=1)
    endpoint_url: str | None = None
    profile: str | None = None
    metrics: list[MetricOptions] = Field(default_factory=list)
    discover: list[DiscoverOptions] = Field(default_factory=list)
    retry_mode: Literal["standard", "adaptive", "legacy"] = "standard"
    max_attempts: int = Field(default=5, ge=1, le=20)
    connect_timeout: float = Field(default=10.0, gt=0)
    read_timeout: float = Field(default=60.0, gt=0)
    lookback: timedelta = timedelta(hours=1)  # the window when fetched without one
    max_queries_per_call: int = Field(default=MAX_QUERIES_PER_CALL, ge=1, le=MAX_QUERIES_PER_CALL)
    max_datapoints_per_call: int = Field(default=MAX_DATAPOINTS_PER_CALL, ge=1, le=MAX_DATAPOINTS_PER_CALL)

    @model_validator(mode="before")
    @classmethod
    def _no_credentials(cls, data: Any) -> Any:
        if isinstance(data, Mapping):
            secret = [k for k in data if any(w in str(k).lower() for w in _CREDENTIAL_WORDS)]
            if secret:
                raise ValueError(f"option(s) {secret} look like credentials: use the standard AWS credential "
                                 "chain (environment, shared config with 'profile', instance/task role)")
        return data

    @model_validator(mode="after")
    def _something_to_read(self) -> CloudWatchOptions:
        if not self.metrics and not self.discover:
            raise ValueError("configure at least one entry in 'metrics' or 'discover'")
        return self


@dataclass
class FetchReport:
    """What one fetch did: calls, pages and datapoints read, series failed, discovery skips."""

    series: int = 0
    calls: int = 0
    pages: int = 0
    datapoints: int = 0
    failures: list[SeriesFailure] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # discovered metrics that could not be named
    messages: list[dict[str, str]] = field(default_factory=list)  # call-level messages


def cloudwatch_client(options: CloudWatchOptions) -> CloudWatchClient:
    """A boto3 CloudWatch client: standard credential chain, the configured retries and timeouts."""
    try:
        import boto3  # lazy: boto3 only for CloudWatch
        from botocore.config import Config  # lazy: boto3 only for CloudWatch
    except ImportError as exc:  # pragma: no cover - boto3 is in the lock file
        raise ImportError("the cloudwatch source needs boto3: pip install boto3") from exc
    session = boto3.Session(profile_name=options.profile, region_name=options.region)
    config = Config(
        retries={"mode": options.retry_mode, "total_max_attempts": options.max_attempts},
        connect_timeout=options.connect_timeout, read_timeout=options.read_timeout,
    )
    return session.client("cloudwatch", endpoint_url=options.endpoint_url, config=config)


def _client_errors() -> tuple[type[BaseException], ...]:
    from botocore.exceptions import BotoCoreError, ClientError  # lazy: boto3 only for CloudWatch

    return (ClientError, BotoCoreError)


def discover_specs(client: CloudWatchClient, rules: Sequence[DiscoverOptions],
                   report: FetchReport) -> list[MetricSpec]:
    """Concrete specs for each discovery rule, from every page of ListMetrics."""
    specs = []
    for rule in rules:
        request = list_metrics_request(rule.namespace, rule.metric_name, rule.dimensions)
        try:
            for page in client.get_paginator("list_metrics").paginate(**request):
                for listed in page.get("Metrics", []):
                    try:
                        specs.append(rule.spec(listed_dimensions(listed)))
                    except MissingDimensionError as exc:
                        report.skipped.append(str(exc))
        except _client_errors() as exc:
            raise CloudWatchRequestError("ListMetrics", f"{request}", exc) from exc
    return specs


def read_pages(client: CloudWatchClient, batch: QueryBatch) -> Iterator[Mapping[str, Any]]:
    """Every page of one GetMetricData call, following ``NextToken`` until it is exhausted."""
    request = batch.request()
    for _ in range(MAX_PAGES_PER_CALL):
        try:
            page = client.get_metric_data(**request)
        except _client_errors() as exc:
            detail = f"{len(batch.specs)} queries, period {batch.period} s, [{batch.start}, {batch.end})"
            raise CloudWatchRequestError("GetMetricData", detail, exc) from exc
        yield page
        token = page.get("NextToken")
        if not token:
            return
        request = {**request, "NextToken": token}
    raise CloudWatchRequestError("GetMetricData", f"more than {MAX_PAGES_PER_CALL} pages",
                                 RuntimeError("NextToken never ran out"))


def run_batches(client: CloudWatchClient, batches: Sequence[QueryBatch],
                report: FetchReport) -> pd.DataFrame:
    """Run every batch; one frame of all datapoints, failures and counts recorded in ``report``."""
    frames = []
    for batch in batches:
        pages = list(read_pages(client, batch))
        merged: dict[str, QueryResult] = merge_pages(pages)
        report.calls += 1
        report.pages += len(pages)
        report.messages.extend(call_messages(pages))
        report.failures.extend(failures(batch, merged))
        frame = telemetry_frame(batch.specs, merged)
        report.datapoints += len(frame)
        frames.append(frame)
    frames = [f for f in frames if len(f)]
    return pd.concat(frames, ignore_index=True) if frames else telemetry_frame({}, {})


@SOURCES.register("cloudwatch")
class CloudWatchSource:
    """CloudWatch metrics as long telemetry; incremental from the ingest flow's watermark."""

    incremental = True
    tracks_streams = True  # one watermark per metric
    Settings: ClassVar[type[BaseModel]] = CloudWatchOptions  # its options, checked when the settings load

    def __init__(self, name: str, **options: Any) -> None:
        self.name = name
        try:
            self.options = CloudWatchOptions(**options)
        except ValidationError as exc:
            raise CloudWatchOptionsError(name, [dict(e) for e in exc.errors(include_url=False, include_input=False)]) from None
        self.last_report: FetchReport | None = None

    def fetch(self, window: Window | None = None, client: CloudWatchClient | None = None,
              since: Mapping[str, pd.Timestamp] | None = None) -> SourceBatch:
        """Every configured and discovered metric over ``window`` (default: the last ``lookback``).

        Each metric (its ``unique_id``) is a stream with its own watermark: ``since`` gives
        known streams their own start. Metrics sharing a start share GetMetricData calls.
        """
        if window is None:
            now = pd.Timestamp.now(tz="UTC")
            window = Window(now - pd.Timedelta(self.options.lookback), now)
        client = client if client is not None else cloudwatch_client(self.options)
        report = FetchReport()
        static = [m.spec(m.dimensions) for m in self.options.metrics]
        specs = unique_specs(static + discover_specs(client, self.options.discover, report))
        report.series = len(specs)
        by_start: dict[pd.Timestamp, list[MetricSpec]] = defaultdict(list)
        for spec in specs:
            by_start[stream_start(since, spec.unique_id, window)].append(spec)
        batches = [
            batch
            for start, group in sorted(by_start.items(), key=lambda kv: kv[0])
            for batch in build_batches(group, start, window.end, max_queries=self.options.max_queries_per_call,
                                       max_datapoints=self.options.max_datapoints_per_call)
        ]
        telemetry = run_batches(client, batches, report)
        self.last_report = report
        self._log(report)
        failed_ids = {f.spec.unique_id for f in report.failures}
        if telemetry.empty and failed_ids and failed_ids == {s.unique_id for s in specs}:
            raise AllSeriesFailedError(self.name, report.failures)
        return SourceBatch(source=self.name, telemetry=telemetry, catalogue=catalogue_frame(specs, self.name),
                           rejected=rejected_frame(report.failures) if report.failures else None,
                           complete=not report.failures,
                           # a failed query keeps only its own watermark back: re-read next run
                           streams={s.unique_id: s.unique_id for s in specs},
                           incomplete_streams=frozenset(failed_ids),
                           # datapoints sit on their period's boundaries; the gcd covers them all
                           grid=pd.Timedelta(seconds=math.gcd(*(s.period for s in specs))) if specs else None)

    def _log(self, report: FetchReport) -> None:
        log.info("cloudwatch %s: %d series, %d calls, %d pages, %d datapoints, %d failed queries",
                 self.name, report.series, report.calls, report.pages, report.datapoints, len(report.failures))
        for failure in report.failures:
            log.warning("cloudwatch %s: %s", self.name, failure.reason)
        for message in report.messages:
            log.warning("cloudwatch %s: GetMetricData said %s: %s", self.name, message.get("Code"),
                        message.get("Value"))
        if report.skipped:
            log.warning("cloudwatch %s: %d discovered metric(s) skipped, e.g. %s", self.name,
                        len(report.skipped), report.skipped[0])
