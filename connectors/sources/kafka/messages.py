"""Decode one Kafka message into a metric sample, a log record or a reject (pure: no I/O, no clock).

Message formats (one JSON object per message value, UTF-8):

**Metric sample** (topics listed in ``metrics_topics``)::

    {"unique_id": "cart/i-0abc/cpu_pct",   # optional: derived as service/resource/metric
     "metric": "cpu_pct", "service": "cart", "resource": "i-0abc",
     "ts": "2026-11-20T10:05:00Z",          # ISO-8601 with a zone, or epoch seconds / milliseconds
     "value": 42.5,                         # a JSON number (NaN / Infinity literals included)
     "unit": "percent",                     # optional: the source's default_unit otherwise
     "labels": {"instance_type": "m5.large", "job": "node"}}   # optional: text values only

Numeric ``ts`` below 1e11 is read as epoch seconds, anything larger as epoch milliseconds.

**Log record** (topics listed in ``logs_topics``)::

    {"ts": "2026-11-20T10:05:00.123Z", "service": "cart", "resource": "i-0abc",   # resource optional
     "level": "ERROR", "message": "upstream timeout calling payments after 2000ms",
     "template_id": "3f2a9c1b"}                                                    # optional

**Batched log records** (the stream processor only, :mod:`connectors.sources.kafka.log_batches`): one
message carrying many lines, as log shippers batch them::

    {"service": "cart", "resource": "i-0abc",                  # defaults of every line
     "lines": [{"ts": 1763633100.123, "level": "INFO", "message": "GET /api/items/7 200 in 3 ms"},
               {"ts": "2026-11-20T10:05:00.2Z", "level": "ERROR", "message": "...", "service": "payments"}]}

What is decided where. A message that cannot become a row at all is a :class:`Reject` with a
stable reason (see :class:`RejectReason`): empty value, bytes that are not UTF-8, malformed
JSON, a value that is not an object, a missing field, a field of the wrong JSON type, text that
decodes to invalid Unicode (lone surrogate escapes, which Parquet cannot store). Everything a
row *can* carry goes through as a row so the data contract
(:mod:`foresight.contracts`) judges it with its own reasons: NaN/inf and numbers too large for
a float (as inf), timestamps far in the future or past, naive or unparseable timestamp text,
duplicate and conflicting samples, values out of bounds for the unit. Log records meet no
contract, so their timestamps are checked when a batch becomes frames: unparseable or naive ones
are rejected there.

A batch of decoded messages becomes frames in :mod:`connectors.sources.kafka.batches`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "KafkaMessage",
    "LogRecord",
    "MetricSample",
    "Reject",
    "RejectReason",
    "commit_offsets",
    "decode_log",
    "decode_metric",
    "escape_raw",
]

# Numeric timestamps at or above this are epoch milliseconds (1e11 s is the year 5138).
EPOCH_MILLIS_FROM = 1e11


class RejectReason:
    """The stable reason strings a rejected message carries (``{field}``/``{kind}`` filled in)."""

    EMPTY = "message: empty value"
    NOT_UTF8 = "message: not valid UTF-8"
    MALFORMED_JSON = "message: malformed JSON"
    NOT_OBJECT = "message: not a JSON object"
    MISSING = "{field}: missing"
    NOT_TEXT = "{field}: expected text, got {kind}"
    EMPTY_TEXT = "{field}: empty text"
    NOT_UNICODE = "message: not valid Unicode (lone surrogate escape)"
    NOT_NUMBER = "value: expected a number, got {kind}"
    TS_WRONG_TYPE = "ts: expected ISO-8601 text or epoch seconds/ms, got {kind}"
    TS_NOT_TIMESTAMP = "ts: not a timestamp"
    TS_NAIVE = "ts: naive timestamp (no timezone)"
    LABELS_NOT_OBJECT = "labels: expected an object, got {kind}"
    LABEL_NOT_TEXT = "labels: value of {key!r} is not text"


@dataclass(frozen=True)
class KafkaMessage:
    """One consumed record, independent of the client library."""

    topic: str
    partition: int
    offset: int
    value: bytes | None
    key: bytes | None = None

    @property
    def origin(self) -> str:
        return f"{self.topic}/{self.partition}/{self.offset}"


@dataclass(frozen=True)
class Reject:
    """A message that could not become a row, and why."""

    message: KafkaMessage
    reason: str

    @property
    def raw(self) -> str:
        return escape_raw(self.message.value)


@dataclass(frozen=True)
class MetricSample:
    """A decoded metric message; ``ts`` stays raw (text or epoch seconds) for the contract."""

    unique_id: str
    metric: str
    service: str
    resource: str
    ts: str | float
    value: float
    unit: str | None
    labels: Mapping[str, str]


@dataclass(frozen=True)
class LogRecord:
    """A decoded log message; ``ts`` is still raw and is parsed for the whole batch at once."""

    ts: str | float
    service: str
    resource: str
    level: str
    message: str
    template_id: str


class _Invalid(Exception):
    """Internal: a field failed validation; carries the reject reason."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def escape_raw(value: bytes | None) -> str:
    """The message as text for the quarantine: undecodable bytes escaped as ``\\xNN``."""
    if value is None:
        return ""
    return value.decode("utf-8", "backslashreplace")


def decode_metric(value: bytes | None) -> MetricSample | str:
    """A metric message as a :class:`MetricSample`, or the reason it cannot be one."""
    try:
        obj = _json_object(value)
        metric, service, resource = (_text(obj, name) for name in ("metric", "service", "resource"))
        unique_id = _optional_text(obj, "unique_id") or f"{service}/{resource}/{metric}"
        return MetricSample(
            unique_id=unique_id,
            metric=metric,
            service=service,
            resource=resource,
            ts=_raw_ts(obj),
            value=_number(obj),
            unit=_optional_text(obj, "unit"),
            labels=_labels(obj),
        )
    except _Invalid as bad:
        return bad.reason


def decode_log(value: bytes | None) -> LogRecord | str:
    """A log message as a :class:`LogRecord`, or the reason it cannot be one."""
    try:
        return log_record(_json_object(value))
    except _Invalid as bad:
        return bad.reason


def log_record(obj: Mapping[str, Any]) -> LogRecord:
    """A decoded log object as a :class:`LogRecord`; raises :class:`_Invalid` with the reason.
    (Batched log messages, :mod:`connectors.sources.kafka.log_batches`, reuse it per line.)"""
    return LogRecord(
        ts=_raw_ts(obj),
        service=_text(obj, "service"),
        resource=_optional_text(obj, "resource") or "",
        level=_text(obj, "level"),
        message=_text(obj, "message"),
        template_id=_optional_text(obj, "template_id") or "",
    )


def _json_object(value: bytes | None) -> dict[str, Any]:
    if not value:
        raise _Invalid(RejectReason.EMPTY)
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError:
        raise _Invalid(RejectReason.NOT_UTF8) from None
    try:
        obj = json.loads(text)
    except (ValueError, RecursionError):  # JSONDecodeError; absurdly deep nesting
        raise _Invalid(RejectReason.MALFORMED_JSON) from None
    if not isinstance(obj, dict):
        raise _Invalid(RejectReason.NOT_OBJECT)
    if "\\u" in text:  # only \uXXXX escapes can decode to lone surrogates, which Parquet cannot store
        try:
            json.dumps(obj, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise _Invalid(RejectReason.NOT_UNICODE) from None
    return obj


def _kind(value: Any) -> str:
    """The JSON type name of a decoded value, for reasons."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list):
        return "array"
    return "object"


def _text(obj: Mapping[str, Any], name: str) -> str:
    if name not in obj or obj[name] is None:
        raise _Invalid(RejectReason.MISSING.format(field=name))
    value = obj[name]
    if not isinstance(value, str):
        raise _Invalid(RejectReason.NOT_TEXT.format(field=name, kind=_kind(value)))
    if not value.strip():
        raise _Invalid(RejectReason.EMPTY_TEXT.format(field=name))
    return value


def _optional_text(obj: Mapping[str, Any], name: str) -> str | None:
    return None if obj.get(name) is None else _text(obj, name)


def _number(obj: Mapping[str, Any]) -> float:
    """``value`` as float; integers too large for a float become +/-inf (the contract refuses them)."""
    if "value" not in obj or obj["value"] is None:
        raise _Invalid(RejectReason.MISSING.format(field="value"))
    value = obj["value"]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _Invalid(RejectReason.NOT_NUMBER.format(kind=_kind(value)))
    return _as_float(value)


def _as_float(value: int | float) -> float:
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf


def _raw_ts(obj: Mapping[str, Any]) -> str | float:
    """``ts`` as given (text) or as epoch seconds (numbers; milliseconds scaled down)."""
    if "ts" not in obj or obj["ts"] is None:
        raise _Invalid(RejectReason.MISSING.format(field="ts"))
    value = obj["ts"]
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _Invalid(RejectReason.TS_WRONG_TYPE.format(kind=_kind(value)))
    seconds = _as_float(value)
    return seconds / 1000.0 if abs(seconds) >= EPOCH_MILLIS_FROM else seconds


def _labels(obj: Mapping[str, Any]) -> Mapping[str, str]:
    labels = obj.get("labels")
    if labels is None:
        return {}
    if not isinstance(labels, dict):
        raise _Invalid(RejectReason.LABELS_NOT_OBJECT.format(kind=_kind(labels)))
    for key, value in labels.items():
        if not isinstance(value, str):
            raise _Invalid(RejectReason.LABEL_NOT_TEXT.format(key=key))
    return labels


def commit_offsets(messages: Iterable[KafkaMessage]) -> dict[tuple[str, int], int]:
    """The offset to commit per ``(topic, partition)``: one past the newest message consumed there."""
    offsets: dict[tuple[str, int], int] = {}
    for m in messages:
        key = (m.topic, m.partition)
        offsets[key] = max(offsets.get(key, -1), m.offset + 1)
    return offsets
