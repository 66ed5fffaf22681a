"""Alerting thresholds calibrated to a page budget: the evidence level a system's normal
behaviour reaches a chosen number of times per day, learned online from its own history.

The evidence of a system (the largest service evidence at each step, summed ``-log10 p``) is cut
into blocks of fixed *time* (an hour by default, whatever the sampling interval); each block's
maximum is one draw of the block-maxima law of extreme value theory, a Gumbel law for the
exponential-type tails summed ``-log10 p`` evidence has under normal behaviour (Coles, "An
Introduction to Statistical Modeling of Extreme Values", 2001, ch. 3). Block maxima count
*episodes*, not samples: a run of high evidence is one maximum, as it would be one page. Under
that law the rate of episodes per day reaching a level ``x`` is ``exp(-(x - mu) / beta) / h``
(``h`` the block length in days), so the level reached ``budget`` times a day is
``mu + beta * ln(1 / (h * budget))``.

The dev data are dense with faults (a fault every 8.5 minutes for hours), so the fit must hold
when many blocks hold a fault: ``mu`` and ``beta`` come from two *low* quantiles of the block
maxima (``lower_quantile`` 0.25 and the median by default), which do not depend on how large the
faulty blocks' maxima are, only on how many there are: with a share ``c`` of faulty blocks they
read (at most) the clean law's quantiles ``p / (1 - c)``, however large the faults, where a
moment fit would follow their size (how far the level rises with ``c``: docs/incidents.md,
*A page budget instead of a hand-set threshold*). When most blocks are faulty (a replay
that starts amid a fault campaign) no unlabelled estimate can tell faults from noise; the
calibration therefore starts from a *prior* (the trained calibration when there is
one, else the static ``open_threshold``) and moves to the fit as blocks accrue: the prior counts
as ``prior_days`` of blocks (one day by default), so in a new system's first hour the threshold
is the prior's, after a day halfway to the fit, after a week seven-eighths of the way.

Scores stay on one scale: :meth:`GumbelTail.page_score` is the probability that a normal day of
the system holds no episode reaching a level, so a system paged at its budget of ``b`` per day
pages at a score of ``exp(-b)`` whatever its size, sampling or units.

Pure: arrays in, numbers out; :class:`PageBudget` holds the online state (no I/O).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np

_DAY_SECONDS = 86_400.0
_MIN_BETA = 1e-3  # evidence units: a flat history must not make every rise a page
MIN_BLOCKS = 4  # complete blocks before the first fit


def _gumbel_z(p: float) -> float:
    """The standard Gumbel quantile at ``p``."""
    return -math.log(-math.log(p))


@dataclass(frozen=True)
class GumbelTail:
    """Block maxima of a system's evidence: Gumbel with location ``mu`` and scale ``beta``,
    blocks of ``block_days``; ``blocks`` is how many the fit saw."""

    mu: float
    beta: float
    block_days: float
    blocks: int = 0

    def pages_per_day(self, level: float) -> float:
        """Expected normal episodes per day reaching ``level``."""
        return math.exp(-(level - self.mu) / self.beta) / self.block_days

    def level(self, per_day: float) -> float:
        """The evidence level normal episodes reach ``per_day`` times a day."""
        if per_day <= 0:
            raise ValueError(f"per_day must be positive, got {per_day}")
        return self.mu + self.beta * math.log(1.0 / (self.block_days * per_day))

    def page_score(self, level: float) -> float:
        """Probability, in [0, 1], that a normal day holds no episode reaching ``level``."""
        return math.exp(-min(self.pages_per_day(level), 700.0))

    def to_dict(self) -> dict[str, float]:
        return {k: float(v) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, params: Mapping[str, Any]) -> GumbelTail:
        return cls(
            mu=float(params["mu"]),
            beta=float(params["beta"]),
            block_days=float(params["block_days"]),
            blocks=int(params.get("blocks", 0)),
        )


def fit_block_maxima(
    maxima: np.ndarray, block_days: float, *, lower_quantile: float = 0.25, upper_quantile: float = 0.5
) -> list[GumbelTail | None]:
    """Per column of ``maxima`` (blocks x systems): the Gumbel law matching its
    ``lower_quantile`` and ``upper_quantile`` (None with fewer than :data:`MIN_BLOCKS` finite rows)."""
    if not 0 < lower_quantile < upper_quantile < 1:
        raise ValueError(f"need 0 < lower_quantile < upper_quantile < 1, got {lower_quantile}, {upper_quantile}")
    m = np.atleast_2d(np.asarray(maxima, dtype="float64"))
    counts = np.isfinite(m).sum(axis=0)
    if m.shape[0] == 0:
        return [None] * m.shape[1]
    with np.errstate(all="ignore"):
        lo, hi = np.nanquantile(np.where(np.isfinite(m), m, np.nan), [lower_quantile, upper_quantile], axis=0)
    z_lo, z_hi = _gumbel_z(lower_quantile), _gumbel_z(upper_quantile)
    beta = np.maximum((hi - lo) / (z_hi - z_lo), _MIN_BETA)
    mu = hi - beta * z_hi
    return [
        GumbelTail(mu=float(mu[j]), beta=float(beta[j]), block_days=block_days, blocks=int(counts[j]))
        if counts[j] >= MIN_BLOCKS
        else None
        for j in range(m.shape[1])
    ]


class PageBudget:
    """Online, causal calibration of one opening threshold per system (see the module doc).

    :meth:`observe` takes each step's time and per-system evidence; :attr:`thresholds` is, per
    system, the level its normal episodes reach ``budget_per_day`` times a day (the fit shrunk
    towards ``prior``, worth ``prior_days`` of blocks), never below ``floor``. The fit uses the
    complete blocks of the last ``history_days`` and is redone when a block completes, for all
    systems at once.
    """

    def __init__(
        self,
        prior: Sequence[float] | np.ndarray,
        *,
        budget_per_day: float = 2.0,
        block_minutes: float = 60.0,
        history_days: float = 7.0,
        prior_days: float = 1.0,
        lower_quantile: float = 0.25,
        upper_quantile: float = 0.5,
        floor: float = 0.0,
    ) -> None:
        if budget_per_day <= 0:
            raise ValueError(f"budget_per_day must be positive, got {budget_per_day}")
        if block_minutes <= 0 or history_days * 1440 < block_minutes * MIN_BLOCKS or prior_days < 0:
            raise ValueError("need block_minutes > 0, history_days of at least four blocks and prior_days >= 0")
        self.prior = np.asarray(prior, dtype="float64").copy()
        self.budget_per_day = budget_per_day
        self.block_seconds = block_minutes * 60.0
        self.block_days = self.block_seconds / _DAY_SECONDS
        self.prior_blocks = prior_days / self.block_days
        self.lower_quantile = lower_quantile
        self.upper_quantile = upper_quantile
        self.floor = floor
        n = self.prior.size
        self.thresholds = np.maximum(self.prior, floor)
        self.tails: list[GumbelTail | None] = [None] * n  # as applied (shifted to the threshold)
        self._maxima = np.full((max(int(history_days / self.block_days), MIN_BLOCKS), n), np.nan)
        self._blocks = 0  # complete blocks so far
        self._block: float | None = None  # the current block's number
        self._current = np.full(n, np.nan)  # the current block's maxima so far

    def observe(self, seconds: float, evidence: np.ndarray) -> None:
        """Record one step (``seconds``: its time; ``evidence``: per system); when it starts a
        new block, the previous one is complete and the thresholds are refitted."""
        block = math.floor(seconds / self.block_seconds)
        if self._block is not None and block != self._block:
            self._maxima[self._blocks % self._maxima.shape[0]] = self._current
            self._blocks += 1
            self._current = np.full(self.prior.size, np.nan)
            self._refit()
        self._block = block
        self._current = np.fmax(self._current, np.asarray(evidence, dtype="float64"))

    def _refit(self) -> None:
        n = min(self._blocks, self._maxima.shape[0])
        if n < MIN_BLOCKS:
            return
        weight = n / (n + self.prior_blocks)
        tails = fit_block_maxima(self._maxima[:n], self.block_days, lower_quantile=self.lower_quantile,
                                 upper_quantile=self.upper_quantile)
        for system, tail in enumerate(tails):
            if tail is None:
                continue
            fitted = tail.level(self.budget_per_day)
            level = max((1 - weight) * self.prior[system] + weight * fitted, self.floor)
            self.thresholds[system] = level
            self.tails[system] = replace(tail, mu=tail.mu + level - fitted)  # scores as paged

    def page_score(self, system: int, level: float) -> float | None:
        """:meth:`GumbelTail.page_score` of ``system`` (None before its first fit)."""
        tail = self.tails[system]
        return None if tail is None else tail.page_score(level)
