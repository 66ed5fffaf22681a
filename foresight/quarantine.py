"""The quarantine: rows a data contract refused, kept in the lake with their reason.

One Parquet file per (dataset, batch): ``quarantine/<dataset>/date=<UTC day>/batch-<batch_id>.parquet``.
The batch id is a hash of the batch content, so re-checking a batch rewrites the same file
instead of adding a second copy.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import pandas as pd
import pyarrow.parquet as pq

from foresight.schemas import UTC_DTYPE

if TYPE_CHECKING:
    from foresight.contracts import ContractResult
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
