"""Lake writers for concurrency tests, importable by spawned processes."""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np
import pandas as pd

from foresight.lake import Lake

DAY = pd.Timestamp("2026-03-01", tz="UTC")


def writer_rows(writer: int, round_: int, rows: int) -> pd.DataFrame:
    """Rows only this writer writes in this round, all in one partition (one UTC day)."""
    return pd.DataFrame({
        "unique_id": f"w{writer}/r{round_}",
        "ds": pd.date_range(DAY, periods=rows, freq="1min"),
        "y": np.full(rows, float(writer)),
    })


def upsert_rounds(url: str, writer: int, rounds: int, rows: int, barrier: Any) -> None:
    """Upsert this writer's rows once per round, starting each round with the other writer."""
    lake = Lake(url)
    for round_ in range(rounds):
        barrier.wait(timeout=60)
        lake.upsert("telemetry", writer_rows(writer, round_, rows))


def hold_lock_forever(url: str, dataset: str, held: Any) -> None:
    """Take ``dataset``'s writer lock, say so, and hang until killed (a writer that crashes mid-write)."""
    with Lake(url).lock(dataset):
        held.set()
        time.sleep(600)


def in_lockstep(step: Any, *, writers: int = 2, rounds: int, timeout: float = 120.0) -> None:
    """Run ``step(writer, round_)`` for every round in one thread per writer, each round started
    by all writers together (a barrier); re-raise the first error any thread met."""
    barrier = threading.Barrier(writers)
    errors: list[BaseException] = []

    def run(writer: int) -> None:
        try:
            for round_ in range(rounds):
                barrier.wait(timeout=30)
                step(writer, round_)
        except BaseException as exc:  # a thread's failure must fail the test
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=run, args=(w,)) for w in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=timeout)
    if errors:
        raise errors[0]
