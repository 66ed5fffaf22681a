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
import re
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import (
    Field,
    ValidationError,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict
from pydantic_settings import SettingsError as PydanticSettingsError

from foresight.config_file import read_config_file
from foresight.errors import ConfigError
from foresight.redact import redact
from foresight.settings_errors import Origins, explain, explain_problems
from foresight.settings_response import ResponseConfig
from foresight.settings_sections import (
    CapacityConfig,
    DetectConfig,
    ForecastConfig,
    MlflowConfig,
    SinkConfig,
    SourceConfig,
    StreamConfig,
)

# Experiments' artifacts on a tracking server: under its --artifacts-destination, uploaded and
# downloaded through the server (MLflow's proxied artifact access).
SERVER_ARTIFACTS = "mlflow-artifacts:/foresight"
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
    response: ResponseConfig = Field(default_factory=ResponseConfig)  # automated response: docs/response.md
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
        if self.mlflow.artifact_location:
            return self.mlflow.artifact_location
        if urlsplit(self.tracking_uri).scheme in {"http", "https"}:
            # the tracking server's proxied store: a folder on this host would be one other
            # hosts' runs cannot read
            return SERVER_ARTIFACTS
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
    def dashboards_dir(self) -> Path:
        return self.sinks.dashboards_dir or self.home / "dashboards"

    @property
    def aws_action_log(self) -> Path:
        return self.sinks.aws.action_log or self.home / "actions" / "aws-actions.jsonl"

    def threshold_for(self, metric: str) -> float | None:
        return self.thresholds.get(metric)

    def utilisation_targets(self) -> dict[str, float]:
        """Target utilisation per metric where it differs from ``forecast.target_utilisation``:
        memory's, the one the capacity plan and rightsizing share."""
        return {self.capacity.memory_metric: self.capacity.memory_target_utilisation}

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
    if config_file:  # "" (an unset `{{ $FORESIGHT_CONFIG_FILE }}` in prefect.yaml) is no file, as in the env
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
    match = re.search(r'field "([^"]+)"', message)
    if match is None:
        return message
    field = match.group(1)
    return f"FORESIGHT_{field.upper()}: {field}: not valid JSON (a list or mapping is given as JSON)"
