"""The real ``foresight demo`` in a subprocess, as a user runs it: stderr free of the library noise the
entry point silences, no scratch folder left, dashboards under the home, and ``show`` reading back
what the run wrote. One demo run (about two minutes) feeds every assertion."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from foresight.cli.runtime import SILENCED_LOGS

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@dataclass
class DemoRun:
    home: Path
    cwd: Path
    env: dict[str, str]
    stderr: str


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoRun]:
    root = tmp_path_factory.mktemp("demo-terminal")
    home, cwd = root / "home", root / "cwd"
    cwd.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_API_", "FORESIGHT_"))}
    env.update({"FORESIGHT_HOME": str(home), "PREFECT_HOME": str(root / "prefect"), "COLUMNS": "200",
                "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
                "FORESIGHT_SOURCES": json.dumps([{"name": "simulator", "kind": "simulator",
                                                  "options": {"end": "2026-11-26T00:00:00Z", "days": 14},
                                                  "max_staleness": "P3650D"}])})
    done = subprocess.run([sys.executable, "-m", "foresight.cli", "demo"], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    yield DemoRun(home, cwd, env, done.stderr)


def test_the_demo_prints_none_of_the_silenced_library_lines(demo_run: DemoRun) -> None:
    for logger, prefix in SILENCED_LOGS:
        assert prefix not in demo_run.stderr, f"{logger}: {prefix}"


def test_the_demo_leaves_no_scratch_folder_and_writes_dashboards_under_its_home(demo_run: DemoRun) -> None:
    assert list(demo_run.home.glob("foresight-train-*")) == []
    assert (demo_run.home / "dashboards" / "foresight-capacity.json").is_file()
    assert (demo_run.home / "dashboards" / "provisioning" / "alerting" / "foresight.yaml").is_file()
    assert list(demo_run.cwd.iterdir()) == []


def test_show_reads_back_what_the_demo_wrote(demo_run: DemoRun) -> None:
    def show(what: str) -> list[dict]:
        done = subprocess.run([sys.executable, "-m", "foresight.cli", "show", what, "--output", "json"],
                              cwd=demo_run.cwd, env=demo_run.env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    models = show("models")
    assert {m["registered_model"] for m in models if "champion" in m["aliases"]} == {
        "capacity-forecaster", "anomaly-detector", "failure-predictor"}
    plan = show("plan")
    assert plan and all(row["model"] for row in plan)
    assert {row["service"] for row in show("rightsizing")}
    assert all(row["status"] in ("open", "resolved") for row in show("incidents"))
