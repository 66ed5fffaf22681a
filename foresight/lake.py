"""The lake: partitioned Parquet datasets on local disk or any pyarrow filesystem (S3 included).

Each dataset is a folder of hive partitions (``telemetry/date=2026-11-20/part-0.parquet``).
Writes are upserts on the dataset's key columns, so re-ingesting a window never duplicates a
row. A partition is rewritten whole into a hidden temporary file and then renamed over the old
one (local disk), or put in one request (object stores, where a PUT is atomic): a crash never
leaves a half-written partition, and readers skip hidden files.

Concurrent writers are safe: every upsert (and any other read-modify-write of a dataset, through
:meth:`Lake.lock`) holds the dataset's writer lock, an ``flock`` on local disk or a lease object
on S3 (:mod:`foresight.lake_locks` has how, and the limits). Waits are bounded: a writer gives up
after ``lock_timeout`` seconds with an error naming the holder. We lock rather than append files
and merge on read because every reader (pyarrow, DuckDB views) then keeps seeing one file per
partition with one row per key. :meth:`Lake.confirm_stored` re-reads the keys of a batch just
written, so a caller can acknowledge upstream only rows the lake really holds.
"""

from __future__ import annotations

import uuid
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from foresight.errors import DependencyUnavailableError
from foresight.lake_locks import DEFAULT_LEASE_TTL, DEFAULT_LOCK_TIMEOUT, Lease, locks_for
from foresight.timeutil import utc_timestamp


@dataclass(frozen=True)
class DatasetSpec:
    """How one dataset is keyed and partitioned."""

    keys: tuple[str, ...]
    time_column: str | None = None  # partitions by the UTC date of this column when set
    sort: tuple[str, ...] = ()


DATASETS: dict[str, DatasetSpec] = {
    "telemetry": DatasetSpec(keys=("unique_id", "ds"), time_column="ds", sort=("unique_id", "ds")),
    "catalogue": DatasetSpec(keys=("unique_id",), sort=("unique_id",)),
    "logs": DatasetSpec(
        keys=("ts", "resource_id", "template_id", "message"), time_column="ts", sort=("ts", "resource_id")
    ),
    "incidents": DatasetSpec(keys=("incident_id",), sort=("start", "incident_id")),
    "batches": DatasetSpec(keys=("batch_id",), sort=("started_at",)),
    # Incremental pulls: how far each (source, stream) has been stored. See foresight.watermarks.
    "watermarks": DatasetSpec(keys=("source", "stream"), sort=("source", "stream")),
    # Automated response's audit log, append-only: one row per decision step (models.response.audit).
    "response_audit": DatasetSpec(keys=("decision_id", "step"), time_column="time", sort=("time", "decision_id")),
}

PARTITION_COL = "date"
PART_FILE = "part-0.parquet"


@dataclass
class UpsertReport:
    dataset: str
    inserted: int = 0
    updated: int = 0
    partitions: list[str] = field(default_factory=list)

    @property
    def written(self) -> int:
        return self.inserted + self.updated


class UnknownDatasetError(KeyError):
    def __init__(self, name: str) -> None:
        super().__init__(f"unknown lake dataset {name!r}; known: {sorted(DATASETS)}")


class LakeWriteNotDurableError(DependencyUnavailableError):
    """Rows an upsert just wrote are not in the lake when read back."""

    def __init__(self, dataset: str, missing: int, total: int) -> None:
        super().__init__(
            f"lake {dataset}: {missing:,} of {total:,} rows just written are missing when read back",
            hint="nothing was acknowledged upstream and no watermark moved, so the next run re-reads them; "
                 "check the lake's storage and that nothing else rewrites it",
        )
        self.dataset, self.missing, self.total = dataset, missing, total


class Lake:
    """Upsert and read the datasets under one root URL."""

    def __init__(self, url: str | Path, *, lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
                 lease_ttl: float = DEFAULT_LEASE_TTL) -> None:
        url = str(url)
        self.fs, self.root = filesystem_at(url)
        self.url = url
        self._atomic_rename = self.fs.type_name == "local"
        self._locks = locks_for(self.fs.type_name, self.root, url, timeout=lock_timeout, lease_ttl=lease_ttl)

    def lock(self, dataset: str) -> AbstractContextManager[Lease]:
        """Hold ``dataset``'s writer lock for a read-modify-write (re-entrant: upserts inside reuse it)."""
        _spec(dataset)
        return self._locks.hold(dataset)

    # -- writing -----------------------------------------------------------------------------
    def upsert(self, dataset: str, df: pd.DataFrame) -> UpsertReport:
        """Insert or replace rows by the dataset's keys; the newest write of a key wins."""
        spec = _spec(dataset)
        report = UpsertReport(dataset)
        if df.empty:
            return report
        missing = [k for k in spec.keys if k not in df.columns]
        if missing:
            raise ValueError(f"lake {dataset}: rows lack key column(s) {missing}")
        if df.duplicated(list(spec.keys)).any():
            raise ValueError(f"lake {dataset}: the batch itself repeats keys {list(spec.keys)}")
        with self.lock(dataset) as lease:  # read, merge and rewrite with no other writer between
            for partition, part in _partitions(df, spec):
                directory = self._dir(dataset, partition)
                existing = self._read_file(f"{directory}/{PART_FILE}")
                if existing is not None and len(existing):
                    merged_keys = existing[list(spec.keys)].merge(part[list(spec.keys)], on=list(spec.keys))
                    updated = len(merged_keys)
                    combined = pd.concat([existing, part.astype(existing.dtypes.to_dict(), errors="ignore")])
                    combined = combined.drop_duplicates(list(spec.keys), keep="last")
                else:
                    updated, combined = 0, part
                if spec.sort:
                    combined = combined.sort_values(list(spec.sort), kind="stable")
                lease.keep()
                self._write_atomic(directory, combined.reset_index(drop=True))
                report.updated += updated
                report.inserted += len(part) - updated
                report.partitions.append(partition or ".")
        return report

    def confirm_stored(self, dataset: str, df: pd.DataFrame) -> None:
        """Read back the key columns of the partitions ``df`` went to; raise
        :class:`LakeWriteNotDurableError` unless every key of ``df`` is there."""
        spec = _spec(dataset)
        if df.empty:
            return
        keys = list(spec.keys)
        columns = keys + [c for c in (spec.time_column,) if c is not None and c not in keys]
        missing = 0
        for partition, part in _partitions(df[columns], spec):
            stored = self._read_file(f"{self._dir(dataset, partition)}/{PART_FILE}", columns=keys)
            missing += len(part) if stored is None else _count_absent(part[keys], stored)
        if missing:
            raise LakeWriteNotDurableError(dataset, missing, len(df))

    def write_file(self, relative_path: str, df: pd.DataFrame) -> str:
        """Write one standalone Parquet file (e.g. a quarantine batch) atomically; returns its path."""
        path = f"{self.root}/{relative_path}"
        directory, name = path.rsplit("/", 1)
        self._write_atomic(directory, df.reset_index(drop=True), name=name)
        return path

    def _write_atomic(self, directory: str, df: pd.DataFrame, name: str = PART_FILE) -> None:
        self.fs.create_dir(directory, recursive=True)
        table = to_arrow(df)
        final = f"{directory}/{name}"
        if not self._atomic_rename:
            pq.write_table(table, final, filesystem=self.fs)
            return
        tmp = f"{directory}/.{name}.{uuid.uuid4().hex}.tmp"
        try:
            pq.write_table(table, tmp, filesystem=self.fs)
            self.fs.move(tmp, final)
        finally:
            if self.fs.get_file_info(tmp).type != pafs.FileType.NotFound:
                self.fs.delete_file(tmp)

    # -- reading -----------------------------------------------------------------------------
    def exists(self, dataset: str) -> bool:
        return self.fs.get_file_info(f"{self.root}/{dataset}").type == pafs.FileType.Directory

    def read(
        self,
        dataset: str,
        *,
        start: pd.Timestamp | None = None,
        end: pd.Timestamp | None = None,
        columns: list[str] | None = None,
        filter: pads.Expression | None = None,
    ) -> pd.DataFrame:
        """Read a dataset (optionally ``start <= time < end``) as pandas, partition column dropped."""
        spec = _spec(dataset)
        if not self.exists(dataset):
            return pd.DataFrame(columns=columns or list(spec.keys))
        ds = self.dataset(dataset)
        if not ds.files:  # a first writer has made the folder but not yet its first file
            return pd.DataFrame(columns=columns or list(spec.keys))
        expr = filter
        if spec.time_column and (start is not None or end is not None):
            col = pads.field(spec.time_column)
            if start is not None:
                since = utc_timestamp(start, "start")
                day = pads.field(PARTITION_COL) >= _day(since)
                expr = _and(expr, _and(day, col >= pa.scalar(since, pa.timestamp("us", "UTC"))))
            if end is not None:
                until = utc_timestamp(end, "end")
                day = pads.field(PARTITION_COL) <= _day(until)
                expr = _and(expr, _and(day, col < pa.scalar(until, pa.timestamp("us", "UTC"))))
        table = ds.to_table(columns=columns, filter=expr)
        df = table.to_pandas()
        if PARTITION_COL in df.columns and spec.time_column:
            df = df.drop(columns=PARTITION_COL)
        if spec.sort and all(c in df.columns for c in spec.sort):
            df = df.sort_values(list(spec.sort), kind="stable")
        return df.reset_index(drop=True)

    def dataset(self, dataset: str) -> pads.Dataset:
        """The pyarrow dataset (lazy), for DuckDB or pyarrow queries."""
        _spec(dataset)
        return pads.dataset(
            f"{self.root}/{dataset}",
            filesystem=self.fs,
            format="parquet",
            partitioning=pads.partitioning(pa.schema([(PARTITION_COL, pa.string())]), flavor="hive"),
        )

    def sql(self, query: str, datasets: list[str] | None = None) -> pd.DataFrame:
        """Run DuckDB SQL over lake datasets, each visible as a view under its own name."""
        con = duckdb.connect()
        try:
            for name in datasets or [d for d in DATASETS if self.exists(d)]:
                con.register(name, self.dataset(name))
            return con.execute(query).df()
        finally:
            con.close()

    def list_files(self, prefix: str) -> list[str]:
        selector = pafs.FileSelector(f"{self.root}/{prefix}", recursive=True, allow_not_found=True)
        return sorted(
            info.path
            for info in self.fs.get_file_info(selector)
            if info.type == pafs.FileType.File and not info.base_name.startswith(".")
        )

    def _dir(self, dataset: str, partition: str | None) -> str:
        base = f"{self.root}/{dataset}"
        return f"{base}/{PARTITION_COL}={partition}" if partition else base

    def _read_file(self, path: str, columns: list[str] | None = None) -> pd.DataFrame | None:
        if self.fs.get_file_info(path).type == pafs.FileType.NotFound:
            return None
        return pq.read_table(path, columns=columns, filesystem=self.fs).to_pandas()


def filesystem_at(url: str | Path) -> tuple[pafs.FileSystem, str]:
    """The file system a lake or checkpoint URL names (``s3://...``, ``file://...`` or a local path)
    and the root path within it, without a trailing slash."""
    url = str(url)
    if "://" in url:
        fs, root = pafs.FileSystem.from_uri(url)
    else:
        fs, root = pafs.LocalFileSystem(), str(Path(url).resolve())
    return fs, root.rstrip("/")


def to_arrow(df: pd.DataFrame) -> pa.Table:
    """Arrow table of ``df`` with tz-aware columns stored as UTC timestamps (µs resolution)."""
    tz_columns = [c for c in df.columns if isinstance(df[c].dtype, pd.DatetimeTZDtype)]
    naive = df.assign(**{c: df[c].dt.tz_convert("UTC").dt.tz_localize(None).astype("datetime64[us]") for c in tz_columns})
    table = pa.Table.from_pandas(naive, preserve_index=False)
    for c in tz_columns:
        i = table.schema.get_field_index(c)
        table = table.set_column(i, c, table.column(c).cast(pa.timestamp("us", tz="UTC")))
    return table


def _count_absent(wanted: pd.DataFrame, stored: pd.DataFrame) -> int:
    """How many rows of ``wanted`` have no row with the same key values in ``stored``."""
    present = pd.MultiIndex.from_frame(wanted).isin(pd.MultiIndex.from_frame(stored[list(wanted.columns)]))
    return int((~present).sum())


def _spec(dataset: str) -> DatasetSpec:
    try:
        return DATASETS[dataset]
    except KeyError:
        raise UnknownDatasetError(dataset) from None


def _partitions(df: pd.DataFrame, spec: DatasetSpec) -> Any:
    """``(UTC date, rows)`` per partition; day codes from integer maths, not per-row strftime."""
    if spec.time_column is None:
        yield None, df
        return
    times = df[spec.time_column]
    if not isinstance(times.dtype, pd.DatetimeTZDtype):
        raise ValueError(f"partition column {spec.time_column!r} must be timezone-aware, got {times.dtype}")
    days = times.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy().astype("datetime64[D]").astype("int64")
    first = int(days.min())
    codes = days - first  # a batch spans few days: small integers, so no sort is needed to find them
    counts = np.bincount(codes)
    if counts.size == 1:
        yield str(np.datetime64(first, "D")), df
        return
    # A stable argsort of 16-bit codes is a radix sort in numpy: linear, unlike grouping.
    order = np.argsort(codes.astype(np.int16 if counts.size < 2**15 else np.int64), kind="stable")
    ordered = df.take(order)
    bounds = np.concatenate(([0], np.cumsum(counts)))
    for code in np.flatnonzero(counts):
        yield str(np.datetime64(first + int(code), "D")), ordered.iloc[bounds[code]:bounds[code + 1]]


def _day(ts: pd.Timestamp) -> str:
    return ts.strftime("%Y-%m-%d")


def _and(left: pads.Expression | None, right: pads.Expression) -> pads.Expression:
    return right if left is None else left & right
