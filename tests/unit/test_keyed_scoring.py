"""One key's samples scored step by step: incidents open and resolve, a restored copy raises the
same events with the same ids, steps close on completeness or on newer steps, never on time."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest

from models.incidents.base import incident_id
from models.incidents.settings import StreamSettings
from streaming.keyed_scoring import KeyScorer, Sample

SERIES = (("latency_p95", "seconds", 0.2), ("error_rate", "ratio", 0.01), ("cpu_pct", "percent", 40.0))
T0 = pd.Timestamp("2026-01-01", tz="UTC")
WINDOW = pd.Timedelta(minutes=30)


def _samples(steps: int, fault: tuple[int, int] = (-1, -1), *, seed: int = 1) -> list[Sample]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(steps):
        for metric, unit, base in SERIES:
            value = base * (1 + 0.05 * rng.standard_normal())
            if fault[0] <= i < fault[1] and metric != "cpu_pct":
                value = base * 8
            ds = (T0 + pd.Timedelta(minutes=i)).value // 1000
            out.append(Sample("cart", f"cart/i-1/{metric}", "cart", metric, "i-1", unit, ds, float(value)))
    return out


def _scorer(**options: int) -> KeyScorer:
    return KeyScorer("cart", StreamSettings(), identity_window=WINDOW, **options)


def _run(
    samples: list[Sample], scorer: KeyScorer | None = None, *, restore_at: int | None = None
) -> list[tuple]:
    scorer = scorer or _scorer()
    events = []
    for j, sample in enumerate(samples):
        if j == restore_at:
            scorer = pickle.loads(pickle.dumps(scorer))
        events += [(e.incident_id, e.state, e.at) for e in scorer.add(sample).events]
    return events


def test_a_fault_opens_one_incident_with_the_detect_flow_s_identity_and_resolves_it() -> None:
    events = _run(_samples(260, fault=(200, 215)))
    assert [state for _, state, _ in events] == ["open", "resolved"]
    opened_at = events[0][2]
    assert T0 + pd.Timedelta(minutes=200) <= opened_at <= T0 + pd.Timedelta(minutes=203)
    assert events[0][0] == incident_id("cart", opened_at.floor(WINDOW))
    assert events[1][2] > T0 + pd.Timedelta(minutes=214)


def test_no_fault_no_incident() -> None:
    assert _run(_samples(260)) == []


@pytest.mark.slow
@pytest.mark.parametrize("restore_at", [100, 605])
def test_a_scorer_restored_from_a_pickle_raises_the_same_events(restore_at: int) -> None:
    samples = _samples(260, fault=(200, 215))
    assert _run(samples, restore_at=restore_at) == _run(samples)


def test_a_complete_step_is_scored_at_once_and_an_incomplete_one_once_newer_steps_began() -> None:
    scorer = _scorer(discovery_steps=1, open_steps=2)
    samples = _samples(3)
    # While the series set is learnt, a step closes only once open_steps newer ones began (step 0
    # with step 2's first sample); then a complete step goes at once (steps 1 and 2).
    assert [scorer.add(s).steps for s in samples] == [0, 0, 0, 0, 0, 0, 1, 1, 1]
    assert scorer.stream is not None and list(scorer.stream.series) == sorted(
        f"cart/i-1/{m}" for m, _, _ in SERIES
    )
    ds = (T0 + pd.Timedelta(minutes=3)).value // 1000
    partial = Sample("cart", "cart/i-1/cpu_pct", "cart", "cpu_pct", "i-1", "percent", ds, 40.0)
    assert scorer.add(partial).steps == 0  # step 3 lacks two series
    later = [
        Sample("cart", "cart/i-1/cpu_pct", "cart", "cpu_pct", "i-1", "percent", ds + k * 60_000_000, 40.0)
        for k in (1, 2)
    ]
    assert [scorer.add(s).steps for s in later] == [0, 1]  # two newer steps began: step 3 goes with NaNs


def test_late_samples_and_unknown_series_are_counted_not_scored() -> None:
    scorer = _scorer(discovery_steps=1)
    samples = _samples(5)
    for s in samples:
        scorer.add(s)
    assert scorer.add(samples[0]).late == 1 and scorer.late_samples == 1
    ds = (T0 + pd.Timedelta(minutes=6)).value // 1000
    new = Sample("cart", "cart/i-2/cpu_pct", "cart", "cpu_pct", "i-2", "percent", ds, 1.0)
    assert scorer.add(new).unscored == 1 and scorer.unscored_series == 1


@pytest.mark.slow
def test_memory_stays_bounded_over_many_incidents() -> None:
    scorer = _scorer()
    samples = []
    for k in range(6):
        block = _samples(120, fault=(80, 90), seed=k)
        samples += [
            Sample(
                s.key,
                s.unique_id,
                s.service,
                s.metric,
                s.resource,
                s.unit,
                s.ds_us + k * 120 * 60_000_000,
                s.value,
            )
            for s in block
        ]
    events = _run(samples, scorer)
    assert sum(state == "open" for _, state, _ in events) >= 3
    assert scorer.stream is not None and len(scorer.stream.closed) <= 1 and len(scorer._tracked) <= 1
