"""AWS connector logic that moto cannot exercise, with botocore's Stubber: Pricing API prices
(moto has no Pricing API), the fallback when it fails, and per-action failure isolation on
Auto Scaling (moto accepts actions for groups that do not exist)."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pandas as pd
import pytest
from botocore.stub import Stubber

from connectors.sinks.aws.action_log import ActionLog, read_action_log
from connectors.sinks.aws.autoscaling import sync_scheduled_actions
from connectors.sinks.aws.instances import (
    BUNDLED_PRICE_SOURCE,
    PRICING_API_SOURCE,
    PricingUnavailableError,
    bundled_table,
    load_instance_catalogue,
    on_demand_price,
    pricing_filters,
)
from connectors.sinks.aws.reports import render_report, report_keys
from models.capacity.scaling import action_name

START = pd.Timestamp("2030-01-01T12:00Z")


def _product(usd: str, operation: str = "RunInstances", unit: str = "Hrs") -> str:
    return json.dumps(
        {
            "product": {"attributes": {"instanceType": "m6i.large", "operation": operation}},
            "terms": {
                "OnDemand": {
                    "SKU.TERM": {
                        "priceDimensions": {"SKU.TERM.DIM": {"unit": unit, "pricePerUnit": {"USD": usd}}}
                    }
                }
            },
        }
    )


def _client(service: str):  # type: ignore[no-untyped-def]
    return boto3.client(service, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")


def test_on_demand_price_takes_the_plain_hourly_run_instances_rate() -> None:
    prices = [
        _product("0.0960000000"),
        _product("0.0000000000"),
        _product("0.5", operation="RunInstances:0002"),
        _product("12.0", unit="Quantity"),
    ]
    assert on_demand_price(prices) == pytest.approx(0.096)
    with pytest.raises(PricingUnavailableError):
        on_demand_price([_product("0.0")])


def test_catalogue_prices_come_from_the_pricing_api_when_it_answers() -> None:
    pricing, table = _client("pricing"), bundled_table()
    types = sorted(table.loc[table["family"] == "c6i", "instance_type"])
    with Stubber(pricing) as stub:
        for i, instance_type in enumerate(types):
            stub.add_response(
                "get_products",
                {"PriceList": [_product(f"{1 + i}.5")], "FormatVersion": "aws_v1"},
                {
                    "ServiceCode": "AmazonEC2",
                    "Filters": pricing_filters(instance_type, "us-east-1"),
                    "FormatVersion": "aws_v1",
                },
            )
        catalogue = load_instance_catalogue(["c6i"], pricing=pricing)
        stub.assert_no_pending_responses()
    assert catalogue.price_source == PRICING_API_SOURCE
    assert catalogue.table.set_index("instance_type")["usd_per_hour"].to_dict() == {
        t: 1 + i + 0.5 for i, t in enumerate(types)
    }


def test_catalogue_falls_back_to_the_bundled_prices_when_the_pricing_api_fails() -> None:
    pricing = _client("pricing")
    with Stubber(pricing) as stub:
        stub.add_client_error("get_products", "AccessDeniedException", "no pricing:GetProducts")
        catalogue = load_instance_catalogue(["c6i"], pricing=pricing)
    assert catalogue.price_source == BUNDLED_PRICE_SOURCE
    assert catalogue.table.set_index("instance_type").loc["c6i.large", "usd_per_hour"] == pytest.approx(0.085)


def test_one_failing_put_is_logged_and_the_rest_of_the_plan_goes_on(tmp_path: Path) -> None:
    autoscaling = _client("autoscaling")
    starts = [START, START + pd.Timedelta(hours=3)]
    actions = pd.DataFrame(
        {
            "service": "api",
            "asg_name": "api-asg",
            "action_name": [action_name("api", t) for t in starts],
            "start_time": pd.DatetimeIndex(starts),
            "desired_capacity": [4, 2],
            "min_size": 2,
            "max_size": 8,
        }
    )
    log = ActionLog(tmp_path / "actions.jsonl", run_id="r", dry_run=False)
    with Stubber(autoscaling) as stub:
        stub.add_response(
            "describe_scheduled_actions",
            {"ScheduledUpdateGroupActions": []},
            {"AutoScalingGroupName": "api-asg"},
        )
        stub.add_client_error(
            "put_scheduled_update_group_action", "ValidationError", "Given start time is in the past"
        )
        stub.add_response("put_scheduled_update_group_action", {})
        report = sync_scheduled_actions(autoscaling, actions, log, apply=True)
    assert report.as_dict() == {"put": 1, "unchanged": 0, "deleted": 0, "failed": 1}
    assert "in the past" in report.failures[0]
    assert [e["outcome"] for e in read_action_log(tmp_path / "actions.jsonl")] == ["failed", "applied"]


def test_report_keys_and_json_nulls() -> None:
    assert report_keys("/a/b/", "run") == ("a/b/run/rightsizing.json", "a/b/run/rightsizing.csv")
    with pytest.raises(ValueError, match="run_id"):
        report_keys("p", "x/y")
    recs = pd.DataFrame(
        {"service": ["s"], "recommended_instance_type": [None], "monthly_savings": [float("nan")]}
    )
    report = render_report(recs, pd.DataFrame({"start_time": [pd.NaT]}), prefix="p", run_id="r", metadata={})
    doc = json.loads(report.json_body)
    assert doc["recommendations"] == [
        {"service": "s", "recommended_instance_type": None, "monthly_savings": None}
    ]
    assert doc["scaling_actions"] == [{"start_time": None}]


def test_action_log_rejects_unknown_outcomes(tmp_path: Path) -> None:
    log = ActionLog(tmp_path / "a.jsonl", run_id="r", dry_run=True)
    with pytest.raises(ValueError, match="unknown action outcome"):
        log.record("s3", "PutObject", "x", "maybe")
    assert not (tmp_path / "a.jsonl").exists()


def test_an_action_already_moved_up_to_now_counts_as_unchanged() -> None:
    from connectors.sinks.aws.autoscaling import same_action

    request = {"StartTime": START.to_pydatetime(), "MinSize": 2, "MaxSize": 8, "DesiredCapacity": 4}
    existing = {
        "StartTime": (START - pd.Timedelta(minutes=30)).to_pydatetime(),
        "MinSize": 2,
        "MaxSize": 8,
        "DesiredCapacity": 4,
    }
    assert same_action(existing, request)
    assert not same_action(
        {**existing, "StartTime": (START + pd.Timedelta(minutes=1)).to_pydatetime()}, request
    )
    assert not same_action({**existing, "DesiredCapacity": 5}, request)
    assert not same_action({k: v for k, v in existing.items() if k != "StartTime"}, request)
