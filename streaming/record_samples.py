"""A metric message as the scorer's :class:`~streaming.keyed_scoring.Sample`, keyed by its Kafka key."""

from __future__ import annotations

from connectors.sources.kafka.stream_client import StreamRecord
from connectors.sources.kafka.stream_messages import TimedMetric
from streaming.keyed_scoring import Sample


def record_key(record: StreamRecord, service: str) -> str:
    """The state key of a message: its Kafka key, else its service."""
    return record.key.decode("utf-8", "replace") if record.key else service


def record_sample(record: StreamRecord, timed: TimedMetric) -> Sample:
    s = timed.sample
    return Sample(
        key=record_key(record, s.service),
        unique_id=s.unique_id,
        service=s.service,
        metric=s.metric,
        resource=s.resource,
        unit=s.unit or "",
        ds_us=timed.ds_us,
        value=float(s.value),
    )
