"""The telemetry contract's entry point: clean what can be cleaned, quarantine the rest, judge the batch.

:func:`check_telemetry` runs in three stages:

1. **Parse** (:mod:`~foresight.contracts.parsing`, vectorised pandas): typed ``unique_id``,
   ``ds`` (UTC) and ``y``; a value that cannot be coerced nulls its row with a parse reason;
   exact duplicate rows are collapsed to one and counted.
2. **Row suite** (Great Expectations, :mod:`~foresight.contracts.suites`): the parsed, not yet
   filtered frame is validated against the ``telemetry.rows`` suite (not-null, ids the sinks can
   hold, catalogue membership, time range, per-unit bounds and sanity bounds via per-row bound
   columns, compound ``(unique_id, ds)`` uniqueness) with ``result_format`` ``COMPLETE``; each
   failed expectation's ``unexpected_index_list`` names the rows to quarantine, so the suite is
   the source of truth for which rows leave the batch. Each expectation carries its reason in
   ``meta``; a row failing several gets the first in suite order
   (:mod:`~foresight.contracts.results`).
3. **Batch suite** (Great Expectations) on the accepted rows: exact column set, row count,
   freshness of the newest sample, unique keys; plus two pandas checks (quarantined share and a
   row accounting check that proves nothing was lost).

Every expectation runs in GE on the full frame; nothing was moved to pandas for speed (timings:
``foresight bench pipeline``, docs/ARCHITECTURE.md, *Contracts*). The first call in a process
also pays to import GE and build its context; :func:`~foresight.contracts.suites.warm_up` lets a
flow pay that at start-up.
"""

from __future__ import annotations

import datetime as dt
import hashlib

import numpy as np
import pandas as pd

from foresight.contracts.parsing import collapse_exact_duplicates, parse_telemetry
from foresight.contracts.results import (
    CheckResult,
    ContractResult,
    accounting_check,
    canonical_clean,
    catalogue_check,
    checks_from_batch_suite,
    quarantine_frame,
    quarantine_ratio_check,
    reasons_from_rows_suite,
    schema_check,
)
from foresight.contracts.suites import (
    DATASET,
    DEFAULT_CLOCK_SKEW,
    DEFAULT_RETENTION,
    GENERIC_CONTRACT,
    GRID_OFFSET,
    ROW_COLUMNS,
    SourceContract,
    catalogue_units,
    gx_engine,
    with_grid_offset,
    with_series_columns,
)
from foresight.schemas import TELEMETRY_COLUMNS
from foresight.timeutil import utc_timestamp

__all__ = ["batch_fingerprint", "check_telemetry"]


def check_telemetry(
    raw: pd.DataFrame,
    catalogue: pd.DataFrame | None,
    *,
    source: str,
    now: pd.Timestamp,
    max_staleness: pd.Timedelta | dt.timedelta,
    max_quarantine_ratio: float = 0.05,
    retention: pd.Timedelta | dt.timedelta = DEFAULT_RETENTION,
    clock_skew: pd.Timedelta | dt.timedelta = DEFAULT_CLOCK_SKEW,
    contract: SourceContract = GENERIC_CONTRACT,
    rejected: int = 0,
) -> ContractResult:
    """Clean a raw telemetry batch, quarantine bad rows with a reason and judge the batch.

    ``rejected`` counts what the source itself could not turn into rows (undecodable lines or
    messages, already in the quarantine): they count towards ``max_quarantine_ratio``, so a file
    or a topic that is mostly garbage fails its batch instead of passing on the few rows it had.

    ``catalogue`` (``unique_id`` and ``unit``) enables the series-membership and per-unit bounds
    checks; without it parsing, ids the sinks can hold, time range, finiteness, the generic
    sanity bound and duplicates are checked. A series whose id the sinks cannot hold (too long,
    control characters) has all its rows quarantined; the other series are unaffected.
    ``contract`` picks the source kind's suites and what they add (sampling grid, series limit).
    """
    now = utc_timestamp(now, "now", naive="reject")
    if not 0.0 <= max_quarantine_ratio <= 1.0:
        raise ValueError(f"max_quarantine_ratio must be within [0, 1], got {max_quarantine_ratio}")
    batch_id = batch_fingerprint(raw, source)
    missing = [c for c in TELEMETRY_COLUMNS if c not in raw.columns]
    parsed = parse_telemetry(raw, missing)
    parsed, collapsed = collapse_exact_duplicates(parsed)
    units = catalogue_units(catalogue)
    frame = with_grid_offset(with_series_columns(parsed, units), contract.grid)

    engine = gx_engine()
    row_params = {
        "latest": (now + pd.Timedelta(clock_skew)).to_pydatetime(),
        "earliest": (now - pd.Timedelta(retention)).to_pydatetime(),
    }
    if units is not None:
        row_params["known_ids"] = sorted(units.index)
    row_columns = [*ROW_COLUMNS, *([GRID_OFFSET] if contract.grid is not None else [])]
    row_result = engine.validate_rows(
        frame[row_columns], row_params, with_catalogue=units is not None, contract=contract
    )
    reasons = reasons_from_rows_suite(row_result, frame)

    bad = reasons.notna().to_numpy()
    clean = canonical_clean(frame.loc[~bad])
    quarantined = quarantine_frame(raw, reasons[bad], source=source, batch_id=batch_id, now=now)

    batch_result = engine.validate_batch(
        clean, {"fresh_after": (now - pd.Timedelta(max_staleness)).to_pydatetime()}, contract=contract
    )
    checks = [
        schema_check(raw, missing),
        CheckResult("not_empty", len(raw) > 0, f"{len(raw)} row(s) received"),
        *checks_from_batch_suite(batch_result, now, pd.Timedelta(max_staleness)),
        quarantine_ratio_check(
            len(quarantined) + rejected, len(raw) + rejected, max_quarantine_ratio, rejected=rejected
        ),
        accounting_check(len(raw), len(clean), len(quarantined), collapsed),
        CheckResult("exact_duplicates", True, f"{collapsed} exact duplicate row(s) collapsed"),
        catalogue_check(units),
    ]
    return ContractResult(
        dataset=DATASET,
        source=source,
        batch_id=batch_id,
        passed=all(c.passed for c in checks),
        clean=clean,
        quarantined=quarantined,
        checks=checks,
        n_raw=len(raw),
        collapsed_duplicates=collapsed,
        checked_at=now,
        suite=contract.suite_name,
    )


def batch_fingerprint(raw: pd.DataFrame, source: str) -> str:
    """A deterministic id for (source, batch content): re-checking a batch reuses its id."""
    header = f"{source}\0{[(str(c), str(t)) for c, t in raw.dtypes.items()]}\0{len(raw)}\0"
    digest = hashlib.sha256(header.encode("utf-8", "backslashreplace"))
    for i in range(raw.shape[1]):
        digest.update(_column_hashes(raw.iloc[:, i]).tobytes())
    return digest.hexdigest()[:16]


def _column_hashes(col: pd.Series) -> np.ndarray:
    """Per-row uint64 hashes of one column; odd objects (surrogates, unhashables) go via repr."""
    try:
        return pd.util.hash_pandas_object(col, index=False).to_numpy()
    except (TypeError, ValueError, UnicodeError):
        return pd.util.hash_pandas_object(col.map(repr).astype(object), index=False).to_numpy()
