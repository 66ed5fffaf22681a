"""Incident benchmark through the detect flow's path (bench.incidents_flow, ``--pipeline flow``)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from bench.datasets.nezha import load_nezha
from bench.incidents import OUTPUT_COLUMNS, run
from bench.incidents_flow import FIT_SPAN, causal_scores, default_detector
from foresight.cli import app
from foresight.settings import DetectConfig
from support.nezha import write_nezha_day

# The fault's first samples: the synthetic day starts 03:51:19, rows are available at the next
# minute (03:52) and the fault shows from row 110 on.
FAULT_SEEN_AT = pd.Timestamp("2022-08-22 05:42", tz="UTC")


def test_the_flow_path_finds_a_cpu_fault_ranks_its_service_and_names_its_category(tmp_path: Path) -> None:
    write_nezha_day(tmp_path, minutes=150, fault_minute=110, fault_service="cartservice")
    # One active sample suffices here: the default detector reports a jump once per series, and
    # every series of this fault jumps in the same minute (see the report on min_active_samples).
    figures, incidents, matches = run(tmp_path, pipeline="flow", detect=DetectConfig(min_active_samples=1))
    assert figures.detected == 1
    hit = incidents.iloc[int(matches.iloc[0]["incident"])]
    assert hit["opened_at"] == FAULT_SEEN_AT  # raised at the minute the samples became available
    assert hit["services"].split(";")[0] == "cartservice"
    # Nezha's metric names are not the simulator's: the category comes from their kinds (CPU). The
    # roll-up names no fault type: its class is the coarse one, its fault type unknown.
    assert hit["coarse_category"] == "saturation" and matches.iloc[0]["coarse_ok"]
    assert hit["category"] == "unknown" and not matches.iloc[0]["category_ok"]
    assert list(incidents.columns[:4]) == ["opened_at", "services", "category", "score"]


def test_flow_scores_use_no_later_sample_and_start_after_the_fitted_span(tmp_path: Path) -> None:
    write_nezha_day(tmp_path, minutes=150, fault_minute=110, fault_service="cartservice")
    telemetry = load_nezha(tmp_path)[0].telemetry
    full = causal_scores(telemetry, default_detector(DetectConfig()))
    assert full["ds"].min() >= telemetry["ds"].min() + FIT_SPAN
    cut = FAULT_SEEN_AT + pd.Timedelta("2min")
    early = causal_scores(telemetry[telemetry["ds"] < cut], default_detector(DetectConfig()))
    both = full.merge(early, on=["unique_id", "ds"], suffixes=("_full", "_early"))
    assert len(both) == len(early) and (both["score_full"] > 0.9999).any()  # the fault's minute is in
    assert both["score_full"].tolist() == both["score_early"].tolist()


def test_the_cli_runs_the_flow_pipeline_and_writes_the_protocol_columns(tmp_path: Path) -> None:
    write_nezha_day(tmp_path / "data", minutes=150, fault_minute=110, fault_service="cartservice")
    out = tmp_path / "incidents.csv"
    result = CliRunner().invoke(
        app, ["bench", "incidents", "--data", str(tmp_path / "data"), "--out", str(out), "--pipeline", "flow"]
    )
    assert result.exit_code == 0, result.output
    assert "flow pipeline" in result.output and "AC@1" in result.output
    assert list(pd.read_csv(out).columns) == list(OUTPUT_COLUMNS)


def test_an_unknown_pipeline_is_refused_listing_the_choices(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["bench", "incidents", "--data", str(tmp_path), "--out", str(tmp_path / "x.csv"), "--pipeline", "dag"]
    )
    assert result.exit_code != 0 and "stream, flow" in result.output
    with pytest.raises(ValueError, match="choose one of: stream, flow"):
        run(tmp_path, pipeline="dag")
