"""Stage 1 of the telemetry contract: raw columns to typed ``unique_id, ds, y``, vectorised.

Dirty columns (object columns, numbers as text, bytes, ISO strings, epoch seconds, datetimes in
any timezone) are coerced into ``unique_id`` (string), ``ds`` (``datetime64[us, UTC]``) and ``y``
(float64). A value that cannot be coerced becomes null and its row gets a specific parse reason
(:class:`~foresight.contracts.reasons.Reason`). Non-UTC aware timestamps are converted (lossless);
exact duplicate rows are collapsed to one and counted.
"""

from __future__ import annotations

import datetime as dt
import decimal
import numbers
from operator import attrgetter
from typing import Any

import numpy as np
import pandas as pd

from foresight.contracts.reasons import Reason
from foresight.schemas import ID_COL, TARGET_COL, TELEMETRY_COLUMNS, TIME_COL, UTC_DTYPE

__all__ = ["collapse_exact_duplicates", "decode_or_none", "parse_telemetry", "raw_column"]

# Epoch seconds beyond this (about year 5138) are not timestamps but garbage or milliseconds.
_MAX_EPOCH_SECONDS = 1e11

_NULL, _STR, _BYTES, _BOOL, _NUMBER, _DATETIME, _DT64, _OTHER = (
    "null", "str", "bytes", "bool", "number", "datetime", "datetime64", "other"
)  # fmt: skip


def _kind_of_type(kind: type) -> str:
    if issubclass(kind, str):
        return _STR
    if issubclass(kind, (bytes, bytearray)):
        return _BYTES
    if issubclass(kind, (bool, np.bool_)):
        return _BOOL
    if issubclass(kind, dt.datetime):
        return _DATETIME
    if issubclass(kind, np.datetime64):
        return _DT64
    if issubclass(kind, (numbers.Real, decimal.Decimal)):
        return _NUMBER
    return _OTHER


def _element_kinds(col: pd.Series) -> pd.Series:
    """Classify every element of a column by Python type (one pass; few distinct types)."""
    types = col.map(type)
    table = {t: _kind_of_type(t) for t in types.unique()}
    kinds = types.map(table).astype(object)
    kinds[col.isna().to_numpy()] = _NULL
    return kinds


def parse_telemetry(raw: pd.DataFrame, missing: list[str]) -> pd.DataFrame:
    """Typed ``unique_id, ds, y`` plus ``parse_reason``, indexed by row position in ``raw``."""
    index = pd.RangeIndex(len(raw))
    reason = pd.Series(None, index=index, dtype=object)
    if missing:
        reason[:] = Reason.SCHEMA.format(columns=", ".join(missing))
        ids = pd.Series(pd.NA, index=index, dtype="string")
        ds = pd.Series(pd.NaT, index=index, dtype=UTC_DTYPE)
        y = pd.Series(np.nan, index=index, dtype="float64")
    else:
        ids, id_reason = _parse_ids(raw_column(raw, ID_COL))
        ds, ds_reason = _parse_ds(raw_column(raw, TIME_COL))
        y, y_reason = _parse_y(raw_column(raw, TARGET_COL))
        reason = id_reason.fillna(ds_reason).fillna(y_reason)  # first problem wins
        # A row with any problem keeps no typed value, so the GE not-null expectations see it.
        ids = ids.mask(reason.notna())
        ds = ds.mask(reason.notna())
        y = y.mask(reason.notna())
    return pd.DataFrame({ID_COL: ids, TIME_COL: ds, TARGET_COL: y, "parse_reason": reason}, index=index)


def raw_column(raw: pd.DataFrame, name: str) -> pd.Series:
    """One raw column, re-indexed by row position (duplicate column names: the first one)."""
    position = list(raw.columns).index(name)
    return raw.iloc[:, position].reset_index(drop=True)


def _reason_series(index: pd.Index) -> pd.Series:
    return pd.Series(None, index=index, dtype=object)


def _parse_ids(col: pd.Series) -> tuple[pd.Series, pd.Series]:
    """``unique_id`` must be non-empty text; UTF-8 bytes are decoded, anything else is refused."""
    reason = _reason_series(col.index)
    ids = pd.Series(pd.NA, index=col.index, dtype="string")
    if isinstance(col.dtype, pd.StringDtype):
        ids[:] = col
    else:
        col = col.astype(object)
        kinds = _element_kinds(col)
        is_str, is_bytes = (kinds == _STR).to_numpy(), (kinds == _BYTES).to_numpy()
        text, bad_text = _as_text(col[is_str])
        decoded, bad_bytes = _decode_utf8(col[is_bytes])
        ids[is_str], ids[is_bytes] = text, decoded
        reason[(kinds != _STR) & (kinds != _BYTES) & (kinds != _NULL)] = Reason.ID_NOT_TEXT
        reason[bad_text.index[bad_text]] = Reason.ID_NOT_UTF8
        reason[bad_bytes.index[bad_bytes]] = Reason.ID_NOT_UTF8
    empty = ids.isna() | (ids.str.strip() == "").fillna(True)
    reason[empty.to_numpy() & reason.isna().to_numpy()] = Reason.ID_MISSING
    return ids.mask(reason.notna()), reason


def _as_text(strings: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Python strings as the string dtype; ones that are not valid Unicode come back null + flagged."""
    try:
        return strings.astype("string"), pd.Series(False, index=strings.index)
    except UnicodeError:  # lone surrogates (text decoded with surrogateescape upstream): rare
        ok = strings.map(_encodes_as_utf8).astype(bool)
        return strings.where(ok).astype("string"), ~ok


def _encodes_as_utf8(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _decode_utf8(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Decode bytes as UTF-8 (per element: bytes columns are rare); undecodable ones are flagged."""
    decoded = values.map(decode_or_none)
    bad = decoded.isna()
    return decoded.astype("string"), bad


def decode_or_none(value: bytes) -> str | None:
    try:
        return bytes(value).decode("utf-8")
    except UnicodeDecodeError:
        return None


def _parse_ds(col: pd.Series) -> tuple[pd.Series, pd.Series]:
    """``ds`` as UTC: aware datetimes converted, epoch seconds and ISO strings parsed, naive refused."""
    reason = _reason_series(col.index)
    ds = pd.Series(pd.NaT, index=col.index, dtype=UTC_DTYPE)
    dtype = col.dtype
    if isinstance(dtype, pd.DatetimeTZDtype):
        ds[:] = col.dt.tz_convert("UTC").dt.as_unit("us")
    elif pd.api.types.is_datetime64_dtype(dtype):
        reason[col.notna().to_numpy()] = Reason.DS_NAIVE
    elif pd.api.types.is_bool_dtype(dtype):
        reason[:] = Reason.DS_NOT_TIMESTAMP
    elif pd.api.types.is_numeric_dtype(dtype):
        _fill(ds, reason, *_ds_from_epoch(col.astype("float64")))
    elif isinstance(dtype, pd.StringDtype):
        _fill(ds, reason, *_ds_from_strings(col.dropna().astype(str)))
    else:
        col = col.astype(object)
        kinds = _element_kinds(col)
        _fill(ds, reason, *_ds_from_strings(col[kinds == _STR]))
        decoded, bad = _decode_utf8(col[kinds == _BYTES])
        _fill(ds, reason, *_ds_from_strings(decoded[~bad].astype(str)))
        reason[bad.index[bad]] = Reason.DS_NOT_TIMESTAMP
        _fill(ds, reason, *_ds_from_epoch(_floats(col[kinds == _NUMBER])))
        _fill(ds, reason, *_ds_from_datetimes(col[kinds == _DATETIME]))
        reason[(kinds == _DT64).to_numpy()] = Reason.DS_NAIVE
        reason[kinds.isin([_BOOL, _OTHER]).to_numpy()] = Reason.DS_NOT_TIMESTAMP
    reason[(ds.isna() & reason.isna()).to_numpy()] = Reason.DS_MISSING
    return ds, reason


def _fill(target: pd.Series, reason: pd.Series, values: pd.Series, why: pd.Series) -> None:
    """Write a parsed subset (and its reasons) back into the full-length columns."""
    if len(values):
        target[values.index] = values
        reason[why.index] = why


def _ds_from_epoch(seconds: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Epoch seconds (UTC by definition) to timestamps, to the microsecond; NaN stays missing."""
    values = seconds.to_numpy(dtype="float64")
    usable = np.isfinite(values) & (np.abs(values) < _MAX_EPOCH_SECONDS)
    micros = np.where(usable, np.round(values * 1e6), 0).astype("int64")
    ds = pd.Series(pd.to_datetime(micros, unit="us", utc=True), index=seconds.index).where(usable)
    why = pd.Series(None, index=seconds.index, dtype=object)
    why[~usable & ~np.isnan(values)] = Reason.DS_NOT_TIMESTAMP
    return ds.astype(UTC_DTYPE), why


_AWARE_SUFFIX = r"(?:[Zz]|UTC|GMT|[+-]\d{2}:?\d{2})$"
_EPOCH_TEXT = r"^[+-]?\d+(?:\.\d*)?$"


def _ds_from_strings(strings: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Timestamp text: ISO 8601 (other layouts via a slower fallback), or epoch seconds as text."""
    text = strings.astype(str).str.strip()
    why = pd.Series(None, index=text.index, dtype=object)
    if text.empty:
        return pd.Series([], index=text.index, dtype=UTC_DTYPE), why
    epoch = text.str.match(_EPOCH_TEXT).to_numpy(dtype=bool)
    ds_epoch, why_epoch = _ds_from_epoch(text[epoch].astype("float64"))
    rest = text[~epoch]
    ds = pd.to_datetime(rest, utc=True, errors="coerce", format="ISO8601")
    retry = ds.isna() & (rest != "")
    if retry.any():
        ds[retry] = pd.to_datetime(rest[retry], utc=True, errors="coerce", format="mixed")
    aware = rest.str.contains(_AWARE_SUFFIX, regex=True).to_numpy(dtype=bool)
    why[rest.index[ds.isna().to_numpy()]] = Reason.DS_NOT_TIMESTAMP
    why[rest.index[ds.notna().to_numpy() & ~aware]] = Reason.DS_NAIVE
    why[why_epoch.index] = why_epoch
    out = pd.concat([ds.astype(UTC_DTYPE).where(why[rest.index].isna()), ds_epoch]).reindex(text.index)
    return out.astype(UTC_DTYPE), why


def _ds_from_datetimes(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Python/pandas datetime objects: aware ones (any zone) converted to UTC, naive ones refused."""
    why = pd.Series(None, index=values.index, dtype=object)
    if values.empty:
        return pd.Series([], index=values.index, dtype=UTC_DTYPE), why
    aware = values.map(attrgetter("tzinfo")).notna().to_numpy(dtype=bool)
    why[~aware] = Reason.DS_NAIVE
    ds = pd.Series(pd.NaT, index=values.index, dtype=UTC_DTYPE)
    if aware.any():
        ds[aware] = pd.to_datetime(values[aware], utc=True, errors="coerce").dt.as_unit("us")
    why[(ds.isna().to_numpy() & aware)] = Reason.DS_NOT_TIMESTAMP
    return ds, why


def _floats(values: pd.Series) -> pd.Series:
    """Numbers to float64; integers too large for a float become +/-inf instead of raising."""
    try:
        return pd.to_numeric(values, errors="coerce").astype("float64")
    except OverflowError:  # Python ints beyond 1.8e308: rare, so per element
        return values.map(_float_or_inf).astype("float64")


def _float_or_inf(value: Any) -> float:
    try:
        return float(value)
    except OverflowError:
        return float("inf") if value > 0 else float("-inf")


def _parse_y(col: pd.Series) -> tuple[pd.Series, pd.Series]:
    """``y`` as finite float64: numeric text is parsed, booleans/bytes/other objects refused."""
    reason = _reason_series(col.index)
    dtype = col.dtype
    if pd.api.types.is_bool_dtype(dtype):
        y = pd.Series(np.nan, index=col.index)
        reason[:] = Reason.Y_NOT_NUMERIC
    elif pd.api.types.is_numeric_dtype(dtype):
        y = col.astype("float64")
    elif isinstance(dtype, pd.StringDtype):
        y, why = _y_from_strings(col.fillna("nan").astype(str))
        reason[why.index] = why
    else:
        col = col.astype(object)
        kinds = _element_kinds(col)
        y = pd.Series(np.nan, index=col.index)
        numbers_ = kinds == _NUMBER
        y[numbers_] = _floats(col[numbers_])
        parsed, why = _y_from_strings(col[kinds == _STR])
        y[parsed.index] = parsed
        reason[why.index] = why
        reason[kinds.isin([_BYTES, _BOOL, _DATETIME, _DT64, _OTHER]).to_numpy()] = Reason.Y_NOT_NUMERIC
    y = y.astype("float64")
    reason[(~np.isfinite(y.to_numpy()) & reason.isna().to_numpy())] = Reason.Y_NOT_FINITE
    return y.where(reason.isna()), reason


def _y_from_strings(strings: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Numeric text to float; text that is no number is refused (``'nan'``/``'inf'`` parse as such)."""
    y = pd.to_numeric(strings.astype(str).str.strip(), errors="coerce").astype("float64")
    literal_nan = strings.astype(str).str.strip().str.lower().isin(["nan", "-nan", "+nan"]).to_numpy()
    why = pd.Series(None, index=strings.index, dtype=object)
    why[(y.isna().to_numpy() & ~literal_nan)] = Reason.Y_NOT_NUMERIC
    return y, why


def collapse_exact_duplicates(parsed: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """Drop repeats of a fully parsed ``(unique_id, ds, y)``; a row that failed parsing is kept."""
    ok = parsed["parse_reason"].isna()
    repeat = ok & parsed.duplicated(list(TELEMETRY_COLUMNS), keep="first")
    return parsed.loc[~repeat], int(repeat.sum())
