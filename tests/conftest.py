"""Session-wide test setup: quiet, isolated Prefect and MLflow; one Prefect harness per session."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

# Before anything imports Prefect: an isolated home, no analytics, no telemetry.
_PREFECT_HOME = tempfile.mkdtemp(prefix="foresight-prefect-")
os.environ["PREFECT_HOME"] = _PREFECT_HOME
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
# Tests call single tasks outside a flow (retry behaviour, a task's own logic): their log lines
# have no flow run to go to, which is expected here, not worth a warning per call.
os.environ.setdefault("PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW", "ignore")

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))  # tests/support helpers


@pytest.fixture(scope="session")
def prefect_harness():
    """One ephemeral Prefect API for the whole session (each start costs ~9 s)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture
def prefect_api_env(prefect_harness) -> dict[str, str]:
    """Environment for a subprocess that should run its flows against the session's Prefect API
    instead of starting its own ephemeral one (about 10 s each)."""
    from prefect.settings import PREFECT_API_URL

    return {"PREFECT_API_URL": str(PREFECT_API_URL.value())}


@pytest.fixture
def foresight_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh FORESIGHT_HOME (and working directory) for one test."""
    home = tmp_path / ".foresight"
    monkeypatch.setenv("FORESIGHT_HOME", str(home))
    monkeypatch.chdir(tmp_path)
    return home


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory):
    """One memory-storage tansu broker for the session (support.kafka); tests use their own
    topics and groups. Skips (fails in CI) without the binary."""
    from support.kafka import tansu_broker

    with tansu_broker(tmp_path_factory.mktemp("tansu-session") / "tansu.log") as running:
        yield running


@pytest.fixture
def stream_processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    """``foresight stream`` processes a test starts (support.stream_process.start): killed after it."""
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for p in started:
        if p.poll() is None:
            p.kill()
            p.wait(10)
