"""UTC conversions and the train/test time split, in one place.

- :func:`utc_timestamp`: one value as a tz-aware UTC ``pd.Timestamp``.
- :func:`utc_series`: a column as ``datetime64[us, UTC]`` (:data:`foresight.schemas.UTC_DTYPE`).
- :func:`utc_now`: the current time as an aware ``datetime``, the default clock of the sinks.
- :func:`split_time`: the cut that puts a fraction of a time span before it.

A time without a zone ("naive") is handled one of two ways, chosen by ``naive``: ``"utc"``
reads it as UTC, ``"reject"`` raises. The defaults differ on purpose: a single value is usually
typed by a person (a CLI flag, a dashboard range, a config entry), where ``2026-04-01`` means
UTC; a column comes from data, where a missing zone is a guess, so it is refused unless the
caller says otherwise. Core layer: pandas and the standard library only.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

import pandas as pd

from foresight.schemas import UTC_DTYPE, SchemaError

Naive = Literal["utc", "reject"]
NAIVE_CHOICES: tuple[Naive, ...] = ("utc", "reject")

# A zone at the end of ISO 8601 text: ``Z`` or an offset such as ``+02:00`` / ``-0500``.
_ZONE_SUFFIX = r"(?:Z|[+-]\d{2}:?\d{2})$"


def utc_timestamp(value: Any, what: str, *, naive: Naive = "utc") -> pd.Timestamp:
    """``value`` (a Timestamp, datetime, datetime64 or text) as a tz-aware UTC ``pd.Timestamp``.

    Aware values are converted to UTC; naive ones are read as UTC (``naive="utc"``) or refused
    (``naive="reject"``). Missing (``None``, ``NaT``, ``""``) or unparseable values raise a
    ``ValueError`` naming ``what``; a value of the wrong type raises pandas' ``TypeError``.
    """
    _check_naive(naive)
    try:
        ts = pd.Timestamp(value)
    except ValueError as exc:
        raise ValueError(f"{what} is not a time: {value!r}") from exc
    if ts is pd.NaT:
        raise ValueError(f"{what} is not a time: {value!r}")
    if ts.tzinfo is None:
        if naive == "reject":
            raise ValueError(f"{what} must be timezone-aware, got {value!r}")
        return ts.tz_localize("UTC")
    return ts.tz_convert("UTC")


def utc_series(
    values: pd.Series, what: str, *, allow_nat: bool = False, naive: Naive = "reject"
) -> pd.Series:
    """``values`` as ``datetime64[us, UTC]`` with their index; errors are :class:`SchemaError` naming ``what``.

    Aware datetimes are converted to UTC. Naive datetimes are refused (``naive="reject"``) or
    read as UTC (``naive="utc"``); a column with no time at all carries no zone to check, so an
    all-missing naive column passes either way. Anything else is read as ISO 8601 text, which
    under ``"reject"`` must end in a zone (``...Z``, ``+02:00``). Missing values raise unless
    ``allow_nat``.
    """
    _check_naive(naive)
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        out = values.dt.tz_convert("UTC").astype(UTC_DTYPE)
    elif pd.api.types.is_datetime64_dtype(values.dtype):
        if naive == "reject" and values.notna().any():
            raise SchemaError(_naive_message(what, str(values.dtype)))
        out = values.dt.tz_localize("UTC").astype(UTC_DTYPE)
    else:
        out = _parse_iso(values, what, naive)
    if not allow_nat and out.isna().any():
        raise SchemaError(f"{what}: {int(out.isna().sum())} missing timestamp(s)")
    return out


def utc_now() -> datetime:
    """The current time as an aware UTC ``datetime`` (the default ``clock`` of the sinks)."""
    return datetime.now(UTC)


def split_time(ds: pd.Series, train_fraction: float, *, floor: str | None = "h") -> pd.Timestamp:
    """The time that puts ``train_fraction`` of ``ds``'s span (oldest to newest) before it.

    Floored to ``floor`` (a pandas frequency), by default the hour: the train flow's gate and
    ``bench detect`` cut there, so a re-run on a few more minutes of telemetry cuts at the same
    hour and candidate, baseline and champion meet on the same split. ``floor=None`` keeps the
    exact cut (:func:`models.evaluation.events.time_split`).
    """
    if not 0.0 < train_fraction < 1.0:
        raise ValueError(f"split fraction must be within (0, 1), got {train_fraction}")
    start, end = ds.min(), ds.max()
    if pd.isna(start):
        raise SchemaError("cannot split by time: no timestamps")
    cut = start + (end - start) * train_fraction
    return cut if floor is None else cut.floor(floor)


def _parse_iso(values: pd.Series, what: str, naive: Naive) -> pd.Series:
    text = values.astype("string").str.strip().replace("", pd.NA)
    try:
        parsed = pd.to_datetime(text, utc=True, format="ISO8601")
    except (TypeError, ValueError) as exc:
        raise SchemaError(f"{what}: cannot read as timestamps ({exc})") from None
    if naive == "reject":
        zoned = text.str.contains(_ZONE_SUFFIX, regex=True, na=True)
        if not zoned.all():
            raise SchemaError(_naive_message(what, repr(text[~zoned].iloc[0])))
    return parsed.astype(UTC_DTYPE)


def _naive_message(what: str, got: str) -> str:
    return f"{what}: timestamps must be timezone-aware (carry a time zone, e.g. '...Z'), got naive {got}"


def _check_naive(naive: str) -> None:
    if naive not in NAIVE_CHOICES:
        raise ValueError(f"unknown naive policy {naive!r}; choose one of {', '.join(NAIVE_CHOICES)}")
