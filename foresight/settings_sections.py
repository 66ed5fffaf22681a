"""The sections of :class:`foresight.settings.Settings`: one strict pydantic model per part of
a deployment (sources, forecast, detect, MLflow, capacity, sinks, stream).

Every section forbids unknown keys and every number has a range; a section's repr masks
credentials. :mod:`foresight.settings` assembles them, reads the file and the environment and
turns what is wrong into one error.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import pandas as pd
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)

from foresight.redact import redact, redact_url
from foresight.schemas import FAULT_TYPES, INCIDENT_CATEGORIES

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
    # Series per forecast task (models.forecasting.blocks): the forecast flow fans a local model out
    # over blocks of this many to twice as many series. Larger blocks pay a task's overhead over
    # more series; ``auto`` chooses its fleet default and expensive-candidate budget per block
    # (docs/production.md, *Sizing*).
    series_per_task: int = Field(default=16, ge=1, le=1_000_000)
    # Candidates of the per-series champion selection (models.forecasting.selection): fast
    # statistical ones backtested on every series, expensive ones only where they could win.
    models: list[str] = Field(default_factory=lambda: [
        "seasonal_naive", "ses", "damped_trend", "mstl", "ensemble", "prophet", "lgbm_global"])
    # Known events (past and upcoming) given to Prophet as holiday regressors.
    events: list[ForecastEvent] = Field(default_factory=list)
    # Metrics forecast for capacity planning (resource metrics plus load).
    metrics: list[str] = Field(default_factory=lambda: ["cpu_pct", "mem_pct", "disk_pct", "request_rate"])
    # Utilisation the plan sizes capacity for (percent of the resource); memory has its own,
    # capacity.memory_target_utilisation, used by the plan and rightsizing alike.
    target_utilisation: float = Field(default=70.0, gt=0, le=100)
    # The capacity gate refuses a forecaster whose backtest interval coverage is further than
    # this from the nominal level (0.80 for level 80): its p90 would not mean p90.
    coverage_tolerance: float = Field(default=0.05, gt=0, le=1)
    # Forecast-start check: a series whose first forecast step moves away from its last actual
    # by more than start_jump_k times its recent step noise (median |step| over the last
    # start_noise_window steps), with a step-1 band that misses the last actual, is flagged in
    # the plan, the report and the run summary.
    start_jump_k: float = Field(default=5.0, gt=0, le=1_000)
    start_noise_window: int = Field(default=48, ge=3, le=10_000)

    @field_validator("freq")
    @classmethod
    def _pandas_frequency(cls, value: str) -> str:
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
    # Where new experiments keep their artifacts (a folder, s3://bucket/prefix, mlflow-artifacts:/...).
    # Default: on a tracking server (http/https) the server's own artifact store, which it fills
    # and serves itself (its --artifacts-destination, e.g. S3), so runs on any host read the same
    # models without storage credentials; with a local store, a folder under home.
    artifact_location: str | None = None
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
    # Memory does not burst like CPU, so it is sized closer to full (about a 15 % buffer). The
    # one memory target: the capacity plan's memory rows and rightsizing both use it.
    memory_target_utilisation: float = Field(default=85.0, gt=0, le=100)
    # Tolerance (docs/rightsizing.md): a change is skipped when its monthly cost moves by less
    # than tolerance_percent of today's cost, or (an upsize) when today's type runs the forecast
    # peak within tolerance_percent of its target, or (an upsize) while the probability that
    # the forecast exceeds today's type stays at or under risk_budget.
    tolerance_percent: float = Field(default=5.0, ge=0, le=100)
    risk_budget: float = Field(default=0.05, ge=0, le=1)
    # Keep a service in its family and generation (c6i stays c6i) unless no type of it fits.
    prefer_same_family: bool = True
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
    dashboards_dir: Path | None = None  # default: home/dashboards
    pagerduty_routing_key: SecretStr | None = None
    grafana_url: str | None = None
    grafana_token: SecretStr | None = None
    dashboard_url: str | None = None
    runbook_url: str | None = None  # the runbook a page links when runbooks names none for it
    # Pages (models/incidents/page_text.py, connectors/sinks/pagerduty_page_links.py): a runbook per
    # fault type or category (foresight.schemas FAULT_TYPES / INCIDENT_CATEGORIES; the fault type
    # wins), and with grafana_url a deep link to this dashboard (its ``service`` variable and the
    # incident's time range) and a rendered image of this panel (Grafana's /render/d-solo/...,
    # which needs its image renderer; PagerDuty shows only https images). client_url is the link
    # behind "Foresight" on the alert (default: dashboard_url, else the Grafana dashboard).
    runbooks: dict[str, str] = Field(default_factory=dict)
    grafana_incidents_dashboard_uid: str = Field(default="foresight-incidents", min_length=1)
    grafana_incident_panel_id: int = Field(default=4, ge=1)
    pagerduty_client_url: str | None = None
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

    @field_validator("grafana_url", "dashboard_url", "runbook_url", "pagerduty_client_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not _is_http_url(value):
            raise ValueError(f"must be an http(s) URL, got {redact_url(value)!r}")
        return value

    @field_validator("runbooks")
    @classmethod
    def _known_runbooks(cls, value: dict[str, str]) -> dict[str, str]:
        known = set(FAULT_TYPES) | set(INCIDENT_CATEGORIES)
        unknown = sorted(set(value) - known)
        if unknown:
            raise ValueError(
                f"runbooks for unknown fault types or categories {unknown}; choose from {sorted(known)}"
            )
        bad = sorted(name for name, url in value.items() if not _is_http_url(url))
        if bad:
            raise ValueError(f"runbooks {bad}: each must be an http(s) URL")
        return value


def _is_http_url(value: str) -> bool:
    return value.startswith(("http://", "https://")) and len(value) > len("https://") and " " not in value


class StreamConfig(Section):
    """The stream processor (``foresight stream``, docs/stream.md): Kafka topics, group, checkpoints."""

    bootstrap_servers: list[str] = Field(default_factory=lambda: ["127.0.0.1:9092"], min_length=1)
    group_id: str = Field(default="foresight-stream", min_length=1)
    metrics_topic: str = Field(default="metrics", min_length=1)
    logs_topic: str = Field(default="logs", min_length=1)
    incidents_topic: str = Field(default="incidents", min_length=1)
    dead_letter_topic: str = Field(default="foresight-dead-letter", min_length=1)
    # The Kafka client library (connectors/sources/kafka/stream_client.py): confluent (librdkafka,
    # records decoded in C) or kafka-python (pure Python; about a fifth of the throughput on
    # one-line messages); docs/stream.md has the figures.
    client: Literal["confluent", "kafka-python"] = "confluent"
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
    # Per-minute log aggregates (error ratio, error lines, new templates, lines) fed to each key's incident
    # engine as series of its services (docs/stream.md, *Log series in the engine*); a log minute is
    # scored once the partition's logs are log_grace_seconds past its end.
    log_features: bool = False
    log_grace_seconds: float = Field(default=5.0, ge=0, le=600)
