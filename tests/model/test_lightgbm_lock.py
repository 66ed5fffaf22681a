"""Every LightGBM train and predict holds models.boosted_trees.LIGHTGBM_LOCK: two at once from
different threads crashed the train flow (SIGSEGV) when it evaluated two LightGBM contenders."""

from __future__ import annotations

from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest

from models.boosted_trees import LIGHTGBM_LOCK


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, bool]]:
    """Each lightgbm.train / Booster.predict call and whether this thread held the lock."""
    seen: list[tuple[str, bool]] = []
    train, predict = lgb.train, lgb.Booster.predict

    def held() -> bool:
        return LIGHTGBM_LOCK._is_owned()  # type: ignore[attr-defined]

    def train_spy(*args: Any, **kwargs: Any) -> Any:
        seen.append(("train", held()))
        return train(*args, **kwargs)

    def predict_spy(self: Any, *args: Any, **kwargs: Any) -> Any:
        seen.append(("predict", held()))
        return predict(self, *args, **kwargs)

    monkeypatch.setattr(lgb, "train", train_spy)
    monkeypatch.setattr(lgb.Booster, "predict", predict_spy)
    return seen


def test_the_failure_predictor_trains_predicts_and_explains_under_the_lock(calls: list[tuple[str, bool]]) -> None:
    from models.failure.lgbm import LGBMFailurePredictor

    rng = np.random.default_rng(3)
    n = 600
    ds = pd.date_range("2026-03-01", periods=n, freq="5min", tz="UTC").astype("datetime64[us, UTC]")
    X = pd.DataFrame({"service": "api", "ds": ds, "cpu_util": rng.uniform(0, 1, n), "mem_util": rng.uniform(0, 1, n)})
    labels = pd.Series((X["cpu_util"] > 0.9).astype(int))
    model = LGBMFailurePredictor(threshold_folds=2).fit(X, labels)
    model.predict(X)
    model.contributions(X.head(3))
    kinds = {kind for kind, _ in calls}
    assert kinds == {"train", "predict"} and all(ok for _, ok in calls), calls


def test_the_global_forecaster_trains_and_predicts_under_the_lock(calls: list[tuple[str, bool]]) -> None:
    from models.forecasting.lgbm_global import LGBMGlobalForecaster

    ds = pd.date_range("2026-03-01", periods=24 * 12, freq="5min", tz="UTC").astype("datetime64[us, UTC]")
    rng = np.random.default_rng(4)
    frames = [pd.DataFrame({"unique_id": f"s{i}", "ds": ds, "y": 50 + 10 * np.sin(np.arange(len(ds)) / 20) + rng.normal(0, 1, len(ds))})
              for i in range(3)]
    LGBMGlobalForecaster(lags=(1, 2, 12), windows=(6,), season=12, scale_window=24, calibration_horizon=12, n_estimators=10).fit(pd.concat(frames, ignore_index=True)).predict(6)
    assert {kind for kind, _ in calls} == {"train", "predict"} and all(ok for _, ok in calls), calls
