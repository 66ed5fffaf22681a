"""The scale-out benchmark's synthetic fleet: seeded, generated block by block where it is forecast.

Each series is a raw utilisation-like trace at ``step_minutes`` steps (15 by default) ending at a
fixed instant, with its own length (uniform between ``min_days`` and ``max_days``, so the panel
is ragged as a real fleet's is), level, daily cycle (peak in the afternoon), weekend dip, linear
trend and AR(1) noise, never below zero. Series ``i`` depends only on ``(seed, i)`` through its
block's generator: a block is generated alike whichever worker runs it, and the whole fleet is
never held in one process.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from foresight.schemas import ID_COL, TARGET_COL, TIME_COL

FLEET_END = pd.Timestamp("2026-01-05T00:00:00Z")  # a Monday: the last day is a full weekday
METRICS: tuple[str, ...] = ("cpu_pct", "mem_pct", "request_rate")
SERIES_PER_SERVICE = 24


@dataclass(frozen=True)
class FleetShape:
    """What every series of the fleet looks like: its length range and raw step."""

    min_days: int = 14
    max_days: int = 28
    step_minutes: int = 15
    seed: int = 7

    def __post_init__(self) -> None:
        if not 1 <= self.min_days <= self.max_days:
            raise ValueError(f"need 1 <= min_days <= max_days, got {self.min_days}, {self.max_days}")
        if self.step_minutes < 1 or (24 * 60) % self.step_minutes:
            raise ValueError(f"step_minutes must divide a day, got {self.step_minutes}")

    @property
    def steps_per_day(self) -> int:
        return 24 * 60 // self.step_minutes


def series_id(i: int) -> str:
    """The id of fleet series ``i``: service, instance and metric, as the simulator's read."""
    return f"svc{i // SERIES_PER_SERVICE:05d}/i-{i // len(METRICS):08d}/{METRICS[i % len(METRICS)]}"


def fleet_block(start: int, stop: int, shape: FleetShape) -> pd.DataFrame:
    """Series ``start..stop-1`` of the fleet as long raw telemetry ``unique_id, ds, y``."""
    if not 0 <= start < stop:
        raise ValueError(f"need 0 <= start < stop, got {start}, {stop}")
    rng = np.random.default_rng([shape.seed, start, stop])
    n, day = stop - start, shape.steps_per_day
    width = shape.max_days * day
    lengths = rng.integers(shape.min_days * day, width + 1, size=n)
    stamps = pd.date_range(end=FLEET_END - pd.Timedelta(minutes=shape.step_minutes), periods=width,
                           freq=f"{shape.step_minutes}min")
    hour = np.asarray(stamps.hour + stamps.minute / 60)
    weekend = np.asarray(stamps.dayofweek >= 5)
    days = np.arange(width) / day - shape.max_days  # days before the end: negative

    level = rng.uniform(5, 60, size=(n, 1))
    amplitude = level * rng.uniform(0.1, 0.5, size=(n, 1))
    peak = rng.normal(14, 2, size=(n, 1))
    daily = np.cos(2 * np.pi * (hour[None, :] - peak) / 24)
    dip = rng.uniform(0.5, 1.0, size=(n, 1))  # the weekend's share of the weekday cycle and load
    weekly = np.where(weekend[None, :], dip, 1.0)
    trend = level * rng.normal(0, 0.01, size=(n, 1)) * days[None, :]
    noise = _ar1(rng, n, width, phi=0.5) * level * rng.uniform(0.02, 0.12, size=(n, 1))
    values = np.maximum((level + amplitude * daily) * weekly + trend + noise, 0.0)

    observed = np.arange(width)[None, :] >= (width - lengths)[:, None]
    rows, cols = np.nonzero(observed)
    ids = np.array([series_id(i) for i in range(start, stop)], dtype=object)
    return pd.DataFrame({
        ID_COL: pd.array(ids[rows], dtype="str"),
        TIME_COL: stamps[cols].as_unit("us"),
        TARGET_COL: values[rows, cols],
    })


def _ar1(rng: np.random.Generator, n: int, width: int, phi: float) -> np.ndarray:
    """Unit-variance AR(1) noise, ``n`` rows of ``width`` steps."""
    shocks = rng.standard_normal((n, width)) * np.sqrt(1 - phi**2)
    out = np.empty_like(shocks)
    out[:, 0] = rng.standard_normal(n)
    for t in range(1, width):
        out[:, t] = phi * out[:, t - 1] + shocks[:, t]
    return out
