"""Failure predictors (models.failure.base) and their features (features.windows) and labels (features.failure_labels)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.failure_labels import failure_labels
from features.windows import risk_direction, service_features
from models.failure.base import PREDICTORS, LabelError, label_events
from models.failure.lgbm import LGBMFailurePredictor
from models.failure.utilisation_rule import UtilisationRulePredictor

STEP = pd.Timedelta("5min")
T0 = pd.Timestamp("2026-04-06", tz="UTC")
SERVICES = ("cart", "search", "payments")
METRICS = ("cpu_pct", "mem_pct", "disk_pct", "error_rate")


def synthetic_fleet(
    days: int = 9, seed: int = 0, later_resource: str = "mem_pct", switch_day: int = 6
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Services whose memory leaks for 2 h (staying below 75 %) before an OOM incident.

    CPU has busy daily peaks (up to ~88 %) that never cause incidents: a utilisation rule pages
    on them and misses the leaks; a learned model should do the opposite. From ``switch_day`` on
    the same 2-hour fill hits ``later_resource`` instead (a disk filling, say), to check that what
    the model learned transfers to another resource.
    """
    rng = np.random.default_rng(seed)
    n = days * 288
    t = np.arange(n)
    ds = pd.date_range(T0, periods=n, freq=STEP).astype("datetime64[us, UTC]")
    frames, catalogue, incidents = [], [], []
    for service in SERVICES:
        starts = 200 + np.cumsum(rng.integers(90, 150, size=n // 90))  # one leak every 7.5-12.5 h
        starts = starts[starts < n - 12]
        for instance in ("i-1", "i-2"):
            busy = 1.0 + 0.8 * (rng.random(days) > 0.5).repeat(288)  # busy days peak near 90 %
            values = {
                "cpu_pct": 35 + 30 * busy * np.clip(np.sin(2 * np.pi * t / 288), 0, None) + rng.normal(0, 2, n),
                "mem_pct": 45 + rng.normal(0, 1.5, n),
                "disk_pct": 50 + 0.001 * t + rng.normal(0, 0.3, n),
                "error_rate": np.abs(0.002 + rng.normal(0, 0.001, n)),
            }
            if instance == "i-1":
                for s in starts:
                    resource = later_resource if s >= switch_day * 288 else "mem_pct"
                    base = values[resource][s - 30 : s - 24].mean()
                    values[resource][s - 24 : s] += np.linspace(0, 27, 24)  # the leak: 45 -> 72 %
                    values[resource][s : s + 6] = base - 7 + rng.normal(0, 1, 6)  # OOM kill / cleanup
                    values["error_rate"][s : s + 6] += 0.05
            for metric, y in values.items():
                uid = f"{service}/{instance}/{metric}"
                frames.append(pd.DataFrame({"unique_id": uid, "ds": ds, "y": y.astype(float)}))
                catalogue.append({"unique_id": uid, "service": service, "resource_id": instance, "metric": metric})
        for s in starts:
            incidents.append(
                {"incident_id": f"{service}-{s}", "service": service, "category": "resource_leak",
                 "start": ds[s], "end": ds[min(s + 6, n - 1)], "severity": "critical", "resource_id": "i-1"}
            )
    return pd.concat(frames, ignore_index=True), pd.DataFrame(catalogue), pd.DataFrame(incidents)


@pytest.fixture(scope="module")
def fleet() -> dict[str, object]:
    telemetry, catalogue, incidents = synthetic_fleet()
    features = service_features(telemetry, catalogue)
    labels = failure_labels(features, incidents, horizon="60min")
    cut = T0 + pd.Timedelta(days=6)
    train = features["ds"] < cut
    return {
        "features": features, "labels": labels, "incidents": incidents, "train": train,
        "test_incidents": incidents[incidents["start"] >= cut],
    }


@pytest.fixture(scope="module")
def lgbm(fleet: dict) -> LGBMFailurePredictor:
    X, y, train = fleet["features"], fleet["labels"], fleet["train"]
    # One thread: on a shared, oversubscribed runner LightGBM's two spinning threads are 4x slower.
    return LGBMFailurePredictor(n_jobs=1).fit(X[train], y[train])


def test_lgbm_learns_leak_precursors_and_beats_the_utilisation_rule(fleet: dict, lgbm: LGBMFailurePredictor) -> None:
    X, y, train = fleet["features"], fleet["labels"], fleet["train"]
    test = X[~train]
    rule = UtilisationRulePredictor().fit(X[train], y[train])
    learned = lgbm.score(test, fleet["test_incidents"], horizon="60min")  # at its own threshold_
    baseline = rule.score(test, fleet["test_incidents"], horizon="60min")  # no own threshold: 0.5
    assert learned["threshold"] == lgbm.threshold_ and baseline["threshold"] == 0.5
    assert learned["incidents"] >= 15
    assert learned["auc"] > 0.9, learned
    assert learned["recall"] >= 0.8 and learned["recall"] > baseline["recall"] + 0.5, (learned, baseline)
    assert learned["median_lead_minutes"] > 0  # it warns before the OOM, not after
    assert learned["f1"] > baseline["f1"], (learned, baseline)


def test_operating_threshold_is_chosen_at_fit_time_and_beats_the_default(
    fleet: dict, lgbm: LGBMFailurePredictor
) -> None:
    X, train, truth = fleet["features"], fleet["train"], fleet["test_incidents"]
    assert lgbm.threshold_ is not None and 0.0 < lgbm.threshold_ < 1.0 and lgbm.threshold_ != 0.5
    own = lgbm.score(X[~train], truth, horizon="60min")
    default = lgbm.score(X[~train], truth, threshold=0.5, horizon="60min")
    assert own["f1"] > default["f1"], (own, default)
    assert UtilisationRulePredictor().fit(X[train], fleet["labels"][train]).threshold_ is None
    no_own = LGBMFailurePredictor(threshold_folds=0, n_estimators=20).fit(X[train], fleet["labels"][train])
    assert no_own.threshold_ is None
    with pytest.raises(ValueError, match="threshold_folds"):
        LGBMFailurePredictor(threshold_folds=1)


def test_training_uses_the_models_own_threshold_and_the_rule_uses_the_setting(fleet: dict) -> None:
    from foresight.settings import DetectConfig
    from models.evaluation.gate import operating_threshold

    cfg = DetectConfig(risk_threshold=0.42)
    fitted = LGBMFailurePredictor(n_estimators=30, n_jobs=1).fit(fleet["features"], fleet["labels"])
    assert operating_threshold(fitted, cfg) == fitted.threshold_
    assert operating_threshold(UtilisationRulePredictor(), cfg) == 0.42


@pytest.mark.slow
def test_what_it_learns_on_memory_leaks_transfers_to_a_filling_disk() -> None:
    telemetry, catalogue, incidents = synthetic_fleet(later_resource="disk_pct")
    X = service_features(telemetry, catalogue)
    y = failure_labels(X, incidents, horizon="60min")
    cut = T0 + pd.Timedelta(days=6)
    train = X["ds"] < cut
    model = LGBMFailurePredictor(n_jobs=1).fit(X[train], y[train])
    assert not any(name.startswith(("cpu_pct", "mem_pct", "disk_pct")) for name in model.feature_names_)
    result = model.score(X[~train], incidents[incidents["start"] >= cut], horizon="60min")
    assert result["recall"] >= 0.7 and result["precision"] >= 0.7, result
    specific = LGBMFailurePredictor(n_jobs=1, pool_resources=False).fit(X[train], y[train])
    assert result["f1"] >= specific.score(X[~train], incidents[incidents["start"] >= cut], horizon="60min")["f1"]


def test_risk_never_falls_as_utilisation_rises(fleet: dict, lgbm: LGBMFailurePredictor) -> None:
    X = fleet["features"][~fleet["train"]].iloc[::97]
    levels = np.linspace(40.0, 100.0, 13)
    risks = np.stack([lgbm.predict(X.assign(util_max=level))["risk"].to_numpy() for level in levels])
    assert (np.diff(risks, axis=0) >= -1e-12).all()  # monotone constraint: fuller is never safer
    minutes = np.array([5.0, 60.0, 600.0, 6000.0])
    risks = np.stack([lgbm.predict(X.assign(util_tte_30min=m))["risk"].to_numpy() for m in minutes])
    assert (np.diff(risks, axis=0) <= 1e-12).all()  # more time until full is never riskier


def test_predict_returns_probabilities_not_labels(fleet: dict, lgbm: LGBMFailurePredictor) -> None:
    X = fleet["features"][~fleet["train"]]
    risk = lgbm.predict(X)
    assert list(risk.columns) == ["service", "ds", "risk"]
    assert risk.index.equals(X.index)
    assert pd.api.types.is_float_dtype(risk["risk"])
    assert risk["risk"].between(0.0, 1.0).all()
    assert risk["risk"].nunique() > 20  # a graded probability, not a 0/1 label
    assert ((risk["risk"] > 0.05) & (risk["risk"] < 0.95)).any()


def test_explain_names_the_features_behind_a_risky_row(fleet: dict, lgbm: LGBMFailurePredictor) -> None:
    X = fleet["features"][~fleet["train"]]
    risky = X.loc[[lgbm.predict(X)["risk"].idxmax()]]
    explained = lgbm.explain(risky, top=5)
    assert len(explained) == 5 and explained["rank"].tolist() == [1, 2, 3, 4, 5]
    assert set(explained["feature"]) <= set(lgbm.feature_names_)
    assert explained["contribution"].abs().is_monotonic_decreasing
    # The leak drives the risk, seen through the pooled utilisation features (memory is the only
    # resource that moves before an incident here).
    assert explained["feature"].iloc[0].startswith("util_")
    assert explained["contribution"].iloc[0] > 0
    importance = lgbm.feature_importance()
    assert importance.index[0].startswith(("util_", "error_rate")) and importance.iloc[0] > 0


def test_lgbm_is_deterministic_for_a_seed(fleet: dict, lgbm: LGBMFailurePredictor) -> None:
    X, y, train = fleet["features"], fleet["labels"], fleet["train"]
    again = lgbm.clone().fit(X[train], y[train])
    pd.testing.assert_frame_equal(again.predict(X[~train]), lgbm.predict(X[~train]))


def test_rule_is_a_fixed_monotone_map_of_current_utilisation() -> None:
    X = pd.DataFrame(
        {"service": "cart", "ds": pd.date_range(T0, periods=4, freq=STEP),
         "cpu_pct": [10.0, 82.5, 99.0, np.nan], "mem_pct": [10.0, 10.0, 10.0, 85.0]}
    )
    risk = UtilisationRulePredictor().fit(X, np.array([0, 0, 1, 1])).predict(X)["risk"].to_numpy()
    np.testing.assert_allclose(risk, [0.0, 0.5, 1.0, 0.5])


def test_fit_drops_ongoing_rows_and_refuses_single_class_labels(fleet: dict) -> None:
    X, y = fleet["features"], fleet["labels"]
    assert (y == -1).any()
    with pytest.raises(LabelError) as info:
        LGBMFailurePredictor(n_estimators=5).fit(X, np.where(y == 1, 0, y))
    assert info.value.counts == {0: int((y != -1).sum())}
    with pytest.raises(ValueError, match="differ in length"):
        LGBMFailurePredictor().fit(X, y.iloc[:10])


def test_predictors_are_registered_by_name() -> None:
    assert PREDICTORS.get("lgbm") is LGBMFailurePredictor
    assert PREDICTORS.get("utilisation_rule") is UtilisationRulePredictor
    assert PREDICTORS.names() == ["lgbm", "utilisation_rule"]


# ---- features and labels ------------------------------------------------------------------


def small_telemetry() -> tuple[pd.DataFrame, pd.DataFrame]:
    ds = pd.date_range(T0, periods=12, freq=STEP).astype("datetime64[us, UTC]")
    rows, catalogue = [], []
    for instance, factor in (("i-1", 1.0), ("i-2", 2.0)):
        for metric, offset in (("cpu_pct", 0.0), ("mem_pct", 100.0)):
            uid = f"cart/{instance}/{metric}"
            rows.append(pd.DataFrame({"unique_id": uid, "ds": ds, "y": factor * np.arange(12) + offset}))
            catalogue.append({"unique_id": uid, "service": "cart", "resource_id": instance, "metric": metric})
    return pd.concat(rows, ignore_index=True), pd.DataFrame(catalogue)


def test_service_features_take_the_worst_instance_and_trailing_windows() -> None:
    telemetry, catalogue = small_telemetry()
    latency = telemetry[telemetry["unique_id"] == "cart/i-1/cpu_pct"].assign(unique_id="cart/i-1/latency_p95")
    telemetry = pd.concat([telemetry, latency.assign(y=0.2)], ignore_index=True)
    catalogue = pd.concat([catalogue, pd.DataFrame([{"unique_id": "cart/i-1/latency_p95", "service": "cart",
                                                     "resource_id": "i-1", "metric": "latency_p95"}])])
    logs = pd.DataFrame(
        {"ts": pd.to_datetime(["2026-04-06 00:07", "2026-04-06 00:10", "2026-04-06 00:12"], utc=True),
         "service": "cart", "resource_id": "i-1", "level": ["INFO", "ERROR", "warning"], "template_id": "t",
         "message": ["deploy started version=v2 strategy=rolling", "m", "m"]}
    )
    f = service_features(telemetry, catalogue, logs, windows=("15min",)).set_index("ds")
    row = f.loc[T0 + 3 * STEP]  # i-2's cpu is 2 * step index: 0, 2, 4, 6 ...; i-1's is 0, 1, 2, 3 ...
    assert row["cpu_pct"] == 6.0 and row["cpu_pct_spread"] == 3.0
    assert row["cpu_pct_slope_15min"] == pytest.approx(24.0)  # i-2: 2 points per 5 minutes, per hour
    assert row["cpu_pct_tte_15min"] == pytest.approx((100.0 - 6.0) / 24.0 * 60.0)  # i-2 fills first
    assert row["util_max"] == 100.0 + 6.0 and row["util_tte_15min"] == 0.0  # mem is past full
    assert "latency_p95" not in f.columns and "latency_p95_z" in f.columns  # no absolute latency level
    assert row["log_error_15min"] == 1 and row["log_warn_15min"] == 1
    assert row["deploys_15min"] == 1 and row["minutes_since_deploy"] == pytest.approx(8.0)
    assert f.loc[T0 + 5 * STEP, "log_error_15min"] == 0  # 00:10 has left (00:10, 00:25]
    assert f.loc[T0 + 2 * STEP, "minutes_since_deploy"] == pytest.approx(3.0)
    assert f.loc[T0 + STEP, "minutes_since_deploy"] == 24 * 60.0  # no deploy yet: capped
    # Robust z against the series' own trailing baseline: median 11, IQR 11 for i-2 over 12 samples.
    assert f.loc[T0 + 11 * STEP, "cpu_pct_z"] == pytest.approx(11.0 / (11.0 / 1.349))
    assert np.isnan(f.loc[T0 + 5 * STEP, "cpu_pct_z"])  # under 12 samples of baseline: unknown


def test_risk_directions_follow_physics() -> None:
    assert risk_direction("disk_pct") == 1 and risk_direction("util_max") == 1
    assert risk_direction("util_tte_2h") == -1 and risk_direction("mem_pct_tte_30min") == -1
    assert risk_direction("request_rate_z") == 0 and risk_direction("log_error_2h") == 0


def test_label_events_read_incidents_back_from_labels() -> None:
    ds = pd.date_range(T0, periods=10, freq=STEP).astype("datetime64[us, UTC]")
    keys = pd.DataFrame({"service": ["cart"] * 10, "ds": ds})
    labels = np.array([0, -1, -1, 1, 1, -1, -1, 0, 1, 0])
    events = label_events(keys, labels, STEP)
    assert len(events) == 2
    first, second = events.iloc[0], events.iloc[1]
    assert first["start"] == ds[5] and first["end"] == ds[6] + STEP and first["precursor_start"] == ds[1]
    assert second["start"] == ds[9] and pd.isna(second["precursor_start"])


def test_service_features_are_causal() -> None:
    telemetry, catalogue = small_telemetry()
    full = service_features(telemetry, catalogue, windows=("15min", "30min"))
    head = service_features(telemetry[telemetry["ds"] < T0 + 8 * STEP], catalogue, windows=("15min", "30min"))
    pd.testing.assert_frame_equal(full.iloc[: len(head)].reset_index(drop=True), head.reset_index(drop=True))


def test_failure_labels_mark_upcoming_starts_and_exclude_ongoing_incidents() -> None:
    telemetry, catalogue = small_telemetry()
    features = service_features(telemetry, catalogue, windows=("15min",))
    incidents = pd.DataFrame(
        {"service": ["cart", "search"], "start": [T0 + 6 * STEP, T0], "end": [T0 + 8 * STEP, T0 + STEP]}
    )
    labels = failure_labels(features, incidents, horizon="15min")
    assert labels.tolist() == [0, 0, 0, 1, 1, 1, -1, -1, 0, 0, 0, 0]
    open_incident = incidents.assign(end=pd.NaT)
    assert failure_labels(features, open_incident, horizon="15min").tolist()[6:] == [-1] * 6


# ---- log templates, false positives, labels as known at a moment, explanations ------------------


def template_logs() -> pd.DataFrame:
    """cart logs: pool-exhausted warnings at 00:07 and 00:12, one error at 00:10, INFO noise."""
    return pd.DataFrame(
        {"ts": pd.to_datetime(["2026-04-06 00:07", "2026-04-06 00:10", "2026-04-06 00:12", "2026-04-06 00:13"],
                              utc=True),
         "service": "cart", "resource_id": "i-1", "level": ["WARNING", "ERROR", "WARN", "INFO"],
         "template_id": ["pool", "npe", "pool", "ok"], "message": "m"}
    )


def test_log_templates_add_per_template_counts() -> None:
    telemetry, catalogue = small_telemetry()
    without = service_features(telemetry, catalogue, windows=("15min",))
    f = service_features(telemetry, catalogue, template_logs(), windows=("15min",)).set_index("ds")
    assert not any(c.startswith("log_tpl_") for c in without.columns)
    assert {"log_tpl_pool_15min", "log_tpl_npe_15min"} <= set(f.columns)
    assert "log_tpl_ok_15min" not in f.columns  # INFO lines are no warning sign
    assert f.loc[T0 + 2 * STEP, "log_tpl_pool_15min"] == 1  # 00:10 sees 00:07
    assert f.loc[T0 + 3 * STEP, "log_tpl_pool_15min"] == 2  # 00:15 sees 00:07 and 00:12
    assert f.loc[T0 + 3 * STEP, "log_tpl_npe_15min"] == 1
    assert f.loc[T0 + 6 * STEP, "log_tpl_pool_15min"] == 0  # (00:15, 00:30]: both gone


def test_a_template_missing_when_scoring_counts_as_zero_lines(fleet: dict) -> None:
    X, y, train = fleet["features"], fleet["labels"], fleet["train"]
    rng = np.random.default_rng(3)
    # A template that logs before every incident, so the model leans on it.
    noisy = X.assign(log_tpl_oom_30min=np.where(y == 1, 3.0, 0.0) + rng.poisson(0.05, len(X)))
    model = LGBMFailurePredictor(n_estimators=40, threshold_folds=0, log_templates=True).fit(noisy[train], y[train])
    assert "log_tpl_oom_30min" in model.feature_names_
    assert "log_tpl_oom_30min" not in LGBMFailurePredictor(n_estimators=5, threshold_folds=0).fit(
        noisy[train], y[train]).feature_names_  # off by default
    test = noisy[~train]
    absent = model.predict(test.drop(columns="log_tpl_oom_30min"))
    pd.testing.assert_frame_equal(absent, model.predict(test.assign(log_tpl_oom_30min=0.0)))
    # The explanation shows the count it assumed: 0 lines, not an unknown value.
    rows = test.drop(columns=["log_tpl_oom_30min", "error_rate_z"]).head(20)
    explained = model.explain(rows, top=len(model.feature_names_)).set_index("feature")["value"]
    assert (explained.loc[["log_tpl_oom_30min"]] == 0.0).all() and len(explained.loc[["log_tpl_oom_30min"]]) == 20
    assert explained.loc[["error_rate_z"]].isna().all()  # any other missing feature is unknown


def test_false_positive_pages_are_not_positives() -> None:
    telemetry, catalogue = small_telemetry()
    features = service_features(telemetry, catalogue, windows=("15min",))
    history = pd.DataFrame(
        {"incident_id": ["real", "noise"], "service": "cart", "start": [T0 + 9 * STEP, T0 + 4 * STEP],
         "end": [T0 + 10 * STEP, T0 + 5 * STEP], "false_positive": ["false", "TRUE"]}
    )
    labels = failure_labels(features, history, horizon="10min").tolist()
    assert labels == [0, 0, 0, 0, 0, 0, 0, 1, 1, -1, 0, 0]  # nothing around the false page at 00:20
    unflagged = failure_labels(features, history.drop(columns="false_positive"), horizon="10min").tolist()
    assert unflagged[2:5] == [1, 1, -1]
    with pytest.raises(ValueError, match="expected true/false"):
        failure_labels(features, history.assign(false_positive=["maybe", "no"]), horizon="10min")


def test_labels_as_of_a_moment_use_only_what_was_known_then() -> None:
    telemetry, catalogue = small_telemetry()
    features = service_features(telemetry, catalogue, windows=("15min",))
    history = pd.DataFrame(
        {"service": "cart", "start": [T0 + 3 * STEP, T0 + 8 * STEP], "end": [T0 + 5 * STEP, T0 + 9 * STEP]}
    )
    hindsight = failure_labels(features, history, horizon="10min").tolist()
    assert hindsight == [0, 1, 1, -1, -1, 0, 1, 1, -1, 0, 0, 0]
    as_of = failure_labels(features, history, horizon="10min", as_of=T0 + 7 * STEP).tolist()
    # The 00:40 incident is unknown at 00:35; 00:30 and 00:35 could still be followed by one
    # within 10 minutes (undecided: -1); everything after 00:35 lies in the future.
    assert as_of == [0, 1, 1, -1, -1, 0, -1, -1, -1, -1, -1, -1]
    ongoing = failure_labels(features, history, horizon="10min", as_of=T0 + 4 * STEP).tolist()
    assert ongoing[:5] == [0, 1, 1, -1, -1]  # the incident still open at 00:20 is ongoing, end unknown


def test_shap_contributions_and_bias_sum_to_the_raw_margin(fleet: dict, lgbm: LGBMFailurePredictor) -> None:
    X = fleet["features"][~fleet["train"]].iloc[::50]
    contrib = lgbm.contributions(X)
    assert list(contrib.columns) == [*lgbm.feature_names_, "bias"] and contrib.index.equals(X.index)
    risk = lgbm.predict(X)["risk"].to_numpy()
    margin = np.log(risk / (1.0 - risk))
    np.testing.assert_allclose(contrib.sum(axis=1).to_numpy(), margin, rtol=1e-6, atol=1e-6)
    assert contrib["bias"].nunique() == 1  # one base value; the rest is the row's own story


def test_top_features_travel_as_json_ready_records(fleet: dict, lgbm: LGBMFailurePredictor) -> None:
    import json

    from models.failure.base import top_features

    X = fleet["features"][~fleet["train"]]
    row = X.loc[[lgbm.predict(X)["risk"].idxmax()]]
    top = top_features(lgbm, row, k=3)
    assert [set(t) for t in top] == [{"feature", "value", "contribution"}] * 3
    assert json.loads(json.dumps(top)) == top  # plain floats and strings
    contrib = lgbm.contributions(row).drop(columns="bias").iloc[0]
    expected = contrib.abs().sort_values(ascending=False, kind="stable").index[:3].tolist()
    assert [t["feature"] for t in top] == expected
    assert top[0]["contribution"] == pytest.approx(contrib[expected[0]])
    assert top[0]["value"] == pytest.approx(row[expected[0]].iloc[0])
    assert top_features(lgbm, row.iloc[0], k=1)[0]["feature"] == expected[0]  # a Series row works too
    assert top_features(UtilisationRulePredictor().fit(X, np.zeros(len(X))), row) == []
    with pytest.raises(ValueError, match="one feature row"):
        top_features(lgbm, X.head(2))
