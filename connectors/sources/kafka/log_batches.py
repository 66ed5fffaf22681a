"""Batched log messages: one Kafka message carrying many raw lines, as log shippers send them.

Format (one UTF-8 JSON object per message value)::

    {"service": "cart", "resource": "i-0abc",           # defaults of every line (resource optional)
     "lines": [{"ts": 1763633100.123, "level": "INFO", "message": "GET /api/items/7 200 in 3 ms"},
               {"ts": "2026-11-20T10:05:00.2Z", "level": "ERROR", "message": "upstream refused",
                "service": "payments"}]}                # a line's own field wins over the default

- Each line holds the fields of a single log record (:mod:`connectors.sources.kafka.messages`):
  ``ts`` (epoch seconds or milliseconds, or ISO-8601 text with a zone), ``level``, ``message``,
  and ``service`` / ``resource`` / ``template_id`` where the batch gives none or the line differs.
- A message with a ``lines`` key is a batch; any other object is one log record, so one topic may
  carry both and producers can switch at any time.
- All or nothing: one invalid line rejects the whole message, with that line's reason prefixed by
  its index (``lines[3].ts: naive timestamp (no timezone)``), so the dead-letter topic and the
  quarantine keep the batch exactly as sent, to be fixed and replayed as one.
- Keep a batch under the topic's ``max.message.bytes`` (1 MiB by default): a few hundred lines.

Why: the Kafka client pays per record (kafka-python decodes each record in Python), so one line
per message caps a consumer at a few ten thousand lines a second; a batch pays that once for
hundreds of lines (figures in docs/stream.md, ``foresight bench stream``). Pure: no I/O.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import orjson

from connectors.sources.kafka.messages import LogRecord, _Invalid, _json_object, _kind, log_record
from connectors.sources.kafka.stream_messages import FUTURE, epoch_us

LINES = "lines"
NOT_LINES = "lines: expected a non-empty array of line objects, got {kind}"
LINE_NOT_OBJECT = "lines[{index}]: not a JSON object"
LINE_REASON = "lines[{index}].{reason}"
_DEFAULTS = ("service", "resource")


class LogLine(NamedTuple):
    """One line ready to count: a tuple, since a stream builds hundreds of thousands a second."""

    service: str
    level: str
    message: str
    ts_seconds: float  # epoch
    resource: str = ""
    template_id: str = ""


def decode_log_lines(value: bytes | None) -> tuple[list[LogRecord], bool] | str:
    """The log records of a message (a batch or a single record) and whether it was a batch, or
    the reason it cannot be used. (The reference decoder; :func:`decode_timed_logs` takes a fast
    path through well-formed batches and falls back to this one for the exact reason.)"""
    try:
        obj = _json_object(value)
        if LINES not in obj:
            return [log_record(obj)], False
    except _Invalid as bad:
        return bad.reason
    lines = obj[LINES]
    if not isinstance(lines, list) or not lines:
        return NOT_LINES.format(kind="an empty array" if isinstance(lines, list) else _kind(lines))
    defaults = {k: obj[k] for k in _DEFAULTS if obj.get(k) is not None}
    records = []
    for index, line in enumerate(lines):
        if not isinstance(line, dict):
            return LINE_NOT_OBJECT.format(index=index)
        try:
            records.append(log_record({**defaults, **line} if defaults else line))
        except _Invalid as bad:
            return LINE_REASON.format(index=index, reason=bad.reason)
    return records, True


def decode_timed_logs(value: bytes | None, *, now_us: int, max_future_s: float) -> list[LogLine] | str:
    """Every line of a log message with its time, or why the message cannot be counted."""
    fast = _fast(value, now_us + max_future_s * 1e6)
    if fast is not None:
        return fast
    decoded = decode_log_lines(value)
    if isinstance(decoded, str):
        return decoded
    records, batched = decoded
    limit = now_us + max_future_s * 1e6
    out = []
    for index, record in enumerate(records):
        ts = epoch_us(record.ts)
        if isinstance(ts, str) or ts > limit:
            reason = ts if isinstance(ts, str) else FUTURE.format(seconds=(ts - now_us) / 1e6)
            return LINE_REASON.format(index=index, reason=reason) if batched else reason
        out.append(
            LogLine(
                record.service, record.level, record.message, ts / 1e6, record.resource, record.template_id
            )
        )
    return out


_new_line = tuple.__new__  # LogLine(...) without the named tuple's Python-level __new__


def _fast(value: bytes | None, limit_us: float) -> list[LogLine] | None:
    """A well-formed message of plain lines decoded with a few type checks per line (orjson);
    None for anything else, which the reference decoder then judges with its exact reason (same
    result, slower)."""
    if not value:
        return None
    try:
        obj = orjson.loads(value)  # refuses lone surrogates and NaN literals: the reference judges those
    except orjson.JSONDecodeError:
        return None
    if type(obj) is not dict:
        return None
    if LINES in obj:
        return _fast_batch(obj, limit_us)
    single = _fast_single(obj, limit_us)
    return None if single is None else [single]


def _fast_single(obj: dict[str, Any], limit_us: float) -> LogLine | None:
    """One plain record (epoch ``ts``, non-blank text fields): the reference's line, or None."""
    ts, service, level, message = obj.get("ts"), obj.get("service"), obj.get("level"), obj.get("message")
    resource, template_id = obj.get("resource"), obj.get("template_id")
    if type(ts) is not float and type(ts) is not int:
        return None
    if type(service) is not str or type(level) is not str or type(message) is not str:
        return None
    if not service or service.isspace() or not level or level.isspace() or not message or message.isspace():
        return None
    if resource is None:
        resource = ""
    elif type(resource) is not str or not resource or resource.isspace():
        return None
    if template_id is None:
        template_id = ""
    elif type(template_id) is not str or not template_id or template_id.isspace():
        return None
    if not 0 <= ts < 1e11:  # milliseconds, far past: the reference says which
        return None
    ts_us = int(round(ts * 1e6))  # as the reference rounds it (stream_messages.epoch_us)
    if ts_us > limit_us:
        return None
    return _new_line(LogLine, (service, level, message, ts_us / 1e6, resource, template_id))


def _fast_batch(obj: dict[str, Any], limit_us: float) -> list[LogLine] | None:
    """A batch of plain lines (epoch ``ts``, non-blank text fields, the batch's service)."""
    lines, service, resource = obj[LINES], obj.get("service"), obj.get("resource") or ""
    if type(lines) is not list or not lines or type(service) is not str or not _text(service):
        return None
    if type(resource) is not str:
        return None
    limit = limit_us / 1e6
    out: list[LogLine] = []
    append = out.append
    for line in lines:
        if type(line) is not dict or len(line) != 3:  # ts, level, message only: anything else, the slow path
            return None
        ts, level, message = line.get("ts"), line.get("level"), line.get("message")
        if type(ts) is not float and type(ts) is not int:
            return None
        if type(level) is not str or type(message) is not str:
            return None
        if not level or level.isspace() or not message or message.isspace():
            return None
        if not 0 <= ts < 1e11 or ts > limit:  # milliseconds, far past or future: the slow path says which
            return None
        append(_new_line(LogLine, (service, level, message, float(ts), resource, "")))
    return out


def _text(value: str) -> bool:
    return bool(value) and not value.isspace()


def batch_value(service: str, lines: list[dict[str, Any]], *, resource: str | None = None) -> dict[str, Any]:
    """The JSON object of a batched message (what a producer sends, ``json.dumps``-ed)."""
    body: dict[str, Any] = {"service": service, LINES: lines}
    if resource is not None:
        body["resource"] = resource
    return body
