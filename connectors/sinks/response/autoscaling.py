"""Scale-outs through Auto Scaling: read a group's live size, set its desired capacity.

``SetDesiredCapacity`` with ``HonorCooldown=False``: Foresight's own cool-down already spaced the
action (``models.response.guards``), and the group's default cool-down would silently refuse an
action right after an unrelated scaling activity. The desired capacity asked for was checked
against the group's MaxSize just before; AWS refuses one above it anyway (ValidationError), which
is reported as a failed action.
"""

from __future__ import annotations

from connectors.sinks.aws.autoscaling import describe_groups
from connectors.sinks.aws.clients import AwsClient
from connectors.sinks.response.request import ActionRequest, ResponseActionError
from foresight.scaling_schema import LiveGroup


class ScaleOutExecutor:
    """Acts on Auto Scaling groups through one boto3 ``autoscaling`` client."""

    def __init__(self, client: AwsClient) -> None:
        self.client = client

    def live(self, group: str) -> LiveGroup | None:
        """The group's MinSize / MaxSize / DesiredCapacity now (None: AWS does not know it)."""
        return describe_groups(self.client, [group]).get(group)

    def execute(self, request: ActionRequest) -> str:
        if request.desired_capacity < 0:
            raise ValueError(f"scale-out of {request.target} without a desired capacity")
        try:
            self.client.set_desired_capacity(AutoScalingGroupName=request.target,
                                             DesiredCapacity=request.desired_capacity, HonorCooldown=False)
        except Exception as exc:  # noqa: BLE001 - botocore's errors: reported as a failed action
            raise ResponseActionError(f"SetDesiredCapacity {request.target} -> {request.desired_capacity}: "
                                      f"{exc}") from exc
        return f"SetDesiredCapacity {request.target} -> {request.desired_capacity}"
