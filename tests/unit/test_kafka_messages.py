"""Decoding Kafka message bytes: rows, rejects with stable reasons, catalogue, offsets, options."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import pytest

from connectors.sources.kafka.batches import decode_batch
from connectors.sources.kafka.messages import (
    KafkaMessage,
    RejectReason,
    commit_offsets,
    decode_log,
    decode_metric,
    escape_raw,
)
from connectors.sources.kafka.source import (
    Acknowledgement,
    KafkaJoinTimeoutError,
    KafkaOptionsError,
    KafkaSource,
    client_config,
    consumer_config,
    dead_letter_headers,
    parse_options,
)
from foresight.contracts.check import check_telemetry
from foresight.schemas import CATALOGUE_COLUMNS, LOG_COLUMNS, UTC_DTYPE

NOW = pd.Timestamp("2026-03-01 12:00", tz="UTC")
SAMPLE: dict[str, Any] = {"metric": "cpu_pct", "service": "cart", "resource": "i-1",
                          "ts": "2026-03-01T11:55:00Z", "value": 42.5, "unit": "percent"}
LOG: dict[str, Any] = {"ts": "2026-03-01T11:55:00.250Z", "service": "cart", "resource": "i-1",
                       "level": "ERROR", "message": "upstream timeout calling payments after 2000ms"}


def _bytes(obj: Any) -> bytes:
    return json.dumps(obj).encode()


def _msgs(values: Sequence[bytes | None], topic: str = "metrics", partition: int = 0) -> list[KafkaMessage]:
    return [KafkaMessage(topic, partition, offset, value) for offset, value in enumerate(values)]


def test_a_metric_sample_decodes_with_a_derived_id_and_epoch_ms_scaled_to_seconds() -> None:
    sample = decode_metric(_bytes({**SAMPLE, "ts": 1_772_366_100_000}))
    assert not isinstance(sample, str)
    assert sample.unique_id == "cart/i-1/cpu_pct"
    assert sample.ts == pytest.approx(1_772_366_100.0)
    assert sample.value == 42.5 and sample.unit == "percent" and sample.labels == {}
    explicit = decode_metric(_bytes({**SAMPLE, "unique_id": "custom/id", "ts": 1_772_366_100}))
    assert not isinstance(explicit, str) and explicit.unique_id == "custom/id" and explicit.ts == 1_772_366_100


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (None, RejectReason.EMPTY),
        (b"", RejectReason.EMPTY),
        (b"\xff\xfe{\"metric\": 1}", RejectReason.NOT_UTF8),
        (b"{\"metric\": \"cpu\",", RejectReason.MALFORMED_JSON),
        (b"[" * 100_000, RejectReason.MALFORMED_JSON),
        (b"[1, 2]", RejectReason.NOT_OBJECT),
        (b"42", RejectReason.NOT_OBJECT),
        (_bytes({k: v for k, v in SAMPLE.items() if k != "metric"}), "metric: missing"),
        (_bytes({k: v for k, v in SAMPLE.items() if k != "value"}), "value: missing"),
        (_bytes({k: v for k, v in SAMPLE.items() if k != "ts"}), "ts: missing"),
        (_bytes({**SAMPLE, "value": "42.5"}), "value: expected a number, got text"),
        (_bytes({**SAMPLE, "value": True}), "value: expected a number, got boolean"),
        (_bytes({**SAMPLE, "service": 7}), "service: expected text, got number"),
        (_bytes({**SAMPLE, "resource": "  "}), "resource: empty text"),
        (_bytes({**SAMPLE, "ts": [2026]}), "ts: expected ISO-8601 text or epoch seconds/ms, got array"),
        (_bytes({**SAMPLE, "ts": False}), "ts: expected ISO-8601 text or epoch seconds/ms, got boolean"),
        (_bytes({**SAMPLE, "labels": ["a"]}), "labels: expected an object, got array"),
        (_bytes({**SAMPLE, "labels": {"job": 3}}), "labels: value of 'job' is not text"),
        (b'{"metric": "cpu\\ud800", "service": "s", "resource": "r", "ts": 1, "value": 1}',
         RejectReason.NOT_UNICODE),
    ],
    ids=["none", "empty", "not-utf8", "truncated-json", "deep-json", "array", "scalar", "no-metric",
         "no-value", "no-ts", "value-text", "value-bool", "service-number", "blank-resource",
         "ts-array", "ts-bool", "labels-array", "label-number", "lone-surrogate"],
)
def test_undecodable_metric_messages_are_rejected_with_a_stable_reason(value: bytes | None, reason: str) -> None:
    assert decode_metric(value) == reason


@pytest.mark.parametrize(
    ("value", "expected"),
    [(float("nan"), math.nan), (float("inf"), math.inf), (10**400, math.inf), (-(10**400), -math.inf), (1e308, 1e308)],
    ids=["nan", "inf", "huge-int", "huge-negative-int", "largest-float"],
)
def test_bad_numbers_pass_through_for_the_contract(value: float | int, expected: float) -> None:
    raw = json.dumps({**SAMPLE, "value": value}).encode()  # NaN/Infinity literals, as Python writes them
    sample = decode_metric(raw)
    assert not isinstance(sample, str)
    assert (math.isnan(sample.value) and math.isnan(expected)) or sample.value == expected


def test_the_contract_quarantines_what_decoding_passed_through() -> None:
    """Rows kept by the decoder meet the contract, which names each problem."""
    rows = [
        {**SAMPLE, "ts": "2026-03-01T11:00:00Z"},
        {**SAMPLE, "ts": "2026-03-01T11:05:00Z", "value": float("nan")},
        {**SAMPLE, "ts": "2026-03-01T11:10:00Z", "value": 10**400},
        {**SAMPLE, "ts": "2999-01-01T00:00:00Z"},
        {**SAMPLE, "ts": "1990-01-01T00:00:00Z"},
        {**SAMPLE, "ts": "2026-03-01T11:20:00"},  # naive
        {**SAMPLE, "ts": 4e13},  # epoch ms far in the future (year 3237)
        {**SAMPLE, "ts": "2026-03-01T11:25:00Z", "value": 250.0},  # above 100 percent
        {**SAMPLE, "ts": "2026-03-01T11:30:00Z", "value": 10.0},
        {**SAMPLE, "ts": "2026-03-01T11:30:00Z", "value": 11.0},  # conflicting duplicate
        {**SAMPLE, "ts": "2026-03-01T11:00:00Z"},  # exact duplicate: collapsed
    ]
    decoded = decode_batch(_msgs([_bytes(r) for r in rows]), source="k", default_unit="count")
    assert decoded.rejects == [] and len(decoded.telemetry) == len(rows)
    result = check_telemetry(decoded.telemetry, decoded.catalogue, source="k", now=NOW,
                             max_staleness=pd.Timedelta("1D"), max_quarantine_ratio=1.0)
    assert result.reasons == {
        "y: not finite (NaN/inf)": 2,
        "duplicate (unique_id, ds) with different values": 2,
        "ds: in the future": 2,
        "ds: older than retention": 1,
        "ds: naive timestamp (no timezone)": 1,
        "y: above 100 for unit percent": 1,
    }
    assert len(result.clean) == 1 and result.collapsed_duplicates == 1


def test_a_batch_splits_rows_from_rejects_and_keeps_their_origin_and_raw_text() -> None:
    values = [_bytes(SAMPLE), b"\xc3\x28 not utf8", b"{oops", _bytes({**SAMPLE, "ts": "2026-03-01T11:56:00Z"})]
    decoded = decode_batch(_msgs(values, topic="m", partition=2), source="k", default_unit="count")
    assert decoded.telemetry["unique_id"].tolist() == ["cart/i-1/cpu_pct"] * 2
    assert decoded.telemetry["y"].dtype == "float64"
    rejected = decoded.rejected_frame()
    assert rejected["origin"].tolist() == ["m/2/1", "m/2/2"]
    assert rejected["reason"].tolist() == [RejectReason.NOT_UTF8, RejectReason.MALFORMED_JSON]
    assert rejected["raw"].tolist() == ["\\xc3( not utf8", "{oops"]
    assert escape_raw(None) == ""


def test_the_catalogue_has_one_row_per_series_with_its_last_labels_and_a_default_unit() -> None:
    values = [
        _bytes({**SAMPLE, "labels": {"job": "node", "instance_type": "m5.large"}}),
        _bytes({**SAMPLE, "ts": "2026-03-01T11:56:00Z", "labels": {"job": "node2", "instance_type": "m5.xlarge"}}),
        _bytes({k: v for k, v in SAMPLE.items() if k != "unit"} | {"metric": "requests"}),
    ]
    decoded = decode_batch(_msgs(values), source="kafka-prod", default_unit="count")
    cat = decoded.catalogue
    assert list(cat.columns) == list(CATALOGUE_COLUMNS)
    assert cat["unique_id"].tolist() == ["cart/i-1/cpu_pct", "cart/i-1/requests"]
    first = cat.iloc[0]
    assert json.loads(first["labels"]) == {"instance_type": "m5.xlarge", "job": "node2"}
    assert (first["instance_type"], first["unit"], first["source"]) == ("m5.xlarge", "percent", "kafka-prod")
    assert cat.iloc[1]["unit"] == "count" and cat.iloc[1]["labels"] == "{}"
    assert decoded.label_changes == 1


def test_log_records_become_log_rows_and_bad_times_are_rejected_here() -> None:
    values = [
        _bytes(LOG),
        _bytes({**LOG, "ts": 1_772_366_100, "template_id": "t1", "resource": None}),
        _bytes({**LOG, "ts": "2026-03-01T11:55:00"}),
        _bytes({**LOG, "ts": "soon"}),
        _bytes({**LOG, "ts": 10**400}),
        _bytes({k: v for k, v in LOG.items() if k != "level"}),
    ]
    decoded = decode_batch([], _msgs(values, topic="logs"), source="k", default_unit="count")
    logs = decoded.logs
    assert list(logs.columns) == list(LOG_COLUMNS) and logs["ts"].dtype == UTC_DTYPE
    assert logs["ts"].tolist() == [pd.Timestamp("2026-03-01T11:55:00.250Z"), pd.Timestamp(1_772_366_100, unit="s", tz="UTC")]
    assert logs["resource_id"].tolist() == ["i-1", ""] and logs["template_id"].tolist() == ["", "t1"]
    assert [(r.message.offset, r.reason) for r in decoded.rejects] == [
        (2, RejectReason.TS_NAIVE), (3, RejectReason.TS_NOT_TIMESTAMP), (4, RejectReason.TS_NOT_TIMESTAMP),
        (5, "level: missing"),
    ]
    assert decode_log(b"[]") == RejectReason.NOT_OBJECT


def test_an_empty_batch_gives_empty_typed_frames() -> None:
    decoded = decode_batch([], [], source="k", default_unit="count")
    assert decoded.telemetry.empty and decoded.catalogue.empty and decoded.logs.empty
    assert list(decoded.rejected_frame().columns) == ["origin", "raw", "reason"]


def test_commit_offsets_are_one_past_the_newest_message_per_partition() -> None:
    rng = np.random.default_rng(7)
    offsets = rng.permutation(50)
    messages = [KafkaMessage("m", int(o % 3), int(o), b"{}") for o in offsets] + [KafkaMessage("l", 0, 4, b"{}")]
    assert commit_offsets(messages) == {("m", 0): 49, ("m", 1): 50, ("m", 2): 48, ("l", 0): 5}
    assert commit_offsets([]) == {}


def test_decoding_fifty_thousand_messages_is_fast() -> None:
    import time

    values = [_bytes({**SAMPLE, "ts": 1_772_366_100 + i, "value": float(i)}) for i in range(50_000)]
    started = time.perf_counter()
    decoded = decode_batch(_msgs(values), source="k", default_unit="count")
    elapsed = time.perf_counter() - started
    assert len(decoded.telemetry) == 50_000 and len(decoded.catalogue) == 1
    assert elapsed < 5.0, f"decoding 50k messages took {elapsed:.2f}s"


# -- options -----------------------------------------------------------------------------------
def test_options_accept_comma_separated_lists_and_hide_secrets() -> None:
    opts = parse_options("k", {"bootstrap_servers": "a:9092, b:9092", "group_id": "g", "metrics_topics": "m1,m2",
                               "security_protocol": "SASL_SSL", "sasl_mechanism": "SCRAM-SHA-512",
                               "sasl_username": "svc", "sasl_password": "hunter2", "ssl_cafile": "/ca.pem"})
    assert opts.bootstrap_servers == ["a:9092", "b:9092"] and opts.topics == ["m1", "m2"]
    assert "hunter2" not in repr(opts) and "hunter2" not in str(opts.model_dump())
    config = consumer_config(opts)
    assert config["sasl_plain_password"] == "hunter2" and config["ssl_cafile"] == "/ca.pem"
    assert config["enable_auto_commit"] is False and config["group_id"] == "g"
    assert "sasl_mechanism" not in client_config(parse_options("k", {"bootstrap_servers": "a", "group_id": "g",
                                                                    "logs_topics": ["l"]}))


@pytest.mark.parametrize(
    ("options", "option"),
    [
        ({"group_id": "g", "metrics_topics": ["m"]}, "bootstrap_servers"),
        ({"bootstrap_servers": "a", "metrics_topics": ["m"]}, "group_id"),
        ({"bootstrap_servers": "a", "group_id": "g"}, "metrics_topics/logs_topics"),
        ({"bootstrap_servers": "a", "group_id": "g", "metrics_topics": ["m"], "logs_topics": ["m"]},
         "metrics_topics/logs_topics"),
        ({"bootstrap_servers": "a", "group_id": "g", "metrics_topics": ["m"], "dead_letter_topic": "m"},
         "dead_letter_topic"),
        ({"bootstrap_servers": "a", "group_id": "g", "metrics_topics": ["m"], "max_messages": 0}, "max_messages"),
        ({"bootstrap_servers": "a", "group_id": "g", "metrics_topics": ["m"], "security_protocol": "SASL_SSL",
          "sasl_mechanism": "PLAIN", "sasl_username": "u"}, "sasl_password"),
        ({"bootstrap_servers": "a", "group_id": "g", "metrics_topics": ["m"], "pasword": "x"}, "pasword"),
    ],
    ids=["no-servers", "no-group", "no-topics", "topic-twice", "dlq-is-input", "zero-batch", "sasl-no-password", "typo"],
)
def test_bad_options_raise_an_error_naming_the_option(options: dict[str, Any], option: str) -> None:
    with pytest.raises(KafkaOptionsError, match="kafka source 'k'") as info:
        parse_options("k", options)
    assert info.value.option == option


# -- the poll loop's stop conditions and the acknowledgement, at the client boundary -------------
class _FakeConsumer:
    """Scripted ``poll`` results; joins the group after ``joined_after`` polls."""

    def __init__(self, script: list[list[int]], joined_after: int = 0) -> None:
        self.script, self.joined_after, self.polls = list(script), joined_after, 0
        self.asked: list[int] = []

    def poll(self, timeout_ms: int, max_records: int) -> dict[str, list[SimpleNamespace]]:
        self.polls += 1
        self.asked.append(max_records)
        offsets = self.script.pop(0)[:max_records] if self.script else []
        records = [SimpleNamespace(topic="m", partition=0, offset=o, value=b"{}", key=None) for o in offsets]
        return {"m-0": records} if records else {}

    def group_metadata(self) -> SimpleNamespace:
        from kafka.structs import MemberState

        return SimpleNamespace(state=MemberState.STABLE if self.polls > self.joined_after else MemberState.REBALANCING)


def _source(**options: Any) -> KafkaSource:
    return KafkaSource(name="k", bootstrap_servers="a", group_id="g", metrics_topics=["m"], **options)


def test_a_batch_stops_at_max_messages_and_never_asks_for_more() -> None:
    consumer = _FakeConsumer([[0, 1, 2], [3, 4, 5], [6]])
    messages = _source(max_messages=5, poll_timeout=5)._poll_batch(consumer)
    assert [m.offset for m in messages] == [0, 1, 2, 3, 4]
    assert consumer.asked == [5, 2]


def test_silence_ends_a_batch_only_once_the_group_has_assigned_partitions() -> None:
    consumer = _FakeConsumer([[], [], [], [0, 1], [], [2]], joined_after=3)
    messages = _source(poll_timeout=0.05)._poll_batch(consumer)
    assert [m.offset for m in messages] == [0, 1, 2], "the empty polls before the join did not end the batch"


def test_a_group_that_never_assigns_partitions_fails_clearly() -> None:
    consumer = _FakeConsumer([], joined_after=10**9)
    with pytest.raises(KafkaJoinTimeoutError, match="group 'g' did not assign partitions of \\['m'\\]"):
        _source(join_timeout=0.05)._poll_batch(consumer)


def test_a_retried_acknowledgement_dead_letters_once_and_commits_once(monkeypatch: pytest.MonkeyPatch) -> None:
    options = parse_options("k", {"bootstrap_servers": "a", "group_id": "g", "metrics_topics": ["m"],
                                  "dead_letter_topic": "dlq"})
    reject = decode_batch(_msgs([b"{oops"], topic="m"), source="k", default_unit="count").rejects
    ack = Acknowledgement("k", options, {("m", 0): 1}, reject)
    calls: list[str] = []
    failures = iter([RuntimeError("coordinator moved"), None])

    def commit() -> None:
        calls.append("commit")
        failure = next(failures)
        if failure:
            raise failure

    monkeypatch.setattr(ack, "_dead_letter", lambda: calls.append("dead-letter"))
    monkeypatch.setattr(ack, "_commit", commit)
    with pytest.raises(RuntimeError, match="coordinator moved"):
        ack()
    ack()
    ack()
    assert calls == ["dead-letter", "commit", "commit"]
    assert dead_letter_headers("k", reject[0]) == [
        ("foresight.reason", b"message: malformed JSON"), ("foresight.origin", b"m/0/0"), ("foresight.source", b"k")]


def test_the_consumer_always_leaves_the_group_without_committing(monkeypatch: pytest.MonkeyPatch) -> None:
    import kafka.errors

    from connectors.sources.kafka import source as kafka_source

    class Closing(_FakeConsumer):
        instances: list[Closing] = []

        def __init__(self, fail: bool, **config: Any) -> None:
            super().__init__([[0, 1]])
            self.fail, self.config = fail, config
            self.closed_with: bool | None = None
            Closing.instances.append(self)

        def subscribe(self, topics: list[str]) -> None:
            self.topics = topics

        def poll(self, timeout_ms: int, max_records: int) -> dict[str, list[SimpleNamespace]]:
            if self.fail:
                raise kafka.errors.KafkaConnectionError("broker went away")
            return super().poll(timeout_ms, max_records)

        def close(self, autocommit: bool) -> None:
            self.closed_with = autocommit

    for fail in (False, True):
        fake = SimpleNamespace(KafkaConsumer=lambda fail=fail, **config: Closing(fail, **config), errors=kafka.errors)
        monkeypatch.setattr(kafka_source, "_kafka", lambda fake=fake: fake)
        source = _source(poll_timeout=0.05)
        if fail:
            with pytest.raises(kafka_source.KafkaUnavailableError, match="unavailable while polling"):
                source.fetch()
        else:
            assert source.fetch().on_stored is not None
    assert [c.closed_with for c in Closing.instances] == [False, False]
    assert all(c.config["enable_auto_commit"] is False for c in Closing.instances)
