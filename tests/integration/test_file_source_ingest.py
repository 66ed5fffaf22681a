"""A backfill file with bad lines through the real ingest flow: the bad lines are quarantined by
line with a reason and the rest are stored; a file that is no telemetry fails with one clear error."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from foresight.errors import ForesightError
from foresight.lake import Lake
from foresight.quarantine import read_rejected

pytestmark = pytest.mark.integration


def _good_lines(n: int = 24) -> list[bytes]:
    end = pd.Timestamp.now(tz="UTC").floor("5min")
    return [f"cart/i-1/cpu_pct,{ts:%Y-%m-%dT%H:%M:%SZ},{40 + i % 7}.5".encode()
            for i, ts in enumerate(pd.date_range(end=end, periods=n, freq="5min"))]


def _ingest(home: Path, content: bytes, monkeypatch: pytest.MonkeyPatch) -> dict:
    from flows.ingest import ingest

    path = home.parent / "backfill.csv"
    path.write_bytes(content)
    monkeypatch.setenv("FORESIGHT_SOURCES", json.dumps(
        [{"name": "backfill", "kind": "file", "options": {"path": str(path), "unit": "percent"}}]))
    [outcome] = ingest()
    return outcome


def test_a_bad_byte_and_a_ragged_line_are_quarantined_and_the_other_rows_stored(
    prefect_harness, foresight_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    good = _good_lines(60)  # 2 unreadable of 60 lines: within the 5 % the contract allows
    lines = [b"unique_id,ds,y", *good[:10], good[10].replace(b"cart", b"c\xffrt"), *good[11:20],
             good[20] + b",extra", *good[21:]]
    outcome = _ingest(foresight_home, b"\n".join(lines) + b"\n", monkeypatch)
    assert outcome["passed"] and outcome["accepted"] == len(good) - 2 and outcome["rejected_messages"] == 2
    lake = Lake(foresight_home / "lake")
    assert len(lake.read("telemetry")) == len(good) - 2
    rejected = read_rejected(lake)
    assert rejected["reason"].tolist() == ["line 12: not UTF-8 (byte 0xff at column 2)",
                                           "line 22: 4 field(s), the header has 3"]
    assert rejected["origin"].tolist() == ["backfill.csv:12", "backfill.csv:22"]
    assert set(rejected["source"]) == {"backfill"}


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"", "backfill.csv is empty (0 bytes): not even a header line"),
     (b"cart/i-1/cpu_pct,2026-01-01T00:00:00Z,41.5\n",
      "backfill.csv: the first line must be a header naming unique_id, ds, y; found 'cart/i-1/cpu_pct,")],
    ids=["zero-bytes", "one-line-no-header"],
)
def test_a_file_that_is_not_telemetry_fails_the_run_with_one_clear_error(
    prefect_harness, foresight_home: Path, monkeypatch: pytest.MonkeyPatch, content: bytes, message: str
) -> None:
    with pytest.raises(ForesightError) as caught:
        _ingest(foresight_home, content, monkeypatch)
    assert caught.value.message.startswith(message)
    assert not Lake(foresight_home / "lake").exists("telemetry"), "no row of it was taken as data"
