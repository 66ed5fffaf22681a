"""The forecast-and-plan flow's rightsizing and scaling step wires settings, fleet, catalogue,
history and the groups' live state together; refusals reach the action log and the outbox."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from connectors.sinks.aws.action_log import read_action_log
from connectors.sinks.aws.instances import load_instance_catalogue
from connectors.sinks.aws.sinks import publish_capacity_actions
from connectors.sinks.pagerduty_outbox import Outbox
from flows.forecast_plan import plan_capacity_actions, raise_scaling_warnings
from foresight.scaling_schema import BOUNDS, LiveGroup
from foresight.settings import Settings, load_settings
from models.capacity.rightsizing import fleet_from_catalogue
from models.capacity.scaling_guards import NON_FINITE

NOW = pd.Timestamp("2026-03-01T00:00Z")


def _inputs() -> tuple[pd.DataFrame, pd.DataFrame]:
    ds = pd.date_range(NOW, periods=48, freq="h")
    daily = 45 + 35 * np.sin(2 * np.pi * np.arange(48) / 24)  # peaks at 80 % of an m6i.xlarge
    rows, frames = [], []
    for service, instance_type in (("api", "m6i.xlarge"), ("cache", "r6i.large")):
        for k in range(2):
            for metric, y in (("cpu_pct", daily), ("mem_pct", np.full(48, 40.0))):
                uid = f"{service}/i-{k}/{metric}"
                rows.append((uid, service, f"i-{k}", metric, instance_type))
                frames.append(pd.DataFrame({"unique_id": uid, "ds": ds, "yhat": y, "yhat_upper": y + 5}))
    catalogue = pd.DataFrame(rows, columns=["unique_id", "service", "resource_id", "metric", "instance_type"])
    return pd.concat(frames, ignore_index=True), catalogue


def _history(forecasts: pd.DataFrame) -> pd.DataFrame:
    """Last week's values: the forecast's point values a week earlier."""
    return forecasts.assign(ds=forecasts["ds"] - pd.Timedelta(days=7), y=forecasts["yhat"])[["unique_id", "ds", "y"]]


def _plan(settings: Settings, forecasts: pd.DataFrame, catalogue: pd.DataFrame,
          live: dict[str, Any] | None = None) -> tuple[pd.DataFrame, pd.DataFrame, list[str], pd.DataFrame]:
    fleet = fleet_from_catalogue(catalogue)
    instances = load_instance_catalogue(settings.capacity.allowed_families, extra_types=fleet["instance_type"])
    return plan_capacity_actions.fn(settings, forecasts, catalogue, fleet, instances, NOW,
                                    _history(_inputs()[0]), live)


def test_recommendations_for_every_service_and_actions_for_configured_groups(tmp_path) -> None:  # type: ignore[no-untyped-def]
    settings = load_settings(  # no risk budget: the 80 % peak on today's type is worth an upsize
        home=tmp_path, capacity={"services": {"api": {"asg_name": "api-asg", "min_size": 2, "max_size": 6}},
                                 "risk_budget": 0.0}
    )
    forecasts, catalogue = _inputs()
    fleet = fleet_from_catalogue(catalogue)
    instances = load_instance_catalogue(
        settings.capacity.allowed_families, extra_types=fleet["instance_type"]
    )
    recs, actions, groups, refusals = plan_capacity_actions.fn(settings, forecasts, catalogue, fleet, instances,
                                                               NOW, _history(forecasts))
    assert sorted(recs["service"]) == ["api", "cache"] and groups == ["api-asg"] and refusals.empty
    api = recs.set_index("service").loc["api"]
    assert api["action"] == "upsize" and api["price_source"] == instances.price_source
    assert set(actions["service"]) == {"api"} and actions["desired_capacity"].max() == 3
    assert actions["desired_capacity"].min() == 2 and (actions["start_time"] >= NOW).all()


def test_the_risk_budget_and_family_preference_reach_rightsizing(tmp_path) -> None:  # type: ignore[no-untyped-def]
    forecasts, catalogue = _inputs()
    held = _plan(load_settings(home=tmp_path), forecasts, catalogue)[0].set_index("service").loc["api"]
    # P(exceed m6i.xlarge) is ~0: within the default 5 % risk budget, so the upsize is held.
    assert held["action"] == "hold" and held["recommended_instance_type"] == "m6i.xlarge"
    assert held["sized_instance_type"] == "m6i.2xlarge" and "risk budget 5.0 %" in held["reason"]
    assert held["monthly_cost_change"] == 0.0
    anywhere = load_settings(home=tmp_path, capacity={"risk_budget": 0.0, "prefer_same_family": False})
    moved = _plan(anywhere, forecasts, catalogue)[0].set_index("service").loc["api"]
    assert moved["action"] == "upsize" and moved["monthly_cost_change"] > 0


def test_live_bounds_and_permissions_reach_the_planner(tmp_path) -> None:  # type: ignore[no-untyped-def]
    settings = load_settings(home=tmp_path, capacity={"services": {"api": {"asg_name": "api-asg", "min_size": 1}}})
    live = {"api-asg": LiveGroup(min_size=3, max_size=5, desired_capacity=3)}
    _, actions, _, refusals = _plan(settings, *_inputs(), live=live)
    assert refusals.empty and (actions["min_size"] == 3).all() and (actions["max_size"] == 5).all()
    allowed = load_settings(home=tmp_path, capacity={"services": {"api": {
        "asg_name": "api-asg", "min_size": 1, "allow_lower_min": True}}})
    _, actions, _, _ = _plan(allowed, *_inputs(), live=live)
    assert (actions["min_size"] == 1).all()


def test_an_inf_step_refuses_the_group_logs_it_and_raises_one_warning_incident(tmp_path) -> None:  # type: ignore[no-untyped-def]
    settings = load_settings(
        home=tmp_path,
        capacity={"services": {"api": {"asg_name": "api-asg", "min_size": 2, "max_size": 6},
                               "cache": {"asg_name": "cache-asg"}}},  # no bounds, AWS off: refused too
    )
    forecasts, catalogue = _inputs()
    forecasts.loc[(forecasts["unique_id"] == "api/i-0/cpu_pct") & (forecasts["ds"] == NOW + pd.Timedelta(hours=5)),
                  "yhat_upper"] = np.inf
    recs, actions, groups, refusals = _plan(settings, forecasts, catalogue)
    assert actions.empty and groups == ["api-asg", "cache-asg"]
    assert dict(zip(refusals["asg_name"], refusals["check"], strict=True)) == {"api-asg": NON_FINITE,
                                                                              "cache-asg": BOUNDS}
    # Every refusal is in the action log, with its reason, even with the AWS sinks off.
    publish_capacity_actions(settings, recs, actions, run_id="r1", groups=groups, refusals=refusals)
    log = read_action_log(settings.aws_action_log)
    assert [(e["target"], e["outcome"]) for e in log] == [("api-asg", "refused"), ("cache-asg", "refused")]
    assert "non-finite (inf)" in log[0]["reason"] and log[0]["details"]["check"] == NON_FINITE
    # One warning incident for the forecast refusal (a config refusal is not an incident), and a
    # re-run the same day adds none.
    assert raise_scaling_warnings.fn(settings, refusals, "7", NOW) == 1
    assert raise_scaling_warnings.fn(settings, refusals, "7", NOW + pd.Timedelta(hours=1)) == 0
    [event] = Outbox(settings.outbox_path).read()
    assert event["event_action"] == "trigger" and event["payload"]["severity"] == "warning"
    assert event["dedup_key"] == "foresight/scaling-guard/api-asg/2026-03-01T00:00:00Z"
    assert "non-finite" in event["payload"]["summary"] and event["payload"]["source"] == "api-asg"
