"""The ``response:`` settings section: typed, strict, a bad rule is one line naming its key."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from flows.resources import plugin_problems
from foresight.errors import ConfigError
from foresight.settings import load_settings


def _load(tmp_path: Path, response: dict[str, object]):  # type: ignore[no-untyped-def]
    path = tmp_path / "foresight.yaml"
    path.write_text(yaml.safe_dump({"response": response}))
    return load_settings(path, checks=(plugin_problems,))


def test_the_defaults_are_off_and_dry_run(tmp_path: Path) -> None:
    settings = _load(tmp_path, {})
    assert not settings.response.enabled and not settings.response.apply and settings.response.allowed_targets == []


def test_a_valid_section_loads(tmp_path: Path) -> None:
    settings = _load(tmp_path, {
        "enabled": True, "allowed_targets": ["cart-*"],
        "webhooks": {"deploys": {"url": "http://127.0.0.1:9/rollback", "token": "s3cret"}},
        "commands": {"kubectl": {"argv": ["kubectl", "rollout", "restart", "deployment/{service}"]}},
        "rules": [{"name": "bad-deploy", "fault_types": ["bad_deploy"], "action": "rollback", "webhook": "deploys"},
                  {"name": "leak", "fault_types": ["memory_leak"], "action": "restart", "command": "kubectl"}],
    })
    assert [r.action for r in settings.response.rules] == ["rollback", "restart"]
    assert "s3cret" not in repr(settings.response)


@pytest.mark.parametrize(("rule", "key", "problem"), [
    ({"name": "r", "action": "restart"}, "response.rules[0]", "restart needs exactly one of webhook or command"),
    ({"name": "r", "action": "scale_out", "webhook": "ops"}, "response.rules[0]", "not a webhook"),
    ({"name": "r", "action": "reboot"}, "response.rules[0].action", "reboot"),
    ({"name": "r", "action": "ticket", "webhook": "ops", "categories": ["cpu"]}, "response.rules[0].categories",
     "unknown categories ['cpu']"),
    ({"name": "r", "action": "scale_out", "instances": 0}, "response.rules[0].instances", "0 is below the minimum 1"),
    ({"name": "r", "action": "scale_out", "colour": "red"}, "response.rules[0].colour", "unknown key"),
    ({"name": "r", "action": "ticket", "webhook": "nope"}, "response.rules[0].webhook", "no webhook 'nope'"),
    ({"name": "r", "action": "scale_out", "fault_types": ["memory_leek"]}, "response.rules[0].fault_types[0]",
     "unknown fault type 'memory_leek'; choose from: cpu_contention"),
])
def test_a_bad_rule_is_one_line_naming_its_key(tmp_path: Path, rule: dict[str, object], key: str,
                                               problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        _load(tmp_path, {"webhooks": {"ops": {"url": "http://127.0.0.1:9"}}, "rules": [rule]})
    lines = [line for line in str(caught.value).splitlines() if key in line]
    assert len(lines) == 1 and problem in lines[0] and "foresight.yaml" in lines[0], str(caught.value)


def test_rule_names_are_unique_and_webhooks_are_http(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="rule names must be unique"):
        _load(tmp_path, {"rules": [{"name": "a", "action": "scale_out"}, {"name": "a", "action": "scale_out"}]})
    with pytest.raises(ConfigError, match=r"response.webhooks.ops.url: .*http://"):
        _load(tmp_path, {"webhooks": {"ops": {"url": "ftp://x"}}})
