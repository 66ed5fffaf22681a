"""The fleet-wide MASE scales a fitted forecaster keeps equal the per-series definition."""

from __future__ import annotations

import numpy as np
import pandas as pd

from foresight.schemas import validate_telemetry
from models.forecasting.base import series_scales
from models.forecasting.metrics import seasonal_scale


def test_series_scales_equal_the_per_series_seasonal_scale() -> None:
    rng = np.random.default_rng(0)
    lengths = [1, 2, 24, 25, 60, 3]  # a single point, a day or less (one-step scale), longer
    parts = [pd.DataFrame({"unique_id": f"s{i}", "ds": pd.date_range("2025-01-06", periods=n, freq="h", tz="UTC"),
                           "y": rng.normal(0, 1, n).cumsum()}) for i, n in enumerate(lengths)]
    df = validate_telemetry(pd.concat(parts[::-1], ignore_index=True))
    expected = {f"s{i}": seasonal_scale(part["y"].to_numpy(), 24) for i, part in enumerate(parts)}
    got = series_scales(df, 24)
    assert list(got.index) == sorted(expected)
    np.testing.assert_allclose(got.to_numpy(), [expected[k] for k in got.index], rtol=1e-12)
    assert np.isnan(got["s0"])
