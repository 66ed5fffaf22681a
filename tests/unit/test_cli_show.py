"""``foresight show plan | rightsizing | incidents`` on a small seeded home, in every format; the
train flow's scratch folder and where publish writes dashboards."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from typer.testing import CliRunner

import flows.train as train_flow
from connectors.sinks.forecast_store import ForecastStore
from connectors.sinks.pagerduty_outbox import Outbox, resolve_event, trigger_event
from flows.publish import write_dashboards
from foresight.cli import app
from foresight.cli.output import cell
from foresight.settings import load_settings

NOW = pd.Timestamp("2026-12-07 10:00", tz="UTC")
LONG_REASON = "m5.large would run memory at 96 %; " * 12  # longer than the old 200-character cut


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A home as the flows leave it: a SQLite forecast store with a plan, forecasts by two models and
    rightsizing (with a column the CLI does not know about), and an outbox with two incidents."""
    home = tmp_path_factory.mktemp("home")
    store = ForecastStore(f"sqlite:///{home / 'forecasts.db'}")
    store.create_schema()
    ids = ["cart/i-1/mem_pct", "search/i-2/cpu_pct"]
    for uid, model in zip(ids, ["mstl", "damped_trend"], strict=True):
        ds = pd.date_range(NOW, periods=3, freq="h")
        store.write_forecasts(pd.DataFrame({"unique_id": uid, "ds": ds, "yhat": 50.0, "yhat_lower": 40.0,
                                            "yhat_upper": 60.0}), model_name=model, model_version="2",
                              run_id="r1", level=80)
    store.write_capacity_plan(pd.DataFrame({
        "unique_id": ids, "service": ["cart", "search"], "resource_id": ["i-1", "i-2"],
        "metric": ["mem_pct", "cpu_pct"], "threshold": [90.0, 80.0], "current": [60.0, 50.0],
        "peak_p50": [70.0, 55.0], "peak_p90": [95.0, 60.0], "days_to_threshold": [1.5, float("nan")],
        "threshold_date": pd.Series([NOW, pd.NaT], dtype="datetime64[us, UTC]"),
        "threshold_date_earliest": pd.Series([NOW, pd.NaT], dtype="datetime64[us, UTC]"),
        "threshold_date_latest": pd.Series([NOW, pd.NaT], dtype="datetime64[us, UTC]"),
        "capacity_needed": [1.2, 0.8]}), model_version="2", run_id="r1")
    store.write_rightsizing(pd.DataFrame({
        "service": ["cart"], "instance_count": [2], "current_instance_type": ["m5.large"],
        "recommended_instance_type": ["r5.large"], "current_monthly_cost": [140.16],
        "recommended_monthly_cost": [183.96], "monthly_savings": [-43.8], "demand_vcpu": [1.1],
        "demand_memory_gib": [7.1], "peak_upper_utilisation": [55.7], "exceed_probability": [0.0],
        "current_exceed_probability": [0.04], "action": ["upsize"], "reason": [LONG_REASON],
        "price_source": ["bundled"]}), model_version="2", run_id="r1")
    store.dispose()
    outbox = Outbox(home / "outbox" / "pagerduty-events.jsonl")
    first = trigger_event({"service": "cart", "start": NOW - pd.Timedelta(hours=3), "severity": "critical",
                           "category": "saturation"}, model_name="anomaly-detector", model_version="1")
    second = trigger_event({"service": "search", "start": NOW, "severity": "warning", "category": "latency"},
                           model_name="anomaly-detector", model_version="1")
    outbox.append([first, second, resolve_event(first["dedup_key"])])
    return home


def _show(home: Path, what: str, output: str, *extra: str) -> str:
    answer = CliRunner().invoke(app, ["show", what, "--output", output, *extra],
                                env={"FORESIGHT_HOME": str(home)}, terminal_width=120)
    assert answer.exit_code == 0, answer.output
    return answer.stdout


@pytest.mark.parametrize("what", ["plan", "rightsizing", "incidents"])
def test_show_json_and_csv_carry_the_same_rows(home: Path, what: str) -> None:
    rows: list[dict[str, Any]] = json.loads(_show(home, what, "json"))
    parsed = list(csv.reader(io.StringIO(_show(home, what, "csv"))))
    assert rows and parsed[0] == list(rows[0])
    assert parsed[1:] == [[cell(row[c]) for c in parsed[0]] for row in rows]
    table = "".join(ch for ch in _show(home, what, "table") if ch not in "│┃ \n")
    for row in rows:  # the table shows every value of every row, none cut short
        for value in row.values():
            assert cell(value).replace(" ", "") in table


def test_show_plan_names_the_model_behind_each_series(home: Path) -> None:
    rows = json.loads(_show(home, "plan", "json"))
    assert [(r["unique_id"], r["model"], r["days_to_threshold"]) for r in rows] == [
        ("cart/i-1/mem_pct", "mstl", 1.5), ("search/i-2/cpu_pct", "damped_trend", None)]


def test_show_rightsizing_prints_every_stored_column_and_the_whole_reason(home: Path) -> None:
    (row,) = json.loads(_show(home, "rightsizing", "json"))
    assert row["reason"] == LONG_REASON and row["monthly_savings"] == -43.8 and "price_source" in row


def test_show_incidents_newest_first_with_their_status(home: Path) -> None:
    rows = json.loads(_show(home, "incidents", "json"))
    assert [(r["service"], r["status"], r["severity"]) for r in rows] == [
        ("search", "open", "warning"), ("cart", "resolved", "critical")]
    assert [r["service"] for r in json.loads(_show(home, "incidents", "json", "--open"))] == ["search"]


def test_show_on_an_empty_home_says_there_is_nothing_yet(tmp_path: Path) -> None:
    assert json.loads(_show(tmp_path, "incidents", "json")) == []
    assert "nothing yet" in _show(tmp_path, "plan", "table")


def test_train_leaves_no_scratch_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FORESIGHT_HOME", str(tmp_path))
    seen: list[Path] = []

    def gate_family(family: Any, data: Any, settings: Any, workdir: Path) -> dict[str, Any]:
        workdir.mkdir(parents=True)
        (workdir / "artifact.csv").write_text("a\n1\n")
        seen.append(workdir)
        return dict.fromkeys(("registered_model", "version", "decision", "metric", "value", "baseline",
                              "champion"), "x")

    monkeypatch.setattr(train_flow, "load_training_data", lambda settings: None)
    monkeypatch.setattr(train_flow, "gate_family", gate_family)
    monkeypatch.setattr(train_flow, "create_table_artifact", lambda **kwargs: None)
    train_flow.train.fn()
    assert len(seen) == len(train_flow.FAMILIES) and seen[0].parent.name.startswith("foresight-train-")
    assert list(tmp_path.glob("foresight-train-*")) == []


def test_publish_writes_dashboards_under_the_home_not_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings(home=tmp_path / "home")
    paths = [Path(p) for p in write_dashboards.fn(settings)]
    assert paths and all(p.is_relative_to(tmp_path / "home" / "dashboards") for p in paths)
    assert not (tmp_path / "dashboards").exists()
