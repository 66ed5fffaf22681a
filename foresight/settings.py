"""Foresight's one settings object.

Built once at an entry point (CLI, flow) and passed down explicitly. Values come, in order of
precedence, from keyword arguments, ``FORESIGHT_*`` environment variables (nested fields with
``__``, e.g. ``FORESIGHT_FORECAST__HORIZON=48``), an optional YAML file (``config_file=`` or
``FORESIGHT_CONFIG_FILE``) and the embedded defaults below, which keep everything under one home
folder (``.foresight/`` or ``FORESIGHT_HOME``).
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict


class SourceConfig(BaseModel):
    """One telemetry source, found by ``kind`` in the source registry."""

    name: str
    kind: str = "simulator"
    options: dict[str, Any] = Field(default_factory=dict)
    # Newest sample older than this (relative to the run) fails the freshness contract.
    max_staleness: timedelta = timedelta(hours=36)
    # Incremental sources: each run re-reads this much before the watermark (late samples) and
    # starts this far back on its first run.
    overlap: timedelta = timedelta(minutes=10)
    initial_lookback: timedelta = timedelta(days=7)
    # More distinct series than this in one batch fails its contract: a label-cardinality
    # explosion (a request or pod id in a label) must not flood the lake. None: no limit.
    max_series: int | None = Field(default=100_000, ge=1)


class ForecastConfig(BaseModel):
    """Capacity forecasting: resampled frequency, horizon (steps of ``freq``), interval level."""

    freq: str = "1h"
    horizon: int = 168
    level: int = 80
    # Rolling-origin backtest: n_origins windows of backtest_horizon steps at the end of history.
    n_origins: int = 3
    backtest_horizon: int = 48
    models: list[str] = Field(default_factory=lambda: ["seasonal_naive", "prophet", "lgbm_global"])
    # Metrics forecast for capacity planning (resource metrics plus load).
    metrics: list[str] = Field(default_factory=lambda: ["cpu_pct", "mem_pct", "disk_pct", "request_rate"])
    # Utilisation the plan sizes capacity for (percent of the resource).
    target_utilisation: float = 70.0


class DetectConfig(BaseModel):
    """Anomaly and failure-risk detection."""

    # Failure predictor label: "an incident starts within the next ``horizon_minutes``".
    horizon_minutes: int = 60
    # How much recent data the detect flow scores on each run.
    lookback_hours: int = 72
    # Scores are per-series tail probabilities. Across a fleet of ~70 series at 5-minute steps
    # (~20k scores a day) 0.9999 means about two chance exceedances a day before roll-up.
    anomaly_threshold: float = 0.9999
    risk_threshold: float = 0.5
    # Like Prometheus' `for:`: a service must be anomalous for this many samples to open an incident.
    min_active_samples: int = 2
    # The condition must stay clear this long before an incident resolves.
    resolve_after_minutes: int = 30
    # Evaluation split: models train on this share of history and are judged on the rest.
    train_fraction: float = 0.6


class MlflowConfig(BaseModel):
    tracking_uri: str | None = None  # default: SQLite file under home
    # A challenger must beat the champion (and the baseline) by this relative margin.
    min_improvement: float = 0.01


class SinkConfig(BaseModel):
    forecast_store_url: str | None = None  # default: SQLite file under home
    outbox_path: Path | None = None  # default: home/outbox/pagerduty-events.jsonl
    report_dir: Path | None = None  # default: home/reports
    dashboards_dir: Path = Path("dashboards")
    pagerduty_routing_key: SecretStr | None = None
    grafana_url: str | None = None
    grafana_token: SecretStr | None = None
    dashboard_url: str | None = None
    runbook_url: str | None = None


DEFAULT_THRESHOLDS: dict[str, float] = {"cpu_pct": 80.0, "mem_pct": 90.0, "disk_pct": 85.0}


class Settings(BaseSettings):
    """Everything configurable about a Foresight deployment."""

    model_config = SettingsConfigDict(
        env_prefix="FORESIGHT_", env_nested_delimiter="__", extra="forbid", validate_default=True
    )

    config_file: Path | None = None
    home: Path = Path(".foresight")
    lake_url: str | None = None  # local path or URL (s3://bucket/prefix); default home/lake
    sources: list[SourceConfig] = Field(
        default_factory=lambda: [SourceConfig(name="simulator", kind="simulator")]
    )
    # Resource utilisation thresholds (percent) per metric: the capacity plan's "full" line.
    thresholds: dict[str, float] = Field(default_factory=lambda: dict(DEFAULT_THRESHOLDS))
    forecast: ForecastConfig = Field(default_factory=ForecastConfig)
    detect: DetectConfig = Field(default_factory=DetectConfig)
    mlflow: MlflowConfig = Field(default_factory=MlflowConfig)
    sinks: SinkConfig = Field(default_factory=SinkConfig)
    # Share of a batch's rows that may be quarantined before the whole batch fails its contract.
    max_quarantine_ratio: float = 0.05

    @field_validator("max_quarantine_ratio")
    @classmethod
    def _ratio_in_unit_interval(cls, value: float) -> float:
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"max_quarantine_ratio must be within [0, 1], got {value}")
        return value

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
    def report_dir(self) -> Path:
        return self.sinks.report_dir or self.home / "reports"

    def threshold_for(self, metric: str) -> float | None:
        return self.thresholds.get(metric)

    def redacted(self) -> dict[str, Any]:
        """A loggable view: secrets stay masked (``SecretStr`` dumps as ``**********``)."""
        return self.model_dump(mode="json")


class _YamlFileSource(PydanticBaseSettingsSource):
    """Reads the optional YAML config file; sits below environment variables in precedence."""

    def __init__(self, settings_cls: type[BaseSettings], path: str | Path | None) -> None:
        super().__init__(settings_cls)
        path = path or os.environ.get("FORESIGHT_CONFIG_FILE")
        self._data: dict[str, Any] = {}
        if path:
            file = Path(path)
            if not file.is_file():
                raise FileNotFoundError(f"Foresight config file not found: {file}")
            loaded = yaml.safe_load(file.read_text()) or {}
            if not isinstance(loaded, dict):
                raise ValueError(f"{file}: expected a mapping at the top level, got {type(loaded).__name__}")
            self._data = loaded

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return self._data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(self._data)


def load_settings(config_file: str | Path | None = None, **overrides: Any) -> Settings:
    """Build the settings at an entry point: file, environment and explicit overrides."""
    if config_file is not None:
        overrides["config_file"] = Path(config_file)
    return Settings(**overrides)
