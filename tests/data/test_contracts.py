"""Data tests for the telemetry contract: every kind of dirty input lands where it should, nothing is lost."""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from foresight.contracts.check import check_telemetry
from foresight.contracts.results import ContractResult, ContractViolation, require_passed
from foresight.lake import Lake
from foresight.quarantine import read_quarantine, write_quarantine
from foresight.schemas import UTC_DTYPE, validate_telemetry

NOW = pd.Timestamp("2026-03-10 12:00", tz="UTC")
STALENESS = pd.Timedelta(hours=36)
HOURS = 48
CATALOGUE = pd.DataFrame(
    {
        "unique_id": ["web/i-1/cpu_pct", "web/i-1/error_rate", "web/i-1/request_rate", "web/i-1/latency_p95"],
        "unit": ["percent", "ratio", "requests_per_second", "seconds"],
    }
)
CPU, ERRORS, RPS, LATENCY = CATALOGUE["unique_id"]


def clean_batch(seed: int = 0) -> pd.DataFrame:
    """A valid batch with object columns (as a dirty source would hand it over): 4 series x 48 h."""
    rng = np.random.default_rng(seed)
    ds = pd.date_range(end=NOW - pd.Timedelta(hours=1), periods=HOURS, freq="h", unit="us")
    frames = []
    for uid, high in zip(CATALOGUE["unique_id"], (100.0, 1.0, 500.0, 2.0), strict=True):
        frames.append(pd.DataFrame({"unique_id": uid, "ds": ds, "y": rng.uniform(0, high, HOURS)}))
    raw = pd.concat(frames, ignore_index=True)
    return raw.astype(object)


def check(raw: pd.DataFrame, catalogue: pd.DataFrame | None = CATALOGUE, **kwargs: object) -> ContractResult:
    options: dict = {"source": "test", "now": NOW, "max_staleness": STALENESS, "max_quarantine_ratio": 0.05}
    options.update(kwargs)
    return check_telemetry(raw, catalogue, **options)


def assert_nothing_lost(result: ContractResult, raw: pd.DataFrame) -> None:
    assert len(result.clean) + len(result.quarantined) + result.collapsed_duplicates == len(raw)
    assert result.n_raw == len(raw)


def set_cell(row: int, column: str, value: object) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def mutate(raw: pd.DataFrame) -> pd.DataFrame:
        raw.iat[row, raw.columns.get_loc(column)] = value
        return raw

    return mutate


def row_of(uid: str, hour: int = 10) -> int:
    """Row position of a series' sample in :func:`clean_batch`."""
    return list(CATALOGUE["unique_id"]).index(uid) * HOURS + hour


# -- row-level problems: the right reason, nothing lost -----------------------------------------
BAD_ROWS = [
    ("y NaN", CPU, "y", np.nan, "y: not finite (NaN/inf)"),
    ("y None", CPU, "y", None, "y: not finite (NaN/inf)"),
    ("y +inf", CPU, "y", np.inf, "y: not finite (NaN/inf)"),
    ("y -inf text", RPS, "y", "-inf", "y: not finite (NaN/inf)"),
    ("y overflowing text", RPS, "y", "1e999", "y: not finite (NaN/inf)"),
    ("y int beyond float", RPS, "y", 10**400, "y: not finite (NaN/inf)"),
    ("y word", CPU, "y", "high", "y: not numeric"),
    ("y bytes", CPU, "y", b"\x00\x01", "y: not numeric"),
    ("y bool", CPU, "y", True, "y: not numeric"),
    ("y above percent", CPU, "y", 100.5, "y: above 100 for unit percent"),
    ("y huge percent", CPU, "y", 1e300, "y: above 100 for unit percent"),
    ("y above ratio", ERRORS, "y", "1.5", "y: above 1 for unit ratio"),
    ("y negative rate", RPS, "y", -3, "y: below 0 for unit requests_per_second"),
    ("y largest float seconds", LATENCY, "y", 1e308, "y: beyond the sanity bound ±1e+15 for unit seconds"),
    ("y wrapped counter rate", RPS, "y", "18446744073709551615",
     "y: beyond the sanity bound ±1e+15 for unit requests_per_second"),
    ("id non-UTF-8 bytes", CPU, "unique_id", b"web/\xff\xfe/cpu", "unique_id: not valid UTF-8"),
    ("id lone surrogate", CPU, "unique_id", "web/\udcff/cpu", "unique_id: not valid UTF-8"),
    ("id None", CPU, "unique_id", None, "unique_id: missing"),
    ("id blank", CPU, "unique_id", "  ", "unique_id: missing"),
    ("id number", CPU, "unique_id", 42, "unique_id: not text"),
    ("id unknown", CPU, "unique_id", "db/i-9/cpu_pct", "unique_id: not in catalogue"),
    ("ds naive text", CPU, "ds", "2026-03-10 06:00:00", "ds: naive timestamp (no timezone)"),
    ("ds naive datetime", CPU, "ds", dt.datetime(2026, 3, 10, 6), "ds: naive timestamp (no timezone)"),
    ("ds naive Timestamp", CPU, "ds", pd.Timestamp("2026-03-10 06:00"), "ds: naive timestamp (no timezone)"),
    ("ds garbage", CPU, "ds", "yesterday-ish", "ds: not a timestamp"),
    ("ds bytes garbage", CPU, "ds", b"\xff", "ds: not a timestamp"),
    ("ds epoch overflow", CPU, "ds", 1e30, "ds: not a timestamp"),
    ("ds None", CPU, "ds", None, "ds: missing"),
    ("ds future", CPU, "ds", "2026-03-11T00:00:00Z", "ds: in the future"),
    ("ds epoch millis", CPU, "ds", int(NOW.timestamp() * 1000), "ds: not a timestamp"),
    ("ds far past", CPU, "ds", "1999-12-31T23:00:00+00:00", "ds: older than retention"),
]


BAD_ROW_ARGS = ("uid", "column", "value", "reason")


@pytest.mark.parametrize(BAD_ROW_ARGS, [c[1:] for c in BAD_ROWS], ids=[c[0] for c in BAD_ROWS])
def test_bad_row_is_quarantined_with_its_reason(uid: str, column: str, value: object, reason: str) -> None:
    raw = set_cell(row_of(uid), column, value)(clean_batch())
    result = check(raw)
    assert result.reasons == {reason: 1}
    assert result.quarantined["row"].tolist() == [row_of(uid)]
    assert_nothing_lost(result, raw)
    assert result.passed, [c for c in result.checks if not c.passed]  # 1 bad row of 192 is within 5 %
    validate_telemetry(result.clean)


@pytest.mark.parametrize(BAD_ROW_ARGS, [c[1:] for c in BAD_ROWS[:3]], ids=[c[0] for c in BAD_ROWS[:3]])
def test_quarantined_row_keeps_the_original_values_as_text(
    uid: str, column: str, value: object, reason: str
) -> None:
    raw = set_cell(row_of(uid), column, value)(clean_batch())
    row = check(raw).quarantined.iloc[0]
    assert row["reason"] == reason
    assert row["unique_id"] == raw.at[row["row"], "unique_id"]
    assert pd.Timestamp(row["ds"]) == pd.Timestamp(raw.at[row["row"], "ds"])
    assert row["source"] == "test" and row["quarantined_at"] == NOW


def test_non_utf8_bytes_are_kept_as_their_repr_in_quarantine() -> None:
    raw = set_cell(row_of(CPU), "unique_id", b"web/\xff/cpu")(clean_batch())
    quarantined = check(raw).quarantined
    assert quarantined["unique_id"].tolist() == ["b'web/\\xff/cpu'"]


def test_conflicting_duplicates_quarantine_every_copy() -> None:
    raw = clean_batch()
    twin = raw.iloc[[row_of(CPU), row_of(RPS)]].copy()
    twin["y"] = [1.0, 2.0]  # same (unique_id, ds), different values
    raw = pd.concat([raw, twin], ignore_index=True)
    result = check(raw)
    assert result.reasons == {"duplicate (unique_id, ds) with different values": 4}
    assert sorted(result.quarantined["row"]) == sorted([row_of(CPU), row_of(RPS), len(raw) - 2, len(raw) - 1])
    assert_nothing_lost(result, raw)


def test_same_instant_in_two_zones_with_different_values_is_a_conflict() -> None:
    raw = clean_batch()
    original = raw.iloc[[row_of(CPU)]].copy()
    original["ds"] = [pd.Timestamp(original["ds"].iloc[0]).tz_convert("Asia/Tokyo")]
    original["y"] = [original["y"].iloc[0] + 1.0]
    result = check(pd.concat([raw, original], ignore_index=True))
    assert result.reasons == {"duplicate (unique_id, ds) with different values": 2}


def test_exact_duplicates_collapse_to_one_and_are_counted() -> None:
    raw = clean_batch()
    repeats = raw.iloc[[0, 1, 1, 50]]
    raw = pd.concat([raw, repeats], ignore_index=True)
    result = check(raw)
    assert result.collapsed_duplicates == 4
    assert result.quarantined.empty
    assert len(result.clean) == len(raw) - 4
    assert_nothing_lost(result, raw)
    detail = {c.name: c.detail for c in result.checks}["exact_duplicates"]
    assert "4 exact duplicate" in detail


# -- values that are dirty but lossless to fix: accepted -----------------------------------------
def _as_zone(zone: str) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def mutate(raw: pd.DataFrame) -> pd.DataFrame:
        raw["ds"] = pd.to_datetime(raw["ds"]).dt.tz_convert(zone)
        return raw

    return mutate


def _as_text_columns(raw: pd.DataFrame) -> pd.DataFrame:
    raw["ds"] = pd.to_datetime(raw["ds"]).dt.strftime("%Y-%m-%dT%H:%M:%S%z")
    raw["y"] = raw["y"].astype(float).map(repr)
    return raw


def _as_epoch_seconds(raw: pd.DataFrame) -> pd.DataFrame:
    raw["ds"] = pd.to_datetime(raw["ds"]).astype("int64") // 10**6  # microseconds -> seconds
    return raw


def _as_epoch_text(raw: pd.DataFrame) -> pd.DataFrame:
    return _as_epoch_seconds(raw).astype({"ds": str})


def _ids_as_utf8_bytes(raw: pd.DataFrame) -> pd.DataFrame:
    raw["unique_id"] = raw["unique_id"].map(lambda s: s.encode("utf-8"))
    return raw


def _shuffled(raw: pd.DataFrame) -> pd.DataFrame:
    return raw.sample(frac=1.0, random_state=7).reset_index(drop=True)


def _typed_columns(raw: pd.DataFrame) -> pd.DataFrame:
    typed = raw.astype({"unique_id": "string", "y": "float64"})
    return typed.assign(ds=pd.to_datetime(raw["ds"]).astype(UTC_DTYPE))


def _with_extra_columns(raw: pd.DataFrame) -> pd.DataFrame:
    return raw.assign(host="h1", job=3)


def _mixed_zone_objects(raw: pd.DataFrame) -> pd.DataFrame:
    zones = ["UTC", "Europe/Paris", "America/New_York", "Asia/Kolkata"]
    stamps = pd.to_datetime(raw["ds"])
    raw["ds"] = [ts.tz_convert(zones[i % 4]) for i, ts in enumerate(stamps)]
    return raw


@functools.cache
def canonical_clean_batch() -> pd.DataFrame:
    """What :func:`clean_batch` looks like once accepted (computed once: each check costs GE time)."""
    return check(clean_batch()).clean


ACCEPTED = [
    ("tz column New York", _as_zone("America/New_York")),
    ("tz column Kolkata", _as_zone("Asia/Kolkata")),
    ("ISO text and numeric text", _as_text_columns),
    ("epoch seconds", _as_epoch_seconds),
    ("epoch seconds as text", _as_epoch_text),
    ("ids as UTF-8 bytes", _ids_as_utf8_bytes),
    ("out of order", _shuffled),
    ("typed columns", _typed_columns),
    ("extra columns", _with_extra_columns),
    ("aware objects in several zones", _mixed_zone_objects),
]


@pytest.mark.parametrize("mutate", [c[1] for c in ACCEPTED], ids=[c[0] for c in ACCEPTED])
def test_lossless_fixes_are_accepted_as_the_same_canonical_frame(mutate: Callable) -> None:
    expected = canonical_clean_batch()
    raw = mutate(clean_batch())
    result = check(raw)
    assert result.quarantined.empty, result.reasons
    assert result.passed
    assert result.clean["ds"].dtype == UTC_DTYPE
    assert result.clean["y"].dtype == "float64"
    pd.testing.assert_frame_equal(result.clean, expected, check_exact=False, rtol=1e-12)
    pd.testing.assert_frame_equal(validate_telemetry(result.clean), result.clean)


def test_naive_datetime_column_is_quarantined_whole() -> None:
    raw = clean_batch()
    raw["ds"] = pd.to_datetime(raw["ds"]).dt.tz_localize(None)
    result = check(raw)
    assert result.reasons == {"ds: naive timestamp (no timezone)": len(raw)}
    assert not result.passed
    assert result.clean.empty and list(result.clean.columns) == ["unique_id", "ds", "y"]
    assert_nothing_lost(result, raw)


# -- batch-level problems --------------------------------------------------------------------
def failed(result: ContractResult) -> set[str]:
    return {c.name for c in result.checks if not c.passed}


@pytest.mark.parametrize("column", ["unique_id", "ds", "y"])
def test_missing_required_column_quarantines_every_row(column: str) -> None:
    raw = clean_batch().drop(columns=column)
    result = check(raw)
    assert "schema" in failed(result)
    assert result.reasons == {f"schema: missing column(s) {column}": len(raw)}
    assert result.clean.empty
    assert result.quarantined[column].isna().all()
    assert_nothing_lost(result, raw)


def test_empty_batch_fails() -> None:
    raw = clean_batch().iloc[:0]
    result = check(raw)
    assert not result.passed
    assert {"not_empty", "row_count", "freshness"} <= failed(result)
    assert "quarantine_ratio" not in failed(result)


def test_frame_without_any_column_fails_schema_not_crashes() -> None:
    result = check(pd.DataFrame())
    assert {"schema", "not_empty"} <= failed(result)


def test_too_many_bad_rows_fail_the_batch() -> None:
    raw = clean_batch()
    raw.loc[raw.index[:20], "y"] = "n/a"  # 20 of 192 rows, about 10 %
    result = check(raw)
    assert failed(result) == {"quarantine_ratio"}
    assert result.reasons == {"y: not numeric": 20}
    assert len(result.clean) == len(raw) - 20  # still returned, for inspection
    assert check(raw, max_quarantine_ratio=0.2).passed


def test_lines_the_source_could_not_read_count_towards_the_quarantine_ratio() -> None:
    """A file or topic that is mostly garbage fails its batch, not passes on its few good rows."""
    raw = clean_batch()  # 192 good rows
    assert check(raw, rejected=8).passed  # 8 of 200 unreadable: 4 %
    result = check(raw, rejected=20)  # 20 of 212: 9.4 %
    assert failed(result) == {"quarantine_ratio"}
    ratio = next(c for c in result.checks if c.name == "quarantine_ratio")
    assert "20 of 212 row(s) quarantined, 20 of them unreadable at the source" in ratio.detail
    assert len(result.clean) == len(raw)


def test_stale_batch_fails_freshness() -> None:
    raw = clean_batch()
    result = check(raw, now=NOW + pd.Timedelta(days=3))
    assert failed(result) == {"freshness"}
    assert "newest accepted sample" in {c.name: c.detail for c in result.checks}["freshness"]


def test_future_rows_do_not_make_a_stale_batch_fresh() -> None:
    later = NOW + pd.Timedelta(days=3)
    raw = set_cell(0, "ds", (later + pd.Timedelta(days=1)).isoformat())(clean_batch())
    result = check(raw, now=later)
    assert result.reasons == {"ds: in the future": 1}
    assert "freshness" in failed(result)


def test_clean_batch_passes_with_canonical_clean_frame() -> None:
    raw = clean_batch()
    result = check(raw)
    assert result.passed and not failed(result)
    assert result.quarantined.empty and result.reasons == {}
    clean = validate_telemetry(result.clean)
    assert len(clean) == len(raw)
    assert str(clean["unique_id"].dtype) in {"string", "str"}
    assert clean["ds"].dtype == UTC_DTYPE and clean["y"].dtype == np.float64
    assert (clean.groupby("unique_id")["ds"].diff().dropna() > pd.Timedelta(0)).all()
    require_passed(result)  # does not raise


def test_without_catalogue_unknown_series_and_bounds_are_not_checked() -> None:
    raw = set_cell(row_of(CPU), "unique_id", "db/i-9/cpu_pct")(clean_batch())
    raw = set_cell(row_of(RPS), "y", 1e6)(raw)
    result = check(raw, catalogue=None)
    assert result.quarantined.empty and result.passed
    assert "not checked" in {c.name: c.detail for c in result.checks}["catalogue"]


def test_empty_catalogue_knows_no_series() -> None:
    result = check(clean_batch(), catalogue=CATALOGUE.iloc[:0])
    assert result.reasons == {"unique_id: not in catalogue": 4 * HOURS}
    assert not result.passed


def test_units_without_bounds_get_only_the_sanity_bound() -> None:
    catalogue = CATALOGUE.assign(unit=["furlongs", None, "requests_per_second", "seconds"])
    raw = set_cell(row_of(CPU), "y", 1e9)(clean_batch())
    raw = set_cell(row_of(ERRORS), "y", -5.0)(raw)
    raw = set_cell(row_of(LATENCY), "y", -5.0)(raw)
    raw = set_cell(row_of(CPU, hour=11), "y", -9e14)(raw)  # near the bound, either sign: a real value
    raw = set_cell(row_of(CPU, hour=12), "y", 1e308)(raw)
    raw = set_cell(row_of(ERRORS, hour=12), "y", -1e308)(raw)
    result = check(raw, catalogue=catalogue)
    assert result.reasons == {
        "y: below 0 for unit seconds": 1,
        "y: beyond the sanity bound ±1e+15 for unit furlongs": 1,
        "y: beyond the sanity bound ±1e+15 for unit (none)": 1,
    }
    assert result.passed


def test_byte_and_count_totals_get_a_wider_sanity_bound() -> None:
    catalogue = CATALOGUE.assign(unit=["bytes", "count", "requests_per_second", "seconds"])
    raw = set_cell(row_of(CPU), "y", 5e15)(clean_batch())  # 5 PB on a storage cluster: real
    raw = set_cell(row_of(ERRORS), "y", 3e16)(raw)  # a busy router's packet counter: real
    raw = set_cell(row_of(CPU, hour=11), "y", 1e308)(raw)
    raw = set_cell(row_of(ERRORS, hour=11), "y", float(2**64 - 1))(raw)  # a counter wrapped below 0
    result = check(raw, catalogue=catalogue)
    assert result.reasons == {
        "y: beyond the sanity bound ±1e+18 for unit bytes": 1,
        "y: beyond the sanity bound ±1e+18 for unit count": 1,
    }
    assert sorted(result.quarantined["row"]) == [row_of(CPU, 11), row_of(ERRORS, 11)]


def test_without_catalogue_the_generic_sanity_bound_still_holds() -> None:
    raw = set_cell(row_of(RPS), "y", 1e308)(clean_batch())
    result = check(raw, catalogue=None)
    assert result.reasons == {"y: beyond the sanity bound ±1e+15 for unit (none)": 1}
    assert result.quarantined["y"].tolist() == ["1e+308"]  # the value itself stays with its reason


def test_batch_id_depends_on_source_and_content_only() -> None:
    first, again = check(clean_batch()), check(clean_batch(), now=NOW + pd.Timedelta(hours=1))
    assert first.batch_id == again.batch_id
    assert check(clean_batch(), source="other").batch_id != first.batch_id
    assert check(clean_batch(seed=1)).batch_id != first.batch_id


# -- failing loudly and explaining ---------------------------------------------------------------
def test_require_passed_raises_naming_the_failed_check() -> None:
    raw = clean_batch()
    result = check(raw, now=NOW + pd.Timedelta(days=3))
    with pytest.raises(ContractViolation, match="freshness") as excinfo:
        require_passed(result)
    assert excinfo.value.result is result
    assert "quarantine_ratio" not in str(excinfo.value)


def test_summary_markdown_mentions_counts_reasons_and_checks() -> None:
    raw = set_cell(row_of(CPU), "y", 150.0)(clean_batch())
    raw = pd.concat([raw, raw.iloc[[3]]], ignore_index=True)
    text = check(raw).summary_markdown()
    assert f"| {len(raw)} | {len(raw) - 2} | 1 | 1 |" in text
    assert "| y: above 100 for unit percent | 1 |" in text
    assert "| freshness | pass |" in text and "PASSED" in text
    failed_text = check(raw, now=NOW + pd.Timedelta(days=3)).summary_markdown()
    assert "FAILED" in failed_text and "| freshness | FAIL |" in failed_text
    assert "must not be used for training" in failed_text


# -- the quarantine in the lake ------------------------------------------------------------------
def test_write_quarantine_round_trips_and_is_idempotent(tmp_path) -> None:
    lake = Lake(tmp_path / "lake")
    raw = set_cell(row_of(CPU), "unique_id", b"\xff")(clean_batch())
    raw = set_cell(row_of(RPS), "y", "lots")(raw)
    result = check(raw)
    path = write_quarantine(lake, result)
    expected = f"quarantine/telemetry/date=2026-03-10/batch-{result.batch_id}.parquet"
    assert path is not None and path.endswith(expected)
    again = write_quarantine(lake, check(raw, now=NOW + pd.Timedelta(hours=2)))
    assert again == path
    assert lake.list_files("quarantine") == [path]
    stored = read_quarantine(lake)
    assert len(stored) == 2
    assert stored.sort_values("row")["reason"].tolist() == ["unique_id: not valid UTF-8", "y: not numeric"]
    assert stored["quarantined_at"].dtype == UTC_DTYPE
    assert set(stored["batch_id"]) == {result.batch_id}


def test_write_quarantine_skips_clean_batches_and_reading_nothing_is_empty(tmp_path) -> None:
    lake = Lake(tmp_path / "lake")
    assert write_quarantine(lake, check(clean_batch())) is None
    empty = read_quarantine(lake)
    assert empty.empty and "reason" in empty.columns


def test_quarantines_of_two_batches_accumulate(tmp_path) -> None:
    lake = Lake(tmp_path / "lake")
    for seed in (0, 1):
        write_quarantine(lake, check(set_cell(0, "y", "bad")(clean_batch(seed))))
    assert len(read_quarantine(lake)) == 2
    assert read_quarantine(lake)["batch_id"].nunique() == 2


# -- per-source suites -------------------------------------------------------------------------
def test_each_source_kind_gets_its_own_suites() -> None:
    from foresight.contracts.suites import SourceContract

    generic = check(clean_batch())
    prom = check(clean_batch(), contract=SourceContract("prometheus", grid=pd.Timedelta("1h")))
    assert generic.suite == "telemetry" and prom.suite == "telemetry.prometheus"
    assert prom.passed and "telemetry.prometheus.rows" in prom.summary_markdown()


def test_samples_off_the_sources_grid_are_quarantined_with_the_grid_in_the_reason() -> None:
    from foresight.contracts.suites import SourceContract

    raw = clean_batch()
    raw.loc[[2, 7], "ds"] = [str(pd.Timestamp(raw.loc[i, "ds"]) + pd.Timedelta("90s")) for i in (2, 7)]
    generic = check(raw)
    gridded = check(raw, contract=SourceContract("prometheus", grid=pd.Timedelta("60s")))
    assert generic.quarantined.empty, "without a grid the odd timestamps are plausible samples"
    assert gridded.reasons == {"ds: not on the source's 1min sampling grid": 2}
    assert len(gridded.clean) + len(gridded.quarantined) == len(raw)


def test_a_label_cardinality_explosion_fails_the_batch() -> None:
    from foresight.contracts.suites import SourceContract

    raw = clean_batch()
    churned = raw.assign(unique_id=[f"web/pod-{i}/cpu_pct" for i in range(len(raw))])
    result = check(churned, catalogue=None, contract=SourceContract("kafka", max_series=50))
    assert not result.passed
    [failed] = result.failed_checks
    assert failed.name == "series_count" and f"{len(raw)} distinct series" in failed.detail
    assert check(raw, contract=SourceContract("kafka", max_series=50)).passed, "a normal batch stays within it"


def test_source_contract_rejects_nonsense_limits() -> None:
    from foresight.contracts.suites import SourceContract

    with pytest.raises(ValueError, match="grid must be positive"):
        SourceContract("prometheus", grid=pd.Timedelta(0))
    with pytest.raises(ValueError, match="max_series must be >= 1"):
        SourceContract("kafka", max_series=0)


# -- ids the sinks cannot hold: per series, never per batch --------------------------------------
LONG_ID = "web/ip-10-0-0-1/" + "cpu_pct{" + ",".join(f"label_{i:02d}=value-{i:02d}" for i in range(16)) + "}"


def with_series(uid: str, unit: str = "percent") -> tuple[pd.DataFrame, pd.DataFrame]:
    """:func:`clean_batch` plus one more catalogued 48-hour series ``uid``: (raw, catalogue)."""
    raw = clean_batch()
    extra = raw.iloc[:HOURS].assign(unique_id=uid)
    catalogue = pd.concat([CATALOGUE, pd.DataFrame({"unique_id": [uid], "unit": [unit]})], ignore_index=True)
    return pd.concat([raw, extra], ignore_index=True), catalogue


def test_a_real_long_series_id_is_accepted() -> None:
    assert len(LONG_ID) == 312  # the id that stopped every forecast write on PostgreSQL
    raw, catalogue = with_series(LONG_ID)
    result = check(raw, catalogue=catalogue)
    assert result.passed and result.quarantined.empty
    assert (result.clean["unique_id"] == LONG_ID).sum() == HOURS


TOO_LONG = "unique_id: longer than 1024 UTF-8 bytes, the most the forecast store can key on"
CONTROLS = "unique_id: contains control characters (NUL, newline, ...), which the sinks cannot carry"
UNHOLDABLE_IDS = [
    ("1025 bytes", "w" * 1025, TOO_LONG),
    ("513 two-byte characters", "é" * 513, TOO_LONG),  # 513 characters, 1026 bytes: the limit is bytes
    ("NUL", "web/i-1\x00/cpu_pct", CONTROLS),
    ("newline", "web/i-1/cpu_pct\n", CONTROLS),
    ("C1 control", "web/i-1/\x9bcpu_pct", CONTROLS),
]


@pytest.mark.parametrize(
    ("uid", "reason"), [c[1:] for c in UNHOLDABLE_IDS], ids=[c[0] for c in UNHOLDABLE_IDS]
)
def test_a_series_the_sinks_cannot_hold_is_quarantined_alone(uid: str, reason: str) -> None:
    raw, catalogue = with_series(uid)
    result = check(raw, catalogue=catalogue, max_quarantine_ratio=0.25)  # 48 of 240 rows: 20 %
    assert result.reasons == {reason: HOURS}
    assert sorted(result.quarantined["row"]) == list(range(4 * HOURS, 5 * HOURS))
    assert result.quarantined["unique_id"].tolist() == [uid] * HOURS  # kept whole, with the reason
    assert result.passed, result.failed_checks
    assert set(result.clean["unique_id"]) == set(CATALOGUE["unique_id"])  # the other series all go in
    assert_nothing_lost(result, raw)
    # With the usual limit the batch fails by the quarantine ratio, and only by it.
    assert failed(check(raw, catalogue=catalogue)) == {"quarantine_ratio"}


def test_an_id_of_exactly_the_limit_is_accepted() -> None:
    raw, catalogue = with_series("é" * 512)  # 1024 UTF-8 bytes
    assert check(raw, catalogue=catalogue).quarantined.empty
