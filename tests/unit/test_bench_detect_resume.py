"""``python -m bench.detect_resume detector``: the detector alone, replayed then resumed one step."""

from __future__ import annotations

import re

import pytest

from bench.detect_resume import detector_only


def test_the_detector_bench_replays_then_resumes_one_step(capsys: pytest.CaptureFixture[str]) -> None:
    detector_only(1, 2, lookback_hours=24)
    line = capsys.readouterr().out
    found = re.search(r"^(\d+) series, (\d+) grid steps replayed .* state ([\d.]+) MB .* (\d+) step resumed", line)
    assert found is not None, line
    series, steps, size, resumed = found.groups()
    assert int(series) == 72 and int(steps) == 2 * 288 - 1 and float(size) > 0 and int(resumed) == 1
