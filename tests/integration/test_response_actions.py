"""Automated response against moto's Auto Scaling and a local webhook receiver, dry-run and applied,
with its guard rails refusing what they must; each step audited in the lake and annotated in
(fake, request-validating) PagerDuty and Grafana. The clock is injected: no test sleeps."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from foresight.lake import Lake
from foresight.settings import Settings
from response.from_settings import respond
from support.fake_grafana import FakeGrafana
from support.fake_pagerduty import FakePagerDuty, running_fake_pagerduty
from support.moto import moto_server, reset_moto, use_test_credentials

pytestmark = pytest.mark.integration

REGION = "us-east-1"
GROUP = "cart-asg"
T0 = pd.Timestamp("2026-12-07 12:00", tz="UTC")
KEY = "R" * 32


class WebhookReceiver:
    """A tiny webhook endpoint on loopback: records each POST; answers ``status`` (200 by default)."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.status = 200
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.received.append({"path": self.path, "headers": dict(self.headers.items()),
                                          "body": json.loads(raw)})
                self.send_response(receiver.status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def moto_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with moto_server(tmp_path_factory.mktemp("moto")) as url:
        yield url


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[WebhookReceiver, FakeGrafana, FakePagerDuty]]:
    receiver = WebhookReceiver()
    with FakeGrafana(token="g-token") as grafana, running_fake_pagerduty() as pagerduty:
        yield receiver, grafana, pagerduty
    receiver.close()


@pytest.fixture
def env(moto_url: str, servers: tuple[WebhookReceiver, FakeGrafana, FakePagerDuty],
        monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """A fresh moto with group cart-asg (2..6, desired 2) and the receivers emptied."""
    import boto3  # lazy: boto3 only for the AWS tests

    use_test_credentials(monkeypatch)
    reset_moto(moto_url)
    receiver, grafana, pagerduty = servers
    receiver.received.clear()
    receiver.status = 200
    grafana.annotations.clear()
    pagerduty.change_events.clear()
    asg = boto3.client("autoscaling", endpoint_url=moto_url, region_name=REGION)
    ec2 = boto3.client("ec2", endpoint_url=moto_url, region_name=REGION)
    ec2.create_launch_template(LaunchTemplateName="cart",
                               LaunchTemplateData={"ImageId": "ami-12c6146b", "InstanceType": "m6i.large"})
    asg.create_auto_scaling_group(AutoScalingGroupName=GROUP, MinSize=2, MaxSize=6, DesiredCapacity=2,
                                  LaunchTemplate={"LaunchTemplateName": "cart", "Version": "$Latest"},
                                  AvailabilityZones=[f"{REGION}a"])
    return {"asg": asg, "receiver": receiver, "grafana": grafana, "pagerduty": pagerduty, "moto": moto_url}


def _settings(tmp_path: Path, env: dict[str, Any], *, apply: bool, **response: Any) -> Settings:
    rules = response.pop("rules", [
        {"name": "saturation-scale", "fault_types": ["saturation", "cpu_consumed"], "action": "scale_out",
         "target": "{service}-asg", "instances": 3, "verify_minutes": 20},
        {"name": "bad-deploy-rollback", "fault_types": ["bad_deploy"], "action": "rollback", "webhook": "deploys"},
    ])
    return Settings(
        home=tmp_path, lake_url=str(tmp_path / "lake"),
        sinks={"aws": {"region": REGION, "endpoint_url": env["moto"]},
               "grafana_url": env["grafana"].url, "grafana_token": "g-token",
               "pagerduty_routing_key": KEY, "pagerduty_events_url": env["pagerduty"].url},
        response={"enabled": True, "apply": apply, "rules": rules,
                  "webhooks": {"deploys": {"url": f"{env['receiver'].url}/rollback", "token": "hook-token"}},
                  "allowed_targets": ["cart-*", "cart"], "max_instances_per_action": 2, "max_percent_per_action": 100.0,
                  "max_instances_per_hour": 3, "max_actions_per_hour": 2, "cooldown_minutes": 10,
                  **response},
    )


def _incident(incident_id: str = "inc-cart-1", fault: str = "saturation", service: str = "cart",
              end: pd.Timestamp | None = None) -> dict[str, Any]:
    return {"incident_id": incident_id, "service": service, "category": "saturation", "severity": "error",
            "start": T0 - pd.Timedelta(minutes=15), "end": end if end is not None else pd.NaT,
            "resource_id": "i-0abc", "evidence": json.dumps({"fault_type": fault, "fault_type_confidence": 0.8})}


def _at(minutes: float):  # type: ignore[no-untyped-def]
    def clock() -> datetime:
        return (T0 + pd.Timedelta(minutes=minutes)).to_pydatetime()
    return clock


def _desired(env: dict[str, Any]) -> int:
    group = env["asg"].describe_auto_scaling_groups(AutoScalingGroupNames=[GROUP])["AutoScalingGroups"][0]
    return int(group["DesiredCapacity"])


def _audit(settings: Settings) -> pd.DataFrame:
    return Lake(settings.lake_location).read("response_audit")


def test_dry_run_plans_audits_and_annotates_but_changes_nothing(env: dict[str, Any], tmp_path: Path) -> None:
    settings = _settings(tmp_path, env, apply=False)
    report = respond(settings, [_incident(), _incident("inc-cart-2", fault="bad_deploy")], clock=_at(0))
    assert report["steps"] == {"planned": 2, "dry_run": 2} and report["apply"] is False
    assert _desired(env) == 2 and env["receiver"].received == []
    audit = _audit(settings)
    assert sorted(audit["step"]) == ["dry_run", "dry_run", "planned", "planned"] and audit["dry_run"].all()
    scale = audit[(audit["step"] == "dry_run") & (audit["action"] == "scale_out")].iloc[0]
    assert (scale["target"], scale["desired_from"], scale["desired_to"]) == (GROUP, 2, 4)
    # Every step annotated: 4 change events in PagerDuty, 4 annotations in Grafana tagged with the incident.
    assert len(env["pagerduty"].change_events) == 4
    summaries = [e["payload"]["summary"] for e in env["pagerduty"].change_events]
    assert any("[dry-run] dry_run: scale_out cart-asg" in s for s in summaries)
    tags = [a["tags"] for a in env["grafana"].annotations.values()]
    assert len(tags) == 4 and all("incident:inc-cart-1" in t or "incident:inc-cart-2" in t for t in tags)


def test_apply_scales_out_capped_and_rolls_back_through_the_webhook(env: dict[str, Any], tmp_path: Path) -> None:
    settings = _settings(tmp_path, env, apply=True)
    report = respond(settings, [_incident(), _incident("inc-cart-2", fault="bad_deploy")], clock=_at(0))
    assert report["steps"] == {"planned": 2, "applied": 2}
    assert _desired(env) == 4  # +3 asked, capped at max_instances_per_action 2
    applied = _audit(settings).query("step == 'applied'").set_index("action")
    assert "capped from +3 by max_instances_per_action" in applied.loc["scale_out", "detail"]
    assert applied.loc["scale_out", "deadline"] == T0 + pd.Timedelta(minutes=20)  # the rule's verify_minutes
    [hook] = env["receiver"].received
    assert hook["path"] == "/rollback" and hook["headers"]["Authorization"] == "Bearer hook-token"
    assert hook["body"]["action"] == "rollback" and hook["body"]["incident_id"] == "inc-cart-2"
    assert hook["headers"]["Idempotency-Key"] == applied.loc["rollback", "decision_id"]


def test_a_replayed_event_acts_once(env: dict[str, Any], tmp_path: Path) -> None:
    settings = _settings(tmp_path, env, apply=True)
    respond(settings, [_incident(), _incident("inc-cart-2", fault="bad_deploy")], clock=_at(0))
    again = respond(settings, [_incident(), _incident("inc-cart-2", fault="bad_deploy")], clock=_at(1))
    assert again["steps"] == {} and _desired(env) == 4 and len(env["receiver"].received) == 1
    assert len(_audit(settings)) == 4 and len(env["pagerduty"].change_events) == 4


def test_the_allowlist_refuses_an_unlisted_group(env: dict[str, Any], tmp_path: Path) -> None:
    settings = _settings(tmp_path, env, apply=True, allowed_targets=["billing-*"])
    report = respond(settings, [_incident()], clock=_at(0))
    assert report["refused"] == ["cart-asg: allowlist"] and _desired(env) == 2
    refused = _audit(settings).query("step == 'refused'").iloc[0]
    assert refused["check"] == "allowlist" and "not in response.allowed_targets" in refused["detail"]


def test_cooldown_then_hourly_limit_refuse_later_actions_on_one_group(env: dict[str, Any], tmp_path: Path) -> None:
    settings = _settings(tmp_path, env, apply=True)
    respond(settings, [_incident("a")], clock=_at(0))  # 2 -> 4
    assert respond(settings, [_incident("b")], clock=_at(5))["refused"] == ["cart-asg: cooldown"]
    third = respond(settings, [_incident("c")], clock=_at(12))  # past the cool-down: 1 left of 3 an hour
    assert third["steps"].get("applied") == 1 and _desired(env) == 5
    assert respond(settings, [_incident("d")], clock=_at(30))["refused"] == ["cart-asg: hourly_actions"]
    assert _desired(env) == 5
    # An hour after the first, the group may grow again, but never above its MaxSize 6.
    respond(settings, [_incident("e")], clock=_at(75))
    assert _desired(env) == 6
    assert respond(settings, [_incident("f")], clock=_at(140))["refused"] == ["cart-asg: max_size"]
    checks = _audit(settings).query("step == 'refused'")["check"].tolist()
    assert sorted(checks) == ["cooldown", "hourly_actions", "max_size"]


def test_unresolved_after_the_window_escalates_once_and_resolved_in_time_verifies(
        env: dict[str, Any], tmp_path: Path) -> None:
    settings = _settings(tmp_path, env, apply=True)
    respond(settings, [_incident(), _incident("inc-cart-2", fault="bad_deploy")], clock=_at(0))
    # 15 min later: the rollback's incident resolved at +10 (verified); the scale-out's is open, within 20 min.
    mid = respond(settings, [_incident(), _incident("inc-cart-2", fault="bad_deploy", end=T0 + pd.Timedelta(minutes=10))],
                  clock=_at(15))
    assert mid["steps"] == {"verified": 1}
    late = respond(settings, [_incident()], clock=_at(21))
    assert late["steps"] == {"escalated": 1} and late["escalations"] == 1
    assert late["escalation_delivery"]["delivered"] == 1
    [page] = [r.body for r in env["pagerduty"].requests_to("/v2/enqueue")
              if r.body.get("dedup_key") == "foresight/response/inc-cart-1/saturation-scale"]
    assert page["payload"]["severity"] == "critical" and "did not resolve" in page["payload"]["summary"]
    assert respond(settings, [_incident()], clock=_at(40))["steps"] == {}  # escalated once
    steps = _audit(settings).groupby("incident_id")["step"].apply(sorted).to_dict()
    assert steps == {"inc-cart-1": ["applied", "escalated", "planned"], "inc-cart-2": ["applied", "planned", "verified"]}


def test_a_failing_webhook_is_audited_as_failed_and_not_retried(env: dict[str, Any], tmp_path: Path) -> None:
    env["receiver"].status = 503
    settings = _settings(tmp_path, env, apply=True)
    report = respond(settings, [_incident("x", fault="bad_deploy")], clock=_at(0))
    assert report["steps"] == {"planned": 1, "failed": 1}
    assert "HTTP 503" in _audit(settings).query("step == 'failed'").iloc[0]["detail"]
    assert respond(settings, [_incident("x", fault="bad_deploy")], clock=_at(30))["steps"] == {}
    assert len(env["receiver"].received) == 1
