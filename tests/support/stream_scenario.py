"""A small fleet's metrics and raw logs as Kafka messages, with one fault per service, and the
incidents an uninterrupted stream raises on them (the reference a processor that was killed,
restarted or rebalanced must match exactly)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from foresight.settings import DetectConfig
from models.incidents.settings import PipelineSettings
from streaming.keyed_scoring import KeyScorer, Sample

SERIES = (
    ("latency_p95", "seconds", 0.2),
    ("error_rate", "ratio", 0.01),
    ("cpu_pct", "percent", 40.0),
    ("request_rate", "requests_per_second", 100.0),
)
LOG_LINES = ("GET /api/items/{n} 200 in {ms} ms", "cache miss for key user-{n}", "checkout {n} completed")
ERROR_LINE = "upstream 10.0.{a}.{b} refused connection after {ms} ms"


@dataclass(frozen=True)
class Message:
    topic: str
    key: str
    partition: int
    value: bytes
    step: int


def metric_messages(
    services: dict[str, int],
    steps: int,
    faults: dict[str, tuple[int, int]],
    *,
    end: pd.Timestamp,
    topic: str = "metrics",
    seed: int = 0,
) -> list[Message]:
    """One sample per series and 1-minute step for each service (key = service, its partition
    given); ``faults`` multiply latency and errors eightfold over ``[start, stop)`` steps."""
    rng = np.random.default_rng(seed)
    start = end - pd.Timedelta(minutes=steps)
    out = []
    for i in range(steps):
        ts = (start + pd.Timedelta(minutes=i)).isoformat()
        for service, partition in services.items():
            lo, hi = faults.get(service, (-1, -1))
            for metric, unit, base in SERIES:
                value = base * (1 + 0.05 * rng.standard_normal())
                if lo <= i < hi and metric in ("latency_p95", "error_rate"):
                    value = base * 8
                body = {
                    "metric": metric,
                    "service": service,
                    "resource": "i-1",
                    "ts": ts,
                    "value": value,
                    "unit": unit,
                }
                out.append(Message(topic, service, partition, json.dumps(body).encode(), i))
    return out


def log_messages(
    services: dict[str, int],
    steps: int,
    faults: dict[str, tuple[int, int]],
    *,
    end: pd.Timestamp,
    topic: str = "logs",
    per_step: int = 3,
) -> list[Message]:
    """``per_step`` raw lines per service and minute; during a fault every other line is an error."""
    start = end - pd.Timedelta(minutes=steps)
    out = []
    for i in range(steps):
        for service, partition in services.items():
            lo, hi = faults.get(service, (-1, -1))
            for j in range(per_step):
                ts = (start + pd.Timedelta(minutes=i, seconds=10 * j)).isoformat()
                if lo <= i < hi and j % 2 == 0:
                    level, text = "ERROR", ERROR_LINE.format(a=i % 250, b=j, ms=100 + i)
                else:
                    level, text = "INFO", LOG_LINES[(i + j) % len(LOG_LINES)].format(n=i * 7 + j, ms=3 + j)
                body = {"ts": ts, "service": service, "resource": "i-1", "level": level, "message": text}
                out.append(Message(topic, service, partition, json.dumps(body).encode(), i))
    return out


def interleave(*streams: Sequence[Message]) -> list[Message]:
    """Messages of several topics in step order (as producers would send them)."""
    return sorted((m for s in streams for m in s), key=lambda m: m.step)


def reference_incidents(messages: Sequence[Message], **scorer_options: int) -> list[tuple[str, str]]:
    """``(incident_id, state)`` an uninterrupted stream raises on the metric messages."""
    settings = PipelineSettings.from_detect(DetectConfig())
    scorers: dict[str, KeyScorer] = {}
    events = []
    for m in messages:
        if m.topic != "metrics":
            continue
        body = json.loads(m.value)
        scorer = scorers.setdefault(
            m.key,
            KeyScorer(
                m.key, settings.stream, identity_window=settings.rollup.resolve_after, **scorer_options
            ),
        )
        ds = pd.Timestamp(body["ts"]).value // 1000
        sample = Sample(
            m.key,
            f"{body['service']}/{body['resource']}/{body['metric']}",
            body["service"],
            body["metric"],
            body["resource"],
            body["unit"],
            ds,
            float(body["value"]),
        )
        events += [(e.incident_id, e.state) for e in scorer.add(sample).events]
    return events
