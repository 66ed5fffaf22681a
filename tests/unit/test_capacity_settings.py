"""Settings for rightsizing, scaling and the AWS sinks, and the CLI's --apply pass-through."""

from __future__ import annotations

from typing import Any

import pytest
from typer.testing import CliRunner

from foresight import cli
from foresight.errors import ConfigError
from foresight.settings import load_settings


def test_aws_sinks_are_off_and_dry_run_by_default(tmp_path) -> None:  # type: ignore[no-untyped-def]
    settings = load_settings(home=tmp_path)
    assert not settings.sinks.aws.enabled and not settings.sinks.aws.apply
    assert settings.aws_action_log == tmp_path / "actions" / "aws-actions.jsonl"


def test_apply_and_services_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FORESIGHT_SINKS__AWS__APPLY", "true")
    monkeypatch.setenv("FORESIGHT_CAPACITY__SERVICES", '{"cart": {"asg_name": "cart-asg", "max_size": 6}}')
    settings = load_settings()
    assert settings.sinks.aws.apply
    cart = settings.capacity.services["cart"]
    assert cart.max_size == 6 and cart.min_size is None  # None: the group's own live floor


def test_scaling_guard_rails_default_to_the_groups_own_bounds_and_ramps(tmp_path) -> None:  # type: ignore[no-untyped-def]
    settings = load_settings(home=tmp_path, capacity={"services": {"cart": {"asg_name": "cart-asg"}}})
    cart, cap = settings.capacity.services["cart"], settings.capacity
    assert (cart.min_size, cart.max_size, cart.allow_lower_min, cart.allow_raise_max) == (None, None, False, False)
    assert cap.allowed_asgs is None
    assert (cap.scaling_max_step, cap.scaling_max_change_per_hour, cap.scaling_max_forecast_ratio) == (4, 8, 3.0)


@pytest.mark.parametrize(
    ("conf", "message"),
    [
        ({"asg_name": "cart-asg", "min_size": 4, "max_size": 2}, "below min_size"),
        ({"instance_count": 0}, "capacity.services.cart.instance_count: 0 is below the minimum 1"),
        ({"asg_name": "cart-asg", "allow_lower_min": True}, "allow_lower_min needs an explicit min_size"),
        ({"asg_name": "cart-asg", "allow_raise_max": True}, "allow_raise_max needs an explicit max_size"),
        ({"asg_name": "cart-asg", "min_size": -1}, "capacity.services.cart.min_size: -1 is below the minimum 0"),
    ],
)
def test_bad_service_capacity_is_rejected(conf: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(capacity={"services": {"cart": conf}})


@pytest.mark.parametrize(
    ("key", "value"),
    [("scaling_max_step", 0), ("scaling_max_change_per_hour", 0), ("scaling_max_forecast_ratio", 0.5),
     ("scaling_max_step_percent", -1)],
)
def test_scaling_limits_out_of_range_are_rejected(key: str, value: float) -> None:
    with pytest.raises(ConfigError, match=f"capacity.{key}"):
        load_settings(capacity={key: value})


def test_cli_apply_reaches_the_forecast_flow_only(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[dict[str, Any]] = []

    def fake_flow(**kwargs: Any) -> dict[str, Any]:
        calls.append(kwargs)
        return {"ok": True}

    monkeypatch.setattr(cli, "_flow", lambda name: fake_flow)
    runner = CliRunner()
    assert runner.invoke(cli.app, ["run", "forecast", "--apply"]).exit_code == 0
    assert runner.invoke(cli.app, ["run", "forecast"]).exit_code == 0
    assert calls == [{"config_file": None, "apply": True}, {"config_file": None}]
    refused = runner.invoke(cli.app, ["run", "train", "--apply"])
    assert refused.exit_code != 0 and len(calls) == 2
