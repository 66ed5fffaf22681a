"""The ``prometheus`` source: configured PromQL series pulled as range queries into long telemetry.

Incremental: the ingest flow passes ``[watermark - overlap, now)``; each series' window is split
into step-aligned chunks (:mod:`.query`), fetched concurrently with retries (:mod:`.client`) and
decoded (:mod:`.decode`). A series whose query Prometheus rejects is isolated: it goes to the
batch's ``rejected`` rows (kept in the quarantine with Prometheus' message) and the others are
delivered; the fetch fails only when every series was rejected. An unreachable Prometheus fails
the whole fetch, so the watermark stays put and the next run re-reads the window.

Example (YAML)::

    sources:
      - name: prod-prometheus
        kind: prometheus
        options:
          url: https://prometheus.example:9090
          step: 60s
          bearer_token: ${PROM_TOKEN}
          series:
            - {name: cpu_pct, unit: percent,
               promql: '100 * (1 - avg by (job, instance) (rate(node_cpu_seconds_total{mode="idle"}[5m])))'}
            - {name: http_requests, unit: requests_per_second, counter: true,
               promql: 'sum by (job, instance) (http_requests_total)'}
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, ClassVar

import pandas as pd
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from connectors.sources.base import SOURCES, SourceBatch, Window, stream_start
from connectors.sources.prometheus.client import (
    ClientStats,
    PrometheusClient,
    PrometheusQueryError,
    RangeOutcome,
    RangeRequest,
    make_session,
)
from connectors.sources.prometheus.decode import (
    LabelCollisionError,
    SeriesNaming,
    counter_rates,
    decode_matrix,
)
from connectors.sources.prometheus.query import MAX_POINTS_PER_SERIES, plan_chunks, step_millis
from foresight.schemas import CATALOGUE_COLUMNS, empty_telemetry

log = logging.getLogger(__name__)


def _duration(value: Any) -> Any:
    """Accept Prometheus-style durations ("60s", "5m", "1h"), ISO 8601, seconds or timedeltas."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return timedelta(seconds=value)
    if isinstance(value, str):
        try:
            return pd.Timedelta(value).to_pytimedelta()
        except ValueError as exc:
            raise ValueError(f"not a duration: {value!r} (use e.g. 60s, 5m, 1h)") from exc
    return value


Duration = Annotated[timedelta, BeforeValidator(_duration)]


class SeriesOptions(BaseModel):
    """One catalogue metric fetched by one PromQL expression."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, pattern=r"^[^/{}]+$")
    promql: str = Field(min_length=1)
    unit: str = Field(min_length=1)
    service_label: str = "job"
    resource_label: str = "instance"
    service: str | None = None
    # Raw counter samples: converted to per-second rates with resets handled (prefer rate() in PromQL).
    counter: bool = False

    def naming(self) -> SeriesNaming:
        return SeriesNaming(self.name, self.unit, self.service_label, self.resource_label, self.service)


class BasicAuth(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: str
    password: SecretStr


class PrometheusOptions(BaseModel):
    """Validated options of a ``prometheus`` source; secrets stay ``SecretStr``."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(pattern=r"^https?://[^/]+")
    series: list[SeriesOptions] = Field(min_length=1)
    step: Duration = timedelta(seconds=60)
    timeout: Duration = timedelta(seconds=30)
    max_concurrency: int = Field(default=4, ge=1, le=64)
    retries: int = Field(default=3, ge=0, le=10)
    backoff: Duration = timedelta(seconds=0.5)
    max_points: int = Field(default=MAX_POINTS_PER_SERIES, ge=1, le=MAX_POINTS_PER_SERIES)
    # Window when fetched without one (not through the ingest flow).
    lookback: Duration = timedelta(hours=1)
    bearer_token: SecretStr | None = None
    basic_auth: BasicAuth | None = None
    verify: bool | str = True
    cert: str | None = None
    key: str | None = None

    @field_validator("step")
    @classmethod
    def _whole_milliseconds(cls, value: timedelta) -> timedelta:
        step_millis(pd.Timedelta(value))
        return value

    @field_validator("timeout", "backoff", "lookback")
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        if value.total_seconds() <= 0:
            raise ValueError(f"must be positive, got {value}")
        return value

    @field_validator("series")
    @classmethod
    def _unique_names(cls, value: list[SeriesOptions]) -> list[SeriesOptions]:
        names = [s.name for s in value]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"series names must be unique; repeated: {repeated}")
        return value

    @field_validator("verify", "cert", "key")
    @classmethod
    def _existing_file(cls, value: bool | str | None) -> bool | str | None:
        if isinstance(value, str) and not Path(value).is_file():
            raise ValueError(f"file not found: {value}")
        return value

    @model_validator(mode="after")
    def _consistent_auth(self) -> PrometheusOptions:
        if self.bearer_token is not None and self.basic_auth is not None:
            raise ValueError("set either bearer_token or basic_auth, not both")
        if self.key is not None and self.cert is None:
            raise ValueError("key is set without cert")
        return self


class PrometheusConfigError(ValueError):
    """A ``prometheus`` source was configured wrongly; ``.problems`` lists ``(option, message)``."""

    def __init__(self, source: str, problems: list[tuple[str, str]]) -> None:
        self.source, self.problems = source, problems
        listed = "; ".join(f"{where}: {message}" for where, message in problems)
        super().__init__(f"prometheus source {source!r}: bad option(s): {listed}")


class PrometheusFetchError(RuntimeError):
    """Every configured series failed; ``.failures`` maps series name to its error."""

    def __init__(self, source: str, failures: dict[str, str]) -> None:
        self.source, self.failures = source, failures
        super().__init__(f"prometheus source {source!r}: every series failed: {failures}")


def parse_options(source: str, options: dict[str, Any]) -> PrometheusOptions:
    """Validate raw options, naming each bad option without echoing its (possibly secret) value."""
    try:
        return PrometheusOptions.model_validate(options)
    except ValidationError as exc:
        problems = [(".".join(str(p) for p in err["loc"]) or "(options)", err["msg"])
                    for err in exc.errors(include_url=False, include_input=False)]
        raise PrometheusConfigError(source, problems) from None


@SOURCES.register("prometheus")
class PrometheusSource:
    """Pulls each configured series over a window; ``incremental`` so the flow tracks a watermark."""

    incremental = True
    tracks_streams = True  # one watermark per configured series
    Settings: ClassVar[type[BaseModel]] = PrometheusOptions  # its options, checked when the settings load

    def __init__(self, name: str, **options: Any) -> None:
        self.name = name
        self.options = parse_options(name, options)
        self.failures: dict[str, str] = {}  # series name -> error, from the last fetch
        self.last_stats: ClientStats | None = None  # requests, retries, query errors of the last fetch

    def client(self) -> PrometheusClient:
        """A client carrying this source's auth, TLS, timeout, retry and concurrency settings."""
        opts = self.options
        session = make_session(
            bearer_token=opts.bearer_token.get_secret_value() if opts.bearer_token else None,
            basic_auth=(opts.basic_auth.username, opts.basic_auth.password.get_secret_value())
            if opts.basic_auth else None,
            verify=opts.verify, cert=(opts.cert, opts.key) if opts.cert and opts.key else opts.cert,
            pool_size=opts.max_concurrency,
        )
        return PrometheusClient(
            opts.url, session=session, timeout=opts.timeout.total_seconds(), retries=opts.retries,
            backoff=opts.backoff.total_seconds(), max_concurrency=opts.max_concurrency,
        )

    def requests_for(self, window: Window, since: Mapping[str, pd.Timestamp] | None = None) -> list[RangeRequest]:
        """Every (series, chunk) request covering the window, each series from its own start in
        ``since`` when given: pure, so tests can inspect the plan."""
        step = pd.Timedelta(self.options.step)
        return [
            RangeRequest(s.name, s.promql, chunk)
            for s in self.options.series
            for chunk in plan_chunks(stream_start(since, s.name, window), window.end, step,
                                     max_points=self.options.max_points)
        ]

    def fetch(self, window: Window | None = None, since: Mapping[str, pd.Timestamp] | None = None) -> SourceBatch:
        """Each configured series (a stream, with its own watermark) over the window."""
        if window is None:
            now = pd.Timestamp.now(tz="UTC")
            window = Window(now - pd.Timedelta(self.options.lookback), now)
        with self.client() as client:
            self.last_stats = client.stats
            outcomes = client.query_ranges(self.requests_for(window, since))
        by_series: dict[str, list[RangeOutcome]] = defaultdict(list)
        for outcome in outcomes:
            by_series[outcome.request.key].append(outcome)
        telemetry, catalogues, rejected, self.failures = [], [], [], {}
        streams: dict[str, str] = {}
        for spec in self.options.series:
            try:
                frame, catalogue = self._series_frames(spec, by_series.get(spec.name, []),
                                                       stream_start(since, spec.name, window), window.end)
            except (PrometheusQueryError, LabelCollisionError) as exc:
                log.error("prometheus source %s: series %s failed: %s", self.name, spec.name, exc)
                self.failures[spec.name] = str(exc)
                rejected.append({"origin": f"{self.name}/{spec.name}", "raw": spec.promql, "reason": str(exc)})
                continue
            telemetry.append(frame)
            catalogues.append(catalogue)
            streams.update(dict.fromkeys(catalogue["unique_id"].astype(str), spec.name))
        if self.failures and len(self.failures) == len(self.options.series):
            raise PrometheusFetchError(self.name, self.failures)
        return SourceBatch(
            source=self.name,
            telemetry=pd.concat(telemetry, ignore_index=True) if telemetry else empty_telemetry(),
            catalogue=_merge_catalogues(catalogues),
            rejected=pd.DataFrame(rejected, columns=["origin", "raw", "reason"]) if rejected else None,
            complete=not rejected,
            # A refused series keeps its own watermark back until it is fixed; the others move on.
            streams=streams, incomplete_streams=frozenset(self.failures),
            grid=pd.Timedelta(self.options.step),  # range queries evaluate at multiples of the step
        )

    def _series_frames(self, spec: SeriesOptions, outcomes: list[RangeOutcome],
                       start: pd.Timestamp, end: pd.Timestamp) -> tuple[pd.DataFrame, pd.DataFrame]:
        """One series' chunks decoded and joined (counters converted after joining, so no chunk
        edge loses a rate)."""
        errors = [o.error for o in outcomes if o.error is not None]
        if errors:
            raise errors[0]
        result = [series for o in outcomes for series in o.result]
        # Chunks of one series repeat its label sets: merge their values before decoding.
        merged: dict[str, dict[str, Any]] = {}
        for series in result:
            key = json.dumps(series.get("metric") or {}, sort_keys=True)
            entry = merged.setdefault(key, {"metric": series.get("metric") or {}, "values": []})
            entry["values"].extend(series.get("values") or [])
        frame, catalogue = decode_matrix(list(merged.values()), spec.naming(), source=self.name,
                                         start=start, end=end)
        if spec.counter:
            frame = counter_rates(frame)
        return frame, catalogue


def _merge_catalogues(frames: list[pd.DataFrame]) -> pd.DataFrame:
    if not frames:
        return pd.DataFrame(columns=list(CATALOGUE_COLUMNS))
    return pd.concat(frames, ignore_index=True).drop_duplicates("unique_id", keep="last").reset_index(drop=True)
