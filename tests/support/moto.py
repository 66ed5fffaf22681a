"""moto_server on a free loopback port (put ``support.fault_proxy.FaultProxy`` in front of it for faults)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests

from foresight.cli.local_stack.servers import INSTALL_HINTS, LOCKED_MOTO_SERVER, moto_spec
from support.servers import free_port, missing_dependency, running_server

MOTO_SERVER = LOCKED_MOTO_SERVER  # not a moto_server on PATH: that may be an older system copy
TEST_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                    "AWS_SESSION_TOKEN": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


@contextmanager
def moto_server(log_dir: Path) -> Iterator[str]:
    """Run moto_server until the block exits; yields its endpoint URL.

    Skips when moto_server is not installed, except in CI (``CI`` set), where that is a failure.
    """
    if not MOTO_SERVER.exists():
        message = f"moto_server not found at {MOTO_SERVER} ({INSTALL_HINTS['moto_server']})"
        missing_dependency(message)
    port = free_port()
    with running_server(moto_spec(str(MOTO_SERVER), port), log_dir / "moto.log"):
        yield f"http://127.0.0.1:{port}"


def reset_moto(url: str) -> None:
    """Forget every resource moto holds (metrics included), so tests do not see each other's data."""
    requests.post(f"{url}/moto-api/reset", timeout=10).raise_for_status()


def use_test_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake AWS credentials for the standard chain; no profile or config file from the host."""
    for key, value in TEST_CREDENTIALS.items():
        monkeypatch.setenv(key, value)
    for key in ("AWS_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE", "AWS_MAX_ATTEMPTS",
                "AWS_RETRY_MODE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
