"""What every LightGBM-backed model reports the same way."""

from __future__ import annotations

import threading
from typing import Any

import pandas as pd

# LightGBM runs its own OpenMP threads inside every call, and two calls at once from different
# Python threads crash the process: the train flow evaluates candidate and champion at the same
# time on Prefect's thread pool, and CI died with SIGSEGV in a booster's predict while another
# thread trained one (2026-12-07). Every LightGBM train and predict in Foresight holds this lock;
# each call already uses every core, so nothing is lost by running them one at a time.
LIGHTGBM_LOCK = threading.RLock()


def booster_importance(booster: Any, feature_names: list[str], kind: str = "gain") -> pd.Series:
    """Total ``gain`` (or ``split`` count) per feature of a trained booster, largest first."""
    if kind not in ("gain", "split"):
        raise ValueError(f"importance kind must be 'gain' or 'split', got {kind!r}")
    values = booster.feature_importance(importance_type=kind)
    return pd.Series(values, index=feature_names, name=kind).sort_values(ascending=False)
