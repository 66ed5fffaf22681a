"""When a rightsizing change is not worth making: the tolerance and the risk budget.

Pure. Sizing on the forecast's upper quantile against a target finds *some* type for every
service; a planner only wants the changes that matter. A change the sizing proposes is held
(the service keeps its type, the reason says why) when:

- its monthly cost moves by less than ``tolerance_percent`` of today's cost (a migration that
  saves or costs a few percent is not worth a restart);
- it is an upsize and today's type runs the forecast peak within ``tolerance_percent`` of its
  target (relative: 73.5 % CPU against a 70 % target is inside 5 %);
- it is an upsize and the probability that the forecast exceeds today's type (100 % of it) stays
  at or under ``risk_budget``: the target's headroom is doing its job;
- it is a downsize and the smaller type's exceed probability is over ``risk_budget``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Tolerance:
    """What a change must clear to be made (``tolerance_percent`` 0 and ``risk_budget`` 0: every change)."""

    tolerance_percent: float = 0.0
    risk_budget: float = 0.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.tolerance_percent <= 100.0:
            raise ValueError(f"tolerance_percent must be within [0, 100], got {self.tolerance_percent}")
        if not 0.0 <= self.risk_budget <= 1.0:
            raise ValueError(f"risk_budget must be within [0, 1], got {self.risk_budget}")


def hold_reason(
    tolerance: Tolerance,
    *,
    action: str,
    current_type: str,
    proposed_type: str,
    current_cost: float,
    proposed_cost: float,
    current_load: float,
    target: float,
    current_exceed: float,
    proposed_exceed: float,
) -> str | None:
    """Why the proposed change is held, or None when it should be made.

    ``current_load`` is the binding resource's forecast peak on today's type, in percent, and
    ``target`` that resource's target utilisation; probabilities are in [0, 1].
    """
    tol = tolerance.tolerance_percent
    if action not in ("upsize", "downsize"):
        return None
    change = proposed_cost - current_cost
    if current_cost > 0 and abs(change) < tol / 100.0 * current_cost:
        return (f"{proposed_type} would change the monthly cost by {100 * change / current_cost:+.1f} %, "
                f"inside the ±{tol:g} % tolerance: {current_type} kept")
    if action == "upsize":
        if current_load <= target * (1.0 + tol / 100.0) + 1e-9:
            return (f"{current_type} runs the forecast peak at {current_load:.0f} %, within {tol:g} % of its "
                    f"{target:g} % target: kept rather than moved to {proposed_type}")
        if not math.isnan(current_exceed) and current_exceed <= tolerance.risk_budget:
            return (f"P(exceed {current_type}) is {_pct(current_exceed)}, within the risk budget "
                    f"{_pct(tolerance.risk_budget)}: kept rather than moved to {proposed_type}")
    elif not math.isnan(proposed_exceed) and proposed_exceed > tolerance.risk_budget:
        return (f"{proposed_type} would be exceeded with P {_pct(proposed_exceed)}, over the risk budget "
                f"{_pct(tolerance.risk_budget)}: {current_type} kept")
    return None


def _pct(probability: float) -> str:
    return f"{100 * probability:.1f} %"
