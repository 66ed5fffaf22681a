"""Read and write the plain incident layout: any system's telemetry, series catalogue and faults.

One day (or one system) folder looks like::

    <dir>/telemetry.csv.gz   unique_id,ds,y            ds ISO 8601 with a UTC offset (``Z``, ``+00:00``)
    <dir>/catalogue.csv      unique_id,service,metric  metric: free text (``cpu_usage``, ``error_ratio``)
    <dir>/faults.csv         inject_time,service,inject_type   (header only on a fault-free day)
    <dir>/call_graph.csv     source,target             optional: caller -> callee, when known

``catalogue.csv`` may carry further catalogue columns (:data:`foresight.schemas.CATALOGUE_COLUMNS`),
e.g. ``resource_id`` (the pod, host or call edge ``caller->callee`` a series measures; default:
its service) and ``unit`` (default: empty, read from the metric name by the models). Empty ``y``
is no sample. Call-graph edges naming a service without series are ignored (a database the
system calls but does not measure).

:func:`read_incident_dir` returns an :class:`IncidentDay`; :func:`write_incident_dir` writes one
back, so a day from any reader (or a generator) can be handed to another team as files. Bad
input raises :class:`IncidentLayoutError` naming the file, the line and the problem. I/O only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from foresight.schemas import CATALOGUE_COLUMNS, UTC_DTYPE

TELEMETRY_FILE = "telemetry.csv.gz"
CATALOGUE_FILE = "catalogue.csv"
FAULTS_FILE = "faults.csv"
CALL_GRAPH_FILE = "call_graph.csv"
TELEMETRY_HEADER: tuple[str, ...] = ("unique_id", "ds", "y")
CATALOGUE_HEADER: tuple[str, ...] = ("unique_id", "service", "metric")
FAULTS_HEADER: tuple[str, ...] = ("inject_time", "service", "inject_type")
CALL_GRAPH_HEADER: tuple[str, ...] = ("source", "target")
SOURCE_NAME = "plain"
_OFFSET = r"(?:Z|[+-]\d{2}(?::?\d{2})?)$"  # an ISO 8601 time that says where it is


class IncidentLayoutError(ValueError):
    """A file of the plain layout is missing or malformed; the message names the file, line and problem."""


@dataclass(frozen=True)
class Fault:
    """One injected fault: when (UTC), where (the pod or instance hit and its service) and what kind."""

    inject_time: pd.Timestamp
    pod: str
    service: str
    kind: str


@dataclass
class IncidentDay:
    """One day (or one system's stretch) of incident data in Foresight's shapes."""

    name: str
    telemetry: pd.DataFrame  # unique_id, ds, y
    catalogue: pd.DataFrame  # CATALOGUE_COLUMNS
    call_graph: dict[str, tuple[str, ...]]  # caller -> callees (services with series only)
    faults: list[Fault] = field(default_factory=list)


def is_incident_dir(path: Path) -> bool:
    """Whether ``path`` is a folder of the plain layout (it holds ``telemetry.csv.gz``)."""
    return (Path(path) / TELEMETRY_FILE).is_file()


def read_incident_dir(folder: Path) -> IncidentDay:
    """One folder of the plain layout (see module doc); the day is named after the folder."""
    folder = Path(folder)
    if not is_incident_dir(folder):
        raise IncidentLayoutError(f"{folder / TELEMETRY_FILE}: no such file (not a plain incident folder)")
    catalogue = read_catalogue(folder / CATALOGUE_FILE)
    services = sorted(set(catalogue["service"]))
    telemetry = read_telemetry(folder / TELEMETRY_FILE, set(catalogue["unique_id"]))
    faults_path = folder / FAULTS_FILE
    if not faults_path.is_file():
        raise IncidentLayoutError(f"{faults_path}: no such file (write the header alone for a fault-free day)")
    graph_path = folder / CALL_GRAPH_FILE
    return IncidentDay(
        name=folder.name,
        telemetry=telemetry,
        catalogue=catalogue,
        call_graph=read_call_graph(graph_path, services) if graph_path.is_file() else {},
        faults=read_faults(faults_path, set(services)),
    )


def write_incident_dir(day: IncidentDay, folder: Path) -> Path:
    """Write ``day`` to ``folder`` in the plain layout (the inverse of :func:`read_incident_dir`);
    returns the folder. Times are written as ISO 8601 UTC (``...Z``)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    telemetry = day.telemetry[list(TELEMETRY_HEADER)].copy()
    telemetry["ds"] = _iso(telemetry["ds"])
    telemetry.to_csv(folder / TELEMETRY_FILE, index=False, compression={"method": "gzip", "compresslevel": 1})
    extra = [c for c in CATALOGUE_COLUMNS if c in day.catalogue.columns and c not in CATALOGUE_HEADER]
    day.catalogue[[*CATALOGUE_HEADER, *extra]].to_csv(folder / CATALOGUE_FILE, index=False)
    faults = pd.DataFrame(
        {
            "inject_time": _iso(pd.Series([f.inject_time for f in day.faults], dtype=UTC_DTYPE)),
            "service": [f.service for f in day.faults],
            "inject_type": [f.kind for f in day.faults],
        },
        columns=list(FAULTS_HEADER),
    )
    faults.to_csv(folder / FAULTS_FILE, index=False)
    if day.call_graph:
        edges = [(caller, callee) for caller, callees in day.call_graph.items() for callee in callees]
        pd.DataFrame(edges, columns=list(CALL_GRAPH_HEADER)).to_csv(folder / CALL_GRAPH_FILE, index=False)
    return folder


def read_catalogue(path: Path) -> pd.DataFrame:
    """``catalogue.csv`` as a full catalogue (:data:`CATALOGUE_COLUMNS`; absent columns filled)."""
    frame = _read_csv(path, CATALOGUE_HEADER)
    for column in CATALOGUE_HEADER:
        _refuse(path, frame, frame[column].str.strip() == "", f"empty {column}")
    _refuse(path, frame, frame["unique_id"].duplicated(), "unique_id listed twice")
    if frame.empty:
        raise IncidentLayoutError(f"{path}: no series listed")
    defaults = {
        "source": SOURCE_NAME,
        "labels": "{}",
        "resource_id": frame["service"],
        "instance_type": "",
        "unit": "",
    }
    for column, default in defaults.items():
        if column not in frame.columns:
            frame[column] = default
        else:
            frame[column] = frame[column].where(frame[column] != "", default)
    return frame[list(CATALOGUE_COLUMNS)].reset_index(drop=True)


def read_telemetry(path: Path, known: set[str]) -> pd.DataFrame:
    """``telemetry.csv.gz`` as long telemetry sorted by series and time; every ``unique_id`` must be
    in ``known`` (the catalogue), every ``ds`` an ISO 8601 time with an offset, no sample twice."""
    frame = _read_csv(path, TELEMETRY_HEADER)
    _refuse(path, frame, ~frame["unique_id"].isin(known), f"unique_id not in {CATALOGUE_FILE}")
    ds = _parse_times(path, frame, "ds")
    y = pd.to_numeric(frame["y"].str.strip().replace("", "nan"), errors="coerce")
    _refuse(path, frame, y.isna() & ~frame["y"].str.strip().str.lower().isin({"", "nan"}), "y is not a number")
    long = pd.DataFrame({"unique_id": frame["unique_id"].astype("string"), "ds": ds, "y": y.astype("float64")})
    _refuse(path, frame, long.duplicated(["unique_id", "ds"]), "a second sample for the same unique_id and ds")
    long = long.dropna(subset=["y"])
    return long.sort_values(["unique_id", "ds"], kind="stable").reset_index(drop=True)


def read_faults(path: Path, services: set[str]) -> list[Fault]:
    """``faults.csv`` sorted by time; each fault's service must have series in the catalogue."""
    frame = _read_csv(path, FAULTS_HEADER)
    for column in FAULTS_HEADER:
        _refuse(path, frame, frame[column].str.strip() == "", f"empty {column}")
    _refuse(path, frame, ~frame["service"].isin(services), f"service has no series in {CATALOGUE_FILE}")
    times = _parse_times(path, frame, "inject_time")
    faults = [
        Fault(inject_time=t, pod=str(service), service=str(service), kind=str(kind))
        for t, service, kind in zip(times, frame["service"], frame["inject_type"], strict=True)
    ]
    return sorted(faults, key=lambda f: f.inject_time)


def read_call_graph(path: Path, services: list[str]) -> dict[str, tuple[str, ...]]:
    """Caller -> callees among ``services`` (every service listed, callees sorted)."""
    frame = _read_csv(path, CALL_GRAPH_HEADER)
    for column in CALL_GRAPH_HEADER:
        _refuse(path, frame, frame[column].str.strip() == "", f"empty {column}")
    known = set(services)
    graph: dict[str, set[str]] = {s: set() for s in services}
    for caller, callee in zip(frame["source"], frame["target"], strict=True):
        if caller in known and callee in known and caller != callee:
            graph[caller].add(callee)
    return {caller: tuple(sorted(callees)) for caller, callees in graph.items()}


def _read_csv(path: Path, header: tuple[str, ...]) -> pd.DataFrame:
    """A CSV read as text (nothing guessed), refused when missing or short of ``header``'s columns."""
    if not path.is_file():
        raise IncidentLayoutError(f"{path}: no such file")
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError) as exc:
        raise IncidentLayoutError(f"{path}: not a readable CSV ({exc})") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    missing = [c for c in header if c not in frame.columns]
    if missing:
        raise IncidentLayoutError(
            f"{path} line 1: missing column(s) {', '.join(missing)} (header must hold {', '.join(header)})"
        )
    return frame


def _refuse(path: Path, frame: pd.DataFrame, bad: pd.Series, problem: str) -> None:
    """Raise naming the first line (the header is line 1) where ``bad`` holds, and how many do."""
    if not bad.any():
        return
    rows = bad.to_numpy().nonzero()[0]
    first = int(rows[0])
    line = ",".join(str(v) for v in frame.iloc[first].tolist())
    more = f" ({len(rows)} lines in all)" if len(rows) > 1 else ""
    raise IncidentLayoutError(f"{path} line {first + 2}: {problem}: {line!r}{more}")


def _parse_times(path: Path, frame: pd.DataFrame, column: str) -> pd.Series:
    """ISO 8601 times with an offset as UTC; naive or unreadable ones are refused by line."""
    text = frame[column].str.strip()
    _refuse(path, frame, ~text.str.contains(_OFFSET, regex=True), f"{column} has no UTC offset (write e.g. ...Z)")
    times = pd.to_datetime(text, format="ISO8601", utc=True, errors="coerce")
    _refuse(path, frame, times.isna(), f"{column} is not an ISO 8601 time")
    return times.astype(UTC_DTYPE)


def _iso(times: pd.Series) -> pd.Series:
    """UTC times as ISO 8601 text ending in ``Z`` (whole seconds, or microseconds when any has a fraction)."""
    utc: np.ndarray = pd.to_datetime(times, utc=True).dt.tz_convert(None).to_numpy().astype("datetime64[us]")
    whole = bool((utc.astype("int64") % 1_000_000 == 0).all())
    text = np.datetime_as_string(utc, unit="s") if whole else np.datetime_as_string(utc, unit="us")
    return pd.Series(np.char.add(text, "Z"), index=times.index)
