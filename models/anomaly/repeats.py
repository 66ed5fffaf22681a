"""One high score per anomaly: causal non-maximum suppression of repeats, shared by the streaming detectors.

A surprise above ``onset`` opens an episode; within it a step keeps its surprise only when it
beats a bar set ``peak_margin`` nats above the episode's peak (a clearly bigger anomaly), held for
half of ``rearm_steps`` after the peak and then lowered linearly back to ``onset``; other steps
are capped below ``onset`` (times ``damp``). So one anomaly gives one high score, at its onset,
whatever threshold is applied - what an on-call rota (and NAB's scoring) wants - while a second,
different anomaly soon after is not hidden for long. The state is two arrays per series
(``peak``, ``since_peak``) that the caller keeps: :mod:`models.anomaly.streaming`,
:mod:`models.anomaly.ensemble`, :mod:`models.anomaly.streaming_ensemble`, :mod:`models.anomaly.knn`.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np


class EpisodeParams(Protocol):
    """The settings :func:`reported_scores` reads (:class:`models.anomaly.streaming.StreamingParams`)."""

    @property
    def onset(self) -> float: ...

    @property
    def rearm_steps(self) -> int: ...

    @property
    def peak_margin(self) -> float: ...

    @property
    def damp(self) -> float: ...

    @property
    def suppress(self) -> bool: ...


def suppress_repeats(
    surprise: np.ndarray,
    ok: np.ndarray,
    peak: np.ndarray,
    since_peak: np.ndarray,
    onset: float,
    rearm_steps: int,
    peak_margin: float,
    damp: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One step of causal non-maximum suppression over episodes (see the module docstring):
    the surprises to report and the new ``peak`` / ``since_peak`` state (pure: inputs unchanged)."""
    in_episode = since_peak < rearm_steps
    # the bar holds for the first half of rearm_steps, then falls linearly to onset
    fade = np.clip(2.0 - 2.0 * since_peak / rearm_steps, 0.0, 1.0)
    bar = onset + np.fmax(peak + peak_margin - onset, 0.0) * fade
    new_peak = surprise > bar
    out = np.where(new_peak | ~in_episode, surprise, np.fmin(surprise, onset) * damp)
    return out, np.where(new_peak, surprise, peak), np.where(new_peak, 0, since_peak + ok)


def reported_scores(
    surprise: np.ndarray, ok: np.ndarray, peak: np.ndarray, since_peak: np.ndarray, params: EpisodeParams
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A step's scores in [0, 1] (``1 - exp(-surprise)``), after :func:`suppress_repeats` when
    ``params.suppress`` (else every step's score, for a consumer with its own hysteresis), and the
    new ``peak`` / ``since_peak`` episode state. Every streaming state reports through this."""
    if not params.suppress:
        return 1.0 - np.exp(-surprise), peak, since_peak
    out, peak, since_peak = suppress_repeats(
        surprise, ok, peak, since_peak, params.onset, params.rearm_steps, params.peak_margin, params.damp
    )
    return 1.0 - np.exp(-out), peak, since_peak
