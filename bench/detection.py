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

Rows come worst corpus first (by Foresight's objective, :mod:`bench.loco`). On a corpus flagged
``set_aside_cadence_gaps`` (the shop day, ``docs/incidents.md``) the false alarms opened on gaps
of the injection cadence (:func:`cadence_gap_slots`) are also reported set aside.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench.datasets.nezha import Fault, NezhaDay, load_nezha
from bench.incidents import (
    DETECTION_WINDOW,
    IncidentFigures,
    day_length,
    day_span,
    fault_free_length,
    match_faults,
    run_days,
    score_incidents,
)
from bench.loco import PAGE_BUDGET_PER_DAY, LocoChoice, incident_objective, loco_select, nab_objective
from bench.nab import run as run_nab
from connectors.labels.nab_corpus import read_corpus, read_profiles
from foresight.plugins import Registry
from foresight.settings import DetectConfig
from models.anomaly.base import DETECTORS
from models.anomaly.robust_z_detectors import RobustZDetector
from models.evaluation.nab_scoring import as_profiles, normalise, score_at_threshold, score_corpus, sweep_file
from models.incidents.baseline import baseline_incidents, series_z
from models.incidents.settings import StreamSettings

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"  # shared/data beside the checkout
FORESIGHT = "foresight"
BASELINES: tuple[str, ...] = ("robust_z", "robust_z_nms")
SYSTEMS: tuple[str, ...] = (FORESIGHT, *BASELINES)
NMS_WIDTH = 12  # steps
# z thresholds the baselines may get (log-spaced: a system score is the largest z of hundreds of
# series), highest first so that ties go to the threshold that pages less.
Z_GRID: tuple[float, ...] = (1e6, 1e5, 1e4, 3e3, 1e3, 500, 200, 100, 50, 30, 20, 12, 8, 5, 3)
INCIDENTS, NAB = "incidents", "nab"
__all__ = ["loco_select", "Corpus", "DetectionRun", "default_corpora", "run", "cadence_gap_slots"]


@dataclass(frozen=True)
class NabCorpus:
    """A NAB-layout corpus on disk (``bench nab`` reads it)."""

    root: Path


@dataclass(frozen=True)
class Corpus:
    """A dev corpus: how to load it from the data root, and how to read its false alarms."""

    name: str
    kind: str  # INCIDENTS (load returns list[NezhaDay]) or NAB (load returns NabCorpus)
    load: Callable[[Path], Any]
    description: str = ""
    set_aside_cadence_gaps: bool = False  # also report false alarms on gaps of the injection cadence aside

    def __post_init__(self) -> None:
        if self.kind not in (INCIDENTS, NAB):
            raise ValueError(f"corpus {self.name!r}: kind must be {INCIDENTS!r} or {NAB!r}, got {self.kind!r}")


def default_corpora() -> Registry[Corpus]:
    """``nab-dev`` and each ``nezha-dev`` day, as separate corpora."""
    corpora: Registry[Corpus] = Registry("corpus")

    def nezha_day(day: str) -> Callable[[Path], list[NezhaDay]]:
        return lambda root: load_nezha(root / "nezha-dev" / day)

    corpora.register("nab-dev")(
        Corpus("nab-dev", NAB, lambda root: NabCorpus(root / "nab-dev"), "NAB subset, 19 files")
    )
    corpora.register("nezha-dev/2022-08-22")(
        Corpus("nezha-dev/2022-08-22", INCIDENTS, nezha_day("2022-08-22"),
               "Online Boutique shop, call graph known", set_aside_cadence_gaps=True)
    )
    corpora.register("nezha-dev/2023-01-29")(
        Corpus("nezha-dev/2023-01-29", INCIDENTS, nezha_day("2023-01-29"), "Train-Ticket, no call graph")
    )
    return corpora


# --------------------------------------------------------------------------------------------
# Alarms on gaps of the injection cadence.


def cadence_gap_slots(faults: Sequence[Fault], tolerance: float = 1.5, trailing: int = 1) -> list[pd.Timestamp]:
    """Where injections would have fallen had the cadence of ``faults`` gone on without gaps.

    The cadence is the median spacing of consecutive injections. A spacing longer than
    ``tolerance`` cadences holds ``round(spacing / cadence) - 1`` missing slots, spread evenly
    over it; ``trailing`` more slots follow the last injection. Fewer than three faults: none.
    """
    times = sorted(f.inject_time for f in faults)
    if len(times) < 3:
        return []
    spacing = pd.Series(times).diff().dropna()
    cadence = spacing.median()
    slots: list[pd.Timestamp] = []
    for a, b in zip(times[:-1], times[1:], strict=True):
        if b - a > tolerance * cadence:
            m = int(round((b - a) / cadence))
            slots += [a + (b - a) * k / m for k in range(1, m)]
    slots += [times[-1] + cadence * k for k in range(1, trailing + 1)]
    return slots


def set_aside_gap_alarms(
    incidents: pd.DataFrame, faults: Sequence[Fault], window: pd.Timedelta = DETECTION_WINDOW
) -> tuple[pd.DataFrame, int]:
    """``incidents`` without the false alarms opened within ``window`` after a cadence-gap slot,
    and how many were set aside. Incidents that detect a listed fault always stay."""
    if incidents.empty:
        return incidents, 0
    matches = match_faults(incidents, faults, window)
    used = set(matches.loc[matches["detected"], "incident"].astype(int)) if len(matches) else set()
    opened = pd.to_datetime(incidents["opened_at"], utc=True).reset_index(drop=True)
    on_gap = np.zeros(len(incidents), dtype=bool)
    for slot in cadence_gap_slots(faults):
        on_gap |= ((opened >= slot) & (opened <= slot + window)).to_numpy()
    aside = on_gap & ~np.isin(np.arange(len(incidents)), list(used))
    return incidents[~aside].reset_index(drop=True), int(aside.sum())


# --------------------------------------------------------------------------------------------
# Evaluating one corpus.


def score_days(days: Sequence[NezhaDay], incidents: pd.DataFrame) -> IncidentFigures:
    """The incident protocol's figures for ``incidents`` raised on ``days`` (as ``run_days`` scores)."""
    faults = [f for d in days for f in d.faults]
    figures, _ = score_incidents(
        incidents,
        faults,
        sum(day_length(d) for d in days),
        fault_free_days=sum(fault_free_length(*day_span(d), d.faults) for d in days),
    )
    return figures


def incident_fields(figures: IncidentFigures, budget: float) -> dict[str, Any]:
    """A row's incident figures and objective."""
    return {
        "objective": incident_objective(figures.detected, figures.faults, figures.false_alarms_per_day, budget),
        "faults": figures.faults,
        "detected": figures.detected,
        "detection_rate": figures.detection_rate,
        "false_alarms": figures.false_alarms,
        "false_alarms_per_day": figures.false_alarms_per_day,
        "ac_at_1": figures.ac_at_1,
        "ac_at_3": figures.ac_at_3,
        "fault_type_accuracy": figures.fault_type_accuracy,
        "median_delay_seconds": figures.median_delay_seconds,
        "days": figures.days,
    }


class IncidentEvaluation:
    """One incident corpus: Foresight's figures, and the baselines' at any z threshold (cached)."""

    def __init__(self, corpus: Corpus, days: list[NezhaDay], budget: float = PAGE_BUDGET_PER_DAY) -> None:
        self.corpus, self.days, self.budget = corpus, days, budget
        self._z: list[Any] | None = None
        self._cache: dict[tuple[str, float], dict[str, Any]] = {}
        self._stream: dict[str, dict[str, Any]] = {}

    def foresight(self, stream_params: dict[str, Any] | None = None) -> dict[str, Any]:
        """The streaming pipeline's figures with its shipped settings, or with ``stream_params``
        (:meth:`models.incidents.settings.StreamSettings.from_params`); cached per setting."""
        key = json.dumps(stream_params or {}, sort_keys=True)
        if key not in self._stream:
            settings = StreamSettings.from_params(stream_params) if stream_params else None
            figures, incidents, _ = run_days(self.days, settings=settings)
            self._stream[key] = {**incident_fields(figures, self.budget), **self._set_aside(incidents),
                                 "setting": f"stream {key}" if stream_params else "shipped"}
        return self._stream[key]

    def baseline(self, system: str, threshold: float) -> dict[str, Any]:
        """The figures of baseline ``system`` at z ``threshold`` (the z matrices are computed once)."""
        key = (system, float(threshold))
        if key not in self._cache:
            if self._z is None:
                self._z = [series_z(d.telemetry, d.catalogue) for d in self.days]
            width = NMS_WIDTH if system == "robust_z_nms" else None
            raised = [baseline_incidents(z, threshold, width).assign(day=d.name)
                      for z, d in zip(self._z, self.days, strict=True)]
            incidents = pd.concat(raised, ignore_index=True)
            figures = score_days(self.days, incidents)
            row = {**incident_fields(figures, self.budget), **self._set_aside(incidents)}
            row["fault_type_accuracy"] = None  # the baselines raise no category: no claim to score
            self._cache[key] = row
        return self._cache[key]

    def _set_aside(self, incidents: pd.DataFrame) -> dict[str, Any]:
        if not self.corpus.set_aside_cadence_gaps:
            return {}
        faults = [f for d in self.days for f in d.faults]
        kept, aside = set_aside_gap_alarms(incidents, faults)
        figures = score_days(self.days, kept)
        return {
            "false_alarms_set_aside": aside,
            "false_alarms_per_day_gaps_aside": figures.false_alarms_per_day,
            "objective_gaps_aside": incident_objective(
                figures.detected, figures.faults, figures.false_alarms_per_day, self.budget
            ),
        }


class NabEvaluation:
    """One NAB corpus: the default detector's scores, and the baselines' at a z threshold per category."""

    def __init__(self, corpus: Corpus, nab: NabCorpus, results_dir: Path | None = None) -> None:
        self.corpus, self.root, self.results_dir = corpus, nab.root, results_dir
        self.files, self.windows = read_corpus(nab.root)
        self.profiles = as_profiles(read_profiles(nab.root / "labels" / "profiles.json"))
        self._sweeps: dict[str, list[Any]] = {}

    def foresight(self) -> dict[str, Any]:
        detector = DetectConfig().detector
        with tempfile.TemporaryDirectory(prefix="foresight-nab-") as tmp:
            out = self.results_dir if self.results_dir is not None else Path(tmp)
            result = run_nab(self.root, out, detector=detector)
        fixed = result.production["standard"].score
        return {
            "objective": nab_objective(fixed),
            **self._profile_fields(result.optimised),
            "nab_standard_fixed": fixed,
            "threshold_fixed": result.production_threshold,
            "setting": f"{detector}, production threshold {result.production_threshold:g}",
        }

    def categories(self) -> list[str]:
        """The corpus' categories (NAB's folders), the folds of its leave-one-out choice."""
        return sorted({f.category for f in self.files})

    def category_objective(self, system: str, threshold: float, category: str) -> float:
        """The NAB objective of ``system`` at ``threshold`` on one category's files."""
        sweeps = [sw for sw, f in zip(self._baseline_sweeps(system), self.files, strict=True) if f.category == category]
        return nab_objective(score_at_threshold(sweeps, self.profiles["standard"], float(threshold)).score)

    def baseline_by_category(self, system: str, thresholds: dict[str, float]) -> dict[str, Any]:
        """The corpus scored with each category's files at its own threshold (standard profile),
        normalised over the whole corpus; the profiles' corpus-optimised figures beside it."""
        profile = self.profiles["standard"]
        sweeps = self._baseline_sweeps(system)
        raw = 0.0
        for category, threshold in thresholds.items():
            mine = [sw for sw, f in zip(sweeps, self.files, strict=True) if f.category == category]
            raw += score_at_threshold(mine, profile, float(threshold)).raw
        whole = score_at_threshold(sweeps, profile, np.inf)  # only for the corpus' null and perfect scores
        fixed = normalise(raw, whole.null, whole.perfect)
        return {
            "objective": nab_objective(fixed),
            **self._profile_fields(score_corpus(sweeps, self.profiles)),
            "nab_standard_fixed": fixed,
            "threshold_fixed": None,
        }

    def _baseline_sweeps(self, system: str) -> list[Any]:
        if system not in self._sweeps:
            model = DETECTORS.get(system)(width=NMS_WIDTH)
            if not isinstance(model, RobustZDetector):
                raise TypeError(f"{system} is not a robust z baseline")
            self._sweeps[system] = [
                sweep_file(f.key, f.frame["timestamp"],
                           model.series_z(f.frame["timestamp"], f.frame["value"].to_numpy()), self.windows[f.key])
                for f in self.files
            ]
        return self._sweeps[system]

    @staticmethod
    def _profile_fields(scores: dict[str, Any]) -> dict[str, Any]:
        short = {"standard": "nab_standard", "reward_low_FP_rate": "nab_low_fp", "reward_low_FN_rate": "nab_low_fn"}
        out = {short.get(name, f"nab_{name}"): s.score for name, s in scores.items()}
        out["threshold_optimised"] = scores["standard"].threshold if "standard" in scores else None
        return out


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
            "loco": {s: {c: {"setting": ch.setting, "others_objective": ch.others_objective,
                             "held_out_objective": ch.held_out_objective} for c, ch in by.items()}
                     for s, by in self.choices.items()},
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
            NabEvaluation(corpus, loaded, nab_results) if corpus.kind == NAB
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
                rows.append({"corpus": name, "kind": INCIDENTS, "system": system,
                             **_incidents(evaluations[name]).baseline(system, choice.setting),
                             "setting": f"z >= {choice.setting:g} ({how})"})
        for name in names:
            evaluation = evaluations[name]
            if not isinstance(evaluation, NabEvaluation):
                continue
            categories = evaluation.categories()

            def on_category(thr: float, category: str, system: str = system, nab: NabEvaluation = evaluation) -> float:
                return nab.category_objective(system, thr, category)

            picks = _choose(list(grid), categories, on_category)
            how = "leave-one-category-out" if len(categories) > 1 else "in-sample"
            for category, choice in picks.items():
                choices[system][f"{name}:{category}"] = choice
            by_category = {c: ch.setting for c, ch in picks.items()}
            rows.append({"corpus": name, "kind": NAB, "system": system,
                         **evaluation.baseline_by_category(system, by_category),
                         "setting": "z >= " + ", ".join(f"{t:g} ({c})" for c, t in by_category.items())
                         + f" ({how})"})
    order = sorted(names, key=lambda n: (objective.get(n, 0.0), n))
    return DetectionRun(rows, choices, order, {n: evaluations[n].corpus.kind for n in names})


def _incidents(evaluation: IncidentEvaluation | NabEvaluation) -> IncidentEvaluation:
    if not isinstance(evaluation, IncidentEvaluation):
        raise TypeError(f"{evaluation.corpus.name} is not an incident corpus")
    return evaluation


def _choose(grid: list[Any], folds: list[str], evaluate: Callable[[Any, str], float]) -> dict[str, LocoChoice[Any]]:
    """:func:`loco_select` over ``folds``; with a single fold, the best setting on it (in-sample)."""
    if len(folds) > 1:
        return loco_select(grid, folds, evaluate)
    only = folds[0]
    values = [evaluate(thr, only) for thr in grid]
    best = int(np.nanargmax(values)) if not np.all(np.isnan(values)) else 0
    return {only: LocoChoice(only, grid[best], values[best], values[best])}
