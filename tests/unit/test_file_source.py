"""The file source reads what it can and says, per line, what it could not."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd
import pytest

from connectors.sources.file import FileSource, FileSourceError
from foresight.errors import ForesightError
from foresight.lake import Lake
from foresight.quarantine import read_rejected, write_rejected

ROWS = [
    b"unique_id,ds,y",
    b"cart/i-1/cpu_pct,2026-01-01T00:00:00Z,41.5",
    b"cart/i-1/cpu_pct,2026-01-01T00:05:00Z,42.0",
    b"cart/i-1/cpu_pct,2026-01-01T00:10:00Z,43.5",
    b"cart/i-1/cpu_pct,2026-01-01T00:15:00Z,44.0",
]


def _write(tmp_path: Path, lines: list[bytes], name: str = "backfill.csv", newline: bytes = b"\n") -> Path:
    path = tmp_path / name
    path.write_bytes(newline.join(lines) + newline)
    return path


def _fetch(path: Path):
    return FileSource(name="backfill", path=str(path), unit="percent").fetch()


def test_a_clean_file_arrives_whole_as_text(tmp_path: Path) -> None:
    batch = _fetch(_write(tmp_path, ROWS))
    assert batch.telemetry["y"].tolist() == ["41.5", "42.0", "43.5", "44.0"], "values stay text for the contract"
    assert batch.rejected is None and batch.expect_rows
    assert batch.catalogue["unique_id"].tolist() == ["cart/i-1/cpu_pct"]


def test_a_line_that_is_not_utf8_is_rejected_with_its_line_and_byte_and_the_rest_arrive(tmp_path: Path) -> None:
    lines = list(ROWS)
    lines[2] = b"cart/i-1/cpu_pct,2026-01-01T00:05:00Z,4\xff2.0"
    batch = _fetch(_write(tmp_path, lines))
    assert batch.telemetry["ds"].tolist() == ["2026-01-01T00:00:00Z", "2026-01-01T00:10:00Z", "2026-01-01T00:15:00Z"]
    rejected = batch.rejected.to_dict("records")
    assert rejected == [{"origin": "backfill.csv:3", "raw": "cart/i-1/cpu_pct,2026-01-01T00:05:00Z,4\\xff2.0",
                         "reason": "line 3: not UTF-8 (byte 0xff at column 40)"}]


@pytest.mark.parametrize("newline", [b"\n", b"\r\n"], ids=["lf", "crlf"])
def test_ragged_lines_are_rejected_by_line_number_and_the_rest_arrive(tmp_path: Path, newline: bytes) -> None:
    lines = [*ROWS[:2], b"cart/i-1/cpu_pct,2026-01-01T00:05:00Z,42.0,extra", b"", ROWS[3],
             b"cart/i-1/cpu_pct,2026-01-01T00:15:00Z", b'"cart/i-1/cpu_pct,with comma",2026-01-01T00:20:00Z,45']
    batch = _fetch(_write(tmp_path, lines, newline=newline))
    assert batch.telemetry["unique_id"].tolist() == ["cart/i-1/cpu_pct", "cart/i-1/cpu_pct",
                                                     "cart/i-1/cpu_pct,with comma"], "a quoted comma is no field"
    assert batch.rejected["reason"].tolist() == ["line 3: 4 field(s), the header has 3",
                                                 "line 6: 2 field(s), the header has 3"]
    assert batch.rejected["origin"].tolist() == ["backfill.csv:3", "backfill.csv:6"]
    assert batch.rejected["raw"].iloc[1] == "cart/i-1/cpu_pct,2026-01-01T00:15:00Z"


def test_bad_bytes_and_ragged_lines_together_keep_their_own_line_numbers(tmp_path: Path) -> None:
    lines = [ROWS[0], b"\xfe,x,y", ROWS[1], b"a,b", ROWS[2], b"a,\xc3(,1", b"a,b,c,d", ROWS[3]]
    batch = _fetch(_write(tmp_path, lines))
    assert [r.split(":")[0] for r in batch.rejected["reason"]] == ["line 2", "line 4", "line 6", "line 7"]
    assert len(batch.telemetry) == 3


def test_the_header_names_the_columns_in_any_order_and_extra_columns_pass(tmp_path: Path) -> None:
    path = _write(tmp_path, [b"\xef\xbb\xbfy,host,ds,unique_id", b"41.5,web-1,2026-01-01T00:00:00Z,cart/i-1/cpu_pct"])
    batch = _fetch(path)  # a UTF-8 byte order mark (Excel's "CSV UTF-8") is not part of the first name
    assert batch.telemetry.loc[0, ["unique_id", "ds", "y"]].tolist() == [
        "cart/i-1/cpu_pct", "2026-01-01T00:00:00Z", "41.5"]


def test_a_file_without_a_header_is_an_error_that_shows_its_first_line(tmp_path: Path) -> None:
    path = _write(tmp_path, [ROWS[1]])  # one data line: today it became the header, and the row was lost
    with pytest.raises(FileSourceError) as caught:
        _fetch(path)
    assert str(caught.value.message) == ("backfill.csv: the first line must be a header naming unique_id, ds, y; "
                                         "found 'cart/i-1/cpu_pct,2026-01-01T00:00:00Z,41.5'")
    assert "unique_id,ds,y" in caught.value.hint


def test_a_header_only_file_is_a_clear_no_rows_result(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="connectors.sources.file"):
        batch = _fetch(_write(tmp_path, [ROWS[0]]))
    assert batch.telemetry.empty and list(batch.telemetry.columns) == ["unique_id", "ds", "y"]
    assert not batch.expect_rows, "nothing to ingest is not a failed contract"
    assert "backfill.csv has no rows" in caplog.text


def test_a_file_whose_lines_were_all_rejected_still_expects_rows(tmp_path: Path) -> None:
    batch = _fetch(_write(tmp_path, [ROWS[0], b"a,b"]))
    assert batch.telemetry.empty and len(batch.rejected) == 1
    assert batch.expect_rows, "the contract fails an all-bad file (nothing usable arrived)"


@pytest.mark.parametrize("content", [b"", b"\n\n", b"  \r\n"], ids=["zero-bytes", "blank-lines", "whitespace"])
def test_an_empty_file_is_an_error_naming_it(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "backfill.csv"
    path.write_bytes(content)
    with pytest.raises(FileSourceError, match=r"^backfill.csv is empty \(\d+ bytes\): not even a header line"):
        _fetch(path)


def test_a_header_that_is_not_utf8_is_an_error_saying_so(tmp_path: Path) -> None:
    path = tmp_path / "backfill.csv"
    path.write_bytes("unique_id,ds,y\nx,y,z\n".encode("utf-16"))
    with pytest.raises(FileSourceError, match="backfill.csv: the first line is not UTF-8 text"):
        _fetch(path)


def test_a_missing_file_is_a_foresight_error(tmp_path: Path) -> None:
    with pytest.raises(ForesightError, match="telemetry file not found"):
        _fetch(tmp_path / "nope.csv")


def test_a_corrupt_parquet_file_is_one_line_naming_it(tmp_path: Path) -> None:
    good = tmp_path / "good.parquet"
    pd.DataFrame({"unique_id": ["a/b/c"], "ds": ["2026-01-01T00:00:00Z"], "y": ["1"]}).to_parquet(good)
    corrupt = tmp_path / "backfill.parquet"
    corrupt.write_bytes(good.read_bytes()[: len(good.read_bytes()) // 2])
    with pytest.raises(FileSourceError) as caught:
        _fetch(corrupt)
    assert caught.value.message.startswith("backfill.parquet: not a readable Parquet file (")
    assert "\n" not in caught.value.message
    assert len(_fetch(good).telemetry) == 1


def test_a_parquet_file_without_the_telemetry_columns_says_which(tmp_path: Path) -> None:
    path = tmp_path / "backfill.parquet"
    pd.DataFrame({"id": ["a"], "ds": ["2026-01-01T00:00:00Z"], "y": [1.0]}).to_parquet(path)
    with pytest.raises(FileSourceError, match="backfill.parquet: no column.s. unique_id; found id, ds, y"):
        _fetch(path)


def test_rejected_lines_are_kept_by_the_quarantine(tmp_path: Path) -> None:
    lines = list(ROWS)
    lines[1] = b"cart/i-1/cpu_pct,2026-01-01T00:00:00Z,\x80"
    batch = _fetch(_write(tmp_path, lines))
    lake = Lake(tmp_path / "lake")
    write_rejected(lake, "backfill", batch.rejected)
    stored = read_rejected(lake)
    assert stored[["source", "origin", "reason"]].values.tolist() == [
        ["backfill", "backfill.csv:2", "line 2: not UTF-8 (byte 0x80 at column 39)"]]
