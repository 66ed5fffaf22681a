"""Watermarks: how far each source's stream has been safely stored in the lake.

An incremental source pulls ``[watermark - overlap, now)`` (the overlap re-reads late samples;
the lake's upsert makes the re-read harmless) and the watermark advances only after the lake
write succeeded, so a failed run is simply re-done by the next one: nothing skipped, nothing
double-counted. Stored as the lake dataset ``watermarks`` keyed by ``(source, stream)``.
"""

from __future__ import annotations

import pandas as pd

from foresight.lake import Lake


class WatermarkStore:
    def __init__(self, lake: Lake) -> None:
        self.lake = lake

    def get(self, source: str, stream: str = "default") -> pd.Timestamp | None:
        """The newest time stored for ``(source, stream)``, or None before the first pull."""
        if not self.lake.exists("watermarks"):
            return None
        rows = self.lake.read("watermarks")
        hit = rows[(rows["source"] == source) & (rows["stream"] == stream)]
        return None if hit.empty else pd.Timestamp(hit["watermark"].iloc[0])

    def advance(self, source: str, stream: str, watermark: pd.Timestamp) -> pd.Timestamp:
        """Move the watermark forward (never back: a late, older batch cannot rewind it)."""
        if watermark.tzinfo is None:
            raise ValueError(f"watermark for {source}/{stream} must be timezone-aware, got {watermark}")
        current = self.get(source, stream)
        new = watermark if current is None else max(current, watermark)
        self.lake.upsert("watermarks", pd.DataFrame([{
            "source": source, "stream": stream, "watermark": new.tz_convert("UTC"),
            "updated_at": pd.Timestamp.now(tz="UTC"),
        }]))
        return new

    def window_start(self, source: str, stream: str, *, overlap: pd.Timedelta,
                     default_lookback: pd.Timedelta, now: pd.Timestamp) -> pd.Timestamp:
        """Where the next pull starts: the watermark less the overlap, or ``now - default_lookback``."""
        current = self.get(source, stream)
        return now - default_lookback if current is None else current - overlap
