"""Start real servers on free loopback ports for integration tests, and stop them."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn

import requests


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_http(url: str, *, timeout: float = 60.0, process: subprocess.Popen | None = None) -> None:
    """Poll ``url`` until it answers 2xx; fail early if the server process died."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode} before {url} answered")
        try:
            if requests.get(url, timeout=2).ok:
                return
        except requests.RequestException as exc:
            last = exc
        time.sleep(0.3)
    raise TimeoutError(f"{url} did not answer within {timeout:.0f}s (last error: {last})")


@contextmanager
def server_process(args: list[str], *, health_url: str, log: Path, env: dict[str, str] | None = None,
                   timeout: float = 90.0) -> Iterator[subprocess.Popen]:
    """Run a server until the block exits; its output goes to ``log`` for post-mortems."""
    with open(log, "wb") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})},
                                start_new_session=True)
        try:
            wait_http(health_url, timeout=timeout, process=proc)
            yield proc
        except BaseException:
            print(log.read_text(errors="replace")[-3000:])
            raise
        finally:
            stop_process(proc)


def stop_process(proc: subprocess.Popen, grace: float = 10.0) -> None:
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, 15)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)
        proc.wait(timeout=grace)


def missing_dependency(message: str) -> NoReturn:
    """A test's server or binary is missing: skip on a laptop, fail in CI (``CI`` set), where
    every integration test must really run."""
    import pytest

    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)
