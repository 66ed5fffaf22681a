"""Open the stores a flow needs from the settings (one place, so every flow agrees)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from foresight.lake import Lake
from foresight.settings import Settings, load_settings

if TYPE_CHECKING:
    from connectors.forecast_store import ForecastStore
    from connectors.pagerduty_outbox import Outbox
    from foresight.model_registry import ModelRegistry


def settings_for_run(config_file: str | None) -> Settings:
    """Settings at a flow's entry point: the optional YAML file plus ``FORESIGHT_*`` env."""
    settings = load_settings(config_file)
    settings.home.mkdir(parents=True, exist_ok=True)
    return settings


def open_lake(settings: Settings) -> Lake:
    return Lake(settings.lake_location)


def open_registry(settings: Settings) -> ModelRegistry:
    from foresight.model_registry import ModelRegistry

    return ModelRegistry(settings.tracking_uri, settings.artifact_location)


def open_forecast_store(settings: Settings) -> ForecastStore:
    from connectors.forecast_store import ForecastStore

    store = ForecastStore(settings.forecast_store_url)
    store.create_schema()
    return store


def open_outbox(settings: Settings) -> Outbox:
    from connectors.pagerduty_outbox import Outbox

    return Outbox(settings.outbox_path)
