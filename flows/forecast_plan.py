"""Forecast-and-plan flow: the champion forecaster's configuration, refitted on the freshest
history, forecasts every capacity series over the horizon; the capacity plan says how many days
each resource has before its p90 crosses the threshold. Both land in the forecast store."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from prefect import flow, get_run_logger, runtime, task, unmapped
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from flows.resources import open_forecast_store, open_lake, open_registry, settings_for_run
from foresight.settings import Settings

# Local (per-series) models fan out over chunks of series; a global model needs them all at once.
SERIES_PER_CHUNK = 16


class NoChampionError(LookupError):
    """A flow needs a champion model that the registry does not have yet."""


@task(retries=2, retry_delay_seconds=[2, 10], cache_policy=NO_CACHE)
def load_capacity_history(settings: Settings) -> tuple[pd.DataFrame, pd.DataFrame]:
    from models.training import capacity_series

    lake = open_lake(settings)
    catalogue = lake.read("catalogue")
    telemetry = lake.read("telemetry")
    if telemetry.empty:
        raise ValueError(f"no telemetry in the lake at {settings.lake_location}; run the ingest flow first")
    return capacity_series(telemetry, catalogue, settings.forecast), catalogue


@task(retries=2, retry_delay_seconds=[2, 10], cache_policy=NO_CACHE)
def load_champion_forecaster(settings: Settings) -> tuple[Any, str]:
    from foresight.model_registry import REGISTERED

    registry = open_registry(settings)
    champion = registry.champion(REGISTERED["forecaster"])
    if champion is None:
        raise NoChampionError(f"{REGISTERED['forecaster']} has no champion yet; run the train flow first")
    return registry.load_model(REGISTERED["forecaster"]), champion.version


@task(cache_policy=NO_CACHE)
def forecast_chunk(model: Any, series: pd.DataFrame, settings: Settings) -> pd.DataFrame:
    """Refit the champion's configuration on this chunk's latest history and forecast."""
    fitted = model.clone().fit(series, freq=settings.forecast.freq)
    return fitted.predict(settings.forecast.horizon, settings.forecast.level)


@task(retries=2, retry_delay_seconds=[2, 10], cache_policy=NO_CACHE)
def store_results(settings: Settings, forecasts: pd.DataFrame, plan: pd.DataFrame, model_name: str,
                  version: str, run_id: str) -> None:
    store = open_forecast_store(settings)
    store.write_forecasts(forecasts, model_name=model_name, model_version=version, run_id=run_id,
                          level=settings.forecast.level)
    store.write_capacity_plan(plan, model_version=version, run_id=run_id)


def chunk_series(series: pd.DataFrame, model: Any) -> list[pd.DataFrame]:
    if getattr(model, "is_global", False):
        return [series]
    ids = series["unique_id"].unique()
    return [series[series["unique_id"].isin(part)] for part in np.array_split(ids, max(1, len(ids) // SERIES_PER_CHUNK))]


@flow(name="forecast-and-plan", log_prints=True)
def forecast_and_plan(config_file: str | None = None) -> dict[str, Any]:
    """Forecast every capacity series with intervals and compute the capacity plan."""
    from models.capacity import capacity_plan

    settings = settings_for_run(config_file)
    series, catalogue = load_capacity_history(settings)
    model, version = load_champion_forecaster(settings)
    parts = forecast_chunk.map(unmapped(model), chunk_series(series, model), unmapped(settings)).result()
    forecasts = pd.concat(parts, ignore_index=True)
    current = series.sort_values("ds").groupby("unique_id", as_index=False).tail(1)
    plan = capacity_plan(forecasts, current, settings.thresholds, catalogue, settings.forecast.target_utilisation)
    run_id = str(runtime.flow_run.id or "local")
    store_results(settings, forecasts, plan, model.name, version, run_id)

    soonest = plan.sort_values("days_to_threshold", na_position="last").head(10)
    create_markdown_artifact(
        key="capacity-plan",
        markdown=_plan_markdown(soonest, version, model.name, len(forecasts["unique_id"].unique())),
        description="Resources closest to their thresholds",
    )
    get_run_logger().info("forecast %d series with %s v%s; plan for %d resources",
                          forecasts["unique_id"].nunique(), model.name, version, len(plan))
    return {
        "model": model.name, "model_version": version, "series": int(forecasts["unique_id"].nunique()),
        "forecast_rows": len(forecasts), "plan_rows": len(plan),
        "crossing_within_horizon": int(plan["days_to_threshold"].notna().sum()),
    }


def _plan_markdown(soonest: pd.DataFrame, version: str, model_name: str, n_series: int) -> str:
    lines = [f"# Capacity plan\n\n{n_series} series forecast by `{model_name}` (capacity-forecaster v{version}).\n",
             "| resource | metric | current | peak p90 | threshold | days to threshold | capacity needed |",
             "|---|---|---|---|---|---|---|"]
    for row in soonest.itertuples():
        days = "beyond horizon" if pd.isna(row.days_to_threshold) else f"{row.days_to_threshold:.1f}"
        lines.append(f"| {row.resource_id} | {row.metric} | {row.current:.1f} | {row.peak_p90:.1f} | "
                     f"{row.threshold:.0f} | {days} | x{row.capacity_needed:.2f} |")
    return "\n".join(lines)
