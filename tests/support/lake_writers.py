"""Lake writers for concurrency tests, importable by spawned processes."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

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
    from foresight.lake import Lake

    lake = Lake(url)
    for round_ in range(rounds):
        barrier.wait(timeout=60)
        lake.upsert("telemetry", writer_rows(writer, round_, rows))


def hold_lock_forever(url: str, dataset: str, held: Any) -> None:
    """Take ``dataset``'s writer lock, say so, and hang until killed (a writer that crashes mid-write)."""
    import time

    from foresight.lake import Lake

    with Lake(url).lock(dataset):
        held.set()
        time.sleep(600)
