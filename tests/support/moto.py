"""moto_server on a free loopback port (put ``support.fault_proxy.FaultProxy`` in front of it for faults)."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests

from support.servers import free_port, missing_dependency, server_process

# The locked moto next to this interpreter: a moto_server on PATH may be an older system copy.
MOTO_SERVER = Path(sys.executable).with_name("moto_server")
TEST_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                    "AWS_SESSION_TOKEN": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


@contextmanager
def moto_server(log_dir: Path) -> Iterator[str]:
    """Run moto_server until the block exits; yields its endpoint URL.

    Skips when moto_server is not installed, except in CI (``CI`` set), where that is a failure.
    """
    if not MOTO_SERVER.exists():
        message = f"moto_server not found at {MOTO_SERVER} (pip install 'moto[server]')"
        missing_dependency(message)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with server_process([str(MOTO_SERVER), "-H", "127.0.0.1", "-p", str(port)],
                        health_url=f"{url}/moto-api/data.json", log=log_dir / "moto.log"):
        yield url


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
