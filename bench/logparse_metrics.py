"""Log parsing accuracy as Loghub-2.0 scores it: GA, PA and FGA of predicted against true templates.

Groups are the lines sharing one template text (white space folded), on both sides, as in the
Loghub-2.0 evaluation; so two clusters of the miner that end with the same template are one group.
- GA (grouping accuracy): share of lines whose predicted group holds exactly the lines of their
  true group.
- PA (parsing accuracy): share of lines whose predicted template equals the true one.
- FGA: F1 of the groups matched exactly (precision over predicted groups, recall over true ones).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd


@dataclass(frozen=True)
class ParseScores:
    lines: int
    true_groups: int
    predicted_groups: int
    ga: float
    pa: float
    fga: float


def fold_space(template: str) -> str:
    """White space folded: runs as one space, none at either end."""
    return " ".join(str(template).split())


def score(truth: Sequence[str], predicted: Sequence[str]) -> ParseScores:
    """GA, PA and FGA of ``predicted`` templates against ``truth`` templates, line by line."""
    if len(truth) != len(predicted):
        raise ValueError(f"{len(truth)} true templates but {len(predicted)} predicted ones")
    if not len(truth):
        raise ValueError("nothing to score: no lines")
    frame = pd.DataFrame(
        {"truth": [fold_space(t) for t in truth], "predicted": [fold_space(p) for p in predicted]}
    )
    true_sizes = frame["truth"].value_counts()
    per_group = frame.groupby("predicted", sort=False)["truth"].agg(["nunique", "first", "size"])
    exact = per_group[
        (per_group["nunique"] == 1)
        & (per_group["size"].to_numpy() == true_sizes.reindex(per_group["first"]).to_numpy())
    ]
    n_exact, n_pred, n_true = len(exact), len(per_group), len(true_sizes)
    precision, recall = n_exact / n_pred, n_exact / n_true
    fga = 0.0 if n_exact == 0 else 2 * precision * recall / (precision + recall)
    return ParseScores(
        lines=len(frame),
        true_groups=n_true,
        predicted_groups=n_pred,
        ga=float(exact["size"].sum()) / len(frame),
        pa=float((frame["truth"] == frame["predicted"]).mean()),
        fga=fga,
    )
