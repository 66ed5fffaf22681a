"""Log minutes sealed for scoring, and the log series values of a metric step.

The stream processor feeds each key's per-minute log aggregates to that key's incident engine as
series of its services (``<service>/logs/<metric>``, the ids the lake's aggregates have). A log
minute is *sealed* for scoring once its partition's logs have moved ``grace_seconds`` past its
end (event time of the newest line taken); its counts are then copied here and never change,
whatever arrives later (a line for a sealed minute still reaches the lake's counts, not the
engine's: :attr:`LogMinutes.late_lines`). Sealing depends on the log topic's order alone, so a
replay seals the same minutes with the same counts.

A metric step at ``ds`` takes the minutes that ended since the key's previous step, up to the
minute boundary at or before ``ds`` (a 1-minute grid: the minute before; a 5-minute grid: the
five minutes summed; a 10-second grid: the last full minute, held until the next one ends). A
service that logged nothing in them is 0, not missing. Pure: no I/O; picklable.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from features.logs.aggregate import LogAggregator, MinuteCounts, series_id

# The log series fed by default, with their units. Their kinds (models.incidents.metric_vocabulary)
# decide what they count for: the error ratio and error lines are ``errors`` (evidence of the
# service); all lines and new templates are ``traffic`` (evidence records and fault types only).
LOG_FEATURES: tuple[tuple[str, str], ...] = (
    ("log_error_ratio", "ratio"),
    ("log_lines_error", "count"),
    ("log_new_templates", "count"),
    ("log_lines", "count"),
)
LOG_UNITS = dict(LOG_FEATURES)
# Log counts are small and sparse (a service may log a line a minute): without a floor, the first
# error line after a calm hour is a many-sigma jump. The smallest change worth one robust sigma,
# in each series' units (the engine's absolute floor for these series), and the fewest lines an
# error ratio is fed from (fewer: NaN, not a 1-of-1 = 100 % ratio).
LOG_FLOORS: dict[str, float] = {"log_error_ratio": 0.05, "log_lines_error": 2.0, "log_new_templates": 1.0,
                                "log_lines": 5.0}
RATIO_MIN_LINES = 10
MINUTE_US = 60_000_000

# lines, error lines, new templates of one service in one sealed minute
_Counts = tuple[int, int, int]


def log_feature_names(names: Iterable[str]) -> tuple[str, ...]:
    """``names`` checked against :data:`LOG_FEATURES` (an unknown one raises, naming the choices)."""
    out = tuple(names)
    unknown = [n for n in out if n not in LOG_UNITS]
    if unknown:
        raise ValueError(f"unknown log feature(s) {unknown}; choose from {', '.join(LOG_UNITS)}")
    return out


@dataclass
class LogMinutes:
    """A partition's sealed log minutes: per epoch minute and service, the counts the engine sees."""

    grace_seconds: float = 5.0
    keep_minutes: int = 10  # sealed minutes kept for steps that span several minutes
    newest_ts: float | None = None
    sealed_until: int | None = None  # every epoch minute before this one is sealed
    counts: dict[int, dict[str, _Counts]] = field(default_factory=dict)
    late_lines: int = 0  # lines taken for minutes already sealed (in the lake, not in the engine)

    def observe(self, timestamps: Sequence[float], logs: LogAggregator) -> bool:
        """A log message's line timestamps (epoch s) were counted into ``logs``: seal the minutes the
        partition's logs have moved past. True when that sealed any."""
        if not timestamps:
            return False
        if self.sealed_until is not None:
            horizon = self.sealed_until * 60
            self.late_lines += sum(1 for t in timestamps if t < horizon)
        newest = max(timestamps)
        if self.newest_ts is not None and newest <= self.newest_ts:
            return False
        self.newest_ts = newest
        until = int((newest - self.grace_seconds) // 60)
        if self.sealed_until is not None and until <= self.sealed_until:
            return False
        lo = until - self.keep_minutes if self.sealed_until is None else max(self.sealed_until, until - self.keep_minutes)
        for service, minute, counts in logs.minutes_between(lo, until):
            self.counts.setdefault(minute, {})[service] = _snapshot(counts)
        self.sealed_until = until
        for minute in [m for m in self.counts if m < until - self.keep_minutes]:
            del self.counts[minute]
        return True

    def sealed(self, minute: int) -> bool:
        """Whether every minute before ``minute`` is sealed."""
        return self.sealed_until is not None and self.sealed_until >= minute

    def values(
        self, services: Iterable[str], lo: int, hi: int, features: Sequence[str]
    ) -> dict[str, float]:
        """The log series of ``services`` over the sealed minutes ``[lo, hi)``; NaN where a minute
        is not sealed (the step was fed without waiting for its logs)."""
        known = self.sealed(hi)
        out: dict[str, float] = {}
        for service in services:
            lines = errors = new = 0
            for minute in range(max(lo, hi - self.keep_minutes), hi):
                c = self.counts.get(minute, {}).get(service)
                if c is not None:
                    lines, errors, new = lines + c[0], errors + c[1], new + c[2]
            for name in features:
                out[series_id(service, name)] = (
                    _feature(name, lines, errors, new) if known else float(np.nan)
                )
        return out


def _snapshot(counts: MinuteCounts) -> _Counts:
    return (counts.lines, counts.levels["error"], counts.new_templates)


def _feature(name: str, lines: int, errors: int, new: int) -> float:
    if name == "log_error_ratio":
        return errors / lines if lines >= RATIO_MIN_LINES else float(np.nan)
    if name == "log_lines_error":
        return float(errors)
    if name == "log_new_templates":
        return float(new)
    return float(lines)  # log_lines


def step_minutes(ds_us: int, previous_hi: int | None) -> tuple[int, int]:
    """The log minutes ``[lo, hi)`` a metric step at ``ds_us`` takes: those ended since the
    previous step's (``previous_hi``), or the last full minute again when none ended since."""
    hi = ds_us // MINUTE_US
    lo = hi - 1 if previous_hi is None or previous_hi >= hi else previous_hi
    return lo, hi
