"""An append-only JSON-lines file whose records are unique by ``(dedup_key, event_action)``.

The PagerDuty outbox (``connectors.sinks.pagerduty_outbox``) and the delivery ledger beside it
(``connectors.sinks.pagerduty_ledger``) are both one of these. Appends are locked (``flock`` on a
file beside the log), fsynced and idempotent; a torn last line from a crash is ignored on read and
cut before the next append; files are created ``0600`` (owner only) and tightened to it when
found wider, since the outbox once held a credential.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

fcntl: ModuleType | None
try:
    import fcntl
except ImportError:  # not POSIX: single-writer use only
    fcntl = None

FILE_MODE = 0o600  # outbox, ledger and their lock files: owner read/write only


@dataclass(frozen=True)
class OutboxReport:
    """What one append did."""

    written: int
    skipped_duplicates: int


class JsonLinesLog:
    """An append-only JSON-lines file whose records are unique by ``(dedup_key, event_action)``.

    The outbox and the delivery ledger next to it are both one of these: appends are locked, fsynced and idempotent, and a torn last line from a crash is
    ignored on read and cut before the next append. The file is ``0600``. Subclasses validate
    records in :meth:`_validate` and bring lines of an older format up to date in
    :meth:`_migrate` (on every read; :meth:`scrub` rewrites the file with them).

    Writers lock a file beside the log (``<name>.lock``), not the log itself, so :meth:`scrub`
    can replace the log by an atomic rename while every writer waits.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    @property
    def lock_path(self) -> Path:
        return self.path.with_name(f"{self.path.name}.lock")

    def _validate(self, record: Mapping[str, Any]) -> None:
        """Raise on a record that must not be written (the base class accepts any mapping)."""

    def _migrate(self, record: dict[str, Any]) -> dict[str, Any] | None:
        """The record in the current format, or None when it already is (the base class: always)."""
        return None

    def read(self) -> list[dict[str, Any]]:
        """Every record in the file, in append order (a torn last line from a crash is ignored)."""
        return [self._migrate(r) or r for r in self._read_raw()]

    def _read_raw(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        records = []
        lines = self.path.read_text(encoding="utf-8").split("\n")
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                if number == len(lines):  # an unterminated final line: a crash mid-write
                    continue
                raise ValueError(f"{self.path}:{number}: not a JSON record line") from None
        return records

    def identities(self) -> set[tuple[str, str]]:
        """The ``(dedup_key, event_action)`` of every record in the file."""
        return {_identity(r) for r in self.read()}

    def append(self, records: Iterable[Mapping[str, Any]]) -> OutboxReport:
        """Validate and append records not yet in the file: one write of whole lines, then fsync.

        The log is locked while it is read for duplicates and appended to, so two concurrent
        runs cannot both add the same record. Lines of an older format are rewritten first.
        """
        pending = list(records)
        for record in pending:
            self._validate(record)  # all or nothing: one bad record writes none
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with exclusive_lock(self.lock_path):
            self._scrub_locked()
            created = not self.path.exists()
            fd = _open_private(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND)
            try:
                _drop_torn_tail(fd)
                seen = self.identities()
                lines, skipped = [], 0
                for record in pending:
                    ident = _identity(record)
                    if ident in seen:
                        skipped += 1
                        continue
                    seen.add(ident)
                    lines.append(_line(record))
                if lines:
                    _write_all(fd, lines)
            finally:
                os.close(fd)
            if created:
                _fsync_dir(self.path.parent)
        return OutboxReport(written=len(lines), skipped_duplicates=skipped)

    def scrub(self) -> int:
        """Rewrite the log with every line of an older format migrated; how many lines changed.

        Atomic (a new file renamed over the old one, fsynced), under the writers' lock; the old
        lines are never written anywhere else. Also tightens a log found wider than ``0600``.
        """
        if not self.path.exists():
            return 0
        with exclusive_lock(self.lock_path):
            return self._scrub_locked()

    def _scrub_locked(self) -> int:
        if not self.path.exists():
            return 0
        _make_private(self.path)
        raw = self._read_raw()
        migrated = [self._migrate(r) for r in raw]
        changed = sum(m is not None for m in migrated)
        if not changed:
            return 0
        temporary = self.path.with_name(f"{self.path.name}.scrub")
        fd = _open_private(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        try:
            _write_all(fd, [_line(m or r) for m, r in zip(migrated, raw, strict=True)])
        finally:
            os.close(fd)
        os.replace(temporary, self.path)
        _fsync_dir(self.path.parent)
        return changed


@contextmanager
def exclusive_lock(path: str | Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` (created ``0600`` if missing) for the block: one holder at a time."""
    lock_path = Path(path)
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    fd = _open_private(lock_path, os.O_RDWR | os.O_CREAT)
    try:
        _lock(fd)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _open_private(path: Path, flags: int) -> int:
    """``os.open`` with mode ``0600`` whatever the umask, tightening a file an older version left wider."""
    fd = os.open(path, flags, FILE_MODE)
    try:
        if stat.S_IMODE(os.fstat(fd).st_mode) != FILE_MODE:
            os.fchmod(fd, FILE_MODE)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _make_private(path: Path) -> None:
    if stat.S_IMODE(path.stat().st_mode) != FILE_MODE:
        path.chmod(FILE_MODE)


def _line(record: Mapping[str, Any]) -> str:
    return json.dumps(record, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def _write_all(fd: int, lines: list[str]) -> None:
    data = ("\n".join(lines) + "\n").encode("utf-8")
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
    os.fsync(fd)


def _drop_torn_tail(fd: int) -> None:
    """Cut an unterminated last line (a crash mid-write: never a complete event) off the file."""
    size = os.fstat(fd).st_size
    if size == 0 or os.pread(fd, 1, size - 1) == b"\n":
        return
    data = os.pread(fd, size, 0)
    os.ftruncate(fd, data.rfind(b"\n") + 1)


def _lock(fd: int) -> None:
    if fcntl is not None:
        fcntl.flock(fd, fcntl.LOCK_EX)


def _fsync_dir(directory: Path) -> None:
    """Make a newly created file's directory entry durable (POSIX)."""
    try:
        dir_fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)


def _identity(event: Mapping[str, Any]) -> tuple[str, str]:
    return str(event.get("dedup_key")), str(event.get("event_action"))
