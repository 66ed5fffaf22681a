"""Checkpoints: state and offsets in one file, replaced whole, refused when unreadable."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

from connectors.sinks.checkpoint_store import Checkpoint, CheckpointFormatError, CheckpointStore

AT = pd.Timestamp("2026-01-01T00:00:00Z")


def test_a_checkpoint_round_trips_and_replaces_the_previous_one_whole(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path / "ckpt")
    assert store.load("g", 0) is None
    store.save(Checkpoint("g", 0, {("metrics", 0): 5}, {"n": 1}, AT))
    path = store.save(Checkpoint("g", 0, {("metrics", 0): 9, ("logs", 0): 2}, {"n": 2}, AT))
    loaded = store.load("g", 0)
    assert (
        loaded is not None
        and loaded.offsets == {("metrics", 0): 9, ("logs", 0): 2}
        and loaded.state == {"n": 2}
    )
    assert loaded.written_by.endswith(f":{os.getpid()}")
    assert os.listdir(Path(path).parent) == ["partition-0.ckpt"]  # no temporary file left behind
    assert store.load("g", 1) is None and store.load("other", 0) is None


def test_an_unreadable_checkpoint_is_refused_by_path(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path)
    Path(store.path("g", 3)).parent.mkdir(parents=True)
    Path(store.path("g", 3)).write_bytes(b"not a pickle")
    with pytest.raises(CheckpointFormatError, match="partition-3.ckpt"):
        store.load("g", 3)
