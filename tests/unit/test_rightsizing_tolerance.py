"""Rightsizing people can trust: the tolerance, the risk budget, the family preference and the
signed monthly cost change (issue 16, item 3)."""

from __future__ import annotations

from statistics import NormalDist

import numpy as np
import pandas as pd
import pytest

from connectors.sinks.aws.instances import bundled_table
from models.capacity.rightsizing import HOURS_PER_MONTH, choose_instance_type, fleet_from_catalogue, rightsize
from models.capacity.rightsizing_tolerance import Tolerance, hold_reason

START = pd.Timestamp("2026-03-01", tz="UTC")
FAMILIES = ["m5", "m6i", "c5", "c6i", "r5", "r6i"]
Z80 = NormalDist().inv_cdf(0.9)
TRUSTED = Tolerance(tolerance_percent=5.0, risk_budget=0.05)


@pytest.fixture(scope="module")
def instances() -> pd.DataFrame:
    return bundled_table()


def _service(service: str, instance_type: str, cpu_p90: float, cpu_p50: float, mem_p90: float = 30.0,
             n: int = 2) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Flat forecasts: CPU at ``cpu_p50`` with its p90 at ``cpu_p90``; memory at ``mem_p90``."""
    ds = pd.date_range(START, periods=24, freq="h")
    rows, frames = [], []
    for k in range(n):
        for metric, p50, p90 in (("cpu_pct", cpu_p50, cpu_p90), ("mem_pct", mem_p90 - 2, mem_p90)):
            uid = f"{service}/i-{k}/{metric}"
            rows.append((uid, service, f"i-{k}", metric, instance_type))
            frames.append(pd.DataFrame({"unique_id": uid, "ds": ds, "yhat": p50, "yhat_upper": p90}))
    catalogue = pd.DataFrame(rows, columns=["unique_id", "service", "resource_id", "metric", "instance_type"])
    return pd.concat(frames, ignore_index=True), catalogue


def _rightsize(forecasts: pd.DataFrame, catalogue: pd.DataFrame, instances: pd.DataFrame,
               **kw: object) -> pd.Series:
    out = rightsize(forecasts, catalogue, fleet_from_catalogue(catalogue), instances, target_utilisation=70.0,
                    level=80, allowed_families=FAMILIES, memory_target_utilisation=85.0, **kw)  # type: ignore[arg-type]
    return out.iloc[0]


def test_a_71_percent_p90_with_a_tiny_exceed_probability_is_not_upsized(instances: pd.DataFrame) -> None:
    # The demo's search service: p90 CPU 71 % of a c6i.2xlarge against a 70 % target; P(> 100 %) ~ 0.
    fc, cat = _service("search", "c6i.2xlarge", cpu_p90=71.0, cpu_p50=60.0)
    before = _rightsize(fc, cat, instances)  # no tolerance: what the issue saw
    assert before["action"] == "upsize" and before["monthly_cost_change"] > 0
    row = _rightsize(fc, cat, instances, tolerance=TRUSTED, prefer_same_family=True)
    assert row["action"] == "hold" and row["recommended_instance_type"] == "c6i.2xlarge"
    assert row["sized_instance_type"] == "c6i.4xlarge"  # what it would have been, named
    assert row["current_exceed_probability"] < 0.002 and row["exceed_probability"] == row["current_exceed_probability"]
    assert row["monthly_cost_change"] == 0.0 and row["monthly_savings"] == 0.0
    assert "within 5 % of its 70 % target" in row["reason"]


def test_an_upsize_outside_the_tolerance_is_held_while_the_risk_stays_in_budget(instances: pd.DataFrame) -> None:
    # p90 at 80 % (outside 70 % + 5 %), but the band is narrow: P(exceed 100 %) is still ~0.
    fc, cat = _service("api", "m6i.xlarge", cpu_p90=80.0, cpu_p50=78.0)
    row = _rightsize(fc, cat, instances, tolerance=TRUSTED)
    assert row["action"] == "hold" and "within the risk budget 5.0 %" in row["reason"]
    # The same peak with a wide band: the current type is exceeded with P > 5 %, so it moves.
    fc, cat = _service("api", "m6i.xlarge", cpu_p90=97.0, cpu_p50=75.0)
    risky = _rightsize(fc, cat, instances, tolerance=TRUSTED, prefer_same_family=True)
    assert risky["current_exceed_probability"] > 0.05
    assert risky["action"] == "upsize" and risky["recommended_instance_type"] == "m6i.2xlarge"


def test_same_family_and_generation_are_preferred(instances: pd.DataFrame) -> None:
    # c5.4xlarge and c6i.4xlarge cost the same; the name order used to pick c5 for a c6i service.
    fc, cat = _service("search", "c6i.2xlarge", cpu_p90=92.0, cpu_p50=70.0)
    anywhere = _rightsize(fc, cat, instances)
    assert anywhere["recommended_instance_type"] == "c5.4xlarge"
    same = _rightsize(fc, cat, instances, prefer_same_family=True)
    assert same["recommended_instance_type"] == "c6i.4xlarge" and same["action"] == "upsize"
    # Another family only when nothing of its own fits: 23 vCPU at 70 % needs more than c6i.8xlarge.
    choice = choose_instance_type(23.0, 1.0, "c6i.2xlarge", instances, target_utilisation=70.0,
                                  allowed_families=FAMILIES, prefer_same_family=True)
    assert choice.instance_type is not None and not choice.instance_type.startswith("c6i.")


def test_a_change_inside_the_cost_tolerance_is_held(instances: pd.DataFrame) -> None:
    # A downsize from m5.large to c5.large saves 11 %; with a 15 % tolerance it is not worth it.
    fc, cat = _service("tiny", "m5.large", cpu_p90=30.0, cpu_p50=25.0, mem_p90=20.0)
    moved = _rightsize(fc, cat, instances, tolerance=Tolerance(5.0, 0.05))
    assert moved["action"] == "downsize" and moved["recommended_instance_type"] == "c5.large"
    held = _rightsize(fc, cat, instances, tolerance=Tolerance(15.0, 0.05))
    assert held["action"] == "hold" and "inside the ±15 % tolerance" in held["reason"]


def test_monthly_cost_change_is_signed_and_savings_is_its_negation(instances: pd.DataFrame) -> None:
    prices = instances.set_index("instance_type")["usd_per_hour"]
    down = _rightsize(*_service("idle", "m6i.2xlarge", cpu_p90=10.0, cpu_p50=8.0, mem_p90=10.0), instances,
                      tolerance=TRUSTED, prefer_same_family=True)
    up = _rightsize(*_service("hot", "m6i.large", cpu_p90=140.0, cpu_p50=110.0), instances,
                    tolerance=TRUSTED, prefer_same_family=True)
    assert down["action"] == "downsize" and down["monthly_cost_change"] < 0
    assert up["action"] == "upsize" and up["monthly_cost_change"] > 0
    for row in (down, up):
        expected = (prices[row["recommended_instance_type"]] - prices[row["current_instance_type"]]) * HOURS_PER_MONTH * 2
        assert row["monthly_cost_change"] == pytest.approx(expected)
        assert row["monthly_savings"] == pytest.approx(-row["monthly_cost_change"])


def test_a_downsize_that_would_break_the_risk_budget_is_held() -> None:
    reason = hold_reason(TRUSTED, action="downsize", current_type="m6i.2xlarge", proposed_type="m6i.xlarge",
                         current_cost=560.0, proposed_cost=280.0, current_load=30.0, target=70.0,
                         current_exceed=0.0, proposed_exceed=0.08)
    assert reason is not None and "over the risk budget 5.0 %" in reason
    assert hold_reason(TRUSTED, action="downsize", current_type="m6i.2xlarge", proposed_type="m6i.xlarge",
                       current_cost=560.0, proposed_cost=280.0, current_load=30.0, target=70.0,
                       current_exceed=0.0, proposed_exceed=0.01) is None
    assert hold_reason(TRUSTED, action="keep", current_type="a", proposed_type="a", current_cost=1.0,
                       proposed_cost=1.0, current_load=1.0, target=70.0, current_exceed=0.0,
                       proposed_exceed=0.0) is None


@pytest.mark.parametrize(("kw", "message"), [({"tolerance_percent": -1.0}, "tolerance_percent"),
                                             ({"risk_budget": 1.5}, "risk_budget")])
def test_bad_tolerances_are_refused(kw: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Tolerance(**kw)


def test_exceed_probability_of_the_demo_case_is_tiny() -> None:
    """The fixture's numbers are the issue's: a 60 % mean with p90 at 71 % exceeds 100 % ~never."""
    sigma = (71.0 - 60.0) / Z80
    assert 1 - NormalDist(60.0, sigma).cdf(100.0) < 0.002
    assert np.isfinite(sigma)
