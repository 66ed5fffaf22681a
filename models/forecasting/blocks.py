"""Series blocks: how a fleet is sharded into tasks, and the work one block's task does.

A local (per-series) forecaster, ``auto`` included, fits each block of series on its own, so a
fleet fans out over tasks of whole blocks. One task per series would pay a task's overhead
(scheduling, shipping the model and the settings, a Prefect task run) once per series; blocks
pay it once per ``block_size`` series. A global model learns across all series at once: it is
one block.

:func:`series_blocks` splits ``n`` ids into ``max(1, n // block_size)`` contiguous blocks of
near-equal size, so every block but a fleet smaller than ``block_size`` holds at least
``block_size`` series and fewer than ``2 * block_size``. The forecast flow and
``foresight bench scale-out`` both shard through it, and both run :func:`forecast_block` per
block.

Which series share a block matters to ``auto``: its fleet default, its interval factor and its
budget of series for expensive candidates are per fit, so per block (docs/production.md, *Sizing*).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from foresight.schemas import ID_COL


def series_blocks(ids: Sequence[Any] | np.ndarray | pd.Index, block_size: int) -> list[np.ndarray]:
    """``ids`` in order, split into ``max(1, len(ids) // block_size)`` contiguous blocks of
    near-equal size (each in ``[block_size, 2 * block_size)`` when there are at least
    ``block_size`` ids; one block otherwise). Every id lands in exactly one block."""
    if block_size < 1:
        raise ValueError(f"block_size must be >= 1, got {block_size}")
    values = np.asarray(ids)
    if values.size == 0:
        return []
    return list(np.array_split(values, max(1, values.size // block_size)))


def frame_blocks(series: pd.DataFrame, block_size: int, *, is_global: bool = False) -> list[pd.DataFrame]:
    """Long ``series`` (``unique_id, ds, y``) as one frame per block of series (in order of first
    appearance); a global model's fleet is one block."""
    if is_global:
        return [series]
    ids = series[ID_COL].unique()
    return [series[series[ID_COL].isin(part)] for part in series_blocks(ids, block_size)]


def forecast_block(model: Any, block: pd.DataFrame, *, freq: str, horizon: int, level: int) -> pd.DataFrame:
    """A fresh clone of ``model`` fitted on ``block``'s history (for ``auto``: backtest every
    candidate, choose per series, calibrate) and its ``horizon``-step forecast at ``level`` %."""
    return model.clone().fit(block, freq=freq).predict(horizon, level)
