"""The detect flow scores whole services per task; how many tasks must not change a score."""

from __future__ import annotations

import pandas as pd
import pytest

from flows.detect_scoring import service_batches
from models.anomaly.streaming import StreamingAnomalyDetector
from simulator import SimulatorSource


@pytest.fixture(scope="module")
def fleet() -> tuple[pd.DataFrame, pd.DataFrame]:
    batch = SimulatorSource(seed=3, days=4, end=pd.Timestamp("2026-03-05", tz="UTC")).fetch()
    return batch.telemetry, batch.catalogue


@pytest.mark.parametrize("n_batches", [1, 2, 4, 50])
def test_batches_hold_whole_services_and_every_series_once(fleet, n_batches: int) -> None:
    telemetry, catalogue = fleet
    services = catalogue.set_index("unique_id")["service"]
    batches = service_batches(telemetry, catalogue, n_batches)
    assert len(batches) == min(n_batches, services.nunique())
    assert sum(len(b) for b in batches) == len(telemetry)
    owners = [set(b["unique_id"].map(services)) for b in batches]
    assert all(not (a & b) for i, a in enumerate(owners) for b in owners[i + 1 :])  # a service in one batch


def test_a_score_does_not_depend_on_which_services_share_its_batch(fleet) -> None:
    telemetry, catalogue = fleet
    detector = StreamingAnomalyDetector(suppress=False).fit(telemetry[telemetry["ds"] < telemetry["ds"].min() + pd.Timedelta(days=1)])

    def scored(n: int) -> pd.DataFrame:
        parts = [detector.predict(b) for b in service_batches(telemetry, catalogue, n)]
        return pd.concat(parts).sort_values(["unique_id", "ds"]).reset_index(drop=True)

    together, apart = scored(1), scored(6)
    pd.testing.assert_frame_equal(together, apart)
    assert (together["score"] > 0).any()
