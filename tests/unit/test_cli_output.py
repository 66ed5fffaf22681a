"""``--output table|json|csv``: one set of rows, three renderings that agree, nothing cut short."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from rich.console import Console
from typer.testing import CliRunner

import foresight.cli as cli
from foresight.cli.output import OutputFormat, cell, emit, jsonable, result_rows, table_cells

LONG_REASON = "candidate beats baseline " + "because " * 60 + "END"  # well over 200 characters
RESULT: dict[str, Any] = {
    "registered_model": "capacity-forecaster",
    "version": "3",
    "value": np.float64(0.8979),
    "reason": LONG_REASON,
    "metrics": {"mase": 0.8979, "coverage": float("nan")},
    "when": pd.Timestamp("2026-12-07 10:00", tz="UTC"),
    "count": np.int64(48),
}


def test_jsonable_turns_library_types_into_plain_json() -> None:
    plain = jsonable(RESULT)
    assert plain["value"] == 0.8979 and plain["count"] == 48 and isinstance(plain["count"], int)
    assert plain["metrics"] == {"mase": 0.8979, "coverage": None}
    assert plain["when"] == "2026-12-07T10:00:00+00:00"
    frame = pd.DataFrame({"a": [1, 2], "t": pd.to_datetime(["2026-01-01", None], utc=True)})
    assert jsonable(frame) == [{"a": 1, "t": "2026-01-01T00:00:00+00:00"}, {"a": 2, "t": None}]
    json.dumps(plain)  # nothing left that json cannot write


def test_cells_are_plain_text_and_rounded_only_in_the_last_digits() -> None:
    assert cell(None) == "" and cell(float("nan")) == ""
    assert cell(140.16000000000003) == "140.16" and cell(True) == "true" and cell(np.int64(7)) == "7"
    assert cell({"a": [1, "x"]}) == '{"a": [1, "x"]}'


def _render(rows: list[dict[str, Any]], output: OutputFormat, **kwargs: Any) -> str:
    stream, console = io.StringIO(), Console(file=io.StringIO(), width=120)
    emit(rows, output, title="t", console=console, stream=stream, **kwargs)
    return stream.getvalue() if output is not OutputFormat.table else console.file.getvalue()  # type: ignore[attr-defined]


def test_json_and_csv_carry_the_rows_of_the_table() -> None:
    rows = [{"service": "cart", "saving": -43.80000000000001, "reason": LONG_REASON, "extra": None},
            {"service": "search", "saving": 12.5, "reason": "short", "extra": 3}]
    shown = table_cells(rows, list(rows[0]))
    parsed_csv = list(csv.reader(io.StringIO(_render(rows, OutputFormat.csv))))
    assert parsed_csv[0] == list(rows[0]) and parsed_csv[1:] == shown
    parsed_json = json.loads(_render(rows, OutputFormat.json))
    assert [[cell(r[c]) for c in rows[0]] for r in parsed_json] == shown
    assert parsed_json[0]["saving"] == -43.80000000000001  # JSON keeps full precision


@pytest.mark.parametrize("width", [200, 60])
def test_the_table_shows_a_long_reason_whole(width: int) -> None:
    console = Console(file=io.StringIO(), width=width)
    rows = [{"key": "reason", "value": LONG_REASON}, *({"key": f"k{i}", "value": i} for i in range(20))]
    emit(rows, OutputFormat.table, title="t", console=console, columns=("key", "value"))
    text = "".join(ch for ch in console.file.getvalue() if ch not in "│┃ \n")  # type: ignore[attr-defined]
    assert LONG_REASON.replace(" ", "") in text


def test_a_wide_table_turns_into_one_block_per_row() -> None:
    rows = [{f"column_{i}": i for i in range(15)}]
    text = _render(rows, OutputFormat.table)
    assert all(f"column_{i}" in text for i in range(15))  # every name whole, not one letter a line


@pytest.mark.parametrize("output", ["table", "json", "csv"])
def test_run_prints_the_flow_result_in_each_format(
    output: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FORESIGHT_HOME", str(tmp_path))
    monkeypatch.setattr(cli, "quiet_runtime", lambda: None)
    monkeypatch.setattr(cli, "_flow", lambda name: lambda **kwargs: RESULT)
    answer = CliRunner().invoke(cli.app, ["run", "train", "--output", output], terminal_width=100)
    assert answer.exit_code == 0, answer.output
    rows = result_rows(RESULT)
    expected = [[row["key"], cell(row["value"])] for row in rows]
    if output == "json":
        assert [[k, cell(v)] for k, v in json.loads(answer.stdout).items()] == expected
    elif output == "csv":
        assert list(csv.reader(io.StringIO(answer.stdout))) == [["key", "value"], *expected]
    else:
        flat = "".join(ch for ch in answer.stdout if ch not in "│┃ \n")
        assert LONG_REASON.replace(" ", "") in flat and "train result" in answer.stdout


def test_the_entry_point_silences_mlflows_pickling_notice_and_nothing_else() -> None:
    import logging

    from foresight.cli.runtime import silence_library_noise

    stream = io.StringIO()
    logger = logging.getLogger("mlflow.pyfunc")
    handler = logging.StreamHandler(stream)
    logger.addHandler(handler)
    try:
        silence_library_noise()
        silence_library_noise()  # idempotent: one filter
        logger.warning("Passing a Python object as `python_model` causes it to be serialized ...")
        logger.warning("a real problem")
    finally:
        logger.removeHandler(handler)
    assert stream.getvalue() == "a real problem\n"
    assert len(logger.filters) == 1
