"""The quarantine: rows a data contract refused, kept in the lake with their reason.

One Parquet file per (dataset, batch): ``quarantine/<dataset>/date=<UTC day>/batch-<batch_id>.parquet``.
The batch id is a hash of the batch content, so re-checking a batch rewrites the same file
instead of adding a second copy.
"""

from __future__ import annotations

import dataclasses
import hashlib
from typing import TYPE_CHECKING

import pandas as pd
import pyarrow.parquet as pq

from foresight.schemas import UTC_DTYPE

if TYPE_CHECKING:
    from foresight.contracts.results import ContractResult
    from foresight.lake import Lake

QUARANTINE_PREFIX = "quarantine"
# Original values as text (they may not parse), why, and where they came from.
QUARANTINE_COLUMNS: tuple[str, ...] = (
    "unique_id", "ds", "y", "reason", "source", "batch_id", "quarantined_at", "row"
)  # fmt: skip
_DTYPES: dict[str, object] = {
    **{c: "string" for c in ("unique_id", "ds", "y", "reason", "source", "batch_id")},
    "quarantined_at": UTC_DTYPE,
    "row": "Int64",  # position in the raw batch; missing for rows of a failed batch that were fine
}


def quarantine_path(result: ContractResult) -> str:
    """Lake-relative path of a batch's quarantine file (day of the check, in UTC)."""
    if result.checked_at is None:
        raise ValueError(f"batch {result.batch_id}: the contract result has no checked_at time")
    day = pd.Timestamp(result.checked_at).tz_convert("UTC").strftime("%Y-%m-%d")
    return f"{QUARANTINE_PREFIX}/{result.dataset}/date={day}/batch-{result.batch_id}.parquet"


def write_quarantine(lake: Lake, result: ContractResult) -> str | None:
    """Store a batch's quarantined rows (atomically, idempotently); None when there are none."""
    if result.quarantined.empty:
        return None
    return lake.write_file(quarantine_path(result), as_quarantine_frame(result.quarantined))


REJECTED_COLUMNS: tuple[str, ...] = ("source", "origin", "raw", "reason", "quarantined_at")


def write_rejected(lake: Lake, source: str, rejected: pd.DataFrame) -> str | None:
    """Store messages a source could not even turn into rows (e.g. malformed JSON from Kafka).

    ``rejected`` has ``origin`` (where it came from, e.g. ``topic/partition/offset``), ``raw``
    (the message as text, undecodable bytes escaped) and ``reason``. One file per distinct set of
    messages (named by their hash), so writing the same rejects twice keeps one copy.
    """
    if rejected is None or rejected.empty:
        return None
    missing = [c for c in ("origin", "raw", "reason") if c not in rejected.columns]
    if missing:
        raise ValueError(f"rejected messages lack column(s) {missing}; got {list(rejected.columns)}")
    frame = rejected[["origin", "raw", "reason"]].astype("string").assign(source=source)
    if "quarantined_at" not in frame:
        frame["quarantined_at"] = pd.Timestamp.now(tz="UTC")
    digest = hashlib.sha256(pd.util.hash_pandas_object(frame[["origin", "raw"]], index=False).to_numpy().tobytes())
    day = pd.Timestamp(frame["quarantined_at"].min()).strftime("%Y-%m-%d")
    path = f"{QUARANTINE_PREFIX}/messages/date={day}/{source}-{digest.hexdigest()[:16]}.parquet"
    return lake.write_file(path, frame[list(REJECTED_COLUMNS)])


def read_rejected(lake: Lake) -> pd.DataFrame:
    """Every rejected message, oldest first."""
    files = lake.list_files(f"{QUARANTINE_PREFIX}/messages")
    frames = [pq.read_table(path, filesystem=lake.fs).to_pandas() for path in files]
    if not frames:
        return pd.DataFrame(columns=list(REJECTED_COLUMNS))
    return pd.concat(frames, ignore_index=True).sort_values("quarantined_at", kind="stable").reset_index(drop=True)


def read_quarantine(lake: Lake, dataset: str = "telemetry") -> pd.DataFrame:
    """Every quarantined row of a dataset, oldest batch first."""
    files = lake.list_files(f"{QUARANTINE_PREFIX}/{dataset}")
    frames = [pq.read_table(path, filesystem=lake.fs).to_pandas() for path in files]
    if not frames:
        return as_quarantine_frame(None)
    out = pd.concat([as_quarantine_frame(f) for f in frames], ignore_index=True)
    return out.sort_values(["quarantined_at", "batch_id", "row"], kind="stable").reset_index(drop=True)


def as_quarantine_frame(df: pd.DataFrame | None) -> pd.DataFrame:
    """``df`` in the quarantine's column order and dtypes (an empty frame when ``df`` is None)."""
    if df is None:
        columns = {c: pd.Series([], dtype=t) for c, t in _DTYPES.items()}  # type: ignore[call-overload]
        return pd.DataFrame(columns)
    missing = [c for c in QUARANTINE_COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"quarantine rows lack column(s) {missing}; got {list(df.columns)}")
    return df[list(QUARANTINE_COLUMNS)].astype(_DTYPES).reset_index(drop=True)


def quarantine_failed_batch(result: ContractResult) -> ContractResult:
    """A failed batch's good rows join its quarantine too, with the failed checks as reason,
    so a batch that may not be used is still kept whole, waiting for a fix and a replay."""
    if result.passed or result.clean.empty:
        return result
    failed = ", ".join(c.name for c in result.checks if not c.passed)
    good = result.clean.astype({"ds": "string", "y": "string"}).assign(
        reason=f"batch failed contract: {failed}",
        source=result.source,
        batch_id=result.batch_id,
        quarantined_at=result.checked_at or pd.Timestamp.now(tz="UTC"),
    )
    rows = pd.concat([result.quarantined, good.reindex(columns=result.quarantined.columns)], ignore_index=True)
    return dataclasses.replace(result, quarantined=rows)
