"""The champion/challenger promotion rule, pure: a candidate becomes champion only when it beats
the baseline and the current champion (if any) by a relative margin, on the same evaluation
(:func:`decide`); a family's first candidate that loses leaves its baseline serving
(:func:`baseline_serves`). :mod:`foresight.model_registry` applies the decisions in MLflow.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

CHAMPION, CHALLENGER = "champion", "challenger"  # the registry's aliases


@dataclass(frozen=True)
class Decision:
    """Whether a candidate becomes champion, and why (with the numbers)."""

    promote: bool
    reason: str

    @property
    def label(self) -> str:
        """The value of the ``foresight.decision`` tag: ``promote`` or ``challenger``."""
        return "promote" if self.promote else CHALLENGER


def _beats(candidate: float, reference: float, *, higher_is_better: bool, margin: float) -> bool:
    """True when ``candidate`` is better than ``reference`` by at least ``margin`` of |reference|."""
    gain = candidate - reference if higher_is_better else reference - candidate
    if not math.isfinite(reference):
        # e.g. MASE = inf on a flat series: any finite score beats it; NaN beats nothing.
        return gain > 0
    # A hair of tolerance so "exactly 1 % better" counts despite binary floating point.
    return gain > 0 and gain >= margin * abs(reference) - 1e-12 * max(1.0, abs(reference))


def _fmt(value: float) -> str:
    return f"{value:.4g}"


def decide(
    candidate: float,
    champion: float | None,
    baseline: float,
    *,
    higher_is_better: bool,
    min_improvement: float,
    metric: str = "mase",
    refusal: str | None = None,
) -> Decision:
    """Promote only if the candidate beats the baseline and (if any) the champion by a relative margin.

    ``min_improvement`` is relative (0.01 = 1 % of the reference value). The margin applies to
    both comparisons; a strict improvement is always required, even with a zero margin. A
    non-finite candidate never wins; an infinite reference (MASE on a flat series) loses to any
    finite score; a NaN reference blocks promotion until someone fixes that metric. A
    ``refusal`` (e.g. miscalibrated intervals) blocks promotion whatever the scores, and is the reason.
    """
    if min_improvement < 0:
        raise ValueError(f"min_improvement must be >= 0, got {min_improvement}")
    by = f" by {min_improvement * 100:g}%" if min_improvement else ""
    cand = f"{metric} {_fmt(candidate)}"
    if not math.isfinite(candidate):
        return Decision(False, f"{cand} is not a finite score")
    if refusal:
        return Decision(False, f"not promoted: {refusal} ({cand}, baseline {_fmt(baseline)})")
    if not _beats(candidate, baseline, higher_is_better=higher_is_better, margin=min_improvement):
        return Decision(False, f"{cand} does not beat baseline {_fmt(baseline)}{by}")
    if champion is None:
        return Decision(True, f"{cand} beats baseline {_fmt(baseline)} and there is no champion")
    if not _beats(candidate, champion, higher_is_better=higher_is_better, margin=min_improvement):
        return Decision(False, f"{cand} does not beat champion {_fmt(champion)}{by}")
    return Decision(True, f"{cand} beats champion {_fmt(champion)} and baseline {_fmt(baseline)}")


def baseline_serves(decision: Decision, champion: float | None, baseline: float, *, metric: str,
                    baseline_name: str) -> Decision | None:
    """When the first candidate of a family loses to its baseline, the baseline becomes champion.

    Downstream flows need a champion to serve, and the baseline is by construction the model
    the gate trusts at least as much: it serves until a candidate beats it. Never replaces an
    existing champion, and never promotes a baseline that has no finite score.
    """
    if decision.promote or champion is not None or not math.isfinite(baseline):
        return None
    return Decision(True, f"no champion yet and the candidate lost ({decision.reason}): baseline "
                          f"{baseline_name} ({metric} {_fmt(baseline)}) serves until a candidate beats it")
