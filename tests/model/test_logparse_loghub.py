"""The template miner on the Loghub-2.0 dev systems: GA / PA floors a little under what was measured
(docs/logs.md), so a regression fails."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.logparse import find_systems, miner_parser, read_system, read_truth
from bench.logparse_metrics import score
from features.logs.miner import MinerSettings

DATA = Path("/work/shared/data/loghub-dev")


@pytest.mark.slow
@pytest.mark.skipif(not DATA.is_dir(), reason=f"Loghub dev data not at {DATA}")
def test_miner_keeps_its_loghub_dev_accuracy() -> None:
    scores = {}
    for name in find_systems(DATA):
        system = read_system(DATA, name)
        truth = read_truth(system)
        assert truth is not None
        scores[name] = score(truth, [t for _, t in miner_parser(MinerSettings())(system.contents)])
    ga = sum(s.ga for s in scores.values()) / len(scores)
    pa = sum(s.pa for s in scores.values()) / len(scores)
    assert ga >= 0.93, scores  # measured 0.946
    assert pa >= 0.86, scores  # measured 0.876
    assert min(s.ga for s in scores.values()) >= 0.72, scores  # Linux, measured 0.760
