"""Forecast-and-plan flow: the champion forecaster's configuration, refitted on the freshest
history, forecasts every capacity series over the horizon; the capacity plan says how many days
each resource has before its p90 crosses the threshold. From the same forecasts, rightsizing
recommends instance types and predictive scaling schedules Auto Scaling actions ahead of peaks.
All of it lands in the forecast store; the report goes to S3 and the schedule to the groups when
the AWS sinks are enabled (dry-run unless ``apply``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pandas as pd
from prefect import flow, get_run_logger, runtime, task, unmapped
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from connectors.sinks.aws.autoscaling import describe_groups
from connectors.sinks.aws.clients import aws_client
from connectors.sinks.aws.instances import load_instance_catalogue
from connectors.sinks.aws.sinks import publish_capacity_actions
from connectors.sinks.pagerduty_outbox import dedup_key, trigger_event
from flows.resources import (
    NoTelemetryError,
    open_forecast_store,
    open_lake,
    open_outbox,
    open_registry,
    settings_for_run,
)
from flows.retries import retry_unless_permanent
from flows.self_metrics import SELF_METRICS
from foresight.errors import NotReadyError
from foresight.model_registry import REGISTERED
from foresight.settings import Settings
from models.capacity.plan import capacity_plan
from models.capacity.rightsizing import fleet_from_catalogue, rightsize
from models.capacity.rightsizing_tolerance import Tolerance
from models.capacity.scaling import ScalingGroup, plan_scaling
from models.capacity.scaling_guards import FORECAST_CHECKS, ScalingLimits
from models.evaluation.gate import capacity_series
from models.forecasting.blocks import forecast_block, frame_blocks
from models.forecasting.bounds import clip_forecast, points_outside, series_bounds, units_from_catalogue

if TYPE_CHECKING:
    from connectors.sinks.aws.instances import InstanceCatalogue
    from foresight.scaling_schema import LiveGroup

# The "model" of a scaling refusal's warning incident: one incident per group per UTC day.
SCALING_GUARD = "scaling-guard"


class NoChampionError(NotReadyError):
    """A flow needs a champion model that the registry does not have yet (run the train flow):
    never retried, since waiting will not make one appear."""


@task(retries=2, retry_delay_seconds=[2, 10], retry_condition_fn=retry_unless_permanent, cache_policy=NO_CACHE)
def load_capacity_history(settings: Settings) -> tuple[pd.DataFrame, pd.DataFrame]:
    lake = open_lake(settings)
    catalogue = lake.read("catalogue")
    telemetry = lake.read("telemetry")
    if telemetry.empty:
        raise NoTelemetryError(f"no telemetry in the lake at {settings.lake_location}; run the ingest flow first")
    return capacity_series(telemetry, catalogue, settings.forecast), catalogue


# No Prefect retries: MLflow's client retries each request (settings.mlflow), one layer.
@task(cache_policy=NO_CACHE)
def load_champion_forecaster(settings: Settings) -> tuple[Any, str]:
    registry = open_registry(settings)
    champion = registry.champion(REGISTERED["forecaster"])
    if champion is None:
        raise NoChampionError(f"{REGISTERED['forecaster']} has no champion yet; run the train flow first")
    return registry.load_model(REGISTERED["forecaster"]), champion.version


@task(cache_policy=NO_CACHE)
def forecast_chunk(model: Any, series: pd.DataFrame, settings: Settings) -> pd.DataFrame:
    """Refit the champion's configuration on this block's latest history and forecast."""
    cfg = settings.forecast
    return forecast_block(model, series, freq=cfg.freq, horizon=cfg.horizon, level=cfg.level)


@task(retries=2, retry_delay_seconds=[2, 10], retry_condition_fn=retry_unless_permanent, cache_policy=NO_CACHE)
def store_results(settings: Settings, forecasts: pd.DataFrame, plan: pd.DataFrame, model_name: str,
                  version: str, run_id: str) -> None:
    store = open_forecast_store(settings)
    store.write_forecasts(forecasts, model_name=model_name, model_version=version, run_id=run_id,
                          level=settings.forecast.level, registered_model=REGISTERED["forecaster"])
    store.write_capacity_plan(plan, model_version=version, run_id=run_id)


@task(cache_policy=NO_CACHE)
def load_instances(settings: Settings, current_types: list[str]) -> InstanceCatalogue:
    """The instance catalogue: EC2 + Pricing API when AWS is enabled, else the bundled table
    (failures fall back to it inside, so no retries here)."""
    aws = settings.sinks.aws
    return load_instance_catalogue(settings.capacity.allowed_families, extra_types=current_types,
                                   region=aws.region, use_aws=aws.enabled,
                                   use_pricing_api=aws.use_pricing_api, endpoint_url=aws.endpoint_url)


@task(cache_policy=NO_CACHE)
def read_live_groups(settings: Settings) -> dict[str, LiveGroup | str] | None:
    """Each configured group's live bounds and desired capacity (AWS enabled, dry-run or not), or
    why it could not be read; None with AWS off (the plan then uses configured bounds only)."""
    aws = settings.sinks.aws
    names = sorted({c.asg_name for c in settings.capacity.services.values() if c.asg_name})
    if not aws.enabled or not names:
        return None
    try:
        live: dict[str, LiveGroup | str] = dict(describe_groups(
            aws_client("autoscaling", region=aws.region, endpoint_url=aws.endpoint_url), names))
    except Exception as exc:  # noqa: BLE001 - every group is refused with the reason instead
        return {name: str(exc) for name in names}
    return {name: live.get(name, "group not found in AWS") for name in names}


@task(cache_policy=NO_CACHE)
def plan_capacity_actions(settings: Settings, forecasts: pd.DataFrame, catalogue: pd.DataFrame, fleet: pd.DataFrame,
                          instances: InstanceCatalogue, now: pd.Timestamp, history: pd.DataFrame,
                          live: dict[str, LiveGroup | str] | None = None,
                          ) -> tuple[pd.DataFrame, pd.DataFrame, list[str], pd.DataFrame]:
    """Rightsizing per service and scheduled actions per configured Auto Scaling group, within the
    scaling guard rails: (recommendations, actions, groups, refused groups with their reasons;
    ``publish_aws`` logs the refusals)."""
    cap = settings.capacity
    recommendations = rightsize(forecasts, catalogue, fleet, instances.table,
                                target_utilisation=settings.forecast.target_utilisation,
                                level=settings.forecast.level, allowed_families=cap.allowed_families,
                                cpu_metric=cap.cpu_metric, memory_metric=cap.memory_metric,
                                memory_target_utilisation=cap.memory_target_utilisation,
                                price_source=instances.price_source,
                                tolerance=Tolerance(cap.tolerance_percent, cap.risk_budget),
                                prefer_same_family=cap.prefer_same_family)
    groups = scaling_groups(settings, fleet, instances.table)
    limits = ScalingLimits(max_step=cap.scaling_max_step, max_step_percent=cap.scaling_max_step_percent,
                           max_per_hour=cap.scaling_max_change_per_hour,
                           max_per_hour_percent=cap.scaling_max_change_per_hour_percent,
                           max_forecast_ratio=cap.scaling_max_forecast_ratio)
    plan = plan_scaling(forecasts, catalogue, groups, target_utilisation=settings.forecast.target_utilisation,
                        history=history, live=live, limits=limits, lead=cap.scaling_lead,
                        min_hold=cap.scaling_min_hold, not_before=now, cpu_metric=cap.cpu_metric)
    return recommendations, plan.actions, [g.asg_name for g in groups], plan.refusals


@task(retries=2, retry_delay_seconds=[2, 10], retry_condition_fn=retry_unless_permanent, cache_policy=NO_CACHE)
def store_capacity_actions(settings: Settings, recommendations: pd.DataFrame, actions: pd.DataFrame,
                           services: list[str], version: str, run_id: str) -> None:
    store = open_forecast_store(settings)
    store.write_rightsizing(recommendations, model_version=version, run_id=run_id)
    store.write_scaling_actions(actions, run_id=run_id, services=services)


@task(cache_policy=NO_CACHE)
def publish_aws(settings: Settings, recommendations: pd.DataFrame, actions: pd.DataFrame, groups: list[str],
                run_id: str, metadata: dict[str, Any], refusals: pd.DataFrame | None = None) -> dict[str, Any]:
    """Local report always; S3 report and Auto Scaling schedule when AWS is enabled (the boto3
    clients retry, so the task does not); refused groups are logged and left alone."""
    result = publish_capacity_actions(settings, recommendations, actions, run_id=run_id, groups=groups,
                                      refusals=refusals, metadata=metadata, logger=get_run_logger())
    return result.summary()


@task(retries=2, retry_delay_seconds=[1, 5], retry_condition_fn=retry_unless_permanent, cache_policy=NO_CACHE)
def raise_scaling_warnings(settings: Settings, refusals: pd.DataFrame, model_version: str,
                           now: pd.Timestamp) -> int:
    """A warning incident in the PagerDuty outbox per group refused for its forecast (the detect
    flow delivers it); returns how many were new."""
    events = scaling_warning_events(settings, refusals, model_version, now)
    return open_outbox(settings).append(events).written if events else 0


def scaling_warning_events(settings: Settings, refusals: pd.DataFrame, model_version: str,
                           now: pd.Timestamp) -> list[dict[str, Any]]:
    """Trigger events (severity warning) for the refusals whose forecast failed a sanity check,
    deduplicated per group and UTC day, so an hourly run repeating the refusal pages once."""
    events = []
    for row in refusals[refusals["check"].isin(FORECAST_CHECKS)].to_dict("records"):
        incident = {"service": row["service"], "resource_id": row["asg_name"], "start": now,
                    "severity": "warning", "category": "scaling_refused", "description": row["reason"],
                    "check": row["check"],
                    "dedup_key": dedup_key(SCALING_GUARD, row["asg_name"], pd.Timestamp(now).floor("D"))}
        events.append(trigger_event(incident, model_name=SCALING_GUARD,
                                    model_version=model_version))
    return events


def scaling_groups(settings: Settings, fleet: pd.DataFrame, instances: pd.DataFrame) -> list[Any]:
    """A ``ScalingGroup`` per service configured with an ``asg_name`` whose instance type is known."""
    types = dict(zip(fleet["service"], fleet["instance_type"], strict=True))
    vcpus = dict(zip(instances["instance_type"], instances["vcpu"], strict=True))
    groups = []
    for service, conf in sorted(settings.capacity.services.items()):
        if not conf.asg_name:
            continue
        instance_type = conf.instance_type or types.get(service)
        if instance_type not in vcpus:
            get_run_logger().warning("no scheduled actions for %s: instance type %r unknown", service, instance_type)
            continue
        groups.append(ScalingGroup(service, conf.asg_name, float(vcpus[instance_type]), conf.min_size,
                                   conf.max_size, conf.allow_lower_min, conf.allow_raise_max))
    return groups


def chunk_series(series: pd.DataFrame, model: Any, block_size: int) -> list[pd.DataFrame]:
    """The frames the forecast fans out over: blocks of ``block_size`` to ``2 * block_size - 1``
    series (models.forecasting.blocks), or the whole fleet for a global model."""
    return frame_blocks(series, block_size, is_global=getattr(model, "is_global", False))


@flow(name="forecast-and-plan", log_prints=True, on_completion=SELF_METRICS, on_failure=SELF_METRICS)
def forecast_and_plan(config_file: str | None = None, apply: bool | None = None) -> dict[str, Any]:
    """Forecast every capacity series with intervals, compute the capacity plan, rightsizing and
    scheduled scaling actions. ``apply`` overrides ``sinks.aws.apply`` (None: keep the setting)."""
    settings = settings_for_run(config_file)
    if apply is not None:
        settings.sinks.aws.apply = bool(apply)
    series, catalogue = load_capacity_history(settings)
    model, version = load_champion_forecaster(settings)
    parts = forecast_chunk.map(unmapped(model), chunk_series(series, model, settings.forecast.series_per_task),
                               unmapped(settings)).result()
    forecasts, clipped = served_forecasts(parts, series, catalogue)
    fcfg = settings.forecast
    # The whole history: the plan takes each series' last value, and its recent steps for the start check.
    plan = capacity_plan(forecasts, series, settings.thresholds, catalogue, fcfg.target_utilisation,
                         settings.utilisation_targets(), start_k=fcfg.start_jump_k, start_window=fcfg.start_noise_window,
                         level=fcfg.level)
    start_warnings = [f"{row.unique_id}: {row.start_warning}" for row in plan.itertuples() if pd.notna(row.start_warning)]
    for warning in start_warnings:
        get_run_logger().warning("forecast start: %s", warning)
    run_id = str(runtime.flow_run.id or "local")
    store_results(settings, forecasts, plan, model.name, version, run_id)

    overrides = {name: conf.model_dump() for name, conf in settings.capacity.services.items()}
    fleet = fleet_from_catalogue(catalogue, overrides)
    instances = load_instances(settings, sorted(set(fleet["instance_type"])))
    now = pd.Timestamp.now(tz="UTC")
    live = read_live_groups(settings)
    recommendations, actions, groups, refusals = plan_capacity_actions(
        settings, forecasts, catalogue, fleet, instances, now, series, live)
    # A refused service keeps its stored schedule, as its group keeps its actions.
    store_capacity_actions(settings, recommendations, actions,
                           sorted(set(settings.capacity.services) - set(refusals["service"])), version, run_id)
    aws = publish_aws(settings, recommendations, actions, groups, run_id,
                      {"model": model.name, "model_version": version, "price_source": instances.price_source,
                       "spec_source": instances.spec_source,
                       "target_utilisation": settings.forecast.target_utilisation,
                       "level": settings.forecast.level}, refusals)
    warnings = raise_scaling_warnings(settings, refusals, version, now) if not refusals.empty else 0

    soonest = plan.head(10)  # the plan comes most urgent first
    create_markdown_artifact(
        key="capacity-plan",
        markdown=_plan_markdown(soonest, version, model.name, len(forecasts["unique_id"].unique())),
        description="Resources closest to their thresholds",
    )
    create_markdown_artifact(
        key="rightsizing",
        markdown=_rightsizing_markdown(recommendations, actions, instances.price_source, aws),
        description="Instance type recommendations and scheduled scaling actions",
    )
    get_run_logger().info("forecast %d series with %s v%s; plan for %d resources; %d rightsizing "
                          "recommendations, %d scheduled actions",
                          forecasts["unique_id"].nunique(), model.name, version, len(plan),
                          len(recommendations), len(actions))
    return {
        "model": model.name, "model_version": version, "series": int(forecasts["unique_id"].nunique()),
        "series_models": _series_per_model(forecasts, model.name),
        "forecast_rows": len(forecasts), "plan_rows": len(plan), "forecast_values_clipped": clipped,
        "crossing_within_horizon": int(plan["days_to_threshold"].notna().sum()),
        "plausible_crossing_within_horizon": int(plan["days_to_threshold_earliest"].notna().sum()),
        "rightsizing_rows": len(recommendations),
        "rightsizing_actions": {str(k): int(v) for k, v in recommendations["action"].value_counts().items()},
        "monthly_savings": round(float(-recommendations["monthly_cost_change"].clip(upper=0).sum()), 2) + 0.0,  # no -0.0
        "monthly_upsize_cost": round(float(recommendations["monthly_cost_change"].clip(lower=0).sum()), 2),
        "net_monthly_cost_change": round(float(recommendations["monthly_cost_change"].sum()), 2),
        "forecast_start_warnings": start_warnings,
        "price_source": instances.price_source,
        "scaling_actions": len(actions),
        "scaling_warnings_raised": warnings,
        **aws,
    }


def served_forecasts(parts: list[pd.DataFrame], series: pd.DataFrame,
                     catalogue: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """The forecasts as the plan, the store and the AWS actions get them: every chunk's frame,
    clipped to each series' feasible range (its catalogue unit, else its history), and how many
    values the clipping moved. The one place forecasts leave the forecasting layer."""
    raw = pd.concat(parts, ignore_index=True)
    bounds = series_bounds(series, units_from_catalogue(catalogue))
    return clip_forecast(raw, bounds), points_outside(raw, bounds)


def _series_per_model(forecasts: pd.DataFrame, default: str) -> dict[str, int]:
    """How many series each model made (a per-series selection names one per series)."""
    if "model_name" not in forecasts.columns:
        return {default: int(forecasts["unique_id"].nunique())}
    made = forecasts.drop_duplicates("unique_id")["model_name"].fillna(default).value_counts()
    return {str(name): int(n) for name, n in made.items()}


def _plan_markdown(soonest: pd.DataFrame, version: str, model_name: str, n_series: int) -> str:
    lines = [f"# Capacity plan\n\n{n_series} series forecast by `{model_name}` (capacity-forecaster v{version}).\n",
             "| resource | metric | current | peak p90 | threshold | days to threshold (median) | "
             "earliest (p90 band) | P(cross in horizon) | capacity needed |",
             "|---|---|---|---|---|---|---|---|---|"]
    for row in soonest.itertuples():
        days = "beyond horizon" if pd.isna(row.days_to_threshold) else f"{row.days_to_threshold:.1f}"
        earliest = "beyond horizon" if pd.isna(row.days_to_threshold_earliest) else f"{row.days_to_threshold_earliest:.1f}"
        chance = "n/a" if pd.isna(row.crossing_probability) else f"{100 * row.crossing_probability:.0f} %"
        lines.append(f"| {row.resource_id} | {row.metric} | {row.current:.1f} | {row.peak_p90:.1f} | "
                     f"{row.threshold:.0f} | {days} | {earliest} | {chance} | x{row.capacity_needed:.2f} |")
    return "\n".join(lines)


def _rightsizing_markdown(recs: pd.DataFrame, actions: pd.DataFrame, price_source: str, aws: dict[str, Any]) -> str:
    lines = [f"# Rightsizing\n\nPrices: {price_source}. AWS: "
             + ("apply" if aws.get("aws_apply") else "dry-run" if aws.get("aws_enabled") else "not configured")
             + f"; {len(actions)} scheduled actions planned.\n",
             "| service | now | recommended | action | monthly cost change (USD) | peak upper % | "
             "P(exceed) now | P(exceed) recommended |",
             "|---|---|---|---|---|---|---|---|"]
    for row in recs.itertuples():
        change = "n/a" if pd.isna(row.monthly_cost_change) else f"{row.monthly_cost_change:+,.2f}"
        peak = "n/a" if pd.isna(row.peak_upper_utilisation) else f"{row.peak_upper_utilisation:.1f}"
        risk = "n/a" if pd.isna(row.exceed_probability) else f"{row.exceed_probability:.3f}"
        now = "n/a" if pd.isna(row.current_exceed_probability) else f"{row.current_exceed_probability:.3f}"
        lines.append(f"| {row.service} | {row.instance_count} x {row.current_instance_type} | "
                     f"{row.recommended_instance_type or '-'} | {row.action} | {change} | {peak} | {now} | {risk} |")
    lines.append(f"\n**Net monthly cost change: {recs['monthly_cost_change'].sum():+,.2f} USD** "
                 "(negative saves, positive costs more).")
    refused = aws.get("scaling_refused") or []
    if refused:
        lines.append("\n**Scaling refused** (no actions written to these groups):\n")
        lines.extend(f"- `{r['asg_name']}` ({r['check']}): {r['reason']}" for r in refused)
    return "\n".join(lines)
