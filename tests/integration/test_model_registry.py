"""MLflow edge: pyfunc wrappers, the registry on SQLite and on a real tracking server (loopback).

Models here are small test-only subclasses of ``models.base`` so these tests do not depend on
the production model modules.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

import mlflow  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from mlflow import MlflowClient  # noqa: E402
from mlflow.exceptions import MlflowException  # noqa: E402

from foresight.mlflow_runs import serving_requirements  # noqa: E402
from foresight.model_registry import (  # noqa: E402
    ABANDONED,
    DECISION_TAG,
    EXPERIMENTS,
    GATED,
    PENDING,
    REASON_TAG,
    REGISTERED,
    STATE_TAG,
    AliasNotFoundError,
    ModelRegistry,
)
from foresight.promotion import CHALLENGER, CHAMPION, decide  # noqa: E402
from foresight.pyfunc import (  # noqa: E402
    ForesightPyfunc,
    PyfuncInputError,
    UnsupportedFamilyError,
    forecast_input,
    pyfunc_signature,
    to_pyfunc_frame,
)
from foresight.schemas import UTC_DTYPE, validate_telemetry  # noqa: E402
from models.base import Model  # noqa: E402
from models.forecasting.base import Forecaster  # noqa: E402
from support.servers import missing_dependency  # noqa: E402

pytestmark = pytest.mark.slow  # a second or more each: make test runs them, make test-fast does not

# The mlflow CLI of the interpreter running the tests (the project venv in CI), wherever it lives.
MLFLOW_BIN = Path(sys.executable).parent / "mlflow"
# Explicit requirements skip MLflow's inference, which loads each model in a subprocess (~1.8 s).
PIP = [f"mlflow=={mlflow.__version__}", f"pandas=={pd.__version__}", "foresight-aiops"]
FAMILY = "forecaster"


# --------------------------------------------------------------------------- test-only models


class OffsetForecaster(Forecaster):
    """Per-series mean plus ``offset``; interval half-width grows with ``level``."""

    name = "offset_test"

    def _fit(self, df: pd.DataFrame) -> None:
        grouped = df.groupby("unique_id", sort=True)
        self.last_ = grouped["ds"].max()
        self.mean_ = grouped["y"].mean()

    def _predict(self, h: int, level: int) -> pd.DataFrame:
        n = len(self.last_)
        step = pd.Timedelta(pd.tseries.frequencies.to_offset(self.freq_))
        ahead = np.tile(np.arange(1, h + 1), n)
        yhat = np.repeat(self.mean_.to_numpy(), h) + self.params.get("offset", 0.0)
        half = level / 10.0
        return pd.DataFrame(
            {
                "unique_id": pd.array(np.repeat(self.last_.index.to_numpy(), h), dtype="string"),
                "ds": (pd.DatetimeIndex(self.last_).repeat(h) + step * ahead).astype(UTC_DTYPE),
                "yhat": yhat,
                "yhat_lower": yhat - half,
                "yhat_upper": yhat + half,
            }
        )


class LazyLightGBMForecaster(OffsetForecaster):
    """Stands for a model that imports LightGBM only inside ``fit`` / ``predict``."""

    name = "lazy_lightgbm_test"
    pip_extras = ("lightgbm",)


class ZScoreDetector(Model):
    """Anomaly score = |z| / 10 clipped to [0, 1]; refuses non-UTC ``ds`` like real detectors."""

    family = "anomaly"
    name = "zscore_test"

    def fit(self, df: pd.DataFrame) -> ZScoreDetector:
        df = validate_telemetry(df)
        stats = df.groupby("unique_id")["y"].agg(["mean", "std"])
        self.stats_ = stats
        self._fitted = True
        return self

    def predict(self, df: pd.DataFrame) -> pd.DataFrame:
        df = validate_telemetry(df)
        stats = self.stats_.reindex(df["unique_id"]).to_numpy()
        z = (df["y"].to_numpy() - stats[:, 0]) / stats[:, 1]
        return df.assign(score=np.clip(np.abs(z) / 10.0, 0.0, 1.0))


class LogisticRisk(Model):
    """Failure risk = logistic(cpu - 80); ``labels=True`` returns 0/1 labels (a contract breach)."""

    family = "failure"
    name = "logistic_test"

    def fit(self, X: pd.DataFrame, y: pd.Series) -> LogisticRisk:
        self._fitted = True
        return self

    def predict(self, X: pd.DataFrame) -> pd.DataFrame:
        if not isinstance(X["ds"].dtype, pd.DatetimeTZDtype):
            raise TypeError(f"ds must be tz-aware, got {X['ds'].dtype}")
        risk = 1.0 / (1.0 + np.exp(-(X["cpu_mean"].to_numpy() - 80.0)))
        out = X[["service", "ds"]].assign(risk=risk)
        if self.params.get("labels"):
            out["risk"] = (risk > 0.5).astype("int64")
        return out


class UnknownFamilyModel(Model):
    family = "clustering"
    name = "unknown_test"


# --------------------------------------------------------------------------- data


def telemetry(seed: int = 7, periods: int = 48) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    ds = pd.date_range("2026-01-01", periods=periods, freq="h", tz="UTC").astype(UTC_DTYPE)
    frames = [
        pd.DataFrame({"unique_id": uid, "ds": ds, "y": 50.0 + 10 * i + rng.normal(0, 2, periods)})
        for i, uid in enumerate(["cart/i-1/cpu_pct", "cart/i-2/cpu_pct"])
    ]
    return validate_telemetry(pd.concat(frames, ignore_index=True))


def features() -> pd.DataFrame:
    ds = pd.date_range("2026-01-01", periods=4, freq="h", tz="UTC").astype(UTC_DTYPE)
    return pd.DataFrame(
        {"service": ["cart", "cart", "search", "search"], "ds": ds, "cpu_mean": [50.0, 79.0, 81.0, 99.0]}
    )


def save_and_load(model: Model, example: pd.DataFrame, path: Path) -> mlflow.pyfunc.PyFuncModel:
    """Save a wrapped model to a local folder (no tracking store) and load it as a pyfunc."""
    wrapper = ForesightPyfunc(model)
    signature, safe_example = pyfunc_signature(wrapper, example)
    mlflow.pyfunc.save_model(
        path=str(path),
        python_model=wrapper,
        signature=signature,
        input_example=safe_example,
        pip_requirements=PIP,
    )
    return mlflow.pyfunc.load_model(str(path))


# --------------------------------------------------------------------------- pyfunc wrapper


def test_mlflow_schema_refuses_tz_aware_datetimes(tmp_path: Path) -> None:
    """Pins the MLflow behaviour foresight.pyfunc works around: tz-aware input is rejected."""
    df = telemetry()
    loaded = save_and_load(ZScoreDetector().fit(df), df.head(4), tmp_path / "m")
    assert loaded.metadata.get_input_schema().input_types_dict()["ds"].name == "datetime"
    with pytest.raises(MlflowException, match="timezone-naive"):
        loaded.predict(df)


def test_anomaly_scores_round_trip_utc_ds_through_pyfunc(tmp_path: Path) -> None:
    df = telemetry()
    model = ZScoreDetector().fit(df)
    loaded = save_and_load(model, df.head(4), tmp_path / "m")
    got = loaded.predict(to_pyfunc_frame(df))
    pd.testing.assert_frame_equal(got, model.predict(df))
    assert got["ds"].dtype == UTC_DTYPE
    assert got["score"].between(0, 1).all()


def test_failure_pyfunc_returns_probabilities(tmp_path: Path) -> None:
    X = features()
    loaded = save_and_load(LogisticRisk().fit(X, pd.Series([0, 0, 1, 1])), X, tmp_path / "m")
    got = loaded.predict(to_pyfunc_frame(X))
    assert list(got.columns) == ["service", "ds", "risk"]
    assert got["risk"].dtype == "float64"
    assert got["risk"].between(0, 1).all()
    assert got["risk"].is_monotonic_increasing  # cpu_mean increases along the frame
    assert got["ds"].equals(X["ds"])


def test_failure_wrapper_refuses_labels() -> None:
    X = features()
    wrapper = ForesightPyfunc(LogisticRisk(labels=True).fit(X, pd.Series([0, 0, 1, 1])))
    with pytest.raises(TypeError, match="probabilities"):
        wrapper.predict(None, X)


def test_forecaster_pyfunc_level_is_optional(tmp_path: Path) -> None:
    model = OffsetForecaster().fit(telemetry())
    loaded = save_and_load(model, forecast_input(3), tmp_path / "m")
    schema = loaded.metadata.get_input_schema()
    assert {spec.name: spec.required for spec in schema.inputs} == {"h": True, "level": False}
    default = loaded.predict(pd.DataFrame({"h": [2]}))
    wide = loaded.predict(pd.DataFrame({"h": [2], "level": [95]}))
    pd.testing.assert_frame_equal(default, model.predict(2, 80))
    pd.testing.assert_frame_equal(wide, model.predict(2, 95))
    assert (wide["yhat_upper"] - wide["yhat_lower"] > default["yhat_upper"] - default["yhat_lower"]).all()


@pytest.mark.parametrize(
    ("model_input", "message"),
    [
        (pd.DataFrame({"level": [80]}), "needs column 'h'"),
        (pd.DataFrame({"h": pd.Series([], dtype="int64")}), "empty"),
        (pd.DataFrame({"h": [2.5]}), "integer"),
        (pd.DataFrame({"h": ["soon"]}), "integer"),
    ],
)
def test_forecaster_wrapper_rejects_bad_input(model_input: pd.DataFrame, message: str) -> None:
    wrapper = ForesightPyfunc(OffsetForecaster().fit(telemetry()))
    with pytest.raises(PyfuncInputError, match=message):
        wrapper.predict(None, model_input)


def test_wrapper_refuses_unknown_family_and_unfitted_models() -> None:
    with pytest.raises(UnsupportedFamilyError, match="forecaster") as info:
        ForesightPyfunc(UnknownFamilyModel())
    assert info.value.choices == ["anomaly", "failure", "forecaster"]
    with pytest.raises(ValueError, match="not fitted"):
        ForesightPyfunc(OffsetForecaster())


# --------------------------------------------------------------------------- registry cycle


def log_forecaster(registry: ModelRegistry, offset: float, mase: float, tmp: Path) -> tuple[Any, Model]:
    """Fit and log one candidate with a plot-like artifact; returns (CandidateVersion, model)."""
    model = OffsetForecaster(offset=offset).fit(telemetry())
    plot = tmp / f"backtest-{offset}.txt"
    plot.write_text(f"offset {offset}\n")
    candidate = registry.log_candidate(
        model,
        registered_name=REGISTERED[FAMILY],
        experiment=EXPERIMENTS[FAMILY],
        params=model.get_params(),
        metrics={"mase": mase, "smape": mase / 10},
        artifacts={"plots": plot},
        input_example=forecast_input(3),
        tags={"foresight.test": "yes"},
        pip_requirements=PIP,
    )
    return candidate, model


def gate(registry: ModelRegistry, candidate: Any, mase: float, baseline: float = 0.95) -> Any:
    champion = registry.champion(REGISTERED[FAMILY])
    decision = decide(
        mase,
        None if champion is None else champion.metrics["mase"],
        baseline,
        higher_is_better=False,
        min_improvement=0.01,
    )
    registry.apply(REGISTERED[FAMILY], candidate.version, decision, candidate.run_id)
    return decision


def aliases(client: MlflowClient, name: str) -> dict[str, str]:
    """Alias -> version as strings (the SQLite store returns int versions, the REST store str)."""
    return {alias: str(version) for alias, version in client.get_registered_model(name).aliases.items()}


def run_promotion_cycle(registry: ModelRegistry, tracking_uri: str, tmp: Path) -> dict[str, float]:
    """Three candidates through the gate; asserts aliases, tags and loaded models. Returns timings."""
    name = REGISTERED[FAMILY]
    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    timings: dict[str, float] = {}
    assert registry.champion(name) is None

    start = time.perf_counter()
    first, first_model = log_forecaster(registry, offset=0.0, mase=0.70, tmp=tmp)
    timings["log_candidate_first_s"] = time.perf_counter() - start
    assert gate(registry, first, 0.70).promote
    champion = registry.champion(name)
    assert champion is not None
    assert (champion.version, champion.run_id) == (first.version, first.run_id)
    assert champion.metrics == {"mase": 0.70, "smape": pytest.approx(0.07)}

    start = time.perf_counter()
    second, second_model = log_forecaster(registry, offset=5.0, mase=0.72, tmp=tmp)
    timings["log_candidate_next_s"] = time.perf_counter() - start
    decision = gate(registry, second, 0.72)
    assert not decision.promote
    assert aliases(client, name) == {CHAMPION: first.version, CHALLENGER: second.version}
    tags = client.get_model_version(name, second.version).tags
    assert tags[DECISION_TAG] == "challenger"
    assert tags[REASON_TAG] == "mase 0.72 does not beat champion 0.7 by 1%"
    run = client.get_run(second.run_id)
    assert run.data.tags[REASON_TAG] == decision.reason
    assert run.data.tags["foresight.family"] == FAMILY and run.data.tags["foresight.test"] == "yes"
    assert run.data.params == {"offset": "5.0"}
    artifacts = {a.path for a in client.list_artifacts(second.run_id)}
    assert {"decision.txt", "plots"} <= artifacts
    decision_file = Path(client.download_artifacts(second.run_id, "decision.txt", str(tmp)))
    assert decision_file.read_text() == f"challenger: {decision.reason}\n"

    third, third_model = log_forecaster(registry, offset=-1.0, mase=0.61, tmp=tmp)
    assert gate(registry, third, 0.61).reason == "mase 0.61 beats champion 0.7 and baseline 0.95"
    assert aliases(client, name) == {CHAMPION: third.version, CHALLENGER: second.version}
    assert client.get_model_version(name, third.version).tags[DECISION_TAG] == "promote"
    # An artifact of the champion's run (how the detect flow reads the page budget's calibration).
    assert registry.champion_artifact_text(name, "plots/backtest--1.0.txt") == "offset -1.0\n"
    assert registry.champion_artifact_text(name, "plots/backtest-5.0.txt") is None  # the challenger's
    assert registry.champion_artifact_text("never-registered", "plots/backtest--1.0.txt") is None

    start = time.perf_counter()
    loaded = registry.load_model(name)
    timings["load_model_s"] = time.perf_counter() - start
    assert isinstance(loaded, OffsetForecaster)
    pd.testing.assert_frame_equal(loaded.predict(4, 90), third_model.predict(4, 90))
    challenger = registry.load_model(name, alias=CHALLENGER)
    pd.testing.assert_frame_equal(challenger.predict(2), second_model.predict(2))
    assert not challenger.predict(2).equals(first_model.predict(2))

    # A challenger later promoted (e.g. on re-evaluation) loses the challenger alias.
    promote_second = decide(0.5, 0.61, 0.95, higher_is_better=False, min_improvement=0.01)
    registry.apply(name, second.version, promote_second, second.run_id)
    assert aliases(client, name) == {CHAMPION: second.version}
    return timings


@dataclass(frozen=True)
class EmptyStore:
    """A freshly created (schema-migrated) SQLite store, the seconds that took, and the cwd then."""

    path: Path
    seconds: float
    cwd: Path


@pytest.fixture(scope="module")
def empty_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmptyStore]:
    """Created once through ModelRegistry from another cwd; tests copy it (creation takes seconds)."""
    home, cwd = tmp_path_factory.mktemp("template-home"), tmp_path_factory.mktemp("template-cwd")
    registry = ModelRegistry(f"sqlite:///{home / 'mlflow.db'}", (home / "mlartifacts").as_uri())
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(cwd)
        start = time.perf_counter()
        assert registry.champion(REGISTERED[FAMILY]) is None  # first query creates the database
        yield EmptyStore(home / "mlflow.db", time.perf_counter() - start, cwd)


@pytest.fixture()
def sqlite_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, empty_store: EmptyStore
) -> Iterator[tuple[Path, Path]]:
    """A Foresight home holding a copy of the empty store, and a different working directory."""
    home, cwd = tmp_path / "home", tmp_path / "cwd"
    home.mkdir()
    cwd.mkdir()
    shutil.copyfile(empty_store.path, home / "mlflow.db")
    monkeypatch.chdir(cwd)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    yield home, cwd


def test_creating_a_sqlite_store_leaves_nothing_in_the_working_directory(empty_store: EmptyStore) -> None:
    print(f"\nsqlite: creating the database (schema migration) took {empty_store.seconds:.2f}s")
    assert empty_store.path.is_file()
    assert list(empty_store.cwd.iterdir()) == []


def test_promotion_cycle_on_sqlite(
    sqlite_home: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    home, cwd = sqlite_home
    uri = f"sqlite:///{home / 'mlflow.db'}"
    registry = ModelRegistry(uri, (home / "mlartifacts").as_uri())

    experiment_id = registry.experiment_id(EXPERIMENTS[FAMILY])
    assert registry.experiment_id(EXPERIMENTS[FAMILY]) == experiment_id  # idempotent
    experiment = MlflowClient(tracking_uri=uri).get_experiment(experiment_id)
    assert experiment.artifact_location == (home / "mlartifacts" / EXPERIMENTS[FAMILY]).as_uri()

    timings = run_promotion_cycle(registry, uri, home)

    # The registry never leaks its URI into the process-wide MLflow state.
    assert "MLFLOW_TRACKING_URI" not in os.environ
    # A plain pyfunc consumer: {h: 3} gives 3 rows per series with UTC timestamps.
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", uri)
    pyfunc = mlflow.pyfunc.load_model(f"models:/{REGISTERED[FAMILY]}@{CHAMPION}")
    out = pyfunc.predict(pd.DataFrame({"h": [3]}))
    assert out.groupby("unique_id").size().to_dict() == {"cart/i-1/cpu_pct": 3, "cart/i-2/cpu_pct": 3}
    assert out["ds"].dtype == UTC_DTYPE

    assert not (cwd / "mlruns").exists()
    assert list(cwd.iterdir()) == []
    assert (home / "mlartifacts" / EXPERIMENTS[FAMILY]).is_dir()
    print(f"\nsqlite: {timings}")


def test_a_model_logged_without_requirements_records_the_pinned_serving_ones(
    sqlite_home: tuple[Path, Path],
) -> None:
    home, _ = sqlite_home
    uri = f"sqlite:///{home / 'mlflow.db'}"
    registry = ModelRegistry(uri, (home / "mlartifacts").as_uri())
    model = LazyLightGBMForecaster().fit(telemetry())
    logged = registry.log_candidate(
        model, registered_name=REGISTERED[FAMILY], experiment=EXPERIMENTS[FAMILY], params={},
        metrics={"mase": 0.7}, artifacts={}, input_example=forecast_input(3),
    )
    assert logged.version == "1"
    [requirements] = (home / "mlartifacts").rglob("requirements.txt")  # the one model logged
    assert requirements.read_text().split() == serving_requirements(model)
    # MLflow's own inference would miss LightGBM: nothing imported it while the model was logged.
    assert {f"mlflow=={mlflow.__version__}", f"lightgbm=={version('lightgbm')}"} <= set(requirements.read_text().split())


def test_champion_is_none_without_a_champion_alias(sqlite_home: tuple[Path, Path]) -> None:
    home, _ = sqlite_home
    uri = f"sqlite:///{home / 'mlflow.db'}"
    registry = ModelRegistry(uri, (home / "mlartifacts").as_uri())
    assert registry.champion("never-registered") is None
    MlflowClient(tracking_uri=uri, registry_uri=uri).create_registered_model("no-alias-yet")
    assert registry.champion("no-alias-yet") is None
    with pytest.raises(AliasNotFoundError, match="no version with alias 'champion'") as info:
        registry.load_model("no-alias-yet")
    assert (info.value.registered_name, info.value.alias) == ("no-alias-yet", CHAMPION)


def test_missing_artifact_fails_before_any_run(sqlite_home: tuple[Path, Path]) -> None:
    home, _ = sqlite_home
    uri = f"sqlite:///{home / 'mlflow.db'}"
    registry = ModelRegistry(uri, (home / "mlartifacts").as_uri())
    experiment_id = registry.experiment_id(EXPERIMENTS[FAMILY])
    model = OffsetForecaster().fit(telemetry())
    with pytest.raises(FileNotFoundError, match="plots"):
        registry.log_candidate(
            model,
            registered_name=REGISTERED[FAMILY],
            experiment=EXPERIMENTS[FAMILY],
            params={},
            metrics={"mase": 0.5},
            artifacts={"plots": home / "missing.png"},
            input_example=forecast_input(3),
        )
    assert MlflowClient(tracking_uri=uri).search_runs([experiment_id]) == []


# --------------------------------------------------------------------------- interrupted train runs


def test_a_version_whose_run_stopped_before_the_gate_is_marked_abandoned(sqlite_home: tuple[Path, Path]) -> None:
    home, _ = sqlite_home
    uri = f"sqlite:///{home / 'mlflow.db'}"
    registry = ModelRegistry(uri, (home / "mlartifacts").as_uri())
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    name = REGISTERED[FAMILY]

    first, _ = log_forecaster(registry, offset=0.0, mase=0.70, tmp=home)
    assert client.get_model_version(name, first.version).tags[STATE_TAG] == PENDING
    gate(registry, first, 0.70)
    assert client.get_model_version(name, first.version).tags[STATE_TAG] == GATED

    # The train run dies here: registered, never gated. The version is marked from its creation.
    killed, _ = log_forecaster(registry, offset=3.0, mase=0.65, tmp=home)
    assert client.get_model_version(name, killed.version).tags[STATE_TAG] == PENDING
    assert aliases(client, name) == {CHAMPION: first.version}

    assert registry.abandon_interrupted(name) == [], "a fresh pending version may be a run on its way to the gate"
    assert registry.abandon_interrupted(name, older_than_seconds=0) == [killed.version]
    tags = client.get_model_version(name, killed.version).tags
    assert tags[STATE_TAG] == ABANDONED
    assert "stopped before the gate decided" in tags[REASON_TAG]
    assert client.get_run(killed.run_id).data.tags[STATE_TAG] == ABANDONED
    # The champion, and a challenger that later loses its alias, were gated: never abandoned.
    later, _ = log_forecaster(registry, offset=5.0, mase=0.72, tmp=home)
    gate(registry, later, 0.72)
    replaced, _ = log_forecaster(registry, offset=6.0, mase=0.73, tmp=home)
    gate(registry, replaced, 0.73)
    assert registry.abandon_interrupted(name, older_than_seconds=0) == []
    assert aliases(client, name) == {CHAMPION: first.version, CHALLENGER: replaced.version}
    assert client.get_model_version(name, later.version).tags[STATE_TAG] == GATED


@pytest.mark.integration
def test_the_next_train_run_tags_the_version_an_interrupted_one_left(
    prefect_harness: None, sqlite_home: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    import foresight.model_registry as model_registry
    from flows.train import register_and_gate
    from foresight.settings import Settings
    from models.evaluation.gate import Evaluation

    home, _ = sqlite_home
    settings = Settings(home=home)
    uri = settings.tracking_uri
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    name = REGISTERED[FAMILY]
    model = OffsetForecaster().fit(telemetry())

    def evaluation(value: float) -> Evaluation:
        return Evaluation("mase", value, False, {"mase": value})

    def killed(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("train run killed between register and alias")

    with monkeypatch.context() as patch:
        patch.setattr(ModelRegistry, "apply", killed)
        state = register_and_gate(settings, FAMILY, model, evaluation(0.5), evaluation(0.9), None, {},
                                  forecast_input(3), return_state=True)
    assert state.is_failed()
    [orphan] = client.search_model_versions(f"name = '{name}'")
    assert orphan.tags[STATE_TAG] == PENDING and not aliases(client, name)

    monkeypatch.setattr(model_registry, "PENDING_GRACE_SECONDS", 0.0)  # as if the next run came later
    result = register_and_gate(settings, FAMILY, model, evaluation(0.5), evaluation(0.9), None, {}, forecast_input(3))

    assert result["decision"] == "promote" and result["version"] != str(orphan.version)
    assert aliases(client, name) == {CHAMPION: result["version"]}
    assert client.get_model_version(name, str(orphan.version)).tags[STATE_TAG] == ABANDONED
    assert client.get_model_version(name, result["version"]).tags[STATE_TAG] == GATED


@pytest.mark.integration
def test_a_miscalibrated_candidate_is_not_promoted_and_mlflow_says_why(
    prefect_harness: None, sqlite_home: tuple[Path, Path]
) -> None:
    from flows.train import register_and_gate
    from foresight.settings import Settings
    from models.evaluation.gate import Evaluation, coverage_refusal

    home, _ = sqlite_home
    settings = Settings(home=home)
    uri = settings.tracking_uri
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    refusal = coverage_refusal(0.71, 80, settings.forecast.coverage_tolerance)
    # Far better MASE than the baseline, but its 80 % interval holds 71 % of the actuals.
    candidate = Evaluation("mase", 0.5, False, {"mase": 0.5, "coverage": 0.71, "coverage_error": -0.09},
                           refusal=refusal)
    result = register_and_gate(settings, FAMILY, OffsetForecaster().fit(telemetry()), candidate,
                               Evaluation("mase", 0.9, False, {"mase": 0.9}), None, {}, forecast_input(3))
    assert result["decision"] == CHALLENGER and "interval coverage 0.71 is outside 0.80 ± 0.05" in result["reason"]
    version = client.get_model_version(REGISTERED[FAMILY], result["version"])
    assert "interval coverage 0.71" in version.tags[REASON_TAG] and version.tags[DECISION_TAG] == CHALLENGER
    assert aliases(client, REGISTERED[FAMILY]) == {CHALLENGER: result["version"]}
    logged = client.get_run(result["run_id"]).data.metrics
    assert logged["coverage"] == pytest.approx(0.71) and logged["coverage_error"] == pytest.approx(-0.09)


@pytest.mark.integration
def test_coverage_by_lead_is_logged_and_a_band_off_at_a_week_is_refused_by_name(
    prefect_harness: None, sqlite_home: tuple[Path, Path]
) -> None:
    from flows.train import register_and_gate
    from foresight.settings import Settings
    from models.evaluation.gate import Evaluation, lead_coverage_refusal

    home, _ = sqlite_home
    settings = Settings(home=home)
    client = MlflowClient(tracking_uri=settings.tracking_uri, registry_uri=settings.tracking_uri)
    by_lead = {"coverage_lead_1h": 0.80, "points_lead_1h": 500.0, "pinball_lead_1h": 0.3,
               "coverage_lead_1d": 0.79, "points_lead_1d": 5000.0, "pinball_lead_1d": 0.5,
               "coverage_lead_7d": 0.62, "points_lead_7d": 5000.0, "pinball_lead_7d": 0.9}
    refusal = lead_coverage_refusal(by_lead, 80, settings.forecast.coverage_tolerance)
    candidate = Evaluation("mase", 0.5, False, {"mase": 0.5, "coverage": 0.76, **by_lead}, refusal=refusal)
    result = register_and_gate(settings, FAMILY, OffsetForecaster().fit(telemetry()), candidate,
                               Evaluation("mase", 0.9, False, {"mase": 0.9}), None, {}, forecast_input(3))
    assert result["decision"] == CHALLENGER and "first week (lead 7d) 0.62 (too narrow" in result["reason"]
    assert "first day" not in result["reason"]
    logged = client.get_run(result["run_id"]).data.metrics
    assert {k: logged[k] for k in by_lead} == pytest.approx(by_lead)


# --------------------------------------------------------------------------- real tracking server


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_healthy(url: str, proc: subprocess.Popen[bytes], log: Path, timeout_s: float = 90.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"mlflow server exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.25)
    raise TimeoutError(f"mlflow server not healthy after {timeout_s}s:\n{log.read_text()[-3000:]}")


@pytest.fixture()
def mlflow_server(tmp_path: Path, empty_store: EmptyStore) -> Iterator[tuple[str, Path, float]]:
    """A real ``mlflow server`` on loopback with a SQLite backend; stopped (whole group) at teardown."""
    if not MLFLOW_BIN.exists():
        missing_dependency(f"{MLFLOW_BIN} not found (pip install mlflow)")
    root = tmp_path / "server"
    root.mkdir()
    shutil.copyfile(empty_store.path, root / "mlflow.db")  # already migrated: a faster start
    port = _free_port()
    log = root / "server.log"
    cmd = [
        str(MLFLOW_BIN), "server",
        "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
        "--default-artifact-root", str(root / "artifacts"),
        "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
    ]  # fmt: skip
    # MLflow 3.17 also starts a job runner and six huey consumers (GenAI jobs) unless told not to.
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    env.pop("MLFLOW_TRACKING_URI", None)
    start = time.perf_counter()
    with log.open("wb") as sink:
        # Own process group: the server forks workers, and teardown must stop all of them.
        proc = subprocess.Popen(cmd, stdout=sink, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, proc, log)
        yield url, root, time.perf_counter() - start
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)


@pytest.mark.integration
def test_promotion_cycle_on_tracking_server(
    mlflow_server: tuple[str, Path, float], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, root, startup_s = mlflow_server
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    registry = ModelRegistry(url, (root / "artifacts").as_uri())
    start = time.perf_counter()
    timings = run_promotion_cycle(registry, url, tmp_path)
    cycle_s = time.perf_counter() - start
    assert not (cwd / "mlruns").exists()
    print(f"\nserver: startup to healthy {startup_s:.2f}s, cycle {cycle_s:.2f}s, {timings}")


@pytest.mark.integration
def test_list_versions_and_show_models_read_aliases_and_the_gates_reasons(sqlite_home: tuple[Path, Path]) -> None:
    import json

    from typer.testing import CliRunner

    from foresight.cli import app

    home, _ = sqlite_home
    uri = f"sqlite:///{home / 'mlflow.db'}"
    registry = ModelRegistry(uri, (home / "mlartifacts").as_uri())
    name = REGISTERED[FAMILY]
    assert registry.list_versions(name) == []
    first, _ = log_forecaster(registry, offset=0.0, mase=0.70, tmp=home)
    gate(registry, first, 0.70)
    second, _ = log_forecaster(registry, offset=3.0, mase=0.90, tmp=home)
    gate(registry, second, 0.90)
    rows = registry.list_versions(name)
    assert [(r["version"], r["aliases"], r["decision"], r["state"]) for r in rows] == [
        (second.version, CHALLENGER, "challenger", GATED), (first.version, CHAMPION, "promote", GATED)]
    assert "does not beat" in rows[0]["reason"] and rows[1]["run_id"] == first.run_id
    answer = CliRunner().invoke(app, ["show", "models", "--output", "json"], env={"FORESIGHT_HOME": str(home)})
    assert answer.exit_code == 0, answer.output
    assert json.loads(answer.stdout) == rows
