"""Rolling-origin, event-wise evaluation of failure predictors (models.evaluation.gate) and its benchmark."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pandas as pd
import pytest

from features.failure_labels import failure_labels
from foresight.settings import DetectConfig
from models.evaluation.gate import evaluate_failure_predictor, failure_origins
from models.failure.base import FailurePredictor

STEP = pd.Timedelta("5min")
T0 = pd.Timestamp("2026-04-06", tz="UTC")


def fleet(days: int = 10) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Two services at 5-minute steps; ``pressure`` climbs for an hour before each incident."""
    ds = pd.date_range(T0, periods=days * 288, freq=STEP).astype("datetime64[us, UTC]")
    rows, incidents = [], []
    for k, service in enumerate(("cart", "search")):
        pressure = np.zeros(len(ds))
        for start in range(300 + 40 * k, len(ds) - 20, 350):  # an incident every ~29 h per service
            pressure[start - 12 : start] = np.linspace(0.1, 1.0, 12)
            incidents.append(
                {
                    "incident_id": f"{service}-{start}",
                    "service": service,
                    "category": "errors",
                    "start": ds[start],
                    "end": ds[start + 6],
                    "severity": "error",
                }
            )
        rows.append(pd.DataFrame({"service": service, "ds": ds, "pressure": pressure}))
    features = pd.concat(rows, ignore_index=True).astype({"service": "string"})
    return features, pd.DataFrame(incidents)


class Spy(FailurePredictor):
    """Risk = ``pressure``; records what each fit saw and picks a threshold from its training data."""

    name: ClassVar[str] = "spy"
    fits: ClassVar[list[dict[str, Any]]] = []

    def _fit(self, X: pd.DataFrame, y: np.ndarray) -> None:
        pass

    def fit(self, X: pd.DataFrame, y: pd.Series | np.ndarray) -> Spy:
        super().fit(X, y)
        Spy.fits.append({"newest": X["ds"].max(), "labels": pd.Series(np.asarray(y), index=X.index)})
        return self

    def _predict_risk(self, X: pd.DataFrame) -> np.ndarray:
        return X["pressure"].to_numpy()

    def _operating_threshold(
        self, keys: pd.DataFrame, X: pd.DataFrame, labels: np.ndarray, targets: np.ndarray
    ) -> float:
        return 0.3 + 1e-6 * len(X)  # a value only the training data could give


def test_origins_are_consecutive_hour_aligned_blocks_after_the_first_fraction() -> None:
    ds = pd.Series(pd.date_range(T0, periods=10 * 288, freq=STEP))
    origins = failure_origins(ds, 0.6, 3)
    assert len(origins) == 3
    assert origins[0].cut == (T0 + (ds.max() - T0) * 0.6).floor("h")
    assert all(o.cut == o.cut.floor("h") and o.cut < o.end for o in origins)
    assert all(a.end == b.cut for a, b in zip(origins, origins[1:], strict=False))  # no gap, no overlap
    assert origins[-1].end > ds.max()  # the newest row is scored
    with pytest.raises(ValueError, match="too short"):
        failure_origins(ds.head(30), 0.6, 3)
    with pytest.raises(ValueError, match="first_fraction"):
        failure_origins(ds, 1.0, 3)


def test_rolling_origin_never_trains_on_the_future() -> None:
    features, incidents = fleet()
    Spy.fits.clear()
    horizon = pd.Timedelta(minutes=60)
    evaluation = evaluate_failure_predictor(Spy(), features, incidents, DetectConfig(horizon_minutes=60))
    splits = evaluation.detail["splits"]
    assert len(Spy.fits) == len(splits) == 3
    assert splits["train_end"].is_monotonic_increasing
    for fit, split in zip(Spy.fits, splits.itertuples(), strict=True):
        cut = split.train_end
        assert fit["newest"] < cut  # no row at or after the origin
        labels = fit["labels"]
        known = failure_labels(features.loc[labels.index], incidents[incidents["start"] <= cut], horizon)
        # Positives only for incidents known at the cut; rows whose horizon reaches past it undecided.
        assert ((labels == 1) <= (known == 1)).all()
        late = features.loc[labels.index, "ds"] > cut - horizon
        assert (labels[late & (known != 1)] == -1).all()
        assert split.threshold == pytest.approx(0.3 + 1e-6 * int((features["ds"] < cut).sum()))
        assert split.train_incidents == int((incidents["start"] < cut).sum())
    scored = evaluation.detail["risk"]
    assert scored["ds"].min() == splits["train_end"].iloc[0] and scored["ds"].max() == features["ds"].max()
    assert not scored.duplicated(["service", "ds"]).any()  # every row scored once


def test_figures_per_split_mean_and_pooled() -> None:
    features, incidents = fleet()
    evaluation = evaluate_failure_predictor(Spy(), features, incidents, DetectConfig(horizon_minutes=60))
    m, splits = evaluation.metrics, evaluation.detail["splits"]
    assert (evaluation.metric, evaluation.higher_is_better, evaluation.value) == ("event_f1", True, m["f1"])
    for k in (1, 2, 3):
        for name in ("recall", "precision", "f1", "median_lead_minutes", "threshold"):
            assert m[f"split{k}_{name}"] == pytest.approx(splits.loc[k - 1, name])
    assert m["mean_f1"] == pytest.approx(splits["f1"].mean())
    # Pressure rises an hour ahead and the threshold is crossed well before the start: all caught early.
    assert m["recall"] == 1.0 and m["precision"] == 1.0 and m["false_alarms"] == 0
    assert m["detected"] == splits["incidents"].sum() > 3
    assert 30 <= m["median_lead_minutes"] <= 60


def test_false_positive_pages_are_left_out_of_the_truth() -> None:
    features, incidents = fleet()
    cfg = DetectConfig(horizon_minutes=60)
    fake = incidents.iloc[[-1]].assign(
        incident_id="noise",
        start=lambda f: f["start"] - pd.Timedelta("3h"),
        end=lambda f: f["start"] + pd.Timedelta("10min"),
    )
    flagged = pd.concat([incidents.assign(false_positive=False), fake.assign(false_positive=True)])
    clean = evaluate_failure_predictor(Spy(), features, flagged, cfg).metrics
    assert clean["missed"] == 0 and clean["recall"] == 1.0
    counted = evaluate_failure_predictor(Spy(), features, flagged.drop(columns="false_positive"), cfg).metrics
    assert counted["missed"] == 1  # the same page, unflagged, is an incident nobody foresaw


def test_an_origin_without_past_incidents_raises_nothing_in_its_block() -> None:
    features, incidents = fleet()
    from models.failure.lgbm import LGBMFailurePredictor

    late = incidents[incidents["start"] > T0 + pd.Timedelta(days=8)]  # none before the first two cuts
    evaluation = evaluate_failure_predictor(
        LGBMFailurePredictor(n_estimators=10, threshold_folds=0),
        features,
        late,
        DetectConfig(horizon_minutes=60),
    )
    splits = evaluation.detail["splits"]
    untrained = splits[splits["train_incidents"] == 0]
    assert len(untrained) >= 1 and untrained["threshold"].isna().all()
    risk = evaluation.detail["risk"]
    assert not risk.loc[risk["split"].isin(untrained["split"]), "alarm"].any()


@pytest.mark.slow
def test_lgbm_beats_the_utilisation_rule_on_a_simulated_fleet() -> None:
    """Seed 1, 28 days: 6 incidents in the scored blocks. The rule catches them all but pages on
    every benign surge; the model pages far less and still catches most, earlier on median."""
    from bench.failure import run

    figures = {(f.seed, f.model): f for f in run(seeds=(1,), days=28)}
    lgbm, rule = figures[(1, "lgbm")], figures[(1, "utilisation_rule")]
    assert lgbm.incidents == rule.incidents >= 5
    assert lgbm.f1 > rule.f1 + 0.2, (lgbm, rule)
    assert lgbm.precision > 2 * rule.precision and lgbm.false_alarms < rule.false_alarms / 2
    assert lgbm.recall >= 0.6 and lgbm.median_lead_minutes > 30
    mean = figures[(None, "lgbm")]
    assert mean.f1 == pytest.approx(lgbm.f1) and mean.detected == lgbm.detected  # one seed: mean = it
