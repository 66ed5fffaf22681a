"""The lake: idempotent upserts, atomic partition writes, reads by time range, DuckDB queries."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from foresight import lake as lake_module
from foresight.lake import Lake, UnknownDatasetError


def _frame(n: int = 600, ids: tuple[str, ...] = ("a", "b"), start: str = "2026-03-01") -> pd.DataFrame:
    ds = pd.date_range(start, periods=n, freq="5min", tz="UTC")
    return pd.concat(
        [pd.DataFrame({"unique_id": uid, "ds": ds, "y": np.arange(n, dtype=float) + i}) for i, uid in enumerate(ids)],
        ignore_index=True,
    )


def test_upsert_is_idempotent_and_partitions_by_utc_day(tmp_path: Path) -> None:
    lake = Lake(tmp_path / "lake")
    df = _frame()
    first = lake.upsert("telemetry", df)
    second = lake.upsert("telemetry", df)
    assert (first.inserted, first.updated) == (len(df), 0)
    assert (second.inserted, second.updated) == (0, len(df))
    back = lake.read("telemetry")
    assert len(back) == len(df)
    assert not back.duplicated(["unique_id", "ds"]).any()
    assert sorted(p.name for p in (tmp_path / "lake" / "telemetry").iterdir()) == ["date=2026-03-01", "date=2026-03-02", "date=2026-03-03"]


def test_shuffled_rows_land_in_their_own_day_with_gaps_between_days(tmp_path: Path) -> None:
    lake = Lake(tmp_path / "lake")
    df = pd.concat([_frame(300), _frame(30, start="2026-03-09 23:00")], ignore_index=True)  # days 1-2, 9-10
    lake.upsert("telemetry", df.sample(frac=1.0, random_state=0))
    partitions = sorted(p.name for p in (tmp_path / "lake" / "telemetry").iterdir())
    assert partitions == ["date=2026-03-01", "date=2026-03-02", "date=2026-03-09", "date=2026-03-10"]
    for part in partitions:
        rows = pq.read_table(tmp_path / "lake" / "telemetry" / part).to_pandas()
        assert (rows["ds"].dt.strftime("date=%Y-%m-%d") == part).all()
    back = lake.read("telemetry").sort_values(["unique_id", "ds"], ignore_index=True)
    want = df.sort_values(["unique_id", "ds"], ignore_index=True)
    pd.testing.assert_frame_equal(back[["unique_id", "ds", "y"]], want, check_dtype=False)


def test_newest_write_of_a_key_wins(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    df = _frame(10, ids=("a",))
    lake.upsert("telemetry", df)
    lake.upsert("telemetry", df.assign(y=-1.0).iloc[5:])
    back = lake.read("telemetry")
    assert back["y"].tolist() == list(range(5)) + [-1.0] * 5


def test_read_filters_half_open_time_range(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    lake.upsert("telemetry", _frame(600, ids=("a",)))
    start, end = pd.Timestamp("2026-03-01 23:00", tz="UTC"), pd.Timestamp("2026-03-02 01:00", tz="UTC")
    back = lake.read("telemetry", start=start, end=end)
    assert back["ds"].min() == start and back["ds"].max() == end - pd.Timedelta("5min")
    assert len(back) == 24
    assert str(back["ds"].dtype) == "datetime64[us, UTC]"


def test_crash_mid_write_leaves_previous_partition_intact(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lake = Lake(tmp_path)
    df = _frame(12, ids=("a",))
    lake.upsert("telemetry", df)
    real_write = pq.write_table

    def crash_after_partial_write(table, where, **kwargs):  # type: ignore[no-untyped-def]
        Path(where).write_bytes(b"PAR1 half a file")
        raise OSError("disk full")

    monkeypatch.setattr(lake_module.pq, "write_table", crash_after_partial_write)
    with pytest.raises(OSError, match="disk full"):
        lake.upsert("telemetry", df.assign(y=99.0))
    monkeypatch.setattr(lake_module.pq, "write_table", real_write)
    files = [p.name for p in (tmp_path / "telemetry").rglob("*") if p.is_file()]
    assert files == ["part-0.parquet"], "no temporary file is left behind"
    assert lake.read("telemetry")["y"].tolist() == df["y"].tolist()


def test_batch_repeating_keys_is_refused(tmp_path: Path) -> None:
    df = _frame(3, ids=("a",))
    with pytest.raises(ValueError, match="repeats keys"):
        Lake(tmp_path).upsert("telemetry", pd.concat([df, df]))


def test_naive_partition_times_are_refused(tmp_path: Path) -> None:
    df = _frame(3, ids=("a",))
    df["ds"] = df["ds"].dt.tz_localize(None)
    with pytest.raises(ValueError, match="timezone-aware"):
        Lake(tmp_path).upsert("telemetry", df)


def test_unknown_dataset_lists_known_ones(tmp_path: Path) -> None:
    with pytest.raises(UnknownDatasetError, match="telemetry"):
        Lake(tmp_path).upsert("metricz", _frame(1))


def test_sql_over_datasets(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    lake.upsert("telemetry", _frame(288))
    out = lake.sql("select unique_id, count(*) as n, max(y) as top from telemetry group by 1 order by 1")
    assert out.to_dict("records") == [{"unique_id": "a", "n": 288, "top": 287.0}, {"unique_id": "b", "n": 288, "top": 288.0}]


def test_unpartitioned_dataset_upserts_by_key(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    cat = pd.DataFrame({"unique_id": ["a", "b"], "source": "sim", "metric": "cpu_pct", "labels": "{}",
                        "service": "cart", "resource_id": "i-1", "instance_type": "m6i.large", "unit": "percent"})
    lake.upsert("catalogue", cat)
    lake.upsert("catalogue", cat.assign(service="checkout").iloc[:1])
    back = lake.read("catalogue")
    assert back["service"].tolist() == ["checkout", "cart"]


def test_rejected_messages_are_kept_with_their_reason_once(tmp_path: Path) -> None:
    from foresight.quarantine import read_rejected, write_rejected

    lake = Lake(tmp_path)
    rejected = pd.DataFrame({"origin": ["metrics/0/17"], "raw": ["{not json"], "reason": ["malformed JSON"]})
    first = write_rejected(lake, "kafka", rejected)
    assert write_rejected(lake, "kafka", rejected) == first
    back = read_rejected(lake)
    assert back[["source", "origin", "raw", "reason"]].to_dict("records") == [
        {"source": "kafka", "origin": "metrics/0/17", "raw": "{not json", "reason": "malformed JSON"}]
