"""Pure PromQL range-query planning: split a window into step-aligned chunks and build parameters.

Prometheus evaluates a range query at ``start, start + step, ...`` up to and including ``end``
and refuses more than 11,000 points per series. Foresight windows are half-open ``[start, end)``,
so a chunk here is a run of grid points whose query ``end`` is its own last point: consecutive
chunks share no point and skip none, and a sample on a chunk boundary comes back exactly once.
The grid is aligned to multiples of ``step`` since the Unix epoch, so every run (and the overlap
an incremental run re-reads) evaluates at the same instants and the lake's upsert dedupes them.

Counters: write ``rate(x[5m])`` / ``increase(x[1h])`` in the PromQL where you can; a series with
``counter: true`` is instead fetched raw and converted by :mod:`connectors.sources.prometheus.decode`.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

# Prometheus rejects a range query whose (end - start) / step exceeds this.
MAX_POINTS_PER_SERIES = 11_000
_NS_PER_MS = 1_000_000


@dataclass(frozen=True)
class RangeChunk:
    """A run of ``points`` grid instants from ``start`` (inclusive) to ``end`` (exclusive)."""

    start_ms: int
    step_ms: int
    points: int

    @property
    def last_ms(self) -> int:
        """The query's (inclusive) ``end``: the chunk's last grid instant."""
        return self.start_ms + (self.points - 1) * self.step_ms

    @property
    def end_ms(self) -> int:
        """Exclusive end: the first grid instant of the next chunk."""
        return self.start_ms + self.points * self.step_ms

    @property
    def start(self) -> pd.Timestamp:
        return _ts(self.start_ms)

    @property
    def end(self) -> pd.Timestamp:
        return _ts(self.end_ms)

    def describe(self) -> str:
        """Human text for errors: the half-open range and the step."""
        return f"[{self.start.isoformat()}, {self.end.isoformat()}) step {self.step_ms / 1000:g}s"


def step_millis(step: pd.Timedelta) -> int:
    """The step in whole milliseconds (Prometheus' resolution); rejects sub-millisecond steps."""
    step = pd.Timedelta(step)
    if step.value <= 0 or step.value % _NS_PER_MS:
        raise ValueError(f"step must be a positive whole number of milliseconds, got {step}")
    return step.value // _NS_PER_MS


def plan_chunks(
    start: pd.Timestamp, end: pd.Timestamp, step: pd.Timedelta, *, max_points: int = MAX_POINTS_PER_SERIES
) -> list[RangeChunk]:
    """Chunks covering every step-aligned instant in ``[start, end)``, each at most ``max_points``."""
    if not 1 <= max_points <= MAX_POINTS_PER_SERIES:
        raise ValueError(f"max_points must be within [1, {MAX_POINTS_PER_SERIES}], got {max_points}")
    step_ms = step_millis(step)
    first_ms = _ceil_div(_ceil_div(_ns(start), _NS_PER_MS), step_ms) * step_ms
    # Largest grid instant strictly before ``end``: g * 1e6 < end_ns  <=>  g <= ceil(end_ns / 1e6) - 1.
    last_ms = ((_ceil_div(_ns(end), _NS_PER_MS) - 1) // step_ms) * step_ms
    if last_ms < first_ms:
        return []
    total = (last_ms - first_ms) // step_ms + 1
    return [
        RangeChunk(first_ms + offset * step_ms, step_ms, min(max_points, total - offset))
        for offset in range(0, total, max_points)
    ]


def range_query_params(promql: str, chunk: RangeChunk, *, timeout: pd.Timedelta | None = None) -> dict[str, str]:
    """Form parameters for ``/api/v1/query_range`` covering exactly the chunk's grid instants."""
    if not promql.strip():
        raise ValueError("promql must not be empty")
    params = {
        "query": promql,
        "start": _seconds_text(chunk.start_ms),
        "end": _seconds_text(chunk.last_ms),
        "step": _seconds_text(chunk.step_ms),
    }
    if timeout is not None:  # lets Prometheus abandon an evaluation the client no longer waits for
        params["timeout"] = f"{max(1, int(pd.Timedelta(timeout).total_seconds() * 1000))}ms"
    return params


def _seconds_text(ms: int) -> str:
    """Milliseconds as exact decimal seconds (no float rounding on the wire)."""
    sign = "-" if ms < 0 else ""
    whole, frac = divmod(abs(ms), 1000)
    return f"{sign}{whole}.{frac:03d}"


def _ns(ts: pd.Timestamp) -> int:
    stamp = pd.Timestamp(ts)
    if stamp.tzinfo is None:
        raise ValueError(f"range bounds must be timezone-aware, got {ts!r}")
    return int(stamp.value)


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def _ts(ms: int) -> pd.Timestamp:
    return pd.Timestamp(ms, unit="ms", tz="UTC")
