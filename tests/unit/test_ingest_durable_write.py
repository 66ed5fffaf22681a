"""The ingest acknowledges upstream and moves watermarks only for rows the lake really holds."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from connectors.sources.base import SourceBatch
from flows.ingest import store_batch
from foresight.contracts.results import CheckResult, ContractResult
from foresight.lake import PART_FILE, Lake, LakeWriteNotDurableError
from foresight.quarantine import as_quarantine_frame
from foresight.schemas import CATALOGUE_COLUMNS
from foresight.watermarks import SOURCE_STREAM, WatermarkStore


class LossyLake(Lake):
    """A lake whose storage silently keeps all but the last row of each telemetry partition it writes."""

    def _write_atomic(self, directory: str, df: pd.DataFrame, name: str = PART_FILE) -> None:
        super()._write_atomic(directory, df.iloc[:-1] if "/telemetry/" in directory else df, name)


def _batch(acks: list[str]) -> tuple[SourceBatch, ContractResult]:
    ds = pd.date_range("2026-03-01 22:00", periods=48, freq="5min", tz="UTC")  # two UTC days
    clean = pd.DataFrame({"unique_id": "cart/i-1/cpu_pct", "ds": ds, "y": np.linspace(10, 60, 48)})
    batch = SourceBatch(source="kafka", telemetry=clean, catalogue=pd.DataFrame(columns=list(CATALOGUE_COLUMNS)),
                        on_stored=lambda: acks.append("committed"))
    result = ContractResult(dataset="telemetry", source="kafka", batch_id="kafka-b1", passed=True, clean=clean,
                            quarantined=as_quarantine_frame(None), checks=[CheckResult("not_empty", True, "48 rows")])
    return batch, result


def test_a_write_the_lake_did_not_keep_commits_no_offsets_and_moves_no_watermark(tmp_path: Path) -> None:
    acks: list[str] = []
    lake = LossyLake(tmp_path)
    batch, result = _batch(acks)
    with pytest.raises(LakeWriteNotDurableError, match="lake telemetry: 2 of 48 rows just written are missing"):
        store_batch.fn(lake, batch, result)
    assert acks == [], "Kafka offsets stay uncommitted: the messages will be redelivered"
    assert WatermarkStore(lake).all_for("kafka") == {}, "the watermark stays: the next pull re-reads the window"
    [row] = lake.read("batches").to_dict("records")
    assert row["accepted"] == 0 and "durable_write" in json.loads(row["failed_checks"]), row


def test_a_kept_write_commits_offsets_and_moves_the_watermark(tmp_path: Path) -> None:
    acks: list[str] = []
    lake = Lake(tmp_path)
    batch, result = _batch(acks)
    outcome = store_batch.fn(lake, batch, result)
    assert acks == ["committed"] and outcome["accepted"] == 48
    assert WatermarkStore(lake).all_for("kafka") == {SOURCE_STREAM: result.clean["ds"].max()}
    assert lake.read("batches")["accepted"].tolist() == [48]
