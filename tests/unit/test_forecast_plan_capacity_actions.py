"""The forecast-and-plan flow's rightsizing step wires settings, fleet and catalogue together."""

from __future__ import annotations

import numpy as np
import pandas as pd

from connectors.aws.instances import load_instance_catalogue
from flows.forecast_plan import plan_capacity_actions
from foresight.settings import load_settings
from models.rightsizing import fleet_from_catalogue

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


def test_recommendations_for_every_service_and_actions_for_configured_groups(tmp_path) -> None:  # type: ignore[no-untyped-def]
    settings = load_settings(
        home=tmp_path, capacity={"services": {"api": {"asg_name": "api-asg", "min_size": 2, "max_size": 6}}}
    )
    forecasts, catalogue = _inputs()
    fleet = fleet_from_catalogue(catalogue)
    instances = load_instance_catalogue(
        settings.capacity.allowed_families, extra_types=fleet["instance_type"]
    )
    recs, actions, groups = plan_capacity_actions.fn(settings, forecasts, catalogue, fleet, instances, NOW)
    assert sorted(recs["service"]) == ["api", "cache"] and groups == ["api-asg"]
    api = recs.set_index("service").loc["api"]
    assert api["action"] == "upsize" and api["price_source"] == instances.price_source
    assert set(actions["service"]) == {"api"} and actions["desired_capacity"].max() == 3
    assert actions["desired_capacity"].min() == 2 and (actions["start_time"] >= NOW).all()
