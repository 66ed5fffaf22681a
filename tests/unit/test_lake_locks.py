"""Concurrent lake writers: a lock per dataset keeps every writer's rows; waits are bounded."""

from __future__ import annotations

import multiprocessing
import os
import socket
import threading
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from foresight.errors import ConfigError, DependencyUnavailableError
from foresight.lake import Lake, LakeWriteNotDurableError
from foresight.lake_locks import LakeLockTimeout
from foresight.watermarks import WatermarkStore
from support.lake_writers import hold_lock_forever, in_lockstep, upsert_rounds, writer_rows

ROUNDS, ROWS = 20, 200
T0 = pd.Timestamp("2026-03-01 12:00", tz="UTC")


def test_two_processes_upserting_one_partition_keep_every_row(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(2)
    writers = [ctx.Process(target=upsert_rounds, args=(str(tmp_path), w, ROUNDS, ROWS, barrier)) for w in (0, 1)]
    for p in writers:
        p.start()
    for p in writers:
        p.join(timeout=180)
    assert [p.exitcode for p in writers] == [0, 0]
    stored = Lake(tmp_path).read("telemetry", columns=["unique_id"])
    per_round = stored["unique_id"].value_counts()
    lost = sorted(f"w{w}/r{r}" for w in (0, 1) for r in range(ROUNDS) if per_round.get(f"w{w}/r{r}", 0) != ROWS)
    assert not lost, f"{len(lost)} of {2 * ROUNDS} writer-rounds lost rows: {lost[:6]}"
    assert len(stored) == 2 * ROUNDS * ROWS


def test_concurrent_watermark_advances_never_rewind_or_drop_a_stream(tmp_path: Path) -> None:
    rounds = 30
    stores = [WatermarkStore(Lake(tmp_path)) for _ in (0, 1)]

    def advance(writer: int, r: int) -> None:
        mark = T0 + pd.Timedelta(minutes=2 * r + writer)  # writer 1 is always a minute ahead
        stores[writer].advance_many("prom", {"shared": mark, f"own-{writer}": mark})

    in_lockstep(advance, rounds=rounds)
    marks = WatermarkStore(Lake(tmp_path)).all_for("prom")
    last = T0 + pd.Timedelta(minutes=2 * (rounds - 1))
    assert marks == {"shared": last + pd.Timedelta(minutes=1), "own-0": last, "own-1": last + pd.Timedelta(minutes=1)}


def test_a_held_lock_times_out_with_an_error_naming_dataset_and_holder(tmp_path: Path) -> None:
    held, release = threading.Event(), threading.Event()

    def holder() -> None:
        with Lake(tmp_path).lock("telemetry"):
            held.set()
            release.wait(30)

    thread = threading.Thread(target=holder)
    thread.start()
    try:
        assert held.wait(10)
        with pytest.raises(LakeLockTimeout) as caught:
            Lake(tmp_path, lock_timeout=0.3).upsert("telemetry", writer_rows(0, 0, 5))
    finally:
        release.set()
        thread.join()
    error = caught.value
    assert isinstance(error, DependencyUnavailableError) and error.retryable
    assert "'telemetry'" in error.message and f"pid {os.getpid()} on {socket.gethostname()}" in error.message
    assert "gave up after 0 s" in error.message
    assert Lake(tmp_path, lock_timeout=1).upsert("telemetry", writer_rows(0, 0, 5)).inserted == 5, "free once released"


def test_a_writer_killed_while_holding_the_lock_leaves_no_stale_lock(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    held = ctx.Event()
    crashed = ctx.Process(target=hold_lock_forever, args=(str(tmp_path), "telemetry", held))
    crashed.start()
    try:
        assert held.wait(60), "the writer took the lock"
        with pytest.raises(LakeLockTimeout, match=f"pid {crashed.pid} on"):
            Lake(tmp_path, lock_timeout=0.2).upsert("telemetry", writer_rows(0, 0, 5))
    finally:
        crashed.kill()
        crashed.join(30)
    assert Lake(tmp_path, lock_timeout=5).upsert("telemetry", writer_rows(0, 0, 5)).inserted == 5


def test_locks_are_reentrant_within_a_thread(tmp_path: Path) -> None:
    lake = Lake(tmp_path, lock_timeout=0.2)
    with lake.lock("watermarks"), lake.lock("watermarks"):
        assert lake.upsert("watermarks", pd.DataFrame({"source": ["s"], "stream": ["x"], "watermark": [T0]})).inserted == 1


def test_lock_files_are_hidden_from_readers(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    lake.upsert("telemetry", writer_rows(0, 0, 5))
    assert (tmp_path / ".locks" / "telemetry.lock").is_file()
    assert len(lake.read("telemetry")) == 5 and lake.list_files("telemetry") == [
        str(tmp_path / "telemetry" / "date=2026-03-01" / "part-0.parquet")]


def test_a_lake_that_cannot_lock_refuses_to_write(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="only local disk and s3:// lakes can lock"):
        Lake("mock:///lake").upsert("telemetry", writer_rows(0, 0, 5))


def test_confirm_stored_finds_rows_missing_from_the_written_partition(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    rows = pd.concat([writer_rows(0, 0, 30), writer_rows(1, 0, 30).assign(ds=lambda d: d["ds"] + pd.Timedelta("1D"))],
                     ignore_index=True)
    lake.upsert("telemetry", rows)
    lake.confirm_stored("telemetry", rows)  # all there: no error
    part = tmp_path / "telemetry" / "date=2026-03-02" / "part-0.parquet"
    pq.write_table(pq.read_table(part).slice(0, 26), part)  # storage "loses" 4 rows of the second day
    with pytest.raises(LakeWriteNotDurableError, match="lake telemetry: 4 of 60 rows just written are missing") as caught:
        lake.confirm_stored("telemetry", rows)
    assert caught.value.retryable
    part.unlink()
    with pytest.raises(LakeWriteNotDurableError, match="30 of 60"):
        lake.confirm_stored("telemetry", rows)


def test_a_dataset_folder_without_files_yet_reads_as_empty(tmp_path: Path) -> None:
    (tmp_path / "watermarks").mkdir()  # what a reader sees while the first writer is still writing
    assert WatermarkStore(Lake(tmp_path)).all_for("prom") == {}
    assert Lake(tmp_path).read("telemetry").empty
