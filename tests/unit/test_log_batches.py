"""Batched log messages (connectors/sources/kafka/log_batches.py) and their counting in the stream
(streaming/log_counting.py): the fast paths and the reference decoder agree, one bad line rejects
the batch with its index, single records still decode, metrics move once per poll and label set."""

from __future__ import annotations

import json

import pytest
from prometheus_client import CollectorRegistry

from connectors.sources.kafka.log_batches import (
    LogLine,
    _fast,
    batch_value,
    decode_log_lines,
    decode_timed_logs,
)
from connectors.sources.kafka.stream_messages import epoch_us
from features.logs.aggregate import LogAggregator
from features.logs.miner import TemplateMiner
from streaming.log_counting import count_lines, export
from streaming.metrics import StreamMetrics

NOW = 1_796_000_000.0
NOW_US = int(NOW * 1e6)


def _batch(lines: list[dict], **defaults: object) -> bytes:
    return json.dumps({**batch_value("cart", lines, resource="i-1"), **defaults}).encode()


def _decode(value: bytes) -> list[LogLine] | str:
    return decode_timed_logs(value, now_us=NOW_US, max_future_s=300.0)


def test_a_batch_decodes_to_its_lines_with_the_batch_defaults() -> None:
    value = _batch(
        [
            {"ts": NOW - 5, "level": "INFO", "message": "GET /a 200"},
            {"ts": NOW - 4, "level": "ERROR", "message": "boom"},
        ]
    )
    assert _decode(value) == [
        LogLine("cart", "INFO", "GET /a 200", NOW - 5, "i-1"),
        LogLine("cart", "ERROR", "boom", NOW - 4, "i-1"),
    ]


def test_the_fast_path_and_the_reference_decoder_give_the_same_lines() -> None:
    value = _batch([{"ts": NOW - i, "level": "INFO", "message": f"line {i}"} for i in range(5)])
    fast = _fast(value, NOW_US + 300e6)
    assert fast is not None
    records, batched = decode_log_lines(value)  # type: ignore[misc]
    assert batched
    assert [(r.service, r.level, r.message, float(r.ts), r.resource) for r in records] == [
        (x.service, x.level, x.message, x.ts_seconds, x.resource) for x in fast
    ]


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (
            {"ts": "2026-01-01T00:00:00", "level": "INFO", "message": "x"},
            "lines[1].ts: naive timestamp (no timezone)",
        ),
        ({"ts": NOW, "level": "INFO"}, "lines[1].message: missing"),
        ({"ts": NOW, "level": 3, "message": "x"}, "lines[1].level: expected text, got number"),
        ({"ts": NOW, "level": "INFO", "message": "  "}, "lines[1].message: empty text"),
        (
            {"ts": NOW + 3600, "level": "INFO", "message": "x"},
            "lines[1].ts: 3600s ahead of the processor's clock (clock skew?)",
        ),
        ("not an object", "lines[1]: not a JSON object"),
    ],
)
def test_one_bad_line_rejects_the_whole_batch_naming_its_index(line: object, reason: str) -> None:
    value = _batch([{"ts": NOW, "level": "INFO", "message": "fine"}, line])  # type: ignore[list-item]
    assert _decode(value) == reason


def test_lines_may_override_the_batch_service_and_use_iso_or_millisecond_times() -> None:
    value = _batch(
        [
            {"ts": "2026-11-29T10:00:00.5Z", "level": "WARN", "message": "slow", "service": "payments"},
            {"ts": (NOW - 1) * 1000, "level": "INFO", "message": "ms"},
        ]
    )
    lines = _decode(value)
    assert isinstance(lines, list)
    assert [(x.service, x.ts_seconds) for x in lines] == [("payments", 1795946400.5), ("cart", NOW - 1)]


def test_an_empty_or_non_array_lines_field_is_refused() -> None:
    assert _decode(json.dumps({"service": "cart", "lines": []}).encode()).startswith("lines: expected")
    assert _decode(json.dumps({"service": "cart", "lines": {"a": 1}}).encode()).endswith("got object")


def test_a_single_record_still_decodes_with_its_unprefixed_reasons() -> None:
    single = {"ts": NOW, "service": "cart", "level": "INFO", "message": "one"}
    assert _decode(json.dumps(single).encode()) == [LogLine("cart", "INFO", "one", NOW)]
    naive = {**single, "ts": "2026-01-01T00:00:00"}
    assert _decode(json.dumps(naive).encode()) == "ts: naive timestamp (no timezone)"
    assert _decode(b"{not json") == "message: malformed JSON"


@pytest.mark.parametrize(
    "record",
    [
        {"ts": NOW - 1.2345678, "service": "cart", "level": "INFO", "message": "one"},
        {"ts": int(NOW) - 3, "service": "cart", "level": "WARN", "message": "two", "resource": "i-9"},
        {"ts": NOW, "service": "cart", "level": "INFO", "message": "x", "template_id": "T1", "host": "h"},
        {"ts": NOW, "service": "cart", "level": "INFO", "message": "x", "resource": None},
    ],
)
def test_plain_single_records_take_the_fast_path_to_the_reference_line(record: dict) -> None:
    value = json.dumps(record).encode()
    fast = _fast(value, NOW_US + 300e6)
    records, batched = decode_log_lines(value)  # type: ignore[misc]
    assert not batched
    reference = [
        LogLine(r.service, r.level, r.message, epoch_us(r.ts) / 1e6, r.resource, r.template_id)  # type: ignore[operator]
        for r in records
    ]
    assert fast == reference


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        ({"ts": NOW, "service": "cart", "level": "INFO", "message": " "}, "message: empty text"),
        (
            {"ts": NOW, "service": "cart", "level": "INFO", "message": "x", "resource": 3},
            "resource: expected",
        ),
        ({"ts": True, "service": "cart", "level": "INFO", "message": "x"}, "ts: expected"),
        ({"ts": NOW + 3600, "service": "cart", "level": "INFO", "message": "x"}, "ts: 3600s ahead"),
        ({"ts": NOW * 1000, "service": "c", "level": "I", "message": "x"}, None),  # milliseconds: fine
    ],
)
def test_other_single_records_go_to_the_reference_decoder(record: dict, reason: str | None) -> None:
    value = json.dumps(record).encode()
    assert _fast(value, NOW_US + 300e6) is None
    decoded = _decode(value)
    if reason is None:
        assert isinstance(decoded, list) and decoded[0].ts_seconds == pytest.approx(NOW)
    else:
        assert isinstance(decoded, str) and decoded.startswith(reason), decoded


def test_counting_a_batch_mines_counts_and_moves_each_metric_once_per_label_set() -> None:
    miner, logs = TemplateMiner(), LogAggregator()
    value = _batch(
        [
            {
                "ts": NOW - 50 + i,
                "level": "ERROR" if i % 4 == 0 else "INFO",
                "message": f"request {i} took {i * 3} ms",
            }
            for i in range(8)
        ]
    )
    lines = _decode(value)
    assert isinstance(lines, list)
    counted = count_lines(miner, logs, lines, topic="logs")
    assert (counted.counted, counted.late) == (8, 0)
    assert counted.levels == {("cart", "ERROR"): 2, ("cart", "INFO"): 6}
    assert sum(counted.new_templates.values()) == 1  # one shape, one new template
    registry = CollectorRegistry()
    count_lines(miner, logs, lines[:2], topic="logs", into=counted)  # a second message, same poll
    export(StreamMetrics(registry), counted)
    get = registry.get_sample_value
    assert get("foresight_stream_log_lines_total", {"service": "cart", "level": "error"}) == 3
    assert get("foresight_stream_log_lines_total", {"service": "cart", "level": "info"}) == 7
    assert get("foresight_stream_new_templates_total", {"service": "cart"}) == 1
    assert get("foresight_stream_messages_total", {"topic": "logs", "outcome": "counted"}) == 2
    assert get("foresight_stream_log_error_ratio", {"service": "cart"}) == pytest.approx(0.3)
