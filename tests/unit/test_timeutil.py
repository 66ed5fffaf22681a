"""UTC conversions and the time split (foresight.timeutil)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from foresight.schemas import UTC_DTYPE, SchemaError
from foresight.timeutil import split_time, utc_now, utc_series, utc_timestamp

NOON = pd.Timestamp("2026-04-20 12:00", tz="UTC")


# -- utc_timestamp --------------------------------------------------------------------------
@pytest.mark.parametrize(
    "value",
    [
        "2026-04-20 12:00",  # naive text: UTC
        "2026-04-20T12:00:00Z",
        "2026-04-20T14:00:00+02:00",
        pd.Timestamp("2026-04-20 12:00"),  # naive Timestamp: UTC
        pd.Timestamp("2026-04-20 21:00", tz="Asia/Tokyo"),
        dt.datetime(2026, 4, 20, 8, 0, tzinfo=dt.timezone(dt.timedelta(hours=-4))),
        np.datetime64("2026-04-20T12:00"),
    ],
)
def test_utc_timestamp_reads_naive_as_utc_and_converts_aware(value: object) -> None:
    ts = utc_timestamp(value, "since")
    assert ts == NOON
    assert str(ts.tz) == "UTC"


def test_utc_timestamp_can_refuse_naive_values() -> None:
    assert utc_timestamp("2026-04-20T14:00+02:00", "now", naive="reject") == NOON
    with pytest.raises(ValueError, match=r"^now must be timezone-aware, got '2026-04-20 12:00'$"):
        utc_timestamp("2026-04-20 12:00", "now", naive="reject")


@pytest.mark.parametrize("value", [None, pd.NaT, "", "NaT", float("nan"), "yesterday-ish"])
def test_utc_timestamp_names_what_is_not_a_time(value: object) -> None:
    with pytest.raises(ValueError, match=r"^until is not a time: "):
        utc_timestamp(value, "until")


def test_utc_timestamp_rejects_an_unknown_naive_policy() -> None:
    with pytest.raises(ValueError, match="choose one of utc, reject"):
        utc_timestamp(NOON, "t", naive="local")  # type: ignore[arg-type]


# -- utc_series -----------------------------------------------------------------------------
def test_utc_series_converts_aware_datetimes_to_utc_microseconds_keeping_the_index() -> None:
    tokyo = pd.Series(pd.DatetimeIndex(["2026-04-20 21:00", "2026-04-21 09:00"], tz="Asia/Tokyo").as_unit("ns"),
                      index=[7, 3])
    out = utc_series(tokyo, "ds")
    assert out.dtype == UTC_DTYPE
    assert out.index.tolist() == [7, 3]
    assert out.tolist() == [NOON, NOON + pd.Timedelta(hours=12)]


def test_utc_series_parses_zoned_iso_text_and_datetime_objects() -> None:
    text = pd.Series([" 2026-04-20T12:00:00Z ", "2026-04-20T14:00:00+02:00", "2026-04-20 07:00-0500"])
    assert utc_series(text, "start").tolist() == [NOON] * 3
    mixed = pd.Series([NOON, NOON.tz_convert("Europe/Berlin").to_pydatetime()], dtype=object)
    out = utc_series(mixed, "start")
    assert out.dtype == UTC_DTYPE and out.tolist() == [NOON, NOON]


def test_utc_series_refuses_naive_values_by_default_naming_what() -> None:
    naive = pd.Series(pd.to_datetime(["2026-04-20 12:00"]))
    with pytest.raises(SchemaError, match=r"^incidents\.start: timestamps must be timezone-aware .*naive datetime64"):
        utc_series(naive, "incidents.start")
    with pytest.raises(SchemaError, match=r"time zone.*got naive '2026-04-20 18:20'"):
        utc_series(pd.Series(["2026-04-20T18:20:00Z", "2026-04-20 18:20"]), "labels: column 'start'")


def test_utc_series_reads_naive_values_as_utc_when_asked() -> None:
    naive = pd.Series(pd.to_datetime(["2026-04-20 12:00"]))
    assert utc_series(naive, "ds", naive="utc").tolist() == [NOON]
    assert utc_series(pd.Series(["2026-04-20 12:00"]), "ds", naive="utc").tolist() == [NOON]


def test_utc_series_missing_values_raise_unless_allowed() -> None:
    aware = pd.Series([NOON, pd.NaT]).astype(UTC_DTYPE)
    with pytest.raises(SchemaError, match=r"^forecasts ds: 1 missing timestamp\(s\)$"):
        utc_series(aware, "forecasts ds")
    assert utc_series(aware, "end", allow_nat=True).isna().tolist() == [False, True]


@pytest.mark.parametrize(
    "empty",
    [
        pd.Series([None, None], dtype=object),
        pd.Series([np.nan, np.nan]),
        pd.Series([pd.NaT, pd.NaT], dtype="datetime64[ns]"),  # naive, but no time to be naive about
        pd.Series([], dtype=object),
    ],
)
def test_utc_series_all_missing_columns_have_no_zone_to_check(empty: pd.Series) -> None:
    out = utc_series(empty, "end", allow_nat=True)
    assert out.dtype == UTC_DTYPE
    assert len(out) == len(empty) and out.isna().all()


def test_utc_series_names_what_cannot_be_read() -> None:
    with pytest.raises(SchemaError, match=r"^labels: column 'end': cannot read as timestamps"):
        utc_series(pd.Series(["2026-04-20T12:00Z", "soon"]), "labels: column 'end'")


# -- utc_now --------------------------------------------------------------------------------
def test_utc_now_is_an_aware_utc_datetime() -> None:
    before = dt.datetime.now(dt.UTC)
    now = utc_now()
    assert now.utcoffset() == dt.timedelta(0)
    assert before <= now <= dt.datetime.now(dt.UTC)


# -- split_time -----------------------------------------------------------------------------
DS = pd.Series(pd.date_range("2026-04-20 00:00", periods=10 * 12 + 1, freq="5min", tz="UTC"))  # 10 h


def test_split_time_floors_to_the_hour_by_default() -> None:
    # 0.35 of 10 h is 3 h 30 min: the gate cuts at 03:00 so a few more minutes of data cut there too.
    assert split_time(DS, 0.35) == pd.Timestamp("2026-04-20 03:00", tz="UTC")
    assert split_time(pd.concat([DS, DS.iloc[-1:] + pd.Timedelta(minutes=10)]), 0.35) == split_time(DS, 0.35)


def test_split_time_without_floor_is_the_exact_cut() -> None:
    assert split_time(DS, 0.35, floor=None) == pd.Timestamp("2026-04-20 03:30", tz="UTC")
    assert split_time(DS, 0.35, floor="15min") == pd.Timestamp("2026-04-20 03:30", tz="UTC")
    assert split_time(DS.sample(frac=1.0, random_state=0), 0.35, floor=None) == split_time(DS, 0.35, floor=None)


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1, 1.5])
def test_split_time_refuses_fractions_outside_the_open_unit_interval(fraction: float) -> None:
    with pytest.raises(ValueError, match="within"):
        split_time(DS, fraction)


def test_split_time_refuses_a_series_without_times() -> None:
    with pytest.raises(SchemaError, match="no timestamps"):
        split_time(pd.Series([], dtype=UTC_DTYPE), 0.5)
