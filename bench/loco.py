"""Leave-one-corpus-out selection of a tuned setting, and the objectives it maximises.

:func:`loco_select` chooses, for each corpus, the setting of a grid with the best mean objective
on the *other* corpora, and reports it on the corpus left out: a setting is never judged on data
it was chosen with. Objectives are on one scale (about 0 to 1, higher is better) so corpora of
different kinds can be averaged:

- NAB-layout corpora: the standard-profile NAB score / 100 (:func:`nab_objective`);
- incident corpora: the share of faults detected, discounted by how far false alarms exceed the
  page budget (default 2 per day): ``recall * min(1, budget / false alarms per day)``
  (:func:`incident_objective`). Within the budget it is plain recall; at four times the budget,
  a quarter of it. A fault-free corpus scores by its false alarms alone.

Pure: no I/O; the caller's ``evaluate`` does the work and may cache.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

import numpy as np

S = TypeVar("S")  # a setting: a number, a mapping of settings, anything `evaluate` understands
PAGE_BUDGET_PER_DAY = 2.0


@dataclass(frozen=True)
class LocoChoice(Generic[S]):
    """The setting chosen for ``corpus`` on the others, and its objective there and on ``corpus``."""

    corpus: str
    setting: S
    others_objective: float  # mean objective of the chosen setting on the other corpora
    held_out_objective: float  # its objective on the corpus left out


def loco_select(
    grid: Sequence[S], corpora: Sequence[str], evaluate: Callable[[S, str], float]
) -> dict[str, LocoChoice[S]]:
    """For each corpus, the setting of ``grid`` with the best mean ``evaluate(setting, other)``
    over every other corpus (the first such setting on ties: order ``grid`` by preference), and
    its objective on the corpus left out. ``evaluate`` is called once per (setting, corpus).

    Needs at least two corpora and one setting; a NaN objective counts as the worst.
    """
    if not grid:
        raise ValueError("the grid of settings is empty")
    if len(set(corpora)) != len(corpora):
        raise ValueError(f"corpora named twice: {list(corpora)}")
    if len(corpora) < 2:
        raise ValueError("leave-one-corpus-out needs at least two corpora")
    table = np.array([[float(evaluate(s, c)) for c in corpora] for s in grid])  # (settings, corpora)
    table = np.where(np.isnan(table), -np.inf, table)
    choices: dict[str, LocoChoice[S]] = {}
    for k, corpus in enumerate(corpora):
        others = np.delete(table, k, axis=1).mean(axis=1)
        best = int(np.argmax(others))
        choices[corpus] = LocoChoice(corpus, grid[best], float(others[best]), float(table[best, k]))
    return choices


def nab_objective(standard_score: float) -> float:
    """A NAB standard-profile score (0 = null detector, 100 = perfect) on the common scale."""
    return standard_score / 100.0


def incident_objective(
    detected: int, faults: int, false_alarms_per_day: float | None, budget: float = PAGE_BUDGET_PER_DAY
) -> float:
    """``recall * min(1, budget / false alarms per day)``; a corpus without faults counts recall as 1,
    so only its false alarms count."""
    if budget <= 0:
        raise ValueError(f"the page budget must be > 0, got {budget}")
    recall = detected / faults if faults > 0 else 1.0
    rate = false_alarms_per_day or 0.0
    return recall * min(1.0, budget / rate if rate > 0 else 1.0)
