"""Read the Nezha data set's layout (per-pod metrics, service and edge latencies, call graph, faults).

One day folder looks like::

    <day>/metric/<pod>_metric.csv        per-pod 1-minute metrics (CPU, memory, latency, ...)
    <day>/metric/front_service.csv       the entry service's success rate and latency
    <day>/metric/source_50.csv           per-edge latency seen by the caller (``caller_callee``)
    <day>/metric/destination_50.csv      per-edge latency seen by the callee
    <day>/metric/dependency.csv          call graph ``Source,Target,Weight``
    <day>/<day>-fault_list.json          injected faults (optional: absent on a fault-free day)

:func:`load_nezha` accepts a day folder or a folder of day folders and returns each day in
Foresight's shapes: long telemetry ``unique_id, ds, y`` and a series catalogue. Pods map to
services by stripping the Kubernetes hash suffixes. A sample's ``ds`` is its scrape time rounded
*up* to the minute: the first minute at which a live pipeline could have seen it, so a replay
never acts on a sample before it existed. I/O only; no modelling here.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd

from connectors.labels.incident_layout import Fault, IncidentDay
from foresight.schemas import CATALOGUE_COLUMNS, UTC_DTYPE, catalogue_row

SOURCE_NAME = "nezha"
STEP = pd.Timedelta("1min")
_POD_SUFFIX = re.compile(r"^(?P<service>.+?)-[a-z0-9]{6,10}-[a-z0-9]{5}$")  # Deployment pods
_STATEFUL_SUFFIX = re.compile(r"^(?P<service>.+?)-\d+$")  # StatefulSet pods
_TIME_PREFIX = re.compile(r"^(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2})")
_UNITS = {"m": "millicores", "%": "percent", "Mi": "mebibytes", "s": "seconds", "Ops": "requests_per_second"}
_EDGE_FILES = {
    "source_50.csv": "edge_source_latency_p50",
    "destination_50.csv": "edge_destination_latency_p50",
}
SERVICE_FILE = "front_service.csv"
DEPENDENCY_FILE = "dependency.csv"


class NezhaLayoutError(ValueError):
    """A folder does not have the Nezha layout; the message names what is missing or malformed."""


NezhaDay = IncidentDay  # the in-memory day every incident reader returns (connectors.labels.incident_layout)


def pod_service(pod: str) -> str:
    """The service a pod belongs to: ``frontend-579b9bff58-t2dbm`` -> ``frontend``."""
    for pattern in (_POD_SUFFIX, _STATEFUL_SUFFIX):
        match = pattern.match(pod)
        if match:
            return match.group("service")
    return pod


def metric_name(column: str) -> tuple[str, str]:
    """``(metric, unit)`` of a Nezha column: ``PodServerLatencyP95(s)`` -> ``pod_server_latency_p95, seconds``."""
    match = re.match(r"^(?P<name>[^(]+?)\s*(?:\((?P<unit>[^)]*)\))?$", column.strip())
    if not match:
        raise NezhaLayoutError(f"cannot read a metric name from column {column!r}")
    name = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", match.group("name")).lower()
    return name, _UNITS.get(match.group("unit") or "", "count")


def day_folders(data: Path) -> list[Path]:
    """The day folders under ``data`` (``data`` itself when it is one), sorted by name."""
    data = Path(data)
    if not data.is_dir():
        raise NezhaLayoutError(f"{data} is not a directory")
    if (data / "metric").is_dir():
        return [data]
    days = sorted(p for p in data.iterdir() if (p / "metric").is_dir())
    if not days:
        raise NezhaLayoutError(f"{data} holds no Nezha day folder (a folder with a metric/ sub-folder)")
    return days


def load_nezha(data: Path) -> list[NezhaDay]:
    """Every day under ``data`` (a day folder or a folder of them)."""
    return [load_day(day) for day in day_folders(data)]


def load_day(day: Path) -> NezhaDay:
    """One day folder: pod, service and edge metrics, the call graph and the fault list."""
    metric_dir = Path(day) / "metric"
    pod_files = sorted(metric_dir.glob("*_metric.csv"))
    if not pod_files:
        raise NezhaLayoutError(f"{metric_dir} has no <pod>_metric.csv files")
    frames: list[pd.DataFrame] = []
    rows: list[dict[str, str]] = []
    for path in pod_files:
        long, cat = _pod_metrics(path)
        frames.append(long)
        rows += cat
    services = sorted({r["service"] for r in rows})
    if (metric_dir / SERVICE_FILE).exists():
        long, cat = _service_metrics(metric_dir / SERVICE_FILE)
        frames.append(long)
        rows += cat
    for file_name, metric in _EDGE_FILES.items():
        if (metric_dir / file_name).exists():
            long, cat = _edge_metrics(metric_dir / file_name, metric, services)
            frames.append(long)
            rows += cat
    telemetry = pd.concat(frames, ignore_index=True)
    telemetry = telemetry.drop_duplicates(["unique_id", "ds"], keep="last")
    telemetry = telemetry.sort_values(["unique_id", "ds"], kind="stable").reset_index(drop=True)
    catalogue = pd.DataFrame(rows, columns=list(CATALOGUE_COLUMNS)).drop_duplicates("unique_id")
    graph = (
        read_call_graph(metric_dir / DEPENDENCY_FILE, services)
        if (metric_dir / DEPENDENCY_FILE).exists()
        else {}
    )
    return NezhaDay(
        name=Path(day).name,
        telemetry=telemetry,
        catalogue=catalogue.reset_index(drop=True),
        call_graph=graph,
        faults=read_faults(Path(day)),
    )


def read_call_graph(path: Path, services: list[str]) -> dict[str, tuple[str, ...]]:
    """Caller -> callees among ``services`` (edges to IP addresses or unknown callers are dropped)."""
    edges = pd.read_csv(path)
    missing = {"Source", "Target"} - set(edges.columns)
    if missing:
        raise NezhaLayoutError(f"{path}: missing column(s) {sorted(missing)}")
    known = set(services)
    graph: dict[str, list[str]] = {s: [] for s in services}
    for caller, callee in zip(edges["Source"].astype(str), edges["Target"].astype(str), strict=True):
        if caller in known and callee in known and callee != caller and callee not in graph[caller]:
            graph[caller].append(callee)
    return {caller: tuple(sorted(callees)) for caller, callees in graph.items()}


def read_faults(day: Path) -> list[Fault]:
    """The day's injected faults from ``*fault_list.json`` (hour -> list of faults), sorted by time."""
    files = sorted(Path(day).glob("*fault_list.json"))
    faults: list[Fault] = []
    for path in files:
        try:
            by_hour = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise NezhaLayoutError(f"{path}: not valid JSON ({exc})") from None
        for entries in by_hour.values():
            for entry in entries:
                try:
                    pod = str(entry["inject_pod"])
                    faults.append(
                        Fault(
                            inject_time=pd.Timestamp(entry["inject_time"], tz="UTC"),
                            pod=pod,
                            service=pod_service(pod),
                            kind=str(entry["inject_type"]),
                        )
                    )
                except KeyError as exc:
                    raise NezhaLayoutError(f"{path}: a fault lacks {exc.args[0]!r}: {entry}") from None
    return sorted(faults, key=lambda f: f.inject_time)


def _read_timed(path: Path) -> tuple[pd.DataFrame, pd.Series]:
    """A Nezha CSV and the availability minute of each row (scrape time rounded up to the minute)."""
    frame = pd.read_csv(path)
    if frame.empty:
        raise NezhaLayoutError(f"{path} has no rows")
    time_col = frame.columns[0]
    stamp = frame[time_col].astype(str).str.extract(_TIME_PREFIX)[0]
    if stamp.isna().any():
        bad = frame.loc[stamp.isna(), time_col].head(3).tolist()
        raise NezhaLayoutError(f"{path}: column {time_col!r} holds unreadable times, e.g. {bad}")
    # The epoch column is unreliable in the published files (a wrong leading digit): the text is used.
    ds = pd.to_datetime(stamp, format="%Y-%m-%d %H:%M:%S", utc=True).dt.ceil(STEP).astype(UTC_DTYPE)
    return frame.drop(columns=[c for c in frame.columns[:2] if c.lower() in ("time", "timestamp")]), ds


def _melt(frame: pd.DataFrame, ds: pd.Series, ids: dict[str, str]) -> pd.DataFrame:
    """Long ``unique_id, ds, y`` of the numeric ``ids`` columns (column -> unique id); NaN rows dropped."""
    wide = frame[list(ids)].apply(pd.to_numeric, errors="coerce").rename(columns=ids)
    wide.index = pd.Index(ds, name="ds")
    long = wide.reset_index().melt(id_vars="ds", var_name="unique_id", value_name="y").dropna(subset=["y"])
    return long.astype({"unique_id": "string", "y": "float64"})[["unique_id", "ds", "y"]]


def _pod_metrics(path: Path) -> tuple[pd.DataFrame, list[dict[str, str]]]:
    frame, ds = _read_timed(path)
    if "PodName" in frame.columns and frame["PodName"].notna().any():
        pod = str(frame["PodName"].dropna().iloc[0])
    else:
        pod = path.name.removesuffix("_metric.csv")
    service = pod_service(pod)
    ids: dict[str, str] = {}
    rows = []
    for column in frame.columns:
        if column == "PodName":
            continue
        metric, unit = metric_name(column)
        uid = f"{SOURCE_NAME}/{pod}/{metric}"
        ids[column] = uid
        rows.append(catalogue_row(uid, SOURCE_NAME, metric, service, pod, unit, {"pod": pod}))
    return _melt(frame, ds, ids), rows


def _service_metrics(path: Path) -> tuple[pd.DataFrame, list[dict[str, str]]]:
    frame, ds = _read_timed(path)
    service = (
        str(frame["ServiceName"].dropna().iloc[0]).lower() if "ServiceName" in frame.columns else "frontend"
    )
    ids: dict[str, str] = {}
    rows = []
    for column in frame.columns:
        if column == "ServiceName":
            continue
        metric, unit = metric_name(column)
        metric = f"service_{metric}"
        uid = f"{SOURCE_NAME}/{service}/{metric}"
        ids[column] = uid
        rows.append(catalogue_row(uid, SOURCE_NAME, metric, service, service, unit, {"service": service}))
    return _melt(frame, ds, ids), rows


def _edge_metrics(path: Path, metric: str, services: list[str]) -> tuple[pd.DataFrame, list[dict[str, str]]]:
    """Per-edge latency, attributed to the callee (the service whose slowness it measures)."""
    frame, ds = _read_timed(path)
    ids: dict[str, str] = {}
    rows = []
    for column in frame.columns:
        caller, callee = _split_edge(column, services)
        edge = f"{caller}->{callee}"
        uid = f"{SOURCE_NAME}/{edge}/{metric}"
        ids[column] = uid
        rows.append(
            catalogue_row(uid, SOURCE_NAME, metric, callee, edge, "seconds", {"caller": caller, "callee": callee})
        )
    return _melt(frame, ds, ids), rows


def _split_edge(column: str, services: list[str]) -> tuple[str, str]:
    """``caller_callee`` -> ``(caller, callee)``, preferring a split into two known services."""
    parts = column.split("_")
    for i in range(1, len(parts)):
        caller, callee = "_".join(parts[:i]), "_".join(parts[i:])
        if caller in services and callee in services:
            return caller, callee
    if len(parts) < 2:
        raise NezhaLayoutError(f"edge column {column!r} is not 'caller_callee'")
    return parts[0], "_".join(parts[1:])
