"""Per-minute log aggregates fed to a key's incident engine: a fault seen only in the logs pages
with log series and not without; log minutes seal on the logs' own event time, so the result does
not depend on how the two topics interleave; the sealed minutes and the steps waiting for them
survive a checkpoint."""

from __future__ import annotations

import math
import pickle
from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest

from connectors.sources.kafka.log_batches import LogLine
from features.logs.aggregate import LogAggregator
from features.logs.miner import TemplateMiner
from models.incidents.settings import StreamSettings
from streaming.keyed_scoring import KeyScorer, Sample
from streaming.log_counting import count_lines
from streaming.log_steps import LOG_FEATURES, LogMinutes, log_feature_names, step_minutes
from streaming.partition_state import PartitionState

T0 = pd.Timestamp("2026-01-01", tz="UTC")
WINDOW = pd.Timedelta(minutes=30)
SERIES = (("latency_p95", "seconds", 0.2), ("error_rate", "ratio", 0.01), ("cpu_pct", "percent", 40.0))
ALL_LOGS = [name for name, _ in LOG_FEATURES]
STEPS, BURST = 260, (200, 215)


def _samples(minute: int, rng: np.random.Generator) -> list[Sample]:
    ds = (T0 + pd.Timedelta(minutes=minute)).value // 1000
    return [
        Sample("cart", f"cart/i-1/{m}", "cart", m, "i-1", unit, ds, float(base * (1 + 0.05 * rng.standard_normal())))
        for m, unit, base in SERIES
    ]


def _lines(minute: int) -> list[LogLine]:
    """20 lines a minute; during the burst three in four are errors."""
    t0 = (T0 + pd.Timedelta(minutes=minute)).timestamp()
    out = []
    for j in range(20):
        burst = BURST[0] <= minute < BURST[1] and j % 4 != 0
        if burst:  # no error outside it: sparse error lines page on their own (docs/stream.md)
            line = LogLine("cart", "ERROR", f"payment {minute * 31 + j} declined by 10.0.0.{j}", t0 + 2 * j + 1)
        else:
            line = LogLine("cart", "INFO", f"GET /api/cart/{minute * 7 + j} 200 in {j + 3} ms", t0 + 2 * j + 1)
        out.append(line)
    return out


def _messages(log_delay: int = 0) -> Iterator[tuple[str, object]]:
    """Metric samples then the minute's log lines; ``log_delay`` > 0 delivers each minute's lines
    that many minutes late (another interleaving of the two topics)."""
    rng_m = np.random.default_rng(1)
    lines = [_lines(i) for i in range(STEPS)]
    for i in range(STEPS):
        for sample in _samples(i, rng_m):
            yield "metrics", sample
        if i - log_delay >= 0:
            yield "logs", lines[i - log_delay]
    for i in range(STEPS - log_delay, STEPS):
        yield "logs", lines[i]


def _run(
    log_series: list[str], *, log_delay: int = 0, restore_at: int | None = None
) -> tuple[list[tuple[str, str, pd.Timestamp]], PartitionState]:
    state = PartitionState(0, miner=TemplateMiner(), log_grace_seconds=5.0 if log_series else None)

    def new_scorer(key: str) -> KeyScorer:
        return KeyScorer(key, StreamSettings(), identity_window=WINDOW, log_series=log_series)

    events = []
    for n, (topic, payload) in enumerate(_messages(log_delay)):
        if n == restore_at:  # a checkpoint and a restart: the miner travels as its own state
            state = pickle.loads(pickle.dumps(state))
            state.restore_miner(lambda saved: TemplateMiner() if saved is None else TemplateMiner.from_state(saved))
        if topic == "metrics":
            assert isinstance(payload, Sample)
            result = state.score(payload, new_scorer)
        else:
            assert isinstance(payload, list)
            count_lines(state.miner, state.logs, payload, topic="logs")
            result = state.logs_counted([line.ts_seconds for line in payload])
        events += [(e.incident_id, e.state, e.at) for e in result.events]
    return events, state


@pytest.fixture(scope="module")
def with_logs() -> list[tuple[str, str, pd.Timestamp]]:
    return _run(ALL_LOGS)[0]


def test_an_error_log_burst_alone_opens_an_incident_only_with_log_series(with_logs: list) -> None:
    assert _run([])[0] == []  # the metrics are healthy throughout
    assert [s for _, s, _ in with_logs][:1] == ["open"]
    opened_at = with_logs[0][2]
    # the burst's first minute is fed at the next minute's step (once that minute is sealed)
    assert T0 + pd.Timedelta(minutes=BURST[0] + 1) <= opened_at <= T0 + pd.Timedelta(minutes=BURST[0] + 4)
    assert all(T0 + pd.Timedelta(minutes=BURST[0]) <= at for _, _, at in with_logs)


def test_the_logs_arriving_later_than_the_metrics_give_the_same_incidents(with_logs: list) -> None:
    # a minute's lines read one minute after its samples: the complete steps wait for their logs
    # (within open_steps), so the engine sees the same rows at the same steps
    assert _run(ALL_LOGS, log_delay=1)[0] == with_logs


def test_a_restart_from_a_checkpoint_resumes_the_log_series(with_logs: list) -> None:
    for cut in (1, 3 * 4 * 100 + 7, 4 * (BURST[0] + 1) + 2):  # in discovery, mid-stream, mid-burst
        events, state = _run(ALL_LOGS, restore_at=cut)
        assert events == with_logs
    assert state.log_minutes is not None and state.log_minutes.sealed_until is not None
    scorer = state.scorers["cart"]
    assert scorer.stream is not None
    assert {u for u in scorer.stream.series if "/logs/" in u} == {f"cart/logs/{n}" for n in ALL_LOGS}


def test_log_series_are_declared_up_front_for_every_service_of_the_key() -> None:
    scorer = KeyScorer("shop", StreamSettings(), identity_window=WINDOW, discovery_steps=2, log_series=ALL_LOGS)
    logs = LogMinutes(grace_seconds=0.0)
    agg = LogAggregator()
    for i in range(4):
        ds = (T0 + pd.Timedelta(minutes=i)).value // 1000
        for service in ("cart", "quiet"):
            scorer.add(Sample("shop", f"{service}/i-1/cpu_pct", service, "cpu_pct", "i-1", "percent", ds, 40.0), logs)
        agg.add("cart", ds / 1e6 + 1, "ERROR", "t1")  # only cart logs anything
        logs.observe([ds / 1e6 + 61], agg)
        scorer.advance(logs)
    assert scorer.stream is not None and scorer.unscored_series == 0
    assert {u for u in scorer.stream.series if "/logs/" in u} == {
        f"{s}/logs/{n}" for s in ("cart", "quiet") for n in ALL_LOGS
    }
    sealed_until = logs.sealed_until
    assert sealed_until is not None
    values = logs.values(["cart", "quiet"], sealed_until - 1, sealed_until, ALL_LOGS)
    assert values["quiet/logs/log_lines"] == 0.0 and values["quiet/logs/log_lines_error"] == 0.0
    assert values["cart/logs/log_lines"] == 1.0 and values["cart/logs/log_lines_error"] == 1.0
    # an error ratio from fewer than RATIO_MIN_LINES lines is not a measurement
    assert math.isnan(values["cart/logs/log_error_ratio"]) and math.isnan(values["quiet/logs/log_error_ratio"])


def test_a_step_waits_for_its_log_minute_at_most_open_steps() -> None:
    scorer = KeyScorer("cart", StreamSettings(), identity_window=WINDOW, discovery_steps=1, open_steps=2,
                       log_series=["log_lines"])
    logs, agg = LogMinutes(grace_seconds=5.0), LogAggregator()
    for i in range(5):  # one series, no log line yet: steps 0-2 sealed (two newer begun each), 3-4 pending
        ds = (T0 + pd.Timedelta(minutes=i)).value // 1000
        scorer.add(Sample("cart", "cart/i-1/cpu_pct", "cart", "cpu_pct", "i-1", "percent", ds, 40.0), logs)
    assert scorer.stream is not None and scorer.stream._steps == 1  # the oldest fed (NaN logs), two wait
    unsealed = logs.values(["cart"], 0, 1, ["log_lines"])
    assert math.isnan(unsealed["cart/logs/log_lines"])
    t4 = (T0 + pd.Timedelta(minutes=4)).timestamp()
    agg.add("cart", t4 + 1, "INFO", "t")
    assert logs.observe([t4 + 1], agg) and logs.sealed_until == int(t4 // 60) - 1  # grace: minute 3 not yet
    assert scorer.advance(logs).steps == 2  # both waiting steps: the minutes before them are sealed now
    assert scorer.stream._steps == 3


def test_late_lines_for_a_sealed_minute_are_counted() -> None:
    logs, agg = LogMinutes(grace_seconds=0.0), LogAggregator()
    agg.add("cart", 125.0, "INFO", "t")
    assert logs.observe([125.0], agg) and logs.sealed_until == 2
    agg.add("cart", 30.0, "ERROR", "t")
    assert not logs.observe([30.0], agg)
    assert logs.late_lines == 1


@pytest.mark.parametrize(
    ("ds_minutes", "previous_hi", "expected"),
    [
        (10.0, 9, (9, 10)),  # a 1-minute grid: the minute before the step
        (10.0, 5, (5, 10)),  # a 5-minute grid: the five minutes ended since the previous step
        (10.5, 10, (9, 10)),  # a 30-second grid: no minute ended since, the last one again
        (10.0, None, (9, 10)),  # the first step
    ],
)
def test_the_log_minutes_a_step_takes(ds_minutes: float, previous_hi: int | None, expected: tuple) -> None:
    assert step_minutes(int(ds_minutes * 60_000_000), previous_hi) == expected


def test_an_unknown_log_feature_is_refused_with_the_choices() -> None:
    with pytest.raises(ValueError, match="log_lines_bogus.*log_error_ratio"):
        log_feature_names(["log_lines_bogus"])
