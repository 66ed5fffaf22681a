"""Source protocol and registry: every telemetry source emits the same batch shape."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, TypeGuard

import pandas as pd

from foresight.plugins import Registry


@dataclass(frozen=True)
class Window:
    """A half-open time range ``[start, end)`` in UTC."""

    start: pd.Timestamp
    end: pd.Timestamp

    def __post_init__(self) -> None:
        for name in ("start", "end"):
            value = getattr(self, name)
            if not isinstance(value, pd.Timestamp) or value.tzinfo is None:
                raise ValueError(f"Window.{name} must be a timezone-aware pandas Timestamp, got {value!r}")
        if self.end <= self.start:
            raise ValueError(f"Window end {self.end} is not after its start {self.start}")


@dataclass
class SourceBatch:
    """What one fetch returns. ``telemetry`` may still be dirty: contracts clean it.

    ``on_stored`` is called by the ingest flow only after the batch is safely in the lake (and its
    quarantine written): a source that must acknowledge what it delivered (Kafka offsets) does it
    there, so a crash before the write means redelivery, never loss.
    """

    source: str
    telemetry: pd.DataFrame
    catalogue: pd.DataFrame
    logs: pd.DataFrame | None = None
    incidents: pd.DataFrame | None = None
    # Messages that could not become rows at all: origin, raw, reason (kept in the quarantine).
    rejected: pd.DataFrame | None = None
    on_stored: Callable[[], None] | None = None
    # False when some series of the window could not be fetched (e.g. a query the server
    # refused): what arrived is stored, but the watermark stays so the next run re-reads them.
    complete: bool = True
    # A stream with nothing new is normal (False); an empty file or scrape is suspicious (True).
    expect_rows: bool = True
    # Sources that fetch several streams (a PromQL series, a CloudWatch metric) map each
    # unique_id to its stream and name the streams that did not come back whole: each stream
    # keeps its own watermark, so one refused stream holds back only itself. ``None``: the
    # source is one stream, and ``complete`` decides.
    streams: Mapping[str, str] | None = None
    incomplete_streams: frozenset[str] = frozenset()
    # The epoch-aligned grid every sample sits on (a range query's step, a CloudWatch period),
    # checked by the source's contract; None for sources with free timestamps (Kafka, files).
    grid: pd.Timedelta | None = None


class Source(Protocol):
    """A telemetry source. ``incremental`` sources are given a window from their watermark;
    ``tracks_streams`` ones also ``since``: each known stream's own start (see
    :func:`foresight.watermarks.stream_starts`), ``window.start`` being for streams not in it."""

    name: str

    def fetch(self, window: Window | None = None) -> SourceBatch: ...


class StreamTrackingSource(Protocol):
    """An incremental source whose streams each resume from their own watermark."""

    name: str
    tracks_streams: bool

    def fetch(self, window: Window | None = None, since: Mapping[str, pd.Timestamp] | None = None) -> SourceBatch: ...


def is_incremental(source: object) -> bool:
    return bool(getattr(source, "incremental", False))


def tracks_streams(source: object) -> TypeGuard[StreamTrackingSource]:
    return bool(getattr(source, "tracks_streams", False))


def stream_start(since: Mapping[str, pd.Timestamp] | None, stream: str, window: Window) -> pd.Timestamp:
    """Where one stream's pull starts: its own start if the flow gave one, else the window's."""
    return since.get(stream, window.start) if since else window.start


# Source factories by kind: called with ``name=`` and the source's configured options, which each
# declares as its ``Settings`` model (checked when the settings load: SOURCES.settings_for). The
# built-in sources register when their modules are imported, on the registry's first read; a
# plugin outside them registers when its own module is imported (e.g. from a config's package).
SOURCES: Registry[Callable[..., Source]] = Registry("source", builtins=(
    "connectors.sources.cloudwatch", "connectors.sources.file", "connectors.sources.kafka",
    "connectors.sources.prometheus", "simulator",
), supplied=("name",), noun="option")


def build_source(kind: str, name: str, options: dict[str, Any] | None = None) -> Source:
    """Instantiate the source registered as ``kind``."""
    return SOURCES.get(kind)(name=name, **(options or {}))
