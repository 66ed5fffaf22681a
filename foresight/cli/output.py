"""What a command prints, as a table for people or as JSON / CSV for scripts (``--output``).

One set of rows feeds all three: the table and the CSV show each value as the same text
(:func:`cell`), the JSON keeps its structure (:func:`jsonable`). Nothing is cut short: the table
folds long values onto more lines instead of ending them with an ellipsis. JSON and CSV go to
stdout as plain text (no colours, no wrapping), so ``foresight show plan --output json | jq``
works; log lines and warnings stay on stderr.
"""

from __future__ import annotations

import csv
import datetime as dt
import enum
import io
import json
import math
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

from rich.console import Console
from rich.table import Table
from rich.text import Text

# Below this many characters per column a table turns into one block per row.
MIN_COLUMN_WIDTH = 12


class OutputFormat(enum.StrEnum):
    """The ``--output`` choices."""

    table = "table"
    json = "json"
    csv = "csv"


def jsonable(value: Any) -> Any:
    """``value`` as plain JSON types: timestamps as ISO 8601, NaN / NaT as null, frames as records."""
    # Duck-typed, so this module (imported when the CLI starts) does not import pandas or numpy.
    if value is None or type(value).__name__ == "NaTType":
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if hasattr(value, "columns") and hasattr(value, "to_dict"):  # a DataFrame: its records
        return [jsonable(row) for row in value.to_dict(orient="records")]
    if isinstance(value, (list, tuple, set, frozenset)):
        return [jsonable(v) for v in value]
    if isinstance(value, enum.Enum):
        return jsonable(value.value)
    if isinstance(value, (dt.datetime, dt.date)):  # pandas Timestamps too
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return str(value)
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else float(value)
    if hasattr(value, "tolist"):  # numpy scalars and arrays, pandas Series
        return jsonable(value.tolist())
    return str(value)


def cell(value: Any) -> str:
    """The text the table and the CSV show for ``value``: strings as they are, null as empty,
    anything structured as compact JSON."""
    plain = jsonable(value)
    if plain is None:
        return ""
    if isinstance(plain, str):
        return plain
    if isinstance(plain, bool):
        return "true" if plain else "false"
    if isinstance(plain, int):
        return str(plain)
    if isinstance(plain, float):  # ten significant digits: 140.16, not 140.16000000000003
        return format(plain, ".10g")
    return json.dumps(plain, separators=(", ", ": "))


def frame_rows(frame: Any) -> list[dict[str, Any]]:
    """A frame's rows as JSON-ready records, every column kept (whatever columns it has)."""
    rows: list[dict[str, Any]] = jsonable(frame)
    return rows


def result_rows(result: Mapping[str, Any] | Sequence[Any]) -> list[dict[str, Any]]:
    """A flow's result as ``key, value`` rows (a list's keys are its indices)."""
    items = result.items() if isinstance(result, Mapping) else enumerate(result)
    return [{"key": str(key), "value": jsonable(value)} for key, value in items]


def table_cells(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> list[list[str]]:
    """Each row's text per column, as the table and the CSV show it."""
    return [[cell(row.get(column)) for column in columns] for row in rows]


def columns_of(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """Every column any row has, in first-seen order."""
    seen: dict[str, None] = {}
    for row in rows:
        seen.update(dict.fromkeys(row))
    return list(seen)


def emit(
    rows: Sequence[Mapping[str, Any]],
    output: OutputFormat,
    *,
    title: str,
    console: Console,
    columns: Sequence[str] | None = None,
    json_value: Any = None,
    stream: TextIO | None = None,
) -> None:
    """Print ``rows`` as a table (on ``console``), JSON or CSV (on ``stream``, default stdout).

    ``json_value`` replaces the rows in JSON output when the structure says more than rows do
    (a flow's result as one object); it must hold the same values.
    """
    names = list(columns) if columns is not None else columns_of(rows)
    out = stream or sys.stdout
    if output is OutputFormat.json:
        out.write(json.dumps(jsonable(list(rows) if json_value is None else json_value), indent=2) + "\n")
    elif output is OutputFormat.csv:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(names)
        writer.writerows(table_cells(rows, names))
        out.write(buffer.getvalue())
    elif not rows:
        console.print(f"{title}: nothing yet")
    elif len(names) * MIN_COLUMN_WIDTH > console.width:
        console.print(_records_table(rows, names, title))
    else:
        table = Table(title=title)
        for name in names:
            table.add_column(name, overflow="fold")
        for texts in table_cells(rows, names):
            table.add_row(*(Text(text) for text in texts))  # Text: '[cart]' is no markup
        console.print(table)


def _records_table(rows: Sequence[Mapping[str, Any]], names: Sequence[str], title: str) -> Table:
    """Rows too wide for the terminal, one block of ``column  value`` lines each (as psql's ``\\x``)."""
    table = Table(title=title, show_header=False)
    table.add_column("column", style="bold", no_wrap=True)
    table.add_column("value", overflow="fold")
    for number, texts in enumerate(table_cells(rows, names)):
        if number:
            table.add_section()
        for name, text in zip(names, texts, strict=True):
            table.add_row(name, Text(text))
    return table
