"""Servers on loopback: pick a free port, start a binary in its own session with its output in a log
file, wait until it answers, stop it (and every process it started).

One launcher for the local stack (:mod:`foresight.cli.local_stack.stack`: servers that outlive the
command, found again by pid file) and the integration tests (``tests/support/servers.py``:
servers that live for one test block). What each server's command line and health check are is
in :mod:`foresight.cli.local_stack.servers`.
"""

from __future__ import annotations

import os
import signal
import socket
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import requests


class StackError(RuntimeError):
    """Something about the local stack went wrong; the message says what to do."""


class ServiceStartError(StackError):
    """A server did not become healthy; ``.log_tail`` holds the end of its log."""

    def __init__(self, service: str, reason: str, log: Path) -> None:
        self.service, self.reason, self.log = service, reason, log
        self.log_tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
        super().__init__(f"{service} did not start: {reason} (log {log}):\n{self.log_tail}")


@dataclass(frozen=True)
class ServiceSpec:
    """One server: its command line, how to tell it is healthy (an HTTP URL or a TCP port) and
    the variables added to the starting process' environment for it."""

    name: str
    args: tuple[str, ...]
    health_url: str | None = None
    health_port: int | None = None
    env: Mapping[str, str] = field(default_factory=dict)

    @property
    def binary(self) -> str:
        return self.args[0]


def free_port() -> int:
    """A loopback port nothing listens on now (the kernel's pick; free until someone binds it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def spawn(args: Sequence[str], log: Path, *, env: Mapping[str, str] | None = None) -> int:
    """Start ``args`` detached in a new session, output appended to ``log``; returns its pid.

    ``posix_spawn`` rather than ``Popen``: the server outlives this process, so there is no
    handle to keep (a dropped ``Popen`` warns) and ``down`` finds it again by pid file. ``env``
    is added to this process' environment.
    """
    actions = [
        (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
        (os.POSIX_SPAWN_OPEN, 1, str(log), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644),
        (os.POSIX_SPAWN_DUP2, 1, 2),
    ]
    return os.posix_spawn(args[0], list(args), {**os.environ, **(env or {})}, file_actions=actions, setsid=True)


def is_alive(pid: int, binary: str | None = None) -> bool:
    """True while ``pid`` runs (zombies of our own children are reaped first) and, on Linux, runs ``binary``."""
    try:
        reaped, _ = os.waitpid(pid, os.WNOHANG)
        if reaped == pid:
            return False
    except ChildProcessError:  # not our child: only the kernel knows
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists but belongs to someone else: not ours
        return False
    cmdline = Path(f"/proc/{pid}/cmdline")
    if binary is not None and cmdline.exists():  # guards against a reused pid
        # a script (moto_server) shows as ``python script ...``: look at the first two words
        words = cmdline.read_bytes().split(b"\0")[:2]
        return Path(binary).name in {Path(w.decode(errors="replace")).name for w in words}
    return True


def terminate(pid: int, binary: str | None = None, *, grace: float) -> bool:
    """SIGTERM the server's process group, SIGKILL it after ``grace`` seconds; True if it had to be killed."""
    if not is_alive(pid, binary):
        return False
    os.killpg(pid, signal.SIGTERM)  # the server leads its own session: its children go too
    # From here on wait for the pid itself: an exiting process loses its cmdline before it is
    # gone, so the binary check (a guard against reused pids, needed only before signalling)
    # would call it dead too early.
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if not is_alive(pid):
            return False
        time.sleep(0.1)
    os.killpg(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5.0
    while is_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return True


def answers(spec: ServiceSpec, timeout: float = 2.0) -> bool:
    """One health probe: a 2xx from the URL, or an accepted TCP connection."""
    try:
        if spec.health_url is not None:
            return requests.get(spec.health_url, timeout=timeout).ok
        if spec.health_port is not None:
            socket.create_connection(("127.0.0.1", spec.health_port), timeout=timeout).close()
            return True
    except (requests.RequestException, OSError):
        return False
    return False


def wait_healthy(spec: ServiceSpec, pid: int, log: Path, *, timeout: float) -> None:
    """Poll until the server answers; raise :class:`ServiceStartError` if it died or took too long."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not is_alive(pid):
            raise ServiceStartError(spec.name, "the process exited", log)
        if answers(spec):
            return
        time.sleep(0.2)
    raise ServiceStartError(spec.name, f"no healthy answer within {timeout:.0f}s", log)
