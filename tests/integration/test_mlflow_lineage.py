"""MLflow lineage on a real (SQLite) tracking store, through the train flow's own task inside a
real Prefect flow run: run names, the lake snapshot as the run's input, the git and Prefect tags,
descriptions, the gate metric under the tag's name; then ``foresight promote`` overriding the gate."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient
from prefect import flow
from prefect.runtime import flow_run
from typer.testing import CliRunner

from flows.lineage import FLOW_RUN_ID_TAG, FLOW_RUN_URL_TAG
from flows.train import register_and_gate
from foresight.cli import app
from foresight.lake_snapshot import LakeSnapshot, describe_snapshot
from foresight.lineage import COMMIT_ENV, GIT_COMMIT_TAG
from foresight.manual_promotion import GATE_REASON_TAG, PROMOTION_HISTORY, REPLACED_BY
from foresight.model_registry import DECISION_TAG, MODEL_DESCRIPTIONS, REASON_TAG
from foresight.promotion import CHALLENGER, CHAMPION
from foresight.pyfunc import forecast_input
from foresight.schemas import UTC_DTYPE
from foresight.settings import load_settings
from models.evaluation.gate import Evaluation
from models.forecasting.base import Forecaster

pytestmark = [pytest.mark.integration, pytest.mark.slow]
NAME = "capacity-forecaster"
COMMIT = "0123456789abcdef0123456789abcdef01234567"


class LastValue(Forecaster):
    """Repeats each series' last value (a test-only model: these tests are about what is logged)."""

    name = "last_value_test"

    def _fit(self, df: pd.DataFrame) -> None:
        self.last_ = df.sort_values("ds").groupby("unique_id").tail(1).set_index("unique_id")

    def _predict(self, h: int, level: int) -> pd.DataFrame:
        step = pd.Timedelta(pd.tseries.frequencies.to_offset(self.freq_))
        rows = [{"unique_id": uid, "ds": row.ds + step * k, "yhat": row.y, "yhat_lower": row.y, "yhat_upper": row.y}
                for uid, row in self.last_.iterrows() for k in range(1, h + 1)]
        out = pd.DataFrame(rows)
        return out.astype({"unique_id": "string", "ds": UTC_DTYPE})


def lake_frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    ds = pd.date_range("2026-12-01", periods=24, freq="h", tz="UTC").astype(UTC_DTYPE)
    telemetry = pd.DataFrame({"unique_id": "cart/i-1/cpu_pct", "ds": ds, "y": np.linspace(20, 40, 24)})
    catalogue = pd.DataFrame({"unique_id": ["cart/i-1/cpu_pct"], "source": ["simulator"]})
    return telemetry, catalogue


@flow(name="train-lineage-test")
def train_like(mase: float, snapshot: LakeSnapshot) -> dict[str, Any]:
    """One candidate through the train flow's register-and-gate task, as the train flow calls it."""
    telemetry, _ = lake_frames()
    settings = load_settings()
    candidate = Evaluation("mase", mase, False, {"smape": mase / 10})  # the figures lack the gate's name
    baseline = Evaluation("mase", 0.95, False, {"smape": 0.095})
    champion = None if mase == 0.70 else Evaluation("mase", 0.70, False, {})
    result = register_and_gate(settings, "forecaster", LastValue().fit(telemetry), candidate, baseline, champion,
                               {}, forecast_input(3), snapshot=snapshot)
    return {**result, "flow_run_id": str(flow_run.get_id())}


@pytest.fixture(scope="module")
def trained(prefect_harness: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Two train-like runs in a fresh home: v1 champion, v2 a challenger that 'does not beat champion'."""
    home = tmp_path_factory.mktemp("lineage") / ".foresight"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FORESIGHT_HOME", str(home))
        mp.setenv(COMMIT_ENV, COMMIT)  # an image's commit (the checkout's is tested in test_lineage)
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        snapshot = describe_snapshot(str(home / "lake"), *lake_frames())
        first = train_like(0.70, snapshot)
        second = train_like(0.72, snapshot)
        settings = load_settings()
        yield {"first": first, "second": second, "snapshot": snapshot, "home": home,
               "client": MlflowClient(settings.tracking_uri, registry_uri=settings.tracking_uri)}


def test_a_train_run_is_named_and_carries_its_data_code_and_flow_run(trained: dict[str, Any]) -> None:
    client, second, snapshot = trained["client"], trained["second"], trained["snapshot"]
    assert second["decision"] == CHALLENGER
    run = client.get_run(second["run_id"])
    assert run.info.run_name == "capacity-forecaster last_value_test 2026-12-01T23:00Z"
    inputs = run.inputs.dataset_inputs
    assert len(inputs) == 1
    dataset = inputs[0].dataset
    assert (dataset.name, dataset.digest) == ("foresight-lake-forecaster", snapshot.digest)
    assert '"num_rows": 24' in dataset.profile and '"simulator": 1' in dataset.profile
    assert str(trained["home"] / "lake") in dataset.source
    assert {t.key: t.value for t in inputs[0].tags}["mlflow.data.context"] == "training"
    tags = run.data.tags
    assert tags[GIT_COMMIT_TAG] == COMMIT
    assert tags[FLOW_RUN_ID_TAG] == second["flow_run_id"] != trained["first"]["flow_run_id"]
    assert second["flow_run_id"] in tags[FLOW_RUN_URL_TAG]
    assert tags["foresight.data.digest"] == snapshot.digest and tags["foresight.data.rows"] == "24"
    # The tag names a metric the run has, with the gate's value.
    assert run.data.metrics[tags["foresight.gate_metric"]] == pytest.approx(0.72)


def test_the_model_and_its_versions_are_described(trained: dict[str, Any]) -> None:
    client = trained["client"]
    assert client.get_registered_model(NAME).description == MODEL_DESCRIPTIONS[NAME]
    text = client.get_model_version(NAME, trained["second"]["version"]).description
    assert "24 samples of 1 series (simulator: 1)" in text and trained["snapshot"].digest in text
    assert "candidate 0.72, baseline 0.95, champion 0.7" in text
    assert "**challenger**: mase 0.72 does not beat champion 0.7 by 1%" in text
    assert client.get_run(trained["second"]["run_id"]).data.tags["mlflow.note.content"] == text


def _promote(home: Path, *args: str) -> Any:
    return CliRunner().invoke(app, ["promote", *args], env={"FORESIGHT_HOME": str(home), "FORESIGHT_USER": "alice"})


def test_promote_by_hand_moves_champion_clears_challenger_and_records_who_and_why(trained: dict[str, Any]) -> None:
    client, home = trained["client"], trained["home"]
    first, second = trained["first"]["version"], trained["second"]["version"]

    refused = _promote(home, NAME, "99", "--reason", "x")
    assert refused.exit_code != 0
    assert f"error: {NAME} has no version '99'; its versions: {first}, {second}" in refused.output
    unknown = _promote(home, "capacity-forecastr", second, "--reason", "x")
    assert unknown.exit_code != 0 and "unknown model 'capacity-forecastr'" in unknown.output
    blank = _promote(home, NAME, second, "--reason", "  ")
    assert blank.exit_code != 0 and "needs a reason" in blank.output
    assert {a: str(v) for a, v in client.get_registered_model(NAME).aliases.items()} == \
        {CHAMPION: first, CHALLENGER: second}  # nothing moved on a refusal

    done = _promote(home, "forecaster", second, "--reason", "steadier on the Black Friday replay")
    assert done.exit_code == 0, done.output
    assert f"champion -> v{second} (was v{first}), by alice" in done.output
    registered = client.get_registered_model(NAME)
    assert {a: str(v) for a, v in registered.aliases.items()} == {CHAMPION: second}
    version = client.get_model_version(NAME, second)
    tags = version.tags
    assert tags[DECISION_TAG] == "promote-by-hand"
    assert tags[REASON_TAG] == "promoted by hand by alice: steadier on the Black Friday replay"
    assert "does not beat champion" in tags[GATE_REASON_TAG]  # the gate's verdict kept, not current
    assert tags["foresight.promoted_by"] == "alice" and tags["foresight.promoted_at"].endswith("Z")
    assert client.get_run(version.run_id).data.tags["foresight.promotion_reason"] == \
        "steadier on the Black Friday replay"
    assert "Promoted to champion by hand by alice" in version.description
    assert client.get_model_version(NAME, first).tags[REPLACED_BY].startswith(f"v{second} by alice")
    assert registered.tags[PROMOTION_HISTORY].endswith(f"v{second} by alice (replacing v{first}): "
                                                        "steadier on the Black Friday replay")

    again = _promote(home, NAME, second, "--reason", "again")
    assert again.exit_code == 0 and "already is the champion" in again.output

