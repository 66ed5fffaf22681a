"""Stream messages: decoded with their time in epoch microseconds, or a reject reason."""

from __future__ import annotations

import json

import pytest

from connectors.sources.kafka.stream_messages import (
    FUTURE,
    NOT_FINITE,
    TimedLog,
    TimedMetric,
    decode_timed_log,
    decode_timed_metric,
    epoch_us,
)

NOW_US = 1_767_225_600_000_000  # 2026-01-01T00:00:00Z


def _metric(**fields: object) -> bytes:
    return json.dumps(
        {
            "metric": "cpu_pct",
            "service": "cart",
            "resource": "i-1",
            "value": 1.0,
            "ts": "2026-01-01T00:00:00Z",
            **fields,
        }
    ).encode()


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2026-01-01T00:00:00Z", NOW_US),
        ("2026-01-01T01:00:00+01:00", NOW_US),
        (1_767_225_600, NOW_US),
        (1_767_225_600.5, NOW_US + 500_000),
        ("2026-01-01T00:00:00", "ts: naive timestamp (no timezone)"),
        ("yesterday-ish", "ts: not a timestamp"),
        (float("nan"), "ts: not a timestamp"),
    ],
)
def test_epoch_us(raw: str | float, expected: int | str) -> None:
    assert epoch_us(raw) == expected


def test_a_metric_decodes_with_its_time() -> None:
    decoded = decode_timed_metric(_metric(), now_us=NOW_US, max_future_s=60)
    assert (
        isinstance(decoded, TimedMetric)
        and decoded.ds_us == NOW_US
        and decoded.sample.unique_id == "cart/i-1/cpu_pct"
    )


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (b"{oops", "message: malformed JSON"),
        (_metric(value=None), "value: missing"),
        (_metric(ts="2026-01-01T00:00:00"), "ts: naive timestamp (no timezone)"),
        (_metric(value=1e400), NOT_FINITE),
        (_metric(ts="2026-01-01T00:10:00Z"), FUTURE.format(seconds=600)),
    ],
)
def test_a_metric_that_cannot_be_scored_says_why(value: bytes, reason: str) -> None:
    assert decode_timed_metric(value, now_us=NOW_US, max_future_s=60) == reason


def test_a_log_line_decodes_with_its_time_or_says_why_not() -> None:
    line = {"ts": 1_767_225_600, "service": "cart", "level": "INFO", "message": "hello"}
    decoded = decode_timed_log(json.dumps(line).encode(), now_us=NOW_US, max_future_s=60)
    assert isinstance(decoded, TimedLog) and decoded.ts_seconds == 1_767_225_600
    assert (
        decode_timed_log(json.dumps({**line, "message": 3}).encode(), now_us=NOW_US, max_future_s=60)
        == "message: expected text, got number"
    )
