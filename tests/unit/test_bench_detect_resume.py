"""``python -m bench.detect_resume detector``: the detector alone, replayed then resumed one step."""

from __future__ import annotations

import re

import pytest

from bench.detect_resume import detector_only


def test_the_detector_bench_replays_then_resumes_one_step(capsys: pytest.CaptureFixture[str]) -> None:
    detector_only(1, 2, lookback_hours=24)
    out = capsys.readouterr().out
    found = re.search(r"^(\d+) series, (\d+) grid steps replayed", out)
    assert found is not None, out
    assert int(found[1]) == 72 and int(found[2]) == 2 * 288 - 1
    modes = re.findall(r"state ([\d.]+) MB, read in [\d.]+ s; (\d+) step resumed in [\d.]+ s \(([\d,]+) scores", out)
    assert len(modes) == 2 and all(int(steps) == 1 for _, steps, _ in modes), out
    (newest_mb, _, newest_rows), (window_mb, _, window_rows) = modes
    assert float(newest_mb) < float(window_mb), "the window of scores is kept only for the roll-up"
    assert int(newest_rows.replace(",", "")) == 72 < int(window_rows.replace(",", ""))
