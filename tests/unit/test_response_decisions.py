"""Automated response's pure logic: rule matching, guard rails, decision steps, verification."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from foresight.scaling_schema import LiveGroup
from foresight.settings_response import ResponseConfig
from models.response.audit import AuditRow, audit_frame, decision_id, rows_from_frame, steps_by_decision
from models.response.decisions import after_guards, applied, plan, verification
from models.response.guards import check_action
from models.response.rules import incident_view, match_rule

NOW = pd.Timestamp("2026-12-07 12:00", tz="UTC")


def _config(**kw: object) -> ResponseConfig:
    rules = kw.pop("rules", [
        {"name": "leak-restart", "fault_types": ["memory_leak"], "action": "restart", "webhook": "ops"},
        {"name": "saturation-scale", "categories": ["saturation"], "action": "scale_out",
         "target": "{service}-asg", "instances": 3},
    ])
    return ResponseConfig.model_validate({"enabled": True, "rules": rules, "webhooks": {"ops": {"url": "http://x"}},
                                          "allowed_targets": ["cart*", "api-asg"], **kw})


def _incident(**kw: object) -> dict[str, object]:
    base: dict[str, object] = {
        "incident_id": "inc-1", "service": "cart", "category": "saturation", "severity": "error",
        "start": NOW - pd.Timedelta(minutes=10), "end": pd.NaT, "resource_id": "i-1",
        "evidence": json.dumps({"fault_type": "cpu_contention"}),
    }
    return {**base, **kw}


def _acted(target: str, minutes_ago: float, change: int = 1, step: str = "applied") -> AuditRow:
    return AuditRow(decision_id=f"d{minutes_ago}", step=step, time=NOW - pd.Timedelta(minutes=minutes_ago),
                    incident_id="old", service="cart", fault_type="x", category="saturation", rule="r",
                    action="scale_out", target=target, dry_run=False, change=change)


def test_the_fault_type_comes_from_the_evidence_and_the_first_matching_rule_acts() -> None:
    cfg = _config()
    leak = incident_view(_incident(evidence=json.dumps({"fault_type": "memory_leak"})))
    assert leak.fault_type == "memory_leak" and leak.open
    assert match_rule(cfg, leak).name == "leak-restart"  # type: ignore[union-attr]
    assert match_rule(cfg, incident_view(_incident())).name == "saturation-scale"  # type: ignore[union-attr]
    assert match_rule(cfg, incident_view(_incident(category="latency"))) is None
    strict = _config(rules=[{"name": "r", "action": "ticket", "webhook": "ops", "min_severity": "critical"}])
    assert match_rule(strict, incident_view(_incident())) is None


def test_plan_targets_the_filled_in_group_and_skips_resolved_or_decided_incidents() -> None:
    cfg = _config()
    row, rule = plan(cfg, incident_view(_incident()), {}, NOW)  # type: ignore[misc]
    assert (row.step, row.target, row.dry_run, rule.name) == ("planned", "cart-asg", True, "saturation-scale")
    assert row.decision_id == decision_id("inc-1", "saturation-scale")
    assert plan(cfg, incident_view(_incident(end=NOW)), {}, NOW) is None
    assert plan(cfg, incident_view(_incident()), {row.decision_id: {}}, NOW) is None


@pytest.mark.parametrize(("target", "history", "check"), [
    ("billing-asg", [], "allowlist"),
    ("cart-asg", [_acted("cart-asg", 5)], "cooldown"),
    ("cart-asg", [_acted("cart-asg", 20), _acted("cart-asg", 40)], "hourly_actions"),
    ("cart-asg", [_acted("cart-asg", 20, change=4)], "hourly_change"),
])
def test_guard_rails_refuse_naming_the_check(target: str, history: list[AuditRow], check: str) -> None:
    cfg = _config(max_actions_per_hour=2, cooldown_minutes=15, max_instances_per_hour=4)
    verdict = check_action(cfg, action="scale_out", target=target, now=NOW, history=history, instances=1,
                           live=LiveGroup(2, 10, 4))
    assert verdict.check == check and verdict.reason


def test_history_of_other_targets_and_older_than_an_hour_does_not_count() -> None:
    cfg = _config(max_actions_per_hour=1)
    history = [_acted("cart-other", 1), _acted("cart-asg", 61)]
    assert check_action(cfg, action="restart", target="cart-asg", now=NOW, history=history).allowed


def test_a_scale_out_is_capped_per_action_by_max_size_and_by_the_hourly_budget() -> None:
    cfg = _config(max_instances_per_action=2, max_percent_per_action=50.0, max_instances_per_hour=4)
    capped = check_action(cfg, action="scale_out", target="cart-asg", now=NOW, history=[], instances=10,
                          live=LiveGroup(1, 20, 6))
    assert (capped.change, capped.desired_from, capped.desired_to) == (2, 6, 8)
    assert "capped from +10 by max_instances_per_action" in capped.reason
    small = check_action(cfg, action="scale_out", target="cart-asg", now=NOW, history=[], instances=10,
                         live=LiveGroup(1, 20, 1))  # 50 % of 1 rounds up to one instance
    assert small.change == 1
    ceiling = check_action(cfg, action="scale_out", target="cart-asg", now=NOW, history=[], instances=3,
                           live=LiveGroup(1, 7, 6))
    assert ceiling.desired_to == 7 and "MaxSize 7" in ceiling.reason
    budget = check_action(cfg, action="scale_out", target="cart-asg", now=NOW, history=[_acted("cart-asg", 30, 3)],
                          instances=2, live=LiveGroup(1, 20, 6))
    assert budget.change == 1 and "max_instances_per_hour" in budget.reason
    full = check_action(cfg, action="scale_out", target="cart-asg", now=NOW, history=[], live=LiveGroup(1, 6, 6))
    assert full.check == "max_size"
    assert check_action(cfg, action="scale_out", target="cart-asg", now=NOW, history=[]).check == "group_unknown"


def test_dry_run_rows_count_against_the_cooldown_like_applied_ones() -> None:
    cfg = _config(cooldown_minutes=15)
    verdict = check_action(cfg, action="restart", target="cart", now=NOW, history=[_acted("cart", 3, step="dry_run")])
    assert verdict.check == "cooldown"
    not_acted = [_acted("cart", 3, step="planned"), _acted("cart", 2, step="failed")]
    assert check_action(cfg, action="restart", target="cart", now=NOW, history=not_acted).allowed


def test_after_guards_refuses_or_dry_runs_and_applied_sets_the_deadline() -> None:
    dry, _ = plan(_config(), incident_view(_incident()), {}, NOW)  # type: ignore[misc]
    live = LiveGroup(1, 10, 2)
    ok = check_action(_config(), action="scale_out", target="cart-asg", now=NOW, history=[], instances=1, live=live)
    assert after_guards(dry, ok, NOW).step == "dry_run"  # type: ignore[union-attr]
    wet, _ = plan(_config(apply=True), incident_view(_incident()), {}, NOW)  # type: ignore[misc]
    assert after_guards(wet, ok, NOW) is None
    refused = check_action(_config(allowed_targets=[]), action="scale_out", target="cart-asg", now=NOW, history=[])
    row = after_guards(wet, refused, NOW)
    assert (row.step, row.check) == ("refused", "allowlist")  # type: ignore[union-attr]
    done = applied(wet, ok, NOW, 20)
    assert done.step == "applied" and done.deadline == NOW + pd.Timedelta(minutes=20) and done.desired_to == 3
    assert applied(wet, ok, NOW, 20, error="boom").step == "failed"


def test_verification_waits_then_verifies_a_resolved_incident_or_escalates_an_open_one() -> None:
    wet, _ = plan(_config(apply=True), incident_view(_incident()), {}, NOW)  # type: ignore[misc]
    done = applied(wet, check_action(_config(), action="restart", target="cart", now=NOW, history=[]), NOW, 30)
    steps = steps_by_decision([wet, done])
    still_open = [incident_view(_incident())]
    assert verification(steps, still_open, NOW + pd.Timedelta(minutes=29)) == []
    late = verification(steps, still_open, NOW + pd.Timedelta(minutes=30))
    assert [r.step for r in late] == ["escalated"] and "still open" in late[0].detail
    resolved = [incident_view(_incident(end=NOW + pd.Timedelta(minutes=12)))]
    ok = verification(steps, resolved, NOW + pd.Timedelta(minutes=15))
    assert [r.step for r in ok] == ["verified"] and "12 min after" in ok[0].detail
    too_late = [incident_view(_incident(end=NOW + pd.Timedelta(minutes=45)))]
    assert [r.step for r in verification(steps, too_late, NOW + pd.Timedelta(minutes=50))] == ["escalated"]
    closed = steps_by_decision([wet, done, late[0]])
    assert verification(closed, still_open, NOW + pd.Timedelta(hours=2)) == []


def test_audit_rows_round_trip_through_a_frame_and_a_refusal_needs_its_check() -> None:
    row = _acted("cart-asg", 1)
    back = rows_from_frame(audit_frame([row]))
    assert back == [row]
    with pytest.raises(ValueError, match="names the guard rail"):
        row.followed_by("refused", NOW)
    with pytest.raises(ValueError, match="unknown audit step"):
        row.followed_by("done", NOW)
