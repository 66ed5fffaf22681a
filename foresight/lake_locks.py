"""Writer locks for lake datasets: one read-merge-write of a dataset at a time, across processes.

``Lake.upsert`` reads a partition, merges the batch in and rewrites it; two writers doing that at
once would each drop the other's rows. So every read-modify-write of a dataset holds its lock:

- **Local disk:** an exclusive ``flock`` on ``<root>/.locks/<dataset>.lock`` (hidden, so readers
  never see it). The kernel releases it when its holder exits or dies, so a crashed writer never
  leaves a stale lock. The file names the holder (host, pid, since) for the timeout message.
  Good for every process on one host; on NFS it relies on the server's lock manager (Linux maps
  ``flock`` to NFS byte-range locks), and on filesystems without locking it does not exclude.
- **S3 (``s3://``):** a lease object ``<prefix>/.locks/<dataset>.lock`` created with a
  conditional put (``If-None-Match: *``), which only one writer can win. It names its holder and
  a time to live. A lease older than that, by the S3 server's own clock (its ``Date`` against the
  lease's ``LastModified``, so writers' clocks need not agree), is taken over with a put
  conditional on its ETag (``If-Match``), so a crashed writer holds others back for one TTL at
  most. The holder renews its lease before each partition it writes once half the TTL has passed,
  and deletes it (``If-Match`` its own ETag) when done. Limit: S3 cannot fence a writer, so one
  that stalls for longer than the TTL between a renewal and the end of its next partition write
  can be overtaken and then finish that one write: keep the TTL well above a partition's write
  time (the default is minutes, a partition takes seconds).

Waits are bounded: after ``timeout`` seconds :class:`LakeLockTimeout` names the dataset and its
holder. Locks are re-entrant per thread: a read-modify-write that itself calls ``upsert`` (the
watermarks) holds the lock once, across both.
"""

from __future__ import annotations

import fcntl
import json
import os
import random
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from functools import partial
from typing import Any, Protocol
from urllib.parse import parse_qs, urlsplit

from foresight.errors import ConfigError, DependencyUnavailableError
from foresight.redact import redact_url

LOCK_DIR = ".locks"
DEFAULT_LOCK_TIMEOUT = 120.0  # seconds a writer waits for a dataset: many upserts' worth, far under a schedule
DEFAULT_LEASE_TTL = 120.0  # seconds an S3 lease lives unrenewed: a crashed writer blocks others this long
_CONFLICT_CODES = {"PreconditionFailed", "412", "ConditionalRequestConflict", "409"}
_MISSING_CODES = {"NoSuchKey", "404", "NotFound"}


class LakeLockTimeout(DependencyUnavailableError):
    """Another writer held a dataset's lock for longer than this writer may wait."""

    def __init__(self, dataset: str, location: str, holder: str | None, waited: float) -> None:
        super().__init__(
            f"lake dataset {dataset!r} is locked by {holder or 'another writer'}; gave up after {waited:.0f} s",
            hint=f"another writer (a second ingest?) is using it; run again once it finishes (lock: {location})",
        )
        self.dataset, self.location, self.holder = dataset, location, holder


class LakeLeaseLost(DependencyUnavailableError):
    """An S3 lease expired during a write and another writer took it over."""

    def __init__(self, dataset: str, location: str) -> None:
        super().__init__(
            f"lost the S3 lease on lake dataset {dataset!r} mid-write: another writer took it over",
            hint=f"a write took longer than the lease's time to live; raise lease_ttl (lease: {location})",
        )
        self.dataset = dataset


class LakeLockUnsupported(ConfigError):
    """The lake's filesystem has no lock Foresight can use, so writes could lose each other's rows."""


class Lease(Protocol):
    def keep(self) -> None:
        """Make sure the lock is still this writer's before its next write (renewing it if due)."""


class DatasetLocks(Protocol):
    def hold(self, dataset: str) -> AbstractContextManager[Lease]:
        """Hold ``dataset``'s writer lock for the block; re-entrant within one thread."""


def locks_for(fs_type: str, root: str, url: str, *, timeout: float, lease_ttl: float) -> DatasetLocks:
    """The lock that fits the lake's filesystem (pyarrow ``type_name``)."""
    if fs_type == "local":
        return LocalLocks(root, timeout=timeout)
    if fs_type == "s3":
        bucket, _, prefix = root.partition("/")
        return S3Leases(bucket, prefix, partial(s3_client_for, url), timeout=timeout, ttl=lease_ttl)
    return _NoLocks(url)


# -- waiting --------------------------------------------------------------------------------------
_HELD = threading.local()


@contextmanager
def _reentrant(key: str, acquire: Callable[[], AbstractContextManager[Lease]]) -> Iterator[Lease]:
    held: dict[str, Lease] = _HELD.__dict__.setdefault("leases", {})
    if key in held:
        yield held[key]
        return
    with acquire() as lease:
        held[key] = lease
        try:
            yield lease
        finally:
            del held[key]


def _poll(attempt: Callable[[], bool], timeout: float, max_delay: float) -> bool:
    """Call ``attempt`` until it succeeds or ``timeout`` seconds pass, backing off with jitter."""
    deadline = time.monotonic() + timeout
    delay = 0.005
    while not attempt():
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        time.sleep(min(remaining, delay * random.uniform(0.5, 1.5)))
        delay = min(delay * 2, max_delay)
    return True


def _me() -> dict[str, Any]:
    return {"host": socket.gethostname(), "pid": os.getpid(),
            "since": datetime.now(UTC).isoformat(timespec="seconds")}


def describe_holder(info: dict[str, Any] | None) -> str | None:
    """``pid 42 on host-a since 2026-03-01T12:00:00+00:00`` from a lock's holder record."""
    if not info or "pid" not in info:
        return None
    return f"pid {info['pid']} on {info.get('host', '?')} since {info.get('since', '?')}"


# -- local disk -----------------------------------------------------------------------------------
class _HeldFile:
    def keep(self) -> None:  # the kernel holds an flock until release: nothing to renew
        return None


class LocalLocks:
    """``flock`` on a hidden file per dataset: exclusive across processes and threads of one host."""

    def __init__(self, root: str, *, timeout: float) -> None:
        self.directory = os.path.join(root, LOCK_DIR)
        self.timeout = timeout

    def path(self, dataset: str) -> str:
        return os.path.join(self.directory, f"{dataset}.lock")

    def hold(self, dataset: str) -> AbstractContextManager[Lease]:
        return _reentrant(self.path(dataset), lambda: self._acquire(dataset))

    @contextmanager
    def _acquire(self, dataset: str) -> Iterator[Lease]:
        path = self.path(dataset)
        os.makedirs(self.directory, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            if not _poll(lambda: _try_flock(fd), self.timeout, max_delay=0.1):
                raise LakeLockTimeout(dataset, path, describe_holder(_read_holder(path)), self.timeout)
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(_me()).encode(), 0)
            try:
                yield _HeldFile()
            finally:
                os.ftruncate(fd, 0)
        finally:
            os.close(fd)  # closing the descriptor releases the flock


def _try_flock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _read_holder(path: str) -> dict[str, Any] | None:
    try:
        with open(path, encoding="utf-8") as fh:
            return json.loads(fh.read() or "null")
    except (OSError, ValueError):
        return None


# -- S3 -------------------------------------------------------------------------------------------
class S3Lease:
    """One writer's lease object: created, taken over and renewed by conditional puts."""

    def __init__(self, client: Any, bucket: str, key: str, ttl: float) -> None:
        self.client, self.bucket, self.key, self.ttl = client, bucket, key, ttl
        self.etag: str | None = None
        self.renewed_at = 0.0
        self.dataset = key.rsplit("/", 1)[-1].removesuffix(".lock")

    @property
    def location(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    def create(self) -> bool:
        return self._put(IfNoneMatch="*")

    def take_over(self, etag: str) -> bool:
        return self._put(IfMatch=etag)

    def keep(self) -> None:
        if time.monotonic() - self.renewed_at < self.ttl / 2:
            return
        if self.etag is None or not self._put(IfMatch=self.etag):
            raise LakeLeaseLost(self.dataset, self.location)

    def current(self) -> tuple[str, dict[str, Any] | None, bool] | None:
        """``(etag, holder record, expired)`` of the lease as stored now, or None when there is none."""
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=self.key)
        except Exception as exc:
            if _error_code(exc) in _MISSING_CODES:
                return None
            raise
        try:
            info = json.loads(response["Body"].read() or b"null")
        except ValueError:
            info = None
        ttl = float(info.get("ttl_seconds", DEFAULT_LEASE_TTL)) if isinstance(info, dict) else DEFAULT_LEASE_TTL
        server_now = _server_time(response) or datetime.now(UTC)
        age = (server_now - response["LastModified"]).total_seconds()
        return response["ETag"], info if isinstance(info, dict) else None, age > ttl

    def release(self) -> None:
        if self.etag is None:
            return
        try:
            self.client.delete_object(Bucket=self.bucket, Key=self.key, IfMatch=self.etag)
        except Exception as exc:
            if _error_code(exc) not in _CONFLICT_CODES | _MISSING_CODES:
                raise  # taken over or already gone: nothing of ours left to remove
        finally:
            self.etag = None

    def _put(self, **condition: str) -> bool:
        body = json.dumps({**_me(), "ttl_seconds": self.ttl}).encode()
        try:
            response = self.client.put_object(Bucket=self.bucket, Key=self.key, Body=body,
                                              ContentType="application/json", **condition)
        except Exception as exc:
            if _error_code(exc) in _CONFLICT_CODES | _MISSING_CODES:
                return False  # someone else won the race (or the lease vanished under us)
            raise
        self.etag, self.renewed_at = response["ETag"], time.monotonic()
        return True


class S3Leases:
    """A lease object per dataset under ``<prefix>/.locks/`` in the lake's bucket."""

    def __init__(self, bucket: str, prefix: str, client_factory: Callable[[], Any], *,
                 timeout: float, ttl: float) -> None:
        self.bucket, self.prefix = bucket, prefix.strip("/")
        self._client_factory = client_factory
        self._client: Any = None
        self.timeout, self.ttl = timeout, ttl

    def __getstate__(self) -> dict[str, Any]:  # a Lake stays picklable: the client is made again
        return {**self.__dict__, "_client": None}

    def key(self, dataset: str) -> str:
        return "/".join(p for p in (self.prefix, LOCK_DIR, f"{dataset}.lock") if p)

    def hold(self, dataset: str) -> AbstractContextManager[Lease]:
        return _reentrant(f"s3://{self.bucket}/{self.key(dataset)}", lambda: self._acquire(dataset))

    @contextmanager
    def _acquire(self, dataset: str) -> Iterator[Lease]:
        if self._client is None:
            self._client = self._client_factory()
        lease = S3Lease(self._client, self.bucket, self.key(dataset), self.ttl)
        holder: dict[str, Any] | None = None

        def attempt() -> bool:
            nonlocal holder
            if lease.create():
                return True
            found = lease.current()
            if found is None:
                return False  # released between our put and our read: try again at once
            etag, holder, expired = found
            return expired and lease.take_over(etag)

        if not _poll(attempt, self.timeout, max_delay=1.0):
            raise LakeLockTimeout(dataset, lease.location, describe_holder(holder), self.timeout)
        try:
            yield lease
        finally:
            lease.release()


def s3_client_for(url: str) -> Any:
    """A boto3 S3 client for a lake URL, honouring the pyarrow URI options the lake itself uses
    (``endpoint_override``, ``scheme``, ``region``, ``access_key``, ``secret_key``, ``session_token``)."""
    import boto3  # lazy: boto3 only for S3 lakes
    from botocore.config import Config  # lazy: boto3 only for S3 lakes

    options = {k: v[-1] for k, v in parse_qs(urlsplit(url).query).items()}
    kwargs: dict[str, Any] = {}
    if "endpoint_override" in options:
        endpoint = options["endpoint_override"]
        kwargs["endpoint_url"] = endpoint if "://" in endpoint else f"{options.get('scheme', 'https')}://{endpoint}"
    if "region" in options:
        kwargs["region_name"] = options["region"]
    for option, arg in (("access_key", "aws_access_key_id"), ("secret_key", "aws_secret_access_key"),
                        ("session_token", "aws_session_token")):
        if option in options:
            kwargs[arg] = options[option]
    # Bounded calls: a lease request that hangs must not outlast the lock's own timeout.
    config = Config(connect_timeout=5, read_timeout=20, retries={"max_attempts": 3, "mode": "standard"})
    return boto3.client("s3", config=config, **kwargs)


def _error_code(exc: Exception) -> str | None:
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return None
    code = response.get("Error", {}).get("Code")
    return str(code) if code is not None else str(response.get("ResponseMetadata", {}).get("HTTPStatusCode"))


def _server_time(response: dict[str, Any]) -> datetime | None:
    date = response.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("date")
    try:
        return parsedate_to_datetime(date) if date else None
    except (TypeError, ValueError):
        return None


# -- anything else --------------------------------------------------------------------------------
class _NoLocks:
    def __init__(self, url: str) -> None:
        self.url = url

    def hold(self, dataset: str) -> AbstractContextManager[Lease]:
        raise LakeLockUnsupported(
            f"cannot write lake dataset {dataset!r} at {redact_url(self.url)}: only local disk and s3:// lakes can lock "
            "a dataset against concurrent writers",
            hint="set lake_url to a local path or an s3:// URL",
        )
