"""The capacity gate reads the forecaster's backtest interval coverage: a candidate whose 80 %
interval holds far more or far fewer than 80 % of the actuals is not promoted."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from foresight.promotion import decide
from foresight.settings import ForecastConfig
from models.evaluation.gate import coverage_refusal, evaluate_forecaster, lead_coverage_refusal
from models.forecasting.base import Forecaster

START = pd.Timestamp("2026-01-05", tz="UTC")


class MeanWithBand(Forecaster):
    """Per-series mean with a fixed half-width ``band`` (test-only): its coverage is set by ``band``."""

    name = "mean_band_test"

    def __init__(self, band: float = 1.0, far_band: float | None = None) -> None:
        super().__init__(band=band, far_band=far_band)

    def _fit(self, df: pd.DataFrame) -> None:
        grouped = df.groupby("unique_id", sort=True)
        self.last_, self.mean_ = grouped["ds"].max(), grouped["y"].mean()

    def _predict(self, h: int, level: int) -> pd.DataFrame:
        step = pd.Timedelta(hours=1)
        parts = [pd.DataFrame({"unique_id": uid, "ds": [last + step * (k + 1) for k in range(h)],
                               "yhat": self.mean_[uid]}) for uid, last in self.last_.items()]
        out = pd.concat(parts, ignore_index=True)
        step = out.groupby("unique_id").cumcount().to_numpy()
        far = self.params["far_band"]
        # ``far_band`` (if set) holds from the second day ahead on: the band's width by lead.
        band = np.where((step >= 24) & (far is not None), far or 0.0, float(self.params["band"]))
        return out.assign(yhat_lower=out["yhat"] - band, yhat_upper=out["yhat"] + band)


def _noise(n_series: int = 4, hours: int = 24 * 10, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    ds = pd.date_range(START, periods=hours, freq="h").as_unit("us")
    return pd.concat([pd.DataFrame({"unique_id": f"s{i}", "ds": ds, "y": 50 + rng.normal(0, 2.0, hours)})
                      for i in range(n_series)], ignore_index=True)


@pytest.mark.parametrize(("coverage", "refused"), [(0.71, True), (0.74, True), (0.76, False), (0.80, False),
                                                   (0.84, False), (0.86, True), (math.nan, True)])
def test_coverage_outside_the_tolerance_is_a_refusal(coverage: float, refused: bool) -> None:
    assert (coverage_refusal(coverage, 80, 0.05) is not None) is refused


def test_a_refusal_blocks_a_candidate_that_beats_everything_and_is_the_reason() -> None:
    decision = decide(0.5, 0.8, 0.9, higher_is_better=False, min_improvement=0.01,
                      refusal=coverage_refusal(0.71, 80, 0.05))
    assert not decision.promote and decision.label == "challenger"
    assert decision.reason.startswith("not promoted: interval coverage 0.71 is outside 0.80 ± 0.05")
    assert "too narrow" in decision.reason and "mase 0.5" in decision.reason
    assert decide(0.5, 0.8, 0.9, higher_is_better=False, min_improvement=0.01).promote


def test_the_gate_refuses_a_miscalibrated_forecaster_and_logs_its_coverage() -> None:
    cfg = ForecastConfig(backtest_horizon=24, n_origins=2)
    narrow = evaluate_forecaster(MeanWithBand(band=0.5), _noise(), cfg)  # +-0.5 around N(50, 2): ~20 %
    assert narrow.metrics["coverage"] < 0.4 and narrow.refusal is not None
    assert narrow.metrics["coverage_error"] == pytest.approx(narrow.metrics["coverage"] - 0.80)
    honest = evaluate_forecaster(MeanWithBand(band=2.0 * 1.2816), _noise(), cfg)  # the true 80 % band
    assert abs(honest.metrics["coverage"] - 0.80) <= 0.05 and honest.refusal is None
    loose = evaluate_forecaster(MeanWithBand(band=0.5), _noise(), cfg.model_copy(update={"coverage_tolerance": 1.0}))
    assert loose.refusal is None  # the tolerance is a setting


def test_a_band_right_on_average_but_wrong_by_lead_is_refused_naming_the_buckets() -> None:
    cfg = ForecastConfig(backtest_horizon=48, n_origins=2)
    # N(50, 2): a +-4.3 band holds ~97 % the first day, +-1.8 ~63 % the second; ~80 % pooled.
    skewed = evaluate_forecaster(MeanWithBand(band=4.3, far_band=1.8), _noise(n_series=8), cfg)
    assert abs(skewed.metrics["coverage"] - 0.80) <= 0.05  # the pooled rule alone would promote it
    assert {"coverage_lead_1h", "coverage_lead_1d", "coverage_lead_7d", "pinball_lead_7d"} <= set(skewed.metrics)
    assert skewed.refusal is not None and skewed.refusal.startswith("interval coverage by lead")
    assert "first day (lead 1d)" in skewed.refusal and "too wide" in skewed.refusal
    assert "first week (lead 7d)" in skewed.refusal and "too narrow" in skewed.refusal
    assert "first hour" not in skewed.refusal  # 16 points at 97 %: within the allowance for so few
    honest = evaluate_forecaster(MeanWithBand(band=2.0 * 1.2816), _noise(n_series=8), cfg)
    assert honest.refusal is None


def test_a_small_bucket_is_allowed_its_sampling_error_and_a_large_one_is_not() -> None:
    def metrics(coverage: float, points: float) -> dict[str, float]:
        return {"coverage_lead_1h": coverage, "points_lead_1h": points}

    assert lead_coverage_refusal(metrics(0.72, 144), 80, 0.05) is None  # 0.05 + 2 x 0.033
    refusal = lead_coverage_refusal(metrics(0.72, 100_000), 80, 0.05)
    assert refusal is not None and "first hour (lead 1h) 0.72 (too narrow; 100000 points" in refusal
    assert lead_coverage_refusal({}, 80, 0.05) is None  # no bucket measured: the pooled rule decides
