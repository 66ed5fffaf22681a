"""``bench nab`` refits detectors that need ``fit`` on the rows so far, as the train flow would."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from foresight.cli import app
from models.anomaly.base import DETECTORS, AnomalyDetector
from models.evaluation.nab import probationary_length, registry_scores

RECORDER = "test_fit_recorder"


class _FitRecorder(AnomalyDetector):
    """Scores every row with the time of the newest row its ``fit`` saw (as a fraction of a year)."""

    name: ClassVar[str] = RECORDER

    def _fit(self, df: pd.DataFrame) -> None:
        self.newest_ = df["ds"].max()

    def _raw_scores(self, df: pd.DataFrame) -> np.ndarray:
        seconds = (self.newest_ - pd.Timestamp("2024-01-01", tz="UTC")).total_seconds()
        return np.full(len(df), seconds / (366 * 86400))


@pytest.fixture(autouse=True, scope="module")
def _recorder() -> None:
    if RECORDER not in DETECTORS:
        DETECTORS.register(RECORDER)(_FitRecorder)


def _frame(days: int = 8) -> pd.DataFrame:
    ts = pd.date_range("2024-03-04", periods=days * 288, freq="5min")
    return pd.DataFrame({"timestamp": ts, "value": np.random.default_rng(5).normal(50, 1, ts.size)})


def _fitted_up_to(scores: np.ndarray) -> pd.Series:
    return pd.Series(pd.Timestamp("2024-01-01", tz="UTC") + pd.to_timedelta(np.round(scores * 366 * 86400), unit="s"))


def test_every_block_is_scored_by_a_fit_on_the_rows_before_it():
    frame = _frame()
    ds = frame["timestamp"].dt.tz_localize("UTC")
    first_cut = ds.iloc[probationary_length(len(frame)) - 1]
    seen = _fitted_up_to(registry_scores(RECORDER, refit_every=pd.Timedelta(days=1))(frame))
    expected = first_cut + ((ds - first_cut - pd.Timedelta(1)) // pd.Timedelta(days=1)).clip(lower=0) * pd.Timedelta(days=1)
    assert (seen == expected).all()  # the newest row a model saw is the cut before its block
    assert (seen.to_numpy() < ds.to_numpy()).sum() == (ds > first_cut).sum()  # never the row it scores
    assert seen.nunique() == 7  # the probation fit and six daily refits


def test_without_refit_the_probation_fit_scores_the_whole_file():
    frame = _frame()
    seen = _fitted_up_to(registry_scores(RECORDER, refit_every=None)(frame))
    assert seen.nunique() == 1
    assert seen.iloc[0] == frame["timestamp"].dt.tz_localize("UTC").iloc[probationary_length(len(frame)) - 1]


def test_the_refitted_scores_are_causal():
    """Rewriting the future leaves every earlier score alone (the file keeps its length: NAB's
    probation, and so the first fit, depends on it)."""
    frame = _frame()
    daily = registry_scores("robust_seasonal", refit_every=pd.Timedelta(days=1))
    cut = 5 * 288 + 17  # mid-block: the block's model must not see the rows after the cut
    future = frame.assign(value=np.where(frame.index >= cut, frame["value"] * 3 + 40, frame["value"]))
    before, after = daily(frame), daily(future)
    assert np.allclose(before[:cut], after[:cut], equal_nan=True)
    assert not np.allclose(before[cut:], after[cut:], equal_nan=True)


def test_a_bad_refit_interval_is_a_clear_error(tmp_path):
    result = CliRunner().invoke(
        app, ["bench", "nab", "--data", str(tmp_path), "--out", str(tmp_path / "r"), "--refit-every", "daily"]
    )
    assert result.exit_code != 0
    assert "--refit-every" in result.output and "daily" in result.output
