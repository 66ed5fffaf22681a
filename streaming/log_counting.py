"""Log lines of one message mined and counted into a partition's state, and the metrics they move.

A message holds one line or a batch of them (:mod:`connectors.sources.kafka.log_batches`); each
line goes through the template miner and the per-minute aggregates, while the Prometheus metrics
move once per message and label set, not once per line: a label lookup costs about as much as
counting the line itself. Pure but for the metrics object it is handed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from connectors.sources.kafka.log_batches import LogLine
from features.logs.aggregate import LogAggregator, normalise_level
from streaming.metrics import StreamMetrics


@dataclass
class CountedLines:
    """What one message's lines did: lines counted and late, per (service, level), new templates."""

    counted: int = 0
    late: int = 0
    levels: Counter[tuple[str, str]] = field(default_factory=Counter)
    new_templates: Counter[str] = field(default_factory=Counter)


def count_lines(miner: Any, logs: LogAggregator, lines: Sequence[LogLine]) -> CountedLines:
    """Mine each line's template and count it in its service's minute."""
    out = CountedLines()
    add_line, mine = logs.add, miner.add
    levels, new_templates = out.levels, out.new_templates
    counted = 0
    for service, level, message, ts_seconds, *_ in lines:
        match = mine(message)
        if add_line(service, ts_seconds, level, match.template_id, is_new=match.is_new):
            counted += 1
        levels[(service, level)] += 1
        if match.is_new:
            new_templates[service] += 1
    out.counted, out.late = counted, len(lines) - counted
    return out


def export(metrics: StreamMetrics, topic: str, counted: CountedLines, logs: LogAggregator) -> None:
    """Move the log metrics once per label set: lines by level, new templates, the error ratio of
    each service's current minute, and the message's outcome (``counted`` if any line was)."""
    metrics.messages.labels(topic=topic, outcome="counted" if counted.counted else "late").inc()
    by_level: Counter[tuple[str, str]] = Counter()
    for (service, level), n in counted.levels.items():
        by_level[(service, normalise_level(level))] += n
    for (service, level), n in by_level.items():
        metrics.log_lines.labels(service=service, level=level).inc(n)
    for service, n in counted.new_templates.items():
        metrics.new_templates.labels(service=service).inc(n)
    for service in {service for service, _ in by_level}:
        minute = logs.current(service)
        if minute is not None:
            metrics.error_ratio.labels(service=service).set(minute.error_ratio())
