from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from foresight.lake import Lake
from foresight.watermarks import SOURCE_STREAM, WatermarkStore, newest_per_stream, stream_starts

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


def test_advance_many_moves_each_stream_forward_in_one_write(tmp_path: Path) -> None:
    store = WatermarkStore(Lake(tmp_path))
    store.advance_many("cw", {"a": T0, "b": T0 - pd.Timedelta("1h")})
    marks = store.advance_many("cw", {"a": T0 - pd.Timedelta("2h"), "c": T0})
    assert marks == {"a": T0, "c": T0}, "never rewinds"
    assert store.all_for("cw") == {"a": T0, "b": T0 - pd.Timedelta("1h"), "c": T0}
    assert store.all_for("other") == {}


def test_stream_starts_merge_up_to_date_streams_and_leave_laggards_behind() -> None:
    overlap = pd.Timedelta("10min")
    default = T0 - pd.Timedelta("7D")
    marks = {"a": T0, "b": T0 - pd.Timedelta("3min"), "c": T0 - pd.Timedelta("6h")}
    starts = stream_starts(marks, overlap=overlap, default_start=default)
    assert starts["a"] == starts["b"] == T0 - pd.Timedelta("13min"), "nearby starts share the earliest"
    assert starts["c"] == T0 - pd.Timedelta("6h10min"), "a lagging stream resumes from its own mark"
    assert starts[SOURCE_STREAM] == default, "new streams start at the default lookback"


def test_stream_starts_migrate_from_a_source_wide_watermark() -> None:
    starts = stream_starts({SOURCE_STREAM: T0}, overlap=pd.Timedelta("10min"), default_start=T0 - pd.Timedelta("7D"))
    assert starts == {SOURCE_STREAM: T0 - pd.Timedelta("10min")}, "every stream resumes where the source was"
    once_tracked = stream_starts({SOURCE_STREAM: T0 - pd.Timedelta("30D"), "a": T0}, overlap=pd.Timedelta("10min"),
                                 default_start=T0 - pd.Timedelta("7D"))
    assert once_tracked[SOURCE_STREAM] == T0 - pd.Timedelta("7D"), "an old source-wide mark no longer applies"


def test_newest_per_stream_skips_incomplete_streams() -> None:
    ds = pd.Series([T0, T0 + pd.Timedelta("1min"), T0 - pd.Timedelta("1h"), T0])
    streams = pd.Series(["a", "a", "b", "c"])
    assert newest_per_stream(ds, streams, exclude={"c"}) == {"a": T0 + pd.Timedelta("1min"),
                                                           "b": T0 - pd.Timedelta("1h")}
    assert newest_per_stream(ds.iloc[:0], streams.iloc[:0]) == {}
