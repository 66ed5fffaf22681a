"""``foresight bench nab`` / ``bench score-latency`` on a tiny synthetic NAB-layout corpus."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from bench.nab import run
from bench.score_latency import run as run_latency
from connectors.labels.nab_corpus import read_corpus
from foresight.cli import app
from foresight.settings import DetectConfig
from models.evaluation.nab import stream_scores
from support.nab_corpus import PROFILES, write_corpus


def test_bench_nab_writes_nab_results_layout_and_prints_scores(tmp_path: Path):
    windows = write_corpus(tmp_path / "nab")
    out = tmp_path / "results"
    result = CliRunner().invoke(app, ["bench", "nab", "--data", str(tmp_path / "nab"), "--out", str(out),
                                      "--detector", "streaming"])
    assert result.exit_code == 0, result.output
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.csv"))
    assert written == [
        "artificialWithAnomaly/streaming_a_one.csv",
        "realThing/streaming_b_two.csv",
        "realThing/streaming_c_three.csv",
    ]
    for key, (lo, hi) in windows.items():
        category, name = key.split("/")
        source = pd.read_csv(tmp_path / "nab" / "data" / key)
        frame = pd.read_csv(out / category / f"streaming_{name}")
        assert list(frame.columns) == ["timestamp", "value", "anomaly_score", "label"]
        assert frame["timestamp"].tolist() == source["timestamp"].tolist()
        assert np.allclose(frame["value"], source["value"])
        assert frame["anomaly_score"].between(0, 1).all()
        assert frame.index[frame["label"] == 1].tolist() == list(range(lo, hi + 1))
    for text in ("standard", "low FP", "low FN", "production", "0.999900"):
        assert text in result.output


def test_bench_nab_scores_a_detector_that_finds_the_spikes_highly(tmp_path: Path):
    write_corpus(tmp_path / "nab")
    outcome = run(tmp_path / "nab", tmp_path / "results")
    assert outcome.detector == DetectConfig().detector  # the detect flow's detector by default
    standard = outcome.optimised["standard"]
    assert standard.tp == 3 and standard.fn == 0
    assert standard.score > 80  # each spike sits mid-window: ~0.85 of a perfect detection
    assert outcome.production["standard"].threshold == 0.9999
    assert set(outcome.optimised) == set(PROFILES)


def test_bench_nab_runs_registry_detectors_fitted_on_the_probationary_rows(tmp_path: Path):
    write_corpus(tmp_path / "nab")
    outcome = run(tmp_path / "nab", tmp_path / "results", detector="rolling_zscore")
    assert (tmp_path / "results" / "realThing" / "rolling_zscore_b_two.csv").is_file()
    assert outcome.optimised["standard"].tp >= 1


@pytest.mark.parametrize("detector", ["knn", "streaming_knn"])
def test_bench_nab_feeds_detectors_with_a_streaming_state_row_by_row(tmp_path: Path, detector: str):
    """Detectors with ``make_state`` are resolved by name and streamed, not fitted: causal scores."""
    from models.anomaly.base import DETECTORS

    write_corpus(tmp_path / "nab")
    outcome = run(tmp_path / "nab", tmp_path / "results", detector=detector)
    assert (tmp_path / "results" / "realThing" / f"{detector}_b_two.csv").is_file()
    assert outcome.optimised["standard"].tp == 3
    files, _ = read_corpus(tmp_path / "nab")
    make_state = DETECTORS.get(detector)().make_state
    full = stream_scores([f.frame for f in files], make_state)
    cut = stream_scores([f.frame.iloc[:480] for f in files], make_state)
    for whole, part in zip(full, cut, strict=True):
        assert np.array_equal(whole[:480], part)


def test_streaming_bench_scores_are_causal(tmp_path: Path):
    write_corpus(tmp_path / "nab")
    files, _ = read_corpus(tmp_path / "nab")
    frames = [f.frame for f in files]
    full = stream_scores(frames)
    cut = stream_scores([f.iloc[:480] for f in frames])
    for whole, part in zip(full, cut, strict=True):
        assert np.array_equal(whole[:480], part)


def test_missing_labels_are_a_clear_error(tmp_path: Path):
    with pytest.raises(FileNotFoundError, match="combined_windows.json"):
        read_corpus(tmp_path)


def test_score_latency_prints_the_figure():
    result = CliRunner().invoke(app, ["bench", "score-latency", "--series", "500", "--repeats", "3"])
    assert result.exit_code == 0, result.output
    assert "latest point of 500 series scored in" in result.output


def test_score_latency_times_the_ensemble_including_a_coarse_block_end():
    result = CliRunner().invoke(
        app, ["bench", "score-latency", "--series", "50", "--repeats", "9", "--warm-steps", "20",
              "--detector", "streaming_knn"],
    )
    assert result.exit_code == 0, result.output
    printed = " ".join(result.output.split())  # as wrapped to the terminal's width
    assert "streaming_knn: latest point of 50 series" in printed
    assert "1 of them at a coarse block's end" in printed
    # the three members' history and calibration rings dwarf the forecasting state
    streaming = run_latency(series=50, repeats=1, warm_steps=0)
    ensemble = run_latency(series=50, repeats=8, warm_steps=0, detector="streaming_knn")
    assert ensemble.block_ends == 1 and ensemble.state_mib > 10 * streaming.state_mib


def test_score_latency_times_the_streaming_incident_builder_over_a_simulator_shaped_fleet():
    from bench.score_latency import IncidentStreamClock

    result = CliRunner().invoke(app, ["bench", "score-latency", "--series", "100", "--repeats", "3",
                                      "--warm-steps", "40", "--detector", "incident_stream"])
    assert result.exit_code == 0, result.output
    assert "incident_stream: latest point of 100 series" in " ".join(result.output.split())
    clock = IncidentStreamClock(100)
    stream = clock.stream
    assert len(stream.series) == 100 and len(stream.services) == 9  # 12 series per service
    assert stream.call_graph["svc0"] == ("svc1", "svc2", "svc3") and stream.call_graph["svc6"] == ("svc7", "svc8")
    before = clock.nbytes
    clock.update(np.full(100, 50.0), 0)
    assert clock.now == pd.Timestamp("2026-05-01 00:05", tz="UTC") and clock.nbytes >= before > 0


def test_score_latency_refuses_an_unknown_detector():
    result = CliRunner().invoke(app, ["bench", "score-latency", "--series", "5", "--detector", "prophet"])
    assert result.exit_code == 2  # a usage error, before any state is built
    with pytest.raises(ValueError, match="choose one of: streaming, streaming_knn"):
        run_latency(series=5, detector="prophet")
