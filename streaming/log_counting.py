"""Log lines mined and counted into a partition's state, and the metrics they move.

A message holds one line or a batch of them (:mod:`connectors.sources.kafka.log_batches`); each
line goes through the template miner and the per-minute aggregates. The Prometheus metrics move
once per poll and label set, not once per line or message: a label look-up costs about as much as
counting a line, and with one line per message the per-message metric updates were most of the
processor's own cost. :class:`CountedLines` gathers what a poll's messages did (:func:`count_lines`
once per message) and :func:`export` moves the metrics from it. Pure but for the metrics object
it is handed.
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
    """What log messages did: lines counted and late, per (service, level), new templates per
    service, messages per (topic, outcome), and the aggregator holding each service's minutes."""

    counted: int = 0
    late: int = 0
    levels: Counter[tuple[str, str]] = field(default_factory=Counter)
    new_templates: Counter[str] = field(default_factory=Counter)
    messages: Counter[tuple[str, str]] = field(default_factory=Counter)
    aggregators: dict[str, LogAggregator] = field(default_factory=dict)


def count_lines(
    miner: Any,
    logs: LogAggregator,
    lines: Sequence[LogLine],
    *,
    topic: str,
    into: CountedLines | None = None,
) -> CountedLines:
    """Mine each line's template and count it in its service's minute; one message of ``topic``
    (``counted`` if any of its lines was, else ``late``), added to ``into`` (or a new tally)."""
    out = CountedLines() if into is None else into
    add_line, mine = logs.add, miner.add
    levels, new_templates, aggregators = out.levels, out.new_templates, out.aggregators
    counted = 0
    for service, level, message, ts_seconds, _resource, _template_id in lines:
        match = mine(message)
        is_new = match.is_new
        if add_line(service, ts_seconds, level, match.template_id, is_new=is_new):
            counted += 1
        levels[(service, level)] += 1
        if is_new:
            new_templates[service] += 1
        aggregators[service] = logs  # the last message's, as a service belongs to one partition
    out.counted += counted
    out.late += len(lines) - counted
    out.messages[(topic, "counted" if counted else "late")] += 1
    return out


def export(metrics: StreamMetrics, counted: CountedLines) -> None:
    """Move the log metrics once per label set: messages by outcome, lines by level, new
    templates, and the error ratio of each service's current minute."""
    for (topic, outcome), n in counted.messages.items():
        metrics.messages.labels(topic=topic, outcome=outcome).inc(n)
    by_level: Counter[tuple[str, str]] = Counter()
    for (service, level), n in counted.levels.items():
        by_level[(service, normalise_level(level))] += n
    for (service, level), n in by_level.items():
        metrics.log_lines.labels(service=service, level=level).inc(n)
    for service, n in counted.new_templates.items():
        metrics.new_templates.labels(service=service).inc(n)
    for service, logs in counted.aggregators.items():
        minute = logs.current(service)
        if minute is not None:
            metrics.error_ratio.labels(service=service).set(minute.error_ratio())
