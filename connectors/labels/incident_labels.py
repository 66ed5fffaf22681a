"""Read an incident history kept as a file (CSV or Parquet) for failure-predictor labels.

Teams often keep their own list of incidents (a post-mortem log, an export from a ticketing
tool) and mark the pages that were not real incidents. The file needs ``INCIDENT_COLUMNS``
(``incident_id, service, category, start, end, severity``); ``false_positive`` (true / false)
and ``precursor_start`` are optional and kept, as are any other columns. Times must carry a
zone (``2026-04-20T18:20:00Z``) and come back as UTC; a missing ``end`` is an incident still
open. What counts as a positive is decided downstream
(:func:`features.failure_labels.confirmed_incidents` drops the false positives).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from foresight.schemas import INCIDENT_COLUMNS, SchemaError, require_columns
from foresight.timeutil import utc_series

TIME_COLUMNS: tuple[str, ...] = ("start", "end", "precursor_start")


def read_incident_labels(path: str | Path) -> pd.DataFrame:
    """The incident history in ``path`` (``.csv`` or ``.parquet``), validated, times in UTC."""
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"incident labels file not found: {file}")
    suffix = file.suffix.lower()
    if suffix == ".csv":
        frame = pd.read_csv(file, dtype=str, keep_default_na=True)
    elif suffix in (".parquet", ".pq"):
        frame = pd.read_parquet(file)
    else:
        raise ValueError(
            f"{file}: incident labels must be a .csv or .parquet file, got {suffix or 'no suffix'!r}"
        )
    return validate_incident_labels(frame, what=str(file))


def validate_incident_labels(frame: pd.DataFrame, what: str = "incident labels") -> pd.DataFrame:
    """Check and normalise an incident-history frame: required columns, UTC times, no blank keys.

    Raises :class:`SchemaError` naming the problem (a naive time would be guessed at, so it is
    refused; an incident ending before it starts is a typo, so it is refused too).
    """
    require_columns(frame, list(INCIDENT_COLUMNS), what)
    out = frame.copy()
    for column in TIME_COLUMNS:
        if column in out.columns:
            out[column] = utc_series(out[column], f"{what}: column {column!r}", allow_nat=True)
    blank = out["service"].isna() | out["service"].astype("string").str.strip().eq("")
    if out["start"].isna().any() or blank.any():
        rows = out.index[out["start"].isna() | blank].tolist()[:5]
        raise SchemaError(f"{what}: every incident needs a service and a start; rows {rows} lack one")
    backwards = out["end"].notna() & (out["end"] < out["start"])
    if backwards.any():
        raise SchemaError(
            f"{what}: incidents end before they start: {out.loc[backwards, 'incident_id'].tolist()[:5]}"
        )
    for column in ("incident_id", "service", "category", "severity"):
        out[column] = out[column].astype("string")
    return out.sort_values("start", kind="stable").reset_index(drop=True)

