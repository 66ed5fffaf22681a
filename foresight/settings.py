"""Foresight's one settings object.

Built once at an entry point (CLI, flow) and passed down explicitly. Values come, in order of
precedence, from keyword arguments, ``FORESIGHT_*`` environment variables (nested fields with
``__``, e.g. ``FORESIGHT_FORECAST__HORIZON=48``), an optional YAML file (``config_file=`` or
``FORESIGHT_CONFIG_FILE``) and the embedded defaults below, which keep everything under one home
folder (``.foresight/`` or ``FORESIGHT_HOME``).

Strict: every section forbids unknown keys and every number has a range, so a typo or an absurd
value stops the run at start-up instead of running with a default. :func:`load_settings` turns
what is wrong into one :class:`~foresight.errors.ConfigError` with a line per problem, naming the
dotted key and where its value came from (the YAML file, a ``FORESIGHT_*`` variable).
Credentials never show: ``SecretStr`` fields, passwords inside URLs and secret-looking source
options are masked in :meth:`Settings.redacted`, in reprs and in error messages
(:mod:`foresight.redact`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict
from pydantic_settings import SettingsError as PydanticSettingsError

from foresight.config_file import read_config_file
from foresight.errors import ConfigError
from foresight.redact import redact
from foresight.settings_errors import Origins, explain, explain_problems

NO_TIME = timedelta(0)


class Section(BaseModel):
    """Base of every settings section: unknown keys are errors, numbers must be finite, and the
    repr masks credentials (a section in a log line or a traceback shows no password)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    def __repr_args__(self) -> Any:
        for name, value in super().__repr_args__():
            yield name, redact(value, name)


class SourceConfig(Section):
    """One telemetry source, found by ``kind`` in the source registry."""

    name: str = Field(min_length=1)
    kind: str = Field(default="simulator", min_length=1)
    # Checked by the source kind itself (connectors/*), which names each bad option.
    options: dict[str, Any] = Field(default_factory=dict)
    # Newest sample older than this (relative to the run) fails the freshness contract.
    max_staleness: timedelta = Field(default=timedelta(hours=36), gt=NO_TIME)
    # Incremental sources: each run re-reads this much before the watermark (late samples) and
    # starts this far back on its first run.
    overlap: timedelta = Field(default=timedelta(minutes=10), ge=NO_TIME)
    initial_lookback: timedelta = Field(default=timedelta(days=7), gt=NO_TIME)
    # More distinct series than this in one batch fails its contract: a label-cardinality
    # explosion (a request or pod id in a label) must not flood the lake. None: no limit.
    max_series: int | None = Field(default=100_000, ge=1)


class ForecastEvent(Section):
    """A known calendar event (a promotion, a sale, a public holiday) that moves load: Prophet
    learns its effect from past occurrences and applies it to future ones."""

    name: str = Field(min_length=1)
    start: datetime
    end: datetime

    @model_validator(mode="after")
    def _ordered(self) -> ForecastEvent:
        if (self.start.tzinfo is None) != (self.end.tzinfo is None):
            raise ValueError(f"event {self.name!r}: give start and end both with a time zone or both without")
        if self.end < self.start:
            raise ValueError(f"event {self.name!r} ends ({self.end}) before it starts ({self.start})")
        return self


class ForecastConfig(Section):
    """Capacity forecasting: resampled frequency, horizon (steps of ``freq``), interval level."""

    freq: str = "1h"
    # Steps of ``freq`` ahead; 10,000 hourly steps is over a year.
    horizon: int = Field(default=168, ge=1, le=10_000)
    # Prediction-interval level in percent.
    level: int = Field(default=80, ge=1, le=99)
    # Rolling-origin backtest: n_origins windows of backtest_horizon steps at the end of history.
    n_origins: int = Field(default=3, ge=1, le=100)
    backtest_horizon: int = Field(default=48, ge=1, le=10_000)
    # Candidates of the per-series champion selection (models.forecasting.selection): fast
    # statistical ones backtested on every series, expensive ones only where they could win.
    models: list[str] = Field(default_factory=lambda: [
        "seasonal_naive", "ses", "damped_trend", "mstl", "ensemble", "prophet", "lgbm_global"])
    # Known events (past and upcoming) given to Prophet as holiday regressors.
    events: list[ForecastEvent] = Field(default_factory=list)
    # Metrics forecast for capacity planning (resource metrics plus load).
    metrics: list[str] = Field(default_factory=lambda: ["cpu_pct", "mem_pct", "disk_pct", "request_rate"])
    # Utilisation the plan sizes capacity for (percent of the resource).
    target_utilisation: float = Field(default=70.0, gt=0, le=100)

    @field_validator("freq")
    @classmethod
    def _pandas_frequency(cls, value: str) -> str:
        import pandas as pd

        try:
            pd.tseries.frequencies.to_offset(value)
        except ValueError:
            raise ValueError(f"{value!r} is not a pandas frequency (e.g. 5min, 1h, 1D)") from None
        return value


class DetectConfig(Section):
    """Anomaly and failure-risk detection."""

    # Anomaly detector the train flow fits as its candidate (a name in models.anomaly.base.DETECTORS:
    # "streaming_ensemble", "streaming", "streaming_knn", "robust_seasonal", ...); an unknown name
    # fails when a flow loads the settings, listing the choices. "streaming_ensemble" (the streaming forecaster plus
    # nearest neighbours on 8-step block means) because on NAB's dev files, each category held
    # out in turn, it beats "streaming" on two and ties it on the third, at a cost per update that
    # fits the detect schedule (docs/anomaly_detectors.md, *Held out* and *Cost*). Slow disk fills
    # and leaks it may see late are what the failure predictor and the capacity runway are for.
    detector: str = "streaming_ensemble"
    # Constructor parameters of that detector, over its own ``incident_params`` (e.g.
    # {"suppress": true} to keep the streaming detector's one score per episode); one it does not
    # take fails when a flow loads the settings, naming the ones it does.
    detector_params: dict[str, Any] = Field(default_factory=dict)
    # Failure predictor label: "an incident starts within the next ``horizon_minutes``".
    horizon_minutes: int = Field(default=60, ge=1)
    # How much recent data the detect flow scores on each run.
    lookback_hours: int = Field(default=72, ge=1)
    # Scoring tasks the detect flow fans out to (whole services each). The streaming detector
    # updates every series of a task in one vectorised step per time step, so in one process one
    # task is fastest (docs/anomaly_detectors.md, *Cost*); raise it to spread scoring over a Dask
    # cluster's workers.
    scoring_batches: int = Field(default=1, ge=1)
    # Scores are per-series tail probabilities. Across a fleet of ~70 series at 5-minute steps
    # (~20k scores a day) 0.9999 means about two chance exceedances a day before roll-up.
    anomaly_threshold: float = Field(default=0.9999, gt=0, lt=1)
    risk_threshold: float = Field(default=0.5, ge=0, le=1)
    # Like Prometheus' `for:`: a service must be anomalous for this many samples to open an incident.
    # 3 (15 minutes at 5-minute steps) suits the streaming detector's unsuppressed scores: 2 lets
    # many more false alarms through on the simulator (docs/incidents.md, *The roll-up's settings*).
    min_active_samples: int = Field(default=3, ge=1)
    # The condition must stay clear this long before an incident resolves (also the window an
    # incident's identity is floored to, so at least a minute).
    resolve_after_minutes: int = Field(default=30, ge=1)
    # Evaluation split: models train on this share of history and are judged on the rest.
    train_fraction: float = Field(default=0.6, gt=0, lt=1)
    # The failure predictor is judged on this many consecutive blocks of that rest, each scored
    # by a model trained on everything before it (rolling origin).
    failure_origins: int = Field(default=3, ge=1)
    # Incident history for failure labels: a CSV / Parquet file (incident_id, service, category,
    # start, end, severity[, false_positive]) instead of the lake's incidents dataset.
    labels_path: Path | None = None
    # Who calls whom (caller -> callees), for ranking an incident's likely root causes. None:
    # the simulator's own topology when a simulator source is configured, else no ranking.
    call_graph: dict[str, list[str]] | None = None
    # A NAB-layout corpus (data/<category>/<name>.csv, labels/) the train flow also scores the
    # anomaly candidate on: its NAB figures (nab_standard, ..._production) are logged with the
    # registered version. None: not benchmarked (the gate never depends on it).
    nab_data: Path | None = None
    # How the train flow's candidate incident pipeline builds incidents (models.incidents):
    # "stream" (the default) replays telemetry through the streaming engine (one incident per
    # problem within a system of the call graph, ranked causes, page budget), with the failure
    # predictor's warnings on services it does not cover; "rollup" rolls the detector's per-series
    # scores up per service. The mode and its settings are registered with the pipeline and
    # gated on its pages; the detect flow pages with the champion's, not with this setting.
    incident_builder: Literal["stream", "rollup"] = "stream"
    # StreamSettings of the stream mode (models.incidents.settings; durations in samples), e.g.
    # {"error_material": 5.0} to page on failed requests alone only from 5 points of failures.
    # Typed by StreamSettings: an unknown or mistyped one fails when a flow loads the settings.
    stream_params: dict[str, Any] = Field(default_factory=dict)


class MlflowConfig(Section):
    tracking_uri: str | None = None  # default: SQLite file under home
    # A challenger must beat the champion (and the baseline) by this relative margin.
    min_improvement: float = Field(default=0.01, ge=0, lt=1)
    # Bounded waits on a remote tracking server (MLflow's HTTP client; foresight.model_registry
    # sets them for each registry call only). One request waits at most request_timeout_seconds
    # to connect and again per read, and is retried max_retries times with backoff 0,
    # 2 * backoff_factor, 4 * backoff_factor ... s (+ up to backoff_jitter). The defaults fail a
    # dead server in ~3 s (refused) to ~35 s (silent), well inside detect's 5-minute schedule;
    # MLflow's own (120 s, 7 retries, factor 2) take over 10 minutes. This client is the one
    # retry layer for MLflow: the Prefect tasks that only talk to MLflow do not retry as well.
    request_timeout_seconds: int = Field(default=10, ge=1, le=300)
    max_retries: int = Field(default=2, ge=0, le=10)  # MLflow refuses more than 10
    backoff_factor: int = Field(default=1, ge=0, le=30)
    backoff_jitter: float = Field(default=0.5, ge=0.0, le=10.0)


class ServiceCapacityConfig(Section):
    """What one service runs on. Unset type/count come from the series catalogue; scheduled
    scaling actions are planned only for services with an ``asg_name``."""

    instance_type: str | None = None
    instance_count: int | None = Field(default=None, ge=1)
    asg_name: str | None = None
    # The group's floor and ceiling for scheduled actions; None (the default): the group's own
    # live MinSize / MaxSize, which the actions then never change. A floor below the live one or a
    # ceiling above it is held at the live value unless the matching allow_* flag is set.
    min_size: int | None = Field(default=None, ge=0, le=10_000)
    max_size: int | None = Field(default=None, ge=1, le=10_000)
    allow_lower_min: bool = False
    allow_raise_max: bool = False

    @model_validator(mode="after")
    def _bounds(self) -> ServiceCapacityConfig:
        if self.max_size is not None and self.min_size is not None and self.max_size < self.min_size:
            raise ValueError(f"max_size {self.max_size} is below min_size {self.min_size}")
        if self.allow_lower_min and self.min_size is None:
            raise ValueError("allow_lower_min needs an explicit min_size to lower the floor to")
        if self.allow_raise_max and self.max_size is None:
            raise ValueError("allow_raise_max needs an explicit max_size to raise the ceiling to")
        return self


class CapacityConfig(Section):
    """Rightsizing (instance types) and predictive scaling (scheduled actions) from the forecast."""

    # Families a recommendation may pick (a service's current type is always a candidate).
    # Burstable t3 is left out: its sustained CPU is the credit baseline, not its vCPU count.
    allowed_families: list[str] = Field(default_factory=lambda: ["m5", "m6i", "c5", "c6i", "r5", "r6i"])
    services: dict[str, ServiceCapacityConfig] = Field(default_factory=dict)
    cpu_metric: str = "cpu_pct"
    memory_metric: str = "mem_pct"
    # Memory does not burst like CPU, so it is sized closer to full (about a 15 % buffer);
    # None: use forecast.target_utilisation for memory too.
    memory_target_utilisation: float | None = Field(default=85.0, gt=0, le=100)
    # Scale-outs start this long before the forecast step that needs them; shorter dips are not scaled in.
    scaling_lead: timedelta = Field(default=timedelta(minutes=20), ge=NO_TIME)
    scaling_min_hold: timedelta = Field(default=timedelta(hours=2), ge=NO_TIME)
    # Scaling guard rails (models/capacity/scaling_guards.py). The Auto Scaling groups scheduled actions may
    # be written to (with --apply; dry-run logs the same refusals); None: every configured asg_name.
    allowed_asgs: list[str] | None = None
    # Ramps, not jumps: one action moves desired capacity by at most max(scaling_max_step,
    # scaling_max_step_percent of the group's current size) instances, and all actions within any
    # 60 minutes by at most max(scaling_max_change_per_hour, ..._percent). Defaults: +-4 or 50 %
    # per action, 8 or 100 % (a doubling) per hour: a genuine forecast peak is ramped ahead of time,
    # a broken one cannot take a fleet from 2 to 200 in one go.
    scaling_max_step: int = Field(default=4, ge=1, le=10_000)
    scaling_max_step_percent: float = Field(default=50.0, ge=0, le=1_000)
    scaling_max_change_per_hour: int = Field(default=8, ge=1, le=10_000)
    scaling_max_change_per_hour_percent: float = Field(default=100.0, ge=0, le=1_000)
    # A forecast whose CPU demand goes beyond this many times the service's busiest in its
    # history (at least one busy instance) is refused with a warning incident, not acted on:
    # 3x covers real growth over a forecast horizon of days, 1e12 or a runaway trend it does not.
    scaling_max_forecast_ratio: float = Field(default=3.0, ge=1.0, le=1_000.0)


class AwsSinkConfig(Section):
    """AWS sinks (rightsizing reports to S3, scheduled actions to Auto Scaling). Off unless
    ``enabled``; dry-run (log what would change, change nothing in AWS) unless ``apply``."""

    enabled: bool = False
    region: str = Field(default="us-east-1", min_length=1)
    endpoint_url: str | None = None  # moto / LocalStack / VPC endpoint
    s3_bucket: str | None = None
    s3_prefix: str = "foresight/rightsizing"
    apply: bool = False
    use_pricing_api: bool = True  # else the bundled price table
    action_log: Path | None = None  # default: home/actions/aws-actions.jsonl


class SinkConfig(Section):
    forecast_store_url: str | None = None  # default: SQLite file under home
    # Bounded waits on a PostgreSQL forecast store: connecting (and waiting for a pooled
    # connection) gives up after this many seconds, so a dead database fails a flow at once
    # (the store's Prefect tasks are the one retry layer); a statement (a write blocked on a
    # lock, a runaway query) is cancelled after the second one, 0 for no limit.
    forecast_store_connect_timeout_seconds: int = Field(default=10, ge=2, le=300)  # libpq's minimum is 2
    forecast_store_statement_timeout_seconds: int = Field(default=300, ge=0, le=86_400)
    aws: AwsSinkConfig = Field(default_factory=AwsSinkConfig)
    outbox_path: Path | None = None  # default: home/outbox/pagerduty-events.jsonl
    report_dir: Path | None = None  # default: home/reports
    dashboards_dir: Path = Path("dashboards")
    pagerduty_routing_key: SecretStr | None = None
    grafana_url: str | None = None
    grafana_token: SecretStr | None = None
    dashboard_url: str | None = None
    runbook_url: str | None = None
    # Grafana (connectors/sinks/grafana.py): the publish flow uploads the dashboards into this folder
    # (None: the General folder) when grafana_url is set; the detect flow annotates incidents.
    grafana_folder_uid: str | None = None
    # Pushgateway (connectors/sinks/pushgateway.py): the detect flow pushes anomaly scores, failure
    # risk and open incidents here (grouping key job=foresight-detect, instance=pushgateway_instance).
    pushgateway_url: str | None = None
    pushgateway_instance: str = Field(default="foresight", min_length=1)
    # PagerDuty delivery (connectors/sinks/pagerduty.py): Events API v2 base URL, and per event at most
    # this many attempts on 429 / 5xx / network errors, never waiting longer than the cap once
    # (Retry-After included); an event that still fails stays pending for the next run.
    pagerduty_events_url: str = "https://events.pagerduty.com"
    pagerduty_max_attempts: int = Field(default=4, ge=1, le=20)
    pagerduty_max_wait_seconds: float = Field(default=30.0, gt=0, le=600)
    # PagerDuty incident history as labels (connectors/labels/pagerduty_history.py): REST API token and
    # the note tag an engineer adds to a resolved incident that was a false positive.
    pagerduty_api_url: str = "https://api.pagerduty.com"
    pagerduty_api_token: SecretStr | None = None
    pagerduty_false_positive_tag: str = "#false-positive"


class StreamConfig(Section):
    """The stream processor (``foresight stream``, docs/stream.md): Kafka topics, group, checkpoints."""

    bootstrap_servers: list[str] = Field(default_factory=lambda: ["127.0.0.1:9092"], min_length=1)
    group_id: str = Field(default="foresight-stream", min_length=1)
    metrics_topic: str = Field(default="metrics", min_length=1)
    logs_topic: str = Field(default="logs", min_length=1)
    incidents_topic: str = Field(default="incidents", min_length=1)
    dead_letter_topic: str = Field(default="foresight-dead-letter", min_length=1)
    # Client options of the kafka source besides the above (security_protocol, sasl_*, ssl_*, timeouts).
    kafka_options: dict[str, Any] = Field(default_factory=dict)
    checkpoint_url: str | None = None  # default: <lake>/_stream_checkpoints
    checkpoint_seconds: float = Field(default=10.0, gt=0, le=3600)
    checkpoint_messages: int = Field(default=10_000, ge=1)
    lake_seconds: float = Field(default=60.0, gt=0, le=3600)  # log aggregates to the lake this often
    metrics_port: int = Field(default=9464, ge=0, le=65535)  # 0: no /metrics endpoint
    max_future_seconds: float = Field(default=300.0, gt=0)  # timestamps further ahead are clock skew: rejected
    retain_minutes: int = Field(default=10, ge=1, le=1440)  # log minutes kept open for late lines
    discovery_steps: int = Field(default=3, ge=1, le=1000)  # steps that fix a key's series set
    open_steps: int = Field(default=2, ge=1, le=100)  # newer steps begun before an incomplete one is scored


DEFAULT_THRESHOLDS: dict[str, float] = {"cpu_pct": 80.0, "mem_pct": 90.0, "disk_pct": 85.0}


class Settings(BaseSettings):
    """Everything configurable about a Foresight deployment."""

    model_config = SettingsConfigDict(
        env_prefix="FORESIGHT_", env_nested_delimiter="__", extra="forbid", validate_default=True,
        allow_inf_nan=False,
    )

    config_file: Path | None = None
    home: Path = Path(".foresight")
    lake_url: str | None = None  # local path or URL (s3://bucket/prefix); default home/lake
    sources: list[SourceConfig] = Field(
        default_factory=lambda: [SourceConfig(name="simulator", kind="simulator")]
    )
    # Resource utilisation thresholds (percent) per metric: the capacity plan's "full" line.
    thresholds: dict[str, Annotated[float, Field(gt=0, le=100)]] = Field(
        default_factory=lambda: dict(DEFAULT_THRESHOLDS)
    )
    forecast: ForecastConfig = Field(default_factory=ForecastConfig)
    detect: DetectConfig = Field(default_factory=DetectConfig)
    mlflow: MlflowConfig = Field(default_factory=MlflowConfig)
    sinks: SinkConfig = Field(default_factory=SinkConfig)
    capacity: CapacityConfig = Field(default_factory=CapacityConfig)
    stream: StreamConfig = Field(default_factory=StreamConfig)
    # Share of a batch's rows that may be quarantined before the whole batch fails its contract.
    max_quarantine_ratio: float = Field(default=0.05, ge=0, le=1)

    def __repr_args__(self) -> Any:
        for name, value in super().__repr_args__():
            yield name, redact(value, name)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        init_kwargs = getattr(init_settings, "init_kwargs", {})
        yaml_source = _YamlFileSource(settings_cls, init_kwargs.get("config_file"))
        return (init_settings, env_settings, yaml_source, file_secret_settings)

    # Derived locations: everything defaults to a place under ``home``.
    @property
    def lake_location(self) -> str:
        return self.lake_url or str(self.home / "lake")

    @property
    def tracking_uri(self) -> str:
        return self.mlflow.tracking_uri or f"sqlite:///{(self.home / 'mlflow.db').resolve()}"

    @property
    def artifact_location(self) -> str:
        return (self.home / "mlartifacts").resolve().as_uri()

    @property
    def forecast_store_url(self) -> str:
        return self.sinks.forecast_store_url or f"sqlite:///{(self.home / 'forecasts.db').resolve()}"

    @property
    def outbox_path(self) -> Path:
        return self.sinks.outbox_path or self.home / "outbox" / "pagerduty-events.jsonl"

    @property
    def stream_checkpoint_url(self) -> str:
        return self.stream.checkpoint_url or f"{self.lake_location.rstrip('/')}/_stream_checkpoints"

    @property
    def report_dir(self) -> Path:
        return self.sinks.report_dir or self.home / "reports"

    @property
    def aws_action_log(self) -> Path:
        return self.sinks.aws.action_log or self.home / "actions" / "aws-actions.jsonl"

    def threshold_for(self, metric: str) -> float | None:
        return self.thresholds.get(metric)

    def redacted(self) -> dict[str, Any]:
        """A loggable view with every credential masked: ``SecretStr`` fields, passwords and
        credential query parameters inside URLs (store, MLflow, Grafana, Pushgateway, any
        URL-valued option) and secret-looking keys anywhere, source options included."""
        return redact(self.model_dump(mode="json"))


class _YamlFileSource(PydanticBaseSettingsSource):
    """Reads the optional YAML config file; sits below environment variables in precedence."""

    def __init__(self, settings_cls: type[BaseSettings], path: str | Path | None) -> None:
        super().__init__(settings_cls)
        path = config_file_path(path)
        self._data: dict[str, Any] = read_config_file(path) if path else {}

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return self._data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(self._data)


def config_file_path(config_file: str | Path | None = None) -> str | Path | None:
    """The YAML file the settings read: ``config_file``, else ``FORESIGHT_CONFIG_FILE``, else none."""
    return config_file or os.environ.get("FORESIGHT_CONFIG_FILE") or None


# A check of what the settings name beyond this schema's reach (a plug-in in a layer above core and
# its parameters): each problem as (key path, what is wrong). An entry point that knows the plug-ins
# passes its checks to load_settings, so their problems fail the load like any bad key.
SettingsProblem = tuple[Sequence[str | int], str]
SettingsCheck = Callable[["Settings"], Iterable[SettingsProblem]]


def load_settings(
    config_file: str | Path | None = None, *, checks: Sequence[SettingsCheck] = (), **overrides: Any
) -> Settings:
    """Build the settings at an entry point: file, environment and explicit overrides, then ``checks``.

    Raises :class:`~foresight.errors.ConfigError` (one line per problem, each naming the key
    and the file or ``FORESIGHT_*`` variable it came from) instead of pydantic's own report.
    """
    if config_file is not None:
        overrides["config_file"] = Path(config_file)
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        raise explain(exc, Settings, _origins(overrides)) from None
    except PydanticSettingsError as exc:  # a FORESIGHT_* value that is not valid JSON
        raise ConfigError(_env_parse_problem(str(exc)), hint="nested values in the environment are JSON") from None
    problems = [problem for check in checks for problem in check(settings)]
    if problems:
        raise explain_problems(problems, _origins(overrides))
    return settings


def _origins(overrides: dict[str, Any]) -> Origins:
    path = config_file_path(overrides.get("config_file"))
    return Origins(arguments=overrides, file_name=str(path) if path else None,
                   file_data=read_config_file(path) if path else {})


def _env_parse_problem(message: str) -> str:
    """pydantic-settings' 'error parsing value for field "x" from source ...' as one line naming the variable."""
    import re

    match = re.search(r'field "([^"]+)"', message)
    if match is None:
        return message
    field = match.group(1)
    return f"FORESIGHT_{field.upper()}: {field}: not valid JSON (a list or mapping is given as JSON)"
