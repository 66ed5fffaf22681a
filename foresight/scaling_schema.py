"""The scheduled-scaling data contract shared by the capacity models and the Auto Scaling sink:
the columns of a planned action and of a refusal, the refusal checks the sink itself can make,
and a group's live bounds as AWS reports them (:class:`LiveGroup`)."""

from __future__ import annotations

from dataclasses import dataclass

SCALING_ACTION_COLUMNS: tuple[str, ...] = (
    "service",
    "asg_name",
    "action_name",
    "start_time",
    "desired_capacity",
    "min_size",
    "max_size",
)
ACTION_PREFIX = "foresight-"
# Refusal checks made where the live group is read (the forecast checks: models.capacity.scaling_guards).
BOUNDS = "bounds"
GROUP_UNREADABLE = "group_unreadable"
NOT_ALLOWED = "not_in_allowed_asgs"
REFUSAL_COLUMNS: tuple[str, ...] = ("service", "asg_name", "check", "reason")


@dataclass(frozen=True)
class LiveGroup:
    """An Auto Scaling group's bounds and desired capacity as AWS reports them now."""

    min_size: int
    max_size: int
    desired_capacity: int
