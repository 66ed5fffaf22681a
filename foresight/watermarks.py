"""Watermarks: how far each stream of a source has been safely stored in the lake.

An incremental source pulls ``[watermark - overlap, now)`` (the overlap re-reads late samples;
the lake's upsert makes the re-read harmless) and a watermark advances only after the lake
write succeeded, so a failed run is simply re-done by the next one: nothing skipped, nothing
double-counted. Stored as the lake dataset ``watermarks`` keyed by ``(source, stream)``; an
advance reads the current marks and writes the new ones under the dataset's writer lock, so two
writers advancing at once can never rewind each other.

A stream is the unit a source fetches and can fail on its own: a configured PromQL series, a
CloudWatch metric. One refused stream keeps only its own watermark back; the others move on,
and the next run re-reads the lagging stream from where it stopped (see :func:`stream_starts`).
Sources that do not name streams use the single stream :data:`SOURCE_STREAM`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import pandas as pd

from foresight.lake import Lake

SOURCE_STREAM = "all"  # the one stream of a source that does not name its own


class WatermarkStore:
    def __init__(self, lake: Lake) -> None:
        self.lake = lake

    def get(self, source: str, stream: str = "default") -> pd.Timestamp | None:
        """The newest time stored for ``(source, stream)``, or None before the first pull."""
        return self.all_for(source).get(stream)

    def all_for(self, source: str) -> dict[str, pd.Timestamp]:
        """Every stream's watermark of one source (one read of the dataset)."""
        if not self.lake.exists("watermarks"):
            return {}
        rows = self.lake.read("watermarks")
        if rows.empty:  # a first writer's folder with no file yet reads as keys only
            return {}
        rows = rows[rows["source"] == source]
        return {str(s): pd.Timestamp(w) for s, w in zip(rows["stream"], rows["watermark"], strict=True)}

    def advance(self, source: str, stream: str, watermark: pd.Timestamp) -> pd.Timestamp:
        """Move the watermark forward (never back: a late, older batch cannot rewind it)."""
        return self.advance_many(source, {stream: watermark})[stream]

    def advance_many(self, source: str, watermarks: Mapping[str, pd.Timestamp]) -> dict[str, pd.Timestamp]:
        """Move several streams' watermarks forward in one write; returns the resulting marks."""
        for stream, mark in watermarks.items():
            if mark.tzinfo is None:
                raise ValueError(f"watermark for {source}/{stream} must be timezone-aware, got {mark}")
        if not watermarks:
            return {}
        # Read, max() and write under one lock: a concurrent advance between them could rewind a mark.
        with self.lake.lock("watermarks"):
            current = self.all_for(source)
            new = {s: m.tz_convert("UTC") if s not in current else max(current[s], m.tz_convert("UTC"))
                   for s, m in watermarks.items()}
            now = pd.Timestamp.now(tz="UTC")
            self.lake.upsert("watermarks", pd.DataFrame(
                [{"source": source, "stream": s, "watermark": m, "updated_at": now} for s, m in new.items()]
            ))
        return new

    def window_start(self, source: str, stream: str, *, overlap: pd.Timedelta,
                     default_lookback: pd.Timedelta, now: pd.Timestamp) -> pd.Timestamp:
        """Where the next pull starts: the watermark less the overlap, or ``now - default_lookback``."""
        current = self.get(source, stream)
        return now - default_lookback if current is None else current - overlap


def stream_starts(marks: Mapping[str, pd.Timestamp], *, overlap: pd.Timedelta,
                  default_start: pd.Timestamp) -> dict[str, pd.Timestamp]:
    """Each stream's next pull start (``watermark - overlap``), with nearby starts merged.

    Streams that are up to date end at slightly different samples; pulling each from its own
    start would split one batched request (a GetMetricData call holds 500 queries) into many.
    Starts within ``overlap`` of the earliest start of their group share that earliest start, so
    up-to-date streams travel together and only a genuinely lagging stream reads further back.
    Re-reading a little more is harmless: the lake's upsert dedupes. ``starts[SOURCE_STREAM]`` is
    for streams without a watermark of their own (new ones): ``default_start``, except while
    migrating from a source-wide watermark, when every stream resumes from that.
    """
    raw = {s: m - overlap for s, m in marks.items() if s != SOURCE_STREAM}
    legacy = marks.get(SOURCE_STREAM)
    if legacy is not None and not raw:  # migrating: every stream resumes from the source's mark
        raw[SOURCE_STREAM] = legacy - overlap
    starts: dict[str, pd.Timestamp] = {}
    group_start: pd.Timestamp | None = None
    for stream, start in sorted(raw.items(), key=lambda kv: kv[1]):
        if group_start is None or start - group_start > overlap:
            group_start = start
        starts[stream] = group_start
    starts.setdefault(SOURCE_STREAM, default_start)
    return starts


def newest_per_stream(ds: pd.Series, streams: pd.Series, *, exclude: Iterable[str] = ()) -> dict[str, pd.Timestamp]:
    """The newest stored sample of each stream (rows aligned with ``streams``), minus ``exclude``."""
    if ds.empty:
        return {}
    newest = ds.groupby(streams.to_numpy(), sort=False).max()
    skip = set(exclude)
    return {str(s): pd.Timestamp(t) for s, t in newest.items() if s not in skip and pd.notna(t)}
