"""What a train run read from the lake, in a few figures: a content digest, the rows, the time
range and the sources (:class:`LakeSnapshot`).

The digest is taken over the rows the run trained on (every column, in the lake's sort order),
so two runs share a digest exactly when they saw the same data, whichever files held it and
whenever they were rewritten. MLflow records it as the run's input dataset
(:mod:`foresight.mlflow_dataset`) and as ``foresight.data.*`` tags. Pure: pandas only.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

import pandas as pd

DIGEST_CHARS = 16  # of the SHA-256 hex: MLflow shows digests short; 64 bits tell snapshots apart
TIME_FORMAT = "%Y-%m-%dT%H:%MZ"


@dataclass(frozen=True)
class LakeSnapshot:
    """The lake data one train run used: where, which (``digest``), how much and over when."""

    location: str
    digest: str
    rows: int  # telemetry samples
    series: int
    start: pd.Timestamp | None
    end: pd.Timestamp | None
    sources: dict[str, int]  # source (the catalogue's) -> series in the telemetry
    datasets: dict[str, int]  # lake dataset -> rows read (telemetry, catalogue, incidents, logs)

    @property
    def window(self) -> str:
        """``2026-11-16T20:05Z .. 2026-12-07T20:05Z`` (or ``no data``)."""
        if self.start is None or self.end is None:
            return "no data"
        return f"{self.start.strftime(TIME_FORMAT)} .. {self.end.strftime(TIME_FORMAT)}"

    def sources_text(self) -> str:
        """``prometheus: 40, simulator: 2`` (series per source)."""
        return ", ".join(f"{name}: {count}" for name, count in sorted(self.sources.items())) or "none"

    def tags(self) -> dict[str, str]:
        """The run tags that make the data searchable (``tags."foresight.data.digest" = '...'``)."""
        tags = {
            "foresight.data.location": self.location,
            "foresight.data.digest": self.digest,
            "foresight.data.rows": str(self.rows),
            "foresight.data.series": str(self.series),
            "foresight.data.sources": self.sources_text(),
        }
        if self.start is not None and self.end is not None:
            tags["foresight.data.start"] = self.start.isoformat()
            tags["foresight.data.end"] = self.end.isoformat()
        return tags

    def profile(self) -> dict[str, object]:
        """The dataset profile MLflow shows beside the digest."""
        return {
            "num_rows": self.rows,
            "series": self.series,
            "start": None if self.start is None else self.start.isoformat(),
            "end": None if self.end is None else self.end.isoformat(),
            "sources": dict(sorted(self.sources.items())),
            "datasets": dict(self.datasets),
        }


def content_digest(frames: Mapping[str, pd.DataFrame | None]) -> str:
    """SHA-256 (first :data:`DIGEST_CHARS` hex) over each frame's name, columns and row hashes.

    Row hashes are pandas' (:func:`pandas.util.hash_pandas_object`, index left out), so the
    digest follows the values, not how they are stored. A missing frame counts as empty.
    """
    sha = hashlib.sha256()
    for name in sorted(frames):
        frame = frames[name]
        sha.update(f"{name}\0".encode())
        if frame is None or frame.empty:
            sha.update(b"empty\0")
            continue
        sha.update(("\0".join(map(str, frame.columns)) + "\0").encode())
        sha.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return sha.hexdigest()[:DIGEST_CHARS]


def describe_snapshot(
    location: str,
    telemetry: pd.DataFrame,
    catalogue: pd.DataFrame,
    incidents: pd.DataFrame | None = None,
    logs: pd.DataFrame | None = None,
) -> LakeSnapshot:
    """The :class:`LakeSnapshot` of frames read from the lake at ``location``."""
    frames = {"telemetry": telemetry, "catalogue": catalogue, "incidents": incidents, "logs": logs}
    used = telemetry["unique_id"].unique() if len(telemetry) else []
    sources: dict[str, int] = {}
    if len(used) and {"unique_id", "source"} <= set(catalogue.columns):
        known = catalogue[catalogue["unique_id"].isin(used)].drop_duplicates("unique_id")
        sources = {str(k): int(v) for k, v in known["source"].fillna("unknown").value_counts().items()}
        if len(known) < len(used):
            sources["(not in catalogue)"] = len(used) - len(known)
    empty = telemetry.empty
    return LakeSnapshot(
        location=location,
        digest=content_digest(frames),
        rows=len(telemetry),
        series=len(used),
        start=None if empty else pd.Timestamp(telemetry["ds"].min()),
        end=None if empty else pd.Timestamp(telemetry["ds"].max()),
        sources=sources,
        datasets={name: 0 if frame is None else len(frame) for name, frame in frames.items()},
    )
