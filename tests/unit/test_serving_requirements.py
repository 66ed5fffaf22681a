"""What a logged model records it needs to be served: pinned, and including lazy imports."""

from __future__ import annotations

from importlib.metadata import version
from typing import ClassVar

from foresight.mlflow_runs import SERVING_DISTRIBUTIONS, serving_requirements
from models.base import Model
from models.failure.lgbm import LGBMFailurePredictor
from models.failure.utilisation_rule import UtilisationRulePredictor
from models.forecasting.selection import ChampionSelector


class _NeedsAMissingDistribution(Model):
    family = "anomaly"
    name = "missing_extra_test"
    pip_extras: ClassVar[tuple[str, ...]] = ("numpy", "no-such-distribution-foresight-test")


def test_every_model_pins_the_base_distributions_at_their_installed_versions() -> None:
    pinned = serving_requirements(UtilisationRulePredictor())
    assert f"mlflow=={version('mlflow')}" in pinned
    assert f"pandas=={version('pandas')}" in pinned
    assert [p.split("==")[0] for p in pinned] == [d for d in SERVING_DISTRIBUTIONS if _installed(d)]


def test_a_model_adds_what_it_imports_lazily() -> None:
    # LightGBM is imported inside fit, so MLflow's own inference never saw it.
    assert f"lightgbm=={version('lightgbm')}" in serving_requirements(LGBMFailurePredictor())
    assert "lightgbm" not in {p.split("==")[0] for p in serving_requirements(UtilisationRulePredictor())}


def test_a_forecaster_made_of_candidates_needs_what_any_of_them_needs() -> None:
    assert f"prophet=={version('prophet')}" in serving_requirements(ChampionSelector(candidates=("ses", "prophet")))
    assert "prophet" not in {p.split("==")[0] for p in serving_requirements(ChampionSelector(candidates=("ses", "mstl")))}


def test_a_distribution_not_installed_is_left_out_and_none_is_listed_twice() -> None:
    pinned = serving_requirements(_NeedsAMissingDistribution())
    names = [p.split("==")[0] for p in pinned]
    assert "no-such-distribution-foresight-test" not in names
    assert names.count("numpy") == 1


def _installed(name: str) -> bool:
    try:
        version(name)
    except Exception:
        return False
    return True
