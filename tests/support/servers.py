"""Start real servers on free loopback ports for integration tests, and stop them.

Through the local stack's launcher (:mod:`foresight.cli.local_stack.launcher`): the same spawn in
a session of its own with output appended to a log, the same health wait, the same stop of the
whole session. Here a server lives for one ``with`` block.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn

import pytest

from foresight.cli.local_stack.launcher import (
    ServiceSpec,
    ServiceStartError,
    free_port,
    spawn,
    terminate,
    wait_healthy,
)

__all__ = ["free_port", "missing_dependency", "running_server", "server_process", "stop_process"]


@contextmanager
def running_server(spec: ServiceSpec, log: Path, *, env: Mapping[str, str] | None = None,
                   timeout: float = 90.0) -> Iterator[int]:
    """Run ``spec`` until the block exits (``env`` added to ours); yields its pid. Its output goes
    to ``log``, whose end is printed when the block fails, for post-mortems."""
    pid = spawn(spec.args, log, env=env)
    try:
        wait_healthy(spec, pid, log, timeout=timeout)
        yield pid
    except BaseException as exc:
        if not isinstance(exc, ServiceStartError):  # that one carries the log's end already
            print(log.read_text(errors="replace")[-3000:])
        raise
    finally:
        terminate(pid, grace=10.0)


@contextmanager
def server_process(args: Sequence[str], *, health_url: str, log: Path, env: Mapping[str, str] | None = None,
                   timeout: float = 90.0) -> Iterator[int]:
    """Run the server ``args`` start until the block exits, healthy once ``health_url`` answers 2xx."""
    spec = ServiceSpec(Path(args[0]).name, tuple(args), health_url=health_url)
    with running_server(spec, log, env=env, timeout=timeout) as pid:
        yield pid


def stop_process(proc: subprocess.Popen, grace: float = 10.0) -> None:
    """Stop a process a test started itself in a session of its own, as the launcher stops a server."""
    terminate(proc.pid, grace=grace)
    proc.wait(timeout=5)  # gone already: this records its exit for Popen


def missing_dependency(message: str) -> NoReturn:
    """A test's server or binary is missing: skip on a laptop, fail in CI (``CI`` set), where
    every integration test must really run."""
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)
