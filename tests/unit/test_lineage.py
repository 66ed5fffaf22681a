"""Lineage in words and tags: the code's commit, run names, version descriptions, Prefect tags."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from flows.lineage import prefect_tags
from foresight.cli import app
from foresight.cli.promote import USER_ENV, current_user
from foresight.lake_snapshot import LakeSnapshot
from foresight.lineage import (
    COMMIT_ENV,
    GIT_COMMIT_TAG,
    NOTE_TAG,
    GateFigures,
    RunLineage,
    code_tags,
    git_commit,
    run_name,
    version_description,
)

SNAPSHOT = LakeSnapshot("/lake", "0123456789abcdef", 12_345, 42, pd.Timestamp("2026-11-16 20:05", tz="UTC"),
                        pd.Timestamp("2026-12-07 20:05", tz="UTC"), {"simulator": 42}, {"telemetry": 12_345})
REPO = Path(__file__).resolve().parents[2]


def test_the_commit_comes_from_the_environment_first() -> None:
    commit = "a" * 40
    assert git_commit({COMMIT_ENV: commit.upper()}) == commit
    assert git_commit({COMMIT_ENV: "not a commit; rm -rf"}) is None  # never a made-up tag


@pytest.mark.skipif(not (REPO / ".git").exists(), reason="the tests run from a copy, not a git checkout")
def test_the_commit_is_the_checkouts_head_and_none_outside_a_checkout(tmp_path: Path) -> None:
    head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True,
                          check=True).stdout.strip()
    assert git_commit({}, root=REPO) == head
    assert git_commit({}, root=tmp_path) is None  # not a repository: no tag, no failure


def test_no_git_binary_is_no_tag_and_no_failure(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # a PATH holding no git
    monkeypatch.delenv(COMMIT_ENV, raising=False)
    assert git_commit(root=REPO) is None
    assert GIT_COMMIT_TAG not in code_tags()


def test_run_names_say_family_model_and_data_end() -> None:
    assert run_name("anomaly-detector", "stream+streaming_ensemble", SNAPSHOT) == \
        "anomaly-detector stream+streaming_ensemble 2026-12-07T20:05Z"
    assert run_name("capacity-forecaster", "seasonal_naive", None, role="baseline") == \
        "capacity-forecaster seasonal_naive (baseline)"


def test_a_version_description_has_the_data_the_figures_and_the_verdict() -> None:
    text = version_description("lgbm", SNAPSHOT, GateFigures("event_f1", True, 0.62, 0.41, 0.58), "challenger",
                               "event_f1 0.62 does not beat champion 0.58 by 1%")
    assert "12,345 samples of 42 series (simulator: 42)" in text
    assert "2026-11-16T20:05Z .. 2026-12-07T20:05Z" in text and "`0123456789abcdef`" in text
    assert "candidate 0.62, baseline 0.41, champion 0.58" in text and "higher is better" in text
    assert "**challenger**: event_f1 0.62 does not beat champion 0.58 by 1%" in text
    first = version_description("lgbm", None, GateFigures("mase", False, 0.7, 0.9, None), "promote", "r")
    assert "champion none yet" in first and "lower is better" in first and "Data:" not in first


def test_run_lineage_tags_carry_the_snapshot_and_the_description() -> None:
    tags = RunLineage(snapshot=SNAPSHOT, tags={"x": "1"}, description="what it is").run_tags()
    assert tags["foresight.data.digest"] == SNAPSHOT.digest and tags["x"] == "1"
    assert tags[NOTE_TAG] == "what it is"
    assert RunLineage().run_tags() == {}


def test_outside_a_flow_run_there_are_no_prefect_tags() -> None:
    assert prefect_tags() == {}


def test_the_promoting_user_is_the_environments_or_the_login(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(USER_ENV, "alice")
    assert current_user() == "alice"
    monkeypatch.setenv(USER_ENV, " ")
    assert current_user() not in ("", " ")


def test_promote_help_is_clear_and_an_unknown_model_is_one_line_and_a_non_zero_exit(
        foresight_home: Path) -> None:
    shown = CliRunner().invoke(app, ["promote", "--help"], terminal_width=200)
    assert shown.exit_code == 0
    assert "Make VERSION of MODEL the champion by hand" in shown.output and "--reason" in shown.output
    refused = CliRunner().invoke(app, ["promote", "anomaly-detectr", "3", "--reason", "x"])
    assert refused.exit_code == 1
    assert refused.output.splitlines()[0] == ("error: unknown model 'anomaly-detectr'; choose one of: "
                                              "capacity-forecaster, anomaly-detector, failure-predictor")
    missing = CliRunner().invoke(app, ["promote", "anomaly", "3"])
    assert missing.exit_code == 2 and "--reason" in missing.output
