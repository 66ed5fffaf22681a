"""Checkpoints of the stream processor: one file per (group, partition), written whole.

A checkpoint is the pickled state of one partition together with the offsets it has read up to
(``{"format", "group", "partition", "offsets", "written_at", "written_by", "state"}``), so state and offsets can
never disagree: either the new file is there or the old one is. On local disk the file is written
beside its final name, fsynced and renamed over it (``os.replace``, atomic on POSIX), then the
directory is fsynced; on object storage (``s3://...``) a single PUT replaces the object whole.

Pickle runs code when loaded: the checkpoint location must be as trusted as the code itself (the
lake's own bucket or directory, not a shared drop box).
"""

from __future__ import annotations

import os
import pickle
import socket
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.fs as pafs

from foresight.lake import filesystem_at

FORMAT = 1


@dataclass(frozen=True)
class Checkpoint:
    """One partition's state and where it resumes (``{(topic, partition): next offset}``)."""

    group: str
    partition: int
    offsets: dict[tuple[str, int], int]
    state: Any
    written_at: pd.Timestamp
    written_by: str = ""  # host:pid of the processor that wrote it (who owned the partition)


class CheckpointFormatError(ValueError):
    """A checkpoint file that this version cannot read; ``.path`` names it."""

    def __init__(self, path: str, problem: str) -> None:
        self.path = path
        super().__init__(f"stream checkpoint {path}: {problem}")


class CheckpointStore:
    """Checkpoints under ``<url>/<group>/partition-<n>.ckpt`` (a local path or a URL)."""

    def __init__(self, url: str | Path) -> None:
        self.fs, self.root = filesystem_at(url)
        self.local = self.fs.type_name == "local"

    def path(self, group: str, partition: int) -> str:
        return f"{self.root}/{group}/partition-{partition}.ckpt"

    def save(self, checkpoint: Checkpoint) -> str:
        """Write one partition's checkpoint atomically; returns its path."""
        payload = pickle.dumps(
            {
                "format": FORMAT,
                "group": checkpoint.group,
                "partition": checkpoint.partition,
                "offsets": dict(checkpoint.offsets),
                "written_at": checkpoint.written_at,
                "written_by": checkpoint.written_by or f"{socket.gethostname()}:{os.getpid()}",
                "state": checkpoint.state,
            },
            protocol=pickle.HIGHEST_PROTOCOL,
        )
        path = self.path(checkpoint.group, checkpoint.partition)
        if self.local:
            self._save_local(Path(path), payload)
        else:
            with self.fs.open_output_stream(path) as out:
                out.write(payload)
        return path

    @staticmethod
    def _save_local(path: Path, payload: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(payload)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    def load(self, group: str, partition: int) -> Checkpoint | None:
        """The partition's checkpoint, or None when it has none yet."""
        path = self.path(group, partition)
        if self.fs.get_file_info(path).type == pafs.FileType.NotFound:
            return None
        with self.fs.open_input_stream(path) as stream:
            raw = stream.read()
        try:
            data = pickle.loads(raw)  # noqa: S301 - our own checkpoint, trusted as the code (module doc)
        except Exception as exc:
            raise CheckpointFormatError(path, f"unreadable ({type(exc).__name__}: {exc})") from exc
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise CheckpointFormatError(
                path,
                f"format {data.get('format') if isinstance(data, dict) else '?'}, "
                f"this version reads {FORMAT}",
            )
        return Checkpoint(
            data["group"],
            int(data["partition"]),
            dict(data["offsets"]),
            data["state"],
            pd.Timestamp(data["written_at"]),
            str(data.get("written_by", "")),
        )
