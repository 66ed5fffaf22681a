"""What an executor is asked to do: one action on one target for one incident."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any


class ResponseActionError(RuntimeError):
    """An action was tried and did not succeed; the message says what answered what."""


@dataclass(frozen=True)
class ActionRequest:
    """One action to run. ``decision_id`` identifies it across retries (webhooks get it as the
    ``Idempotency-Key`` header, so a receiver can drop a repeat)."""

    decision_id: str
    action: str
    target: str
    service: str
    incident_id: str
    rule: str
    fault_type: str = "unknown"
    resource_id: str = ""
    desired_capacity: int = -1  # scale_out: the desired capacity to set

    def body(self) -> dict[str, Any]:
        """The JSON a webhook receives."""
        out = {k: v for k, v in asdict(self).items() if k != "desired_capacity"}
        if self.desired_capacity >= 0:
            out["desired_capacity"] = self.desired_capacity
        return {"source": "foresight", **out}

    def fill(self, template: str) -> str:
        """``template`` with ``{service}``, ``{target}``, ``{resource_id}``, ``{incident_id}`` filled in."""
        values = {"service": self.service, "target": self.target, "resource_id": self.resource_id or self.service,
                  "incident_id": self.incident_id}
        for name, value in values.items():
            template = template.replace("{" + name + "}", value)
        return template


def json_details(step: Mapping[str, Any]) -> dict[str, Any]:
    """A step's audit details as JSON values (times as ISO 8601 text), empty ones left out."""
    kept = {k: v for k, v in step.items() if v is not None and v != ""}
    return dict(json.loads(json.dumps(kept, default=lambda v: v.isoformat() if hasattr(v, "isoformat") else str(v))))
