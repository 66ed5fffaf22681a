"""What every LightGBM-backed model reports the same way."""

from __future__ import annotations

from typing import Any

import pandas as pd


def booster_importance(booster: Any, feature_names: list[str], kind: str = "gain") -> pd.Series:
    """Total ``gain`` (or ``split`` count) per feature of a trained booster, largest first."""
    if kind not in ("gain", "split"):
        raise ValueError(f"importance kind must be 'gain' or 'split', got {kind!r}")
    values = booster.feature_importance(importance_type=kind)
    return pd.Series(values, index=feature_names, name=kind).sort_values(ascending=False)
