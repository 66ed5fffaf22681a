"""The ``response:`` settings section: automated response to incidents, with its guard rails.

Off unless ``enabled``; dry-run (plan, audit and annotate, change nothing) unless ``apply``.
A rule matches incidents by fault type, category, service and severity and names one action
(``scale_out`` an Auto Scaling group, ``restart`` through a webhook or a command, ``rollback``
through a webhook, open a ``ticket`` through a webhook). Fault type names are checked against
the incident pipeline's vocabulary when a flow loads the settings
(:func:`models.response.rules.response_problems`); everything else here. docs/response.md.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from foresight.schemas import INCIDENT_CATEGORIES
from foresight.settings_sections import Section

ACTIONS: tuple[str, ...] = ("scale_out", "restart", "rollback", "ticket")
ActionKind = Literal["scale_out", "restart", "rollback", "ticket"]
Severity = Literal["critical", "error", "warning", "info"]


class ResponseWebhook(Section):
    """An HTTP endpoint an action POSTs a JSON body to (a deploy tool, a ticket system, an operator)."""

    url: str = Field(min_length=1)
    token: SecretStr | None = None  # sent as ``Authorization: Bearer <token>``
    timeout_seconds: float = Field(default=10.0, gt=0, le=300)

    @field_validator("url")
    @classmethod
    def _http(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value


class ResponseCommand(Section):
    """A command an action runs (no shell): ``argv`` items may hold ``{service}``, ``{target}``,
    ``{resource_id}`` and ``{incident_id}``, filled in per incident."""

    argv: list[str] = Field(min_length=1)
    timeout_seconds: float = Field(default=60.0, gt=0, le=3600)


class ResponseRule(Section):
    """Which incidents get which action. Empty match lists match everything."""

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    fault_types: list[str] = Field(default_factory=list)
    categories: list[str] = Field(default_factory=list)
    services: list[str] = Field(default_factory=list)
    min_severity: Severity = "warning"
    action: ActionKind
    # What the action acts on: the Auto Scaling group for scale_out, the service (or pod, host)
    # for the others. ``{service}`` and ``{resource_id}`` are filled in per incident. The
    # allowlist (``response.allowed_targets``) is checked against the filled-in value.
    target: str = Field(default="{service}", min_length=1)
    webhook: str | None = None  # a name in response.webhooks (restart, rollback, ticket)
    command: str | None = None  # a name in response.commands (restart)
    instances: int = Field(default=1, ge=1, le=1000)  # scale_out: instances to add (guard rails cap it)
    verify_minutes: int | None = Field(default=None, ge=1, le=24 * 60)  # None: response.verify_minutes

    @field_validator("categories")
    @classmethod
    def _known_categories(cls, value: list[str]) -> list[str]:
        unknown = [c for c in value if c not in INCIDENT_CATEGORIES]
        if unknown:
            raise ValueError(f"unknown categories {unknown}; choose from: {', '.join(INCIDENT_CATEGORIES)}")
        return value

    @model_validator(mode="after")
    def _executor(self) -> ResponseRule:
        how = [k for k in ("webhook", "command") if getattr(self, k) is not None]
        if self.action == "scale_out" and how:
            raise ValueError(f"rule {self.name!r}: scale_out acts through Auto Scaling, not a {how[0]}")
        if self.action == "restart" and len(how) != 1:
            raise ValueError(f"rule {self.name!r}: restart needs exactly one of webhook or command")
        if self.action in ("rollback", "ticket") and (self.webhook is None or self.command is not None):
            raise ValueError(f"rule {self.name!r}: {self.action} needs a webhook (and no command)")
        return self


class ResponseConfig(Section):
    """Automated response (docs/response.md): rules, executors and guard rails."""

    enabled: bool = False
    # Dry-run unless set: every decision is planned, guarded, audited and annotated, nothing is changed.
    apply: bool = False
    rules: list[ResponseRule] = Field(default_factory=list)
    webhooks: dict[str, ResponseWebhook] = Field(default_factory=dict)
    commands: dict[str, ResponseCommand] = Field(default_factory=dict)
    # Targets an action may touch (fnmatch patterns: "cart-*"); anything else is refused. Empty:
    # nothing may be acted on, so a rule cannot reach production by accident.
    allowed_targets: list[str] = Field(default_factory=list)
    # Scale-outs: one action adds at most max(1, min(max_instances_per_action, max_percent_per_action
    # of the group's desired capacity)) instances, never above the group's MaxSize; all actions on
    # one group within any 60 minutes at most max_instances_per_hour.
    max_instances_per_action: int = Field(default=2, ge=1, le=1000)
    max_percent_per_action: float = Field(default=50.0, gt=0, le=1000)
    max_instances_per_hour: int = Field(default=4, ge=1, le=10_000)
    # Any action on one target: at most this many within any 60 minutes, and none within the
    # cool-down after the previous one.
    max_actions_per_hour: int = Field(default=2, ge=1, le=100)
    cooldown_minutes: int = Field(default=15, ge=0, le=24 * 60)
    # An applied action worked when its incident resolves within this many minutes; else the
    # response escalates (a PagerDuty alert of escalate_severity through the outbox).
    verify_minutes: int = Field(default=30, ge=1, le=24 * 60)
    escalate_severity: Severity = "critical"

    @model_validator(mode="after")
    def _names(self) -> ResponseConfig:
        names = [rule.name for rule in self.rules]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"rule names must be unique (they key the audit log): {twice}")
        return self
