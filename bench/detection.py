"""``foresight bench detection``: every dev corpus in one run, Foresight beside two baselines.

Corpora come from a registry (:func:`default_corpora`; add one with
``corpora.register(name)(Corpus(...))``): each loads, from the data root, either incident days
(:class:`bench.datasets.nezha.NezhaDay`, scored with :func:`bench.incidents.run_days`' protocol) or a
NAB-layout corpus. Systems compared on each:

- ``foresight``: incident days through the streaming incident pipeline (its shipped settings);
  NAB files through the default anomaly detector (``bench nab``), at the threshold NAB optimises
  on the corpus and at the production threshold;
- ``robust_z`` / ``robust_z_nms``: the robust z-score over the past day, without and with causal
  non-max suppression (:mod:`models.anomaly.robust_z_detectors`; incidents from
  :mod:`models.incidents.baseline`). Their z threshold has no natural value, and it means
  different things per series (NAB) and on a system's largest z (incidents): it is chosen from
  :data:`Z_GRID` leave-one-out (:func:`bench.loco.loco_select`) among the corpora of the same
  kind (incident corpora: leave-one-corpus-out; a NAB corpus: leave-one-category-out over its
  categories, each category scored at the threshold chosen on the others) and reported on what
  was left out. With nothing to leave out the choice is in-sample and flagged so. NAB rows also
  show the protocol's figures at the threshold NAB optimises on the corpus.

Rows come worst corpus first (by Foresight's objective, :mod:`bench.loco`). Each kind of corpus
and how it is evaluated (with the false alarms on gaps of the injection cadence set aside on the
shop day, ``docs/incidents.md``): :mod:`bench.detection_corpora`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench.datasets.nezha import NezhaDay, load_nezha
from bench.detection_corpora import INCIDENTS, NAB, Corpus, IncidentEvaluation, NabCorpus, NabEvaluation
from bench.loco import PAGE_BUDGET_PER_DAY, LocoChoice, loco_select
from foresight.plugins import Registry

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"  # shared/data beside the checkout
FORESIGHT = "foresight"
BASELINES: tuple[str, ...] = ("robust_z", "robust_z_nms")
SYSTEMS: tuple[str, ...] = (FORESIGHT, *BASELINES)
# z thresholds the baselines may get (log-spaced: a system score is the largest z of hundreds of
# series), highest first so that ties go to the threshold that pages less.
Z_GRID: tuple[float, ...] = (1e6, 1e5, 1e4, 3e3, 1e3, 500, 200, 100, 50, 30, 20, 12, 8, 5, 3)


def default_corpora() -> Registry[Corpus]:
    """``nab-dev`` and each ``nezha-dev`` day, as separate corpora."""
    corpora: Registry[Corpus] = Registry("corpus")

    def nezha_day(day: str) -> Callable[[Path], list[NezhaDay]]:
        return lambda root: load_nezha(root / "nezha-dev" / day)

    corpora.register("nab-dev")(
        Corpus("nab-dev", NAB, lambda root: NabCorpus(root / "nab-dev"), "NAB subset, 19 files")
    )
    corpora.register("nezha-dev/2022-08-22")(
        Corpus(
            "nezha-dev/2022-08-22",
            INCIDENTS,
            nezha_day("2022-08-22"),
            "Online Boutique shop, call graph known",
            set_aside_cadence_gaps=True,
        )
    )
    corpora.register("nezha-dev/2023-01-29")(
        Corpus("nezha-dev/2023-01-29", INCIDENTS, nezha_day("2023-01-29"), "Train-Ticket, no call graph")
    )
    return corpora


# --------------------------------------------------------------------------------------------
# The whole run.


@dataclass
class DetectionRun:
    """Rows (one per corpus and system), the leave-one-corpus-out choices, and the corpus order."""

    rows: list[dict[str, Any]]
    choices: dict[str, dict[str, LocoChoice[Any]]]  # system -> held-out corpus (or NAB category) -> choice
    order: list[str]  # corpora, worst first by Foresight's objective
    kinds: dict[str, str] = field(default_factory=dict)

    def frame(self) -> pd.DataFrame:
        """The rows as a table, corpora worst first, systems in :data:`SYSTEMS` order."""
        frame = pd.DataFrame(self.rows)
        frame["_c"] = frame["corpus"].map({c: i for i, c in enumerate(self.order)})
        frame["_s"] = frame["system"].map({s: i for i, s in enumerate(SYSTEMS)})
        return frame.sort_values(["_c", "_s"]).drop(columns=["_c", "_s"]).reset_index(drop=True)

    def write(self, out: Path) -> tuple[Path, Path]:
        """``detection.csv`` (the rows) and ``detection.json`` (rows and choices) under ``out``."""
        out.mkdir(parents=True, exist_ok=True)
        csv_path, json_path = out / "detection.csv", out / "detection.json"
        frame = self.frame()
        frame.to_csv(csv_path, index=False)
        payload = {
            "order": self.order,
            "rows": json.loads(frame.to_json(orient="records")),
            "loco": {
                s: {
                    c: {
                        "setting": ch.setting,
                        "others_objective": ch.others_objective,
                        "held_out_objective": ch.held_out_objective,
                    }
                    for c, ch in by.items()
                }
                for s, by in self.choices.items()
            },
        }
        json_path.write_text(json.dumps(payload, indent=2))
        return csv_path, json_path


def run(
    data: Path = DEFAULT_DATA,
    corpus_names: Sequence[str] | None = None,
    *,
    corpora: Registry[Corpus] | None = None,
    grid: Sequence[float] = Z_GRID,
    budget: float = PAGE_BUDGET_PER_DAY,
    nab_results: Path | None = None,
    systems: Sequence[str] = SYSTEMS,
    stream_grid: Sequence[dict[str, Any]] | None = None,
) -> DetectionRun:
    """Evaluate ``systems`` on every named corpus (default: all registered) under ``data``.

    Unknown corpus names raise before anything is read. Baseline thresholds are chosen as the
    module docstring says; ``choices`` holds them per system and held-out corpus (NAB categories
    as ``<corpus>:<category>``). With ``stream_grid`` (settings of the streaming incident pipeline,
    in order of preference), Foresight's incident rows use the setting chosen leave-one-corpus-out
    among them, as the baselines' thresholds are chosen (``choices["foresight"]``).
    """
    corpora = corpora or default_corpora()
    names = list(dict.fromkeys(corpus_names or corpora.names()))
    chosen = [corpora.get(n) for n in names]  # an unknown name raises, listing the choices
    unknown = [s for s in systems if s not in SYSTEMS]
    if unknown:
        raise ValueError(f"unknown system(s) {unknown}; choose from {', '.join(SYSTEMS)}")
    evaluations: dict[str, IncidentEvaluation | NabEvaluation] = {}
    for corpus in chosen:
        loaded = corpus.load(Path(data))
        evaluations[corpus.name] = (
            NabEvaluation(corpus, loaded, nab_results)
            if corpus.kind == NAB
            else IncidentEvaluation(corpus, list(loaded), budget)
        )
    rows: list[dict[str, Any]] = []
    objective: dict[str, float] = {}
    choices: dict[str, dict[str, LocoChoice[Any]]] = {}
    incident_names = [n for n in names if evaluations[n].corpus.kind == INCIDENTS]
    tuned: dict[str, LocoChoice[Any]] = {}
    if FORESIGHT in systems and stream_grid and incident_names:

        def on_stream(params: dict[str, Any], corpus: str) -> float:
            return float(_incidents(evaluations[corpus]).foresight(params)["objective"])

        tuned = choices[FORESIGHT] = _choose(list(stream_grid), incident_names, on_stream)
    for name, evaluation in evaluations.items():
        if FORESIGHT in systems:
            if name in tuned:
                how = "leave-one-corpus-out" if len(incident_names) > 1 else "in-sample"
                row = {**_incidents(evaluation).foresight(tuned[name].setting)}
                row["setting"] += f" ({how})"
            else:
                row = evaluation.foresight()
            objective[name] = row["objective"]
            rows.append({"corpus": name, "kind": evaluation.corpus.kind, "system": FORESIGHT, **row})
    for system in (s for s in systems if s in BASELINES):
        choices[system] = {}

        def on_incidents(thr: float, corpus: str, system: str = system) -> float:
            return float(_incidents(evaluations[corpus]).baseline(system, thr)["objective"])

        if incident_names:
            picks = _choose(list(grid), incident_names, on_incidents)
            how = "leave-one-corpus-out" if len(incident_names) > 1 else "in-sample"
            for name, choice in picks.items():
                choices[system][name] = choice
                rows.append(
                    {
                        "corpus": name,
                        "kind": INCIDENTS,
                        "system": system,
                        **_incidents(evaluations[name]).baseline(system, choice.setting),
                        "setting": f"z >= {choice.setting:g} ({how})",
                    }
                )
        for name in names:
            evaluation = evaluations[name]
            if not isinstance(evaluation, NabEvaluation):
                continue
            categories = evaluation.categories()

            def on_category(
                thr: float, category: str, system: str = system, nab: NabEvaluation = evaluation
            ) -> float:
                return nab.category_objective(system, thr, category)

            picks = _choose(list(grid), categories, on_category)
            how = "leave-one-category-out" if len(categories) > 1 else "in-sample"
            for category, choice in picks.items():
                choices[system][f"{name}:{category}"] = choice
            by_category = {c: ch.setting for c, ch in picks.items()}
            rows.append(
                {
                    "corpus": name,
                    "kind": NAB,
                    "system": system,
                    **evaluation.baseline_by_category(system, by_category),
                    "setting": "z >= "
                    + ", ".join(f"{t:g} ({c})" for c, t in by_category.items())
                    + f" ({how})",
                }
            )
    order = sorted(names, key=lambda n: (objective.get(n, 0.0), n))
    return DetectionRun(rows, choices, order, {n: evaluations[n].corpus.kind for n in names})


def _incidents(evaluation: IncidentEvaluation | NabEvaluation) -> IncidentEvaluation:
    if not isinstance(evaluation, IncidentEvaluation):
        raise TypeError(f"{evaluation.corpus.name} is not an incident corpus")
    return evaluation


def _choose(
    grid: list[Any], folds: list[str], evaluate: Callable[[Any, str], float]
) -> dict[str, LocoChoice[Any]]:
    """:func:`loco_select` over ``folds``; with a single fold, the best setting on it (in-sample)."""
    if len(folds) > 1:
        return loco_select(grid, folds, evaluate)
    only = folds[0]
    values = [evaluate(thr, only) for thr in grid]
    best = int(np.nanargmax(values)) if not np.all(np.isnan(values)) else 0
    return {only: LocoChoice(only, grid[best], values[best], values[best])}
