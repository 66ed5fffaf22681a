from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from foresight.lake import Lake
from foresight.watermarks import WatermarkStore

T0 = pd.Timestamp("2026-03-01 12:00", tz="UTC")


def test_watermarks_start_empty_advance_and_never_rewind(tmp_path: Path) -> None:
    store = WatermarkStore(Lake(tmp_path))
    assert store.get("prom", "cpu") is None
    assert store.advance("prom", "cpu", T0) == T0
    assert store.advance("prom", "cpu", T0 - pd.Timedelta("1h")) == T0, "an older batch cannot rewind it"
    store.advance("prom", "mem", T0 + pd.Timedelta("1h"))
    assert store.get("prom", "cpu") == T0 and store.get("prom", "mem") == T0 + pd.Timedelta("1h")


def test_next_window_overlaps_the_watermark(tmp_path: Path) -> None:
    store = WatermarkStore(Lake(tmp_path))
    kwargs = {"overlap": pd.Timedelta("5min"), "default_lookback": pd.Timedelta("7D"), "now": T0}
    assert store.window_start("cw", "a", **kwargs) == T0 - pd.Timedelta("7D")
    store.advance("cw", "a", T0 - pd.Timedelta("1h"))
    assert store.window_start("cw", "a", **kwargs) == T0 - pd.Timedelta("65min")


def test_naive_watermark_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        WatermarkStore(Lake(tmp_path)).advance("s", "x", pd.Timestamp("2026-03-01"))
