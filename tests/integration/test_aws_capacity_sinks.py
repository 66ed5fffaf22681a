"""The AWS edges of rightsizing against a real moto_server: the EC2 instance catalogue, reports
in S3, scheduled actions on an Auto Scaling group, dry-run, idempotent re-runs, and the scaling
guard rails (live floor kept, allowlist, put-time refusals)."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from connectors.sinks.aws.action_log import read_action_log
from connectors.sinks.aws.instances import BUNDLED_PRICE_SOURCE, EC2_SPEC_SOURCE, load_instance_catalogue
from connectors.sinks.aws.sinks import publish_capacity_actions
from flows.forecast_plan import plan_capacity_actions, read_live_groups
from foresight.settings import Settings, load_settings
from models.capacity.rightsizing import fleet_from_catalogue
from models.capacity.scaling import action_name
from support.moto import moto_server, reset_moto, use_test_credentials

pytestmark = pytest.mark.integration

REGION = "us-east-1"
BUCKET = "foresight-reports"
START = (pd.Timestamp.now(tz="UTC") + pd.Timedelta(days=1)).floor(
    "h"
)  # scheduled actions must be in the future


@pytest.fixture(scope="module")
def moto_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with moto_server(tmp_path_factory.mktemp("moto")) as url:
        yield url


@pytest.fixture
def aws(moto_url: str, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """boto3 clients on a freshly reset moto, with an S3 bucket and an Auto Scaling group 'api-asg'."""
    import boto3

    use_test_credentials(monkeypatch)
    reset_moto(moto_url)
    clients = {
        name: boto3.client(name, endpoint_url=moto_url, region_name=REGION)
        for name in ("s3", "autoscaling", "ec2")
    }
    clients["s3"].create_bucket(Bucket=BUCKET)
    clients["ec2"].create_launch_template(
        LaunchTemplateName="api", LaunchTemplateData={"ImageId": "ami-12c6146b", "InstanceType": "m6i.xlarge"}
    )
    clients["autoscaling"].create_auto_scaling_group(
        AutoScalingGroupName="api-asg",
        LaunchTemplate={"LaunchTemplateName": "api", "Version": "$Latest"},
        MinSize=2,
        MaxSize=8,
        DesiredCapacity=2,
        AvailabilityZones=[f"{REGION}a"],
    )
    return clients


def _settings(tmp_path: Path, moto_url: str, *, apply: bool, **kw: object) -> Settings:
    return load_settings(
        **kw,
        home=tmp_path / "home",
        sinks={
            "aws": {
                "enabled": True,
                "region": REGION,
                "endpoint_url": moto_url,
                "s3_bucket": BUCKET,
                "s3_prefix": "reports/rightsizing",
                "apply": apply,
            }
        },
    )


def _recommendations() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "service": ["api", "cart"],
            "instance_count": [2, 3],
            "current_instance_type": ["m6i.xlarge", "r6i.large"],
            "recommended_instance_type": ["c6i.2xlarge", "r6i.large"],
            "current_monthly_cost": [280.32, 275.94],
            "recommended_monthly_cost": [496.4, 275.94],
            "monthly_savings": [-216.08, 0.0],
            "demand_vcpu": [2.92, 0.8],
            "demand_memory_gib": [7.39, 9.0],
            "peak_upper_utilisation": [46.2, 56.3],
            "exceed_probability": [0.0, 0.002],
            "current_exceed_probability": [0.03, 0.002],
            "action": ["upsize", "keep"],
            "reason": ["cpu", "memory"],
            "price_source": BUNDLED_PRICE_SOURCE,
        }
    )


def _actions(hours_and_capacity: list[tuple[int, int]]) -> pd.DataFrame:
    starts = [START + pd.Timedelta(hours=h) for h, _ in hours_and_capacity]
    return pd.DataFrame(
        {
            "service": "api",
            "asg_name": "api-asg",
            "action_name": [action_name("api", t) for t in starts],
            "start_time": pd.DatetimeIndex(starts),
            "desired_capacity": [c for _, c in hours_and_capacity],
            "min_size": 2,
            "max_size": 8,
        }
    )


def _scheduled(autoscaling, group: str = "api-asg") -> dict[str, tuple]:  # type: ignore[no-untyped-def]
    """The group's scheduled actions: name -> (start, desired, min, max); a recurring one has no start."""
    found = autoscaling.describe_scheduled_actions(AutoScalingGroupName=group)[
        "ScheduledUpdateGroupActions"
    ]
    return {
        a["ScheduledActionName"]: (
            pd.Timestamp(a["StartTime"]).tz_convert("UTC") if "StartTime" in a else None,
            a.get("DesiredCapacity"),
            a.get("MinSize"),
            a.get("MaxSize"),
        )
        for a in found
    }


def test_catalogue_specs_come_from_describe_instance_types(aws, moto_url: str) -> None:  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    catalogue = load_instance_catalogue(
        ["m6i", "c6i", "r6i"], region=REGION, use_aws=True, endpoint_url=moto_url
    )
    elapsed = time.perf_counter() - started
    assert catalogue.spec_source == EC2_SPEC_SOURCE
    table = catalogue.table.set_index("instance_type")
    assert set(table["family"]) == {"m6i", "c6i", "r6i"}
    assert len(table) > 15  # every size EC2 knows, not only the bundled ones (e.g. metal, 12xlarge)
    assert tuple(table.loc["m6i.xlarge", ["vcpu", "memory_gib"]]) == (4.0, 16.0)
    assert tuple(table.loc["r6i.large", ["vcpu", "memory_gib"]]) == (2.0, 16.0)
    # moto has no Pricing API: the bundled table prices the types it covers, and says so.
    assert catalogue.price_source == BUNDLED_PRICE_SOURCE
    assert table.loc["c6i.xlarge", "usd_per_hour"] == pytest.approx(0.17)
    assert table["usd_per_hour"].isna().any()  # types outside the table stay unpriced, never guessed
    assert elapsed < 20


def test_apply_puts_the_report_pair_in_s3(aws, moto_url: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    settings = _settings(tmp_path, moto_url, apply=True)
    recs, actions = _recommendations(), _actions([(0, 3), (5, 2)])
    result = publish_capacity_actions(
        settings, recs, actions, run_id="run-1", groups=["api-asg"], metadata={"model": "m"}
    )
    assert result.s3_objects == 2
    keys = sorted(o["Key"] for o in aws["s3"].list_objects_v2(Bucket=BUCKET)["Contents"])
    assert keys == ["reports/rightsizing/run-1/rightsizing.csv", "reports/rightsizing/run-1/rightsizing.json"]
    doc = json.loads(aws["s3"].get_object(Bucket=BUCKET, Key=keys[1])["Body"].read())
    assert doc["run_id"] == "run-1" and doc["model"] == "m" and doc["apply"] is True
    assert [r["service"] for r in doc["recommendations"]] == ["api", "cart"]
    assert doc["recommendations"][0]["monthly_savings"] == -216.08
    assert [a["desired_capacity"] for a in doc["scaling_actions"]] == [3, 2]
    assert pd.Timestamp(doc["scaling_actions"][0]["start_time"]) == START
    csv = pd.read_csv(io.BytesIO(aws["s3"].get_object(Bucket=BUCKET, Key=keys[0])["Body"].read()))
    pd.testing.assert_frame_equal(csv, recs, check_dtype=False)
    assert (tmp_path / "home" / "reports" / "rightsizing" / "run-1" / "rightsizing.json").is_file()


def test_apply_schedules_actions_and_a_rerun_changes_nothing(aws, moto_url: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    settings = _settings(tmp_path, moto_url, apply=True)
    aws["autoscaling"].put_scheduled_update_group_action(  # someone else's action: never touched
        AutoScalingGroupName="api-asg",
        ScheduledActionName="nightly-batch",
        Recurrence="0 2 * * *",
        DesiredCapacity=4,
    )
    actions = _actions([(0, 3), (5, 2), (24, 4)])
    first = publish_capacity_actions(settings, _recommendations(), actions, run_id="r1", groups=["api-asg"])
    assert first.scaling == {"put": 3, "unchanged": 0, "deleted": 0, "failed": 0}
    scheduled = _scheduled(aws["autoscaling"])
    for row in actions.itertuples():  # the planned bounds are the group's own: left out, never changed
        assert scheduled[row.action_name] == (row.start_time, row.desired_capacity, None, None)
    second = publish_capacity_actions(settings, _recommendations(), actions, run_id="r2", groups=["api-asg"])
    assert second.scaling == {"put": 0, "unchanged": 3, "deleted": 0, "failed": 0}
    assert _scheduled(aws["autoscaling"]) == scheduled  # same names, same actions: idempotent
    # A new plan: one action moves, one goes away; the stale Foresight action is deleted.
    third = publish_capacity_actions(
        settings, _recommendations(), _actions([(0, 3), (6, 2)]), run_id="r3", groups=["api-asg"]
    )
    assert third.scaling == {"put": 1, "unchanged": 1, "deleted": 2, "failed": 0}
    names = set(_scheduled(aws["autoscaling"]))
    assert names == {
        action_name("api", START),
        action_name("api", START + pd.Timedelta(hours=6)),
        "nightly-batch",
    }
    log = read_action_log(settings.aws_action_log)
    assert {e["outcome"] for e in log} == {"applied", "unchanged"} and not any(e["dry_run"] for e in log)


def test_dry_run_changes_nothing_in_aws_and_logs_every_action(aws, moto_url: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    settings = _settings(tmp_path, moto_url, apply=False)
    result = publish_capacity_actions(
        settings, _recommendations(), _actions([(0, 3), (5, 2)]), run_id="dry", groups=["api-asg"]
    )
    assert result.s3_objects == 0 and result.scaling["put"] == 2  # would put
    assert aws["s3"].list_objects_v2(Bucket=BUCKET).get("KeyCount") == 0
    assert not any(name.startswith("foresight-") for name in _scheduled(aws["autoscaling"]))
    assert _scheduled(aws["autoscaling"]) == {}
    log = read_action_log(settings.aws_action_log)
    assert [(e["sink"], e["operation"], e["outcome"]) for e in log] == [
        ("s3", "PutObject", "dry-run"),
        ("s3", "PutObject", "dry-run"),
        ("autoscaling", "PutScheduledUpdateGroupAction", "dry-run"),
        ("autoscaling", "PutScheduledUpdateGroupAction", "dry-run"),
    ]
    assert all(e["dry_run"] and e["run_id"] == "dry" for e in log)
    assert (tmp_path / "home" / "reports" / "rightsizing" / "dry" / "rightsizing.csv").is_file()


def test_disabled_aws_skips_the_sinks_without_calls(tmp_path: Path) -> None:
    settings = load_settings(home=tmp_path / "home")
    result = publish_capacity_actions(settings, _recommendations(), _actions([(0, 3)]), run_id="local")
    assert not result.enabled and result.skipped and result.s3_objects == 0 and result.scaling == {}
    assert not settings.aws_action_log.exists()
    assert result.local_report.is_file()


# -- scaling guard rails (issue 12, case 3) -------------------------------------------------------
def _quiet_forecast(start: pd.Timestamp, hours: int = 24) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Two m6i.xlarge 'api' instances forecast at 10 % CPU: one instance would do."""
    ds = pd.date_range(start, periods=hours, freq="h")
    ids = [f"api/i-{k}/cpu_pct" for k in range(2)]
    forecasts = pd.concat([pd.DataFrame({"unique_id": uid, "ds": ds, "yhat": 8.0, "yhat_upper": 10.0})
                           for uid in ids], ignore_index=True)
    catalogue = pd.DataFrame({"unique_id": ids, "service": "api", "resource_id": ["i-0", "i-1"],
                              "metric": "cpu_pct", "instance_type": "m6i.xlarge"})
    return forecasts, catalogue


def test_case_3a_apply_keeps_a_live_floor_of_3_when_config_leaves_min_size_unset(  # type: ignore[no-untyped-def]
    aws, moto_url: str, tmp_path: Path
) -> None:
    aws["autoscaling"].update_auto_scaling_group(AutoScalingGroupName="api-asg", MinSize=3, DesiredCapacity=3)
    # A Foresight action from before the guard rails, with the config's old default floor of 1.
    first = START - pd.Timedelta(minutes=20)  # the plan's first action: scaling_lead before the first step
    stale = action_name("api", first)
    aws["autoscaling"].put_scheduled_update_group_action(
        AutoScalingGroupName="api-asg", ScheduledActionName=stale, StartTime=first.to_pydatetime(),
        MinSize=1, MaxSize=8, DesiredCapacity=1)
    settings = _settings(tmp_path, moto_url, apply=True, capacity={"services": {"api": {"asg_name": "api-asg"}}})
    forecasts, catalogue = _quiet_forecast(START)
    fleet = fleet_from_catalogue(catalogue)
    instances = load_instance_catalogue(settings.capacity.allowed_families, extra_types=fleet["instance_type"])
    live = read_live_groups.fn(settings)
    history = forecasts.rename(columns={"yhat_upper": "y"})[["unique_id", "ds", "y"]]
    recs, actions, groups, refusals = plan_capacity_actions.fn(
        settings, forecasts, catalogue, fleet, instances, START - pd.Timedelta(hours=1), history, live)
    assert refusals.empty and (actions["min_size"] == 3).all()
    result = publish_capacity_actions(settings, recs, actions, run_id="apply", groups=groups, refusals=refusals)
    assert result.scaling["failed"] == 0 and result.refused == []
    scheduled = _scheduled(aws["autoscaling"])
    assert scheduled and all(min_size in (None, 3) for _, _, min_size, _ in scheduled.values())
    assert all(desired >= 3 for _, desired, _, _ in scheduled.values())
    assert scheduled[stale][2] is None, "the old action that would drop the floor to 1 was replaced"
    group = aws["autoscaling"].describe_auto_scaling_groups(AutoScalingGroupNames=["api-asg"])["AutoScalingGroups"][0]
    assert (group["MinSize"], group["MaxSize"]) == (3, 8)


def test_groups_outside_the_allowlist_are_refused_and_logged_in_dry_run_and_apply(  # type: ignore[no-untyped-def]
    aws, moto_url: str, tmp_path: Path
) -> None:
    for apply in (False, True):
        settings = _settings(tmp_path / str(apply), moto_url, apply=apply,
                             capacity={"allowed_asgs": ["other-asg"]})
        result = publish_capacity_actions(settings, _recommendations(), _actions([(0, 3), (5, 2)]),
                                          run_id=f"allow-{apply}", groups=["api-asg"])
        assert result.scaling == {} and [r["asg_name"] for r in result.refused] == ["api-asg"]
        log = [e for e in read_action_log(settings.aws_action_log) if e["sink"] == "autoscaling"]
        assert [(e["target"], e["outcome"]) for e in log] == [("api-asg", "refused")]
        assert log[0]["reason"] == "api-asg is not in capacity.allowed_asgs" and log[0]["dry_run"] is (not apply)
    assert _scheduled(aws["autoscaling"]) == {}


def test_an_action_that_would_lower_the_live_floor_is_refused_at_put_time(  # type: ignore[no-untyped-def]
    aws, moto_url: str, tmp_path: Path
) -> None:
    settings = _settings(tmp_path, moto_url, apply=True)
    actions = _actions([(0, 3), (5, 2)]).assign(min_size=1)  # the live floor is 2
    result = publish_capacity_actions(settings, _recommendations(), actions, run_id="low", groups=["api-asg"])
    assert result.scaling["put"] == 0 and len(result.refused) == 2
    assert _scheduled(aws["autoscaling"]) == {}
    refused = [e for e in read_action_log(settings.aws_action_log) if e["outcome"] == "refused"]
    assert len(refused) == 2 and all("would lower the group's floor 2" in e["reason"] for e in refused)
