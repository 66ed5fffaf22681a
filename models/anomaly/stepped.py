"""Detectors that score a grid one time step at a time from an online state.

A *stepped* detector (``streaming``, ``streaming_knn``, ``streaming_ensemble``) builds an
:class:`OnlineState` over the series of a grid (:meth:`SteppedDetector.make_state`) and feeds it
the grid's rows in order (:func:`feed_rows`): row ``r`` of a grid anchored at midnight UTC is at
step ``r % season`` of the day. ``predict`` does this over its whole frame; the detect flow keeps
the state between runs and feeds only the new rows (:mod:`models.anomaly.state_resume`). Both go
through :func:`feed_rows`, so a state resumed at any row scores as one pass over every row.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np
import pandas as pd

from models.anomaly.daily_cycle import daily_season


class OnlineState(Protocol):
    """A state over ``n`` series that scores each new step of all of them (and learns from it)."""

    def update(self, y: np.ndarray, phase: np.ndarray | int) -> np.ndarray: ...


class SteppedDetector(Protocol):
    """A fitted detector whose scores come from an :class:`OnlineState` fed row by row."""

    @property
    def name(self) -> str: ...

    step_: pd.Timedelta
    context_: pd.DataFrame

    def make_state(self, season: np.ndarray, names: Sequence[str] | None = None) -> OnlineState: ...

    def get_params(self) -> dict[str, Any]: ...


def is_stepped(detector: Any) -> bool:
    """Whether ``detector`` scores from an online state fed row by row (and so can be resumed)."""
    return bool(getattr(detector, "stepped", False))


def fresh_state(detector: SteppedDetector, ids: Sequence[str]) -> OnlineState:
    """A new state for the series ``ids`` (by name: a series scores the same whichever series
    share its state) at the detector's grid step."""
    season = daily_season(detector.step_)
    return detector.make_state(np.full(len(ids), season), list(ids))


def feed_rows(state: OnlineState, values: np.ndarray, first_row: int, season: int) -> np.ndarray:
    """Scores of the (T, N) grid rows ``first_row .. first_row + T - 1`` fed to ``state`` in
    order (NaN: no sample); row ``r`` is at phase ``r % season`` (0 without a daily cycle)."""
    n = values.shape[1]
    scores = np.empty_like(values, dtype="float64")
    for t in range(values.shape[0]):
        phase = (first_row + t) % season if season else 0
        scores[t] = state.update(values[t], np.full(n, phase, dtype=np.int64))
    return scores
