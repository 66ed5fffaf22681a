"""A source that reads long-format telemetry (``unique_id, ds, y``) from a CSV or Parquet file.

For backfills, exports from other tools and replaying benchmark data. Values are not coerced
here: a row that is a row goes on to the data contract, which quarantines what it cannot accept.
A CSV line that cannot even be a row (bytes that are not UTF-8, the wrong number of fields) is
kept, with its line number and why, as one of the batch's ``rejected`` messages (the ingest flow
stores them in the quarantine); the other lines still arrive. A file that is not telemetry at
all (missing, zero bytes, no ``unique_id, ds, y`` header, a corrupt Parquet file) is one
:class:`FileSourceError` naming the file. A file with a header and no rows is a clear "no rows"
(a warning, and a batch the contract treats as nothing new), not a failed contract.

The catalogue comes from a second file, or is derived from the ``service/resource/metric``
convention of the series ids with the unit given in options.
"""

from __future__ import annotations

import csv
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
from pydantic import BaseModel, ConfigDict, Field

from connectors.sources.base import SOURCES, SourceBatch, Window
from foresight.errors import ForesightError
from foresight.schemas import CATALOGUE_COLUMNS, TELEMETRY_COLUMNS

log = logging.getLogger(__name__)

REJECTED_COLUMNS = ("origin", "raw", "reason")
_HEADER_RULE = "the first line must be a header naming unique_id, ds, y"
_HEADER_HINT = f"{_HEADER_RULE} (in any order; other columns are ignored)"


class FileSourceError(ForesightError, ValueError):
    """A telemetry file that cannot be read as telemetry at all (missing, empty, no header, corrupt)."""


class FileOptions(BaseModel):
    """Options of a ``file`` source (``SourceConfig.options``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str = Field(min_length=1)  # the CSV or Parquet file of unique_id, ds, y rows
    catalogue: str | None = None  # a catalogue file; None: derived from the series ids
    unit: str = Field(default="count", min_length=1)  # unit of a derived catalogue's series


@SOURCES.register("file")
class FileSource:
    """Long-format telemetry from one file (see the module docstring)."""

    Settings: ClassVar[type[BaseModel]] = FileOptions  # its options, checked when the settings load

    def __init__(self, name: str, path: str, catalogue: str | None = None, unit: str = "count") -> None:
        self.name = name
        self.path = Path(path)
        self.catalogue_path = Path(catalogue) if catalogue else None
        self.unit = unit

    def fetch(self, window: Window | None = None) -> SourceBatch:
        if self.path.suffix == ".parquet":
            raw, rejected = read_telemetry_parquet(self.path), _no_rejects()
        else:
            raw, rejected = read_telemetry_csv(self.path)
        if len(rejected):
            log.warning("file source %s: %d line(s) of %s could not be read as rows (kept in the quarantine); "
                        "first: %s", self.name, len(rejected), self.path.name, rejected["reason"].iloc[0])
        if raw.empty and rejected.empty:
            log.warning("file source %s: %s has no rows: nothing to ingest", self.name, self.path.name)
        if window is not None:
            ds = pd.to_datetime(raw["ds"], utc=True, errors="coerce")
            raw = raw[(ds >= window.start) & (ds < window.end)]
        catalogue = read_catalogue(self.catalogue_path) if self.catalogue_path else self._derived_catalogue(raw)
        return SourceBatch(source=self.name, telemetry=raw.reset_index(drop=True), catalogue=catalogue,
                           rejected=rejected if len(rejected) else None,
                           # header only: a clear "no rows", not a failed contract; rows that were
                           # all rejected still fail it (nothing usable arrived)
                           expect_rows=not (raw.empty and rejected.empty))

    def _derived_catalogue(self, raw: pd.DataFrame) -> pd.DataFrame:
        ids = pd.Series(raw["unique_id"].dropna().unique() if "unique_id" in raw else [], dtype="string")
        parts = ids.str.split("/", n=2, expand=True).reindex(columns=[0, 1, 2])
        return pd.DataFrame({
            "unique_id": ids, "source": self.name, "metric": parts[2].fillna(ids),
            "labels": [json.dumps({"file": self.path.name})] * len(ids),
            "service": parts[0].where(parts[2].notna(), ""), "resource_id": parts[1].fillna(""),
            "instance_type": "", "unit": self.unit,
        })[list(CATALOGUE_COLUMNS)]


@dataclass(frozen=True)
class _Header:
    names: list[str]
    body_start: int  # byte offset of the line after the header
    body_line: int  # its 1-based line number


def read_telemetry_csv(path: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every row of a telemetry CSV as text (empty fields missing), and the lines that could not
    be rows: ``origin`` (``file:line``), ``raw`` (undecodable bytes escaped) and ``reason``.

    Clean files take pyarrow's C++ parser in one pass; only a file with bytes that are not UTF-8
    is split into lines in Python, to set those lines aside.
    """
    data = _read_bytes(path)
    header = _header(path, data)
    body = data[header.body_start:]
    rejected: list[tuple[int, str, str]] = []
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        body, rejected = _blank_undecodable_lines(body, header.body_line)
    frame, ragged = _parse_rows(path, body, header)
    rejected += ragged
    rejected.sort()
    rejects = pd.DataFrame([(f"{path.name}:{line}", raw, reason) for line, raw, reason in rejected],
                           columns=list(REJECTED_COLUMNS), dtype="string")
    return frame, rejects


def read_telemetry_parquet(path: Path) -> pd.DataFrame:
    """A telemetry Parquet file as it is; a corrupt file or missing columns name the file."""
    _require_file(path)
    try:
        frame = pd.read_parquet(path)
    except Exception as exc:  # noqa: BLE001 - pyarrow raises several types for a corrupt file
        raise FileSourceError(f"{path.name}: not a readable Parquet file ({_first_line(exc)})",
                              hint=f"check that {path} is a complete Parquet file, or write it again") from exc
    missing = [c for c in TELEMETRY_COLUMNS if c not in frame.columns]
    if missing:
        raise FileSourceError(f"{path.name}: no column(s) {', '.join(missing)}; found {', '.join(map(str, frame.columns))}",
                              hint="a telemetry file has the columns unique_id, ds, y")
    return frame


def read_catalogue(path: Path) -> pd.DataFrame:
    """A series catalogue file (CSV or Parquet); an unreadable one is one error naming it."""
    _require_file(path)
    try:
        return pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    except Exception as exc:  # noqa: BLE001 - pandas / pyarrow raise several types for a bad file
        raise FileSourceError(f"{path.name}: cannot read the series catalogue ({_first_line(exc)})",
                              hint=f"check {path}: columns {', '.join(CATALOGUE_COLUMNS)}, UTF-8") from exc


def _require_file(path: Path) -> None:
    if not path.is_file():
        raise FileSourceError(f"telemetry file not found: {path}",
                              hint="check the path in the file source's options (relative paths start at the "
                                   "working directory)")


def _read_bytes(path: Path) -> bytes:
    _require_file(path)
    data = path.read_bytes()
    if not data.strip():
        raise FileSourceError(f"{path.name} is empty ({len(data)} bytes): not even a header line",
                              hint="an export that wrote nothing usually failed; write the file again with a "
                                   "header naming unique_id, ds, y")
    return data[3:] if data.startswith(b"\xef\xbb\xbf") else data  # a UTF-8 byte order mark


def _header(path: Path, data: bytes) -> _Header:
    """The first non-blank line, which must name ``unique_id, ds, y``."""
    start, line_no = 0, 1
    while data[start:start + 1] in (b"\n", b"\r"):
        line_no += data[start:start + 1] == b"\n"
        start += 1
    end = min((i for i in (data.find(b"\n", start), data.find(b"\r", start)) if i >= 0), default=len(data))
    first = data[start:end]
    body_start = end + (2 if data[end:end + 2] == b"\r\n" else 1)
    try:
        text = first.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FileSourceError(f"{path.name}: the first line is not UTF-8 text ({_undecodable(first, exc)})",
                              hint=f"save the file as UTF-8; {_HEADER_HINT}") from None
    names = [name.strip() for name in next(csv.reader([text]), [])]
    if not set(TELEMETRY_COLUMNS) <= set(names):
        shown = text if len(text) <= 80 else text[:77] + "..."
        raise FileSourceError(f"{path.name}: {_HEADER_RULE}; found {shown!r}",
                              hint="add the line 'unique_id,ds,y' at the top: without a header, the first "
                                   "row would be taken for one and lost")
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise FileSourceError(f"{path.name}: the header names {', '.join(twice)} more than once",
                              hint="give every column of the header its own name")
    return _Header(names, body_start, line_no + 1)


def _blank_undecodable_lines(body: bytes, first_line: int) -> tuple[bytes, list[tuple[int, str, str]]]:
    """``body`` with each line that is not UTF-8 emptied (the parser skips empty lines), and those
    lines as ``(line number, raw text with bytes escaped, reason)``."""
    lines = body.splitlines(keepends=True)
    rejected = []
    for i, line in enumerate(lines):
        try:
            line.decode("utf-8")
        except UnicodeDecodeError as exc:
            number = first_line + i
            content = line.rstrip(b"\r\n")
            rejected.append((number, content.decode("utf-8", "backslashreplace"),
                             f"line {number}: not UTF-8 ({_undecodable(content, exc)})"))
            lines[i] = b"\n"
    return b"".join(lines), rejected


def _parse_rows(path: Path, body: bytes, header: _Header) -> tuple[pd.DataFrame, list[tuple[int, str, str]]]:
    """The body's rows as text columns; rows with the wrong number of fields set aside by line."""
    if not body.strip():
        return pd.DataFrame({name: pd.Series([], dtype="str") for name in header.names}), []
    invalid: list[Any] = []

    def set_aside(row: Any) -> str:
        invalid.append(row)
        return "skip"

    try:
        table = pa_csv.read_csv(
            pa.BufferReader(pa.py_buffer(body)),
            # one thread: pyarrow gives a bad row's number only when it reads in order
            read_options=pa_csv.ReadOptions(column_names=header.names, use_threads=False, block_size=1 << 24),
            parse_options=pa_csv.ParseOptions(invalid_row_handler=set_aside),
            # everything as text, empty fields missing: the contract parses and judges the values
            convert_options=pa_csv.ConvertOptions(column_types={name: pa.string() for name in header.names},
                                                  strings_can_be_null=True, null_values=[""]),
        )
    except pa.ArrowInvalid as exc:
        raise FileSourceError(f"{path.name}: not valid CSV ({_first_line(exc)})",
                              hint=f"check {path}: comma-separated, UTF-8, {_HEADER_HINT}") from exc
    ragged = []
    if invalid:
        # pyarrow numbers rows from 1, skipping empty lines: map its numbers back to the file's lines
        line_of_row = [header.body_line + i for i, line in enumerate(body.splitlines()) if line]
        for row in invalid:
            number = line_of_row[row.number - 1]
            ragged.append((number, row.text, f"line {number}: {row.actual_columns} field(s), "
                                             f"the header has {row.expected_columns}"))
    return table.to_pandas(), ragged


def _undecodable(line: bytes, exc: UnicodeDecodeError) -> str:
    return f"byte 0x{line[exc.start]:02x} at column {exc.start + 1}"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _no_rejects() -> pd.DataFrame:
    return pd.DataFrame(columns=list(REJECTED_COLUMNS), dtype="string")
