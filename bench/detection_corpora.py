"""The corpora of ``foresight bench detection`` and how each kind is evaluated.

A :class:`Corpus` loads either incident days (``INCIDENTS``: :class:`IncidentEvaluation` scores
Foresight's streaming incident pipeline and the robust z baselines with the incident protocol of
:mod:`bench.incidents`) or a NAB-layout corpus (``NAB``: :class:`NabEvaluation` scores the default
anomaly detector as ``bench nab`` does, and the baselines per category). On a corpus flagged
``set_aside_cadence_gaps`` the false alarms opened on gaps of the injection cadence
(:func:`cadence_gap_slots`) are also reported set aside. :mod:`bench.detection` runs them all and
chooses the baselines' thresholds.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench.datasets.nezha import Fault, NezhaDay
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
from bench.loco import PAGE_BUDGET_PER_DAY, incident_objective, nab_objective
from bench.nab import run as run_nab
from connectors.labels.nab_corpus import read_corpus, read_profiles
from foresight.settings import DetectConfig
from models.anomaly.base import DETECTORS
from models.anomaly.robust_z_detectors import RobustZDetector
from models.evaluation.nab_scoring import as_profiles, normalise, score_at_threshold, score_corpus, sweep_file
from models.incidents.baseline import baseline_incidents, series_z
from models.incidents.settings import StreamSettings

INCIDENTS, NAB = "incidents", "nab"
NMS_WIDTH = 12  # steps


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
            raise ValueError(
                f"corpus {self.name!r}: kind must be {INCIDENTS!r} or {NAB!r}, got {self.kind!r}"
            )


# --------------------------------------------------------------------------------------------
# Alarms on gaps of the injection cadence.


def cadence_gap_slots(
    faults: Sequence[Fault], tolerance: float = 1.5, trailing: int = 1
) -> list[pd.Timestamp]:
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
        "objective": incident_objective(
            figures.detected, figures.faults, figures.false_alarms_per_day, budget
        ),
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
            self._stream[key] = {
                **incident_fields(figures, self.budget),
                **self._set_aside(incidents),
                "setting": f"stream {key}" if stream_params else "shipped",
            }
        return self._stream[key]

    def baseline(self, system: str, threshold: float) -> dict[str, Any]:
        """The figures of baseline ``system`` at z ``threshold`` (the z matrices are computed once)."""
        key = (system, float(threshold))
        if key not in self._cache:
            if self._z is None:
                self._z = [series_z(d.telemetry, d.catalogue) for d in self.days]
            width = NMS_WIDTH if system == "robust_z_nms" else None
            raised = [
                baseline_incidents(z, threshold, width).assign(day=d.name)
                for z, d in zip(self._z, self.days, strict=True)
            ]
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
        sweeps = [
            sw
            for sw, f in zip(self._baseline_sweeps(system), self.files, strict=True)
            if f.category == category
        ]
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
                sweep_file(
                    f.key,
                    f.frame["timestamp"],
                    model.series_z(f.frame["timestamp"], f.frame["value"].to_numpy()),
                    self.windows[f.key],
                )
                for f in self.files
            ]
        return self._sweeps[system]

    @staticmethod
    def _profile_fields(scores: dict[str, Any]) -> dict[str, Any]:
        short = {
            "standard": "nab_standard",
            "reward_low_FP_rate": "nab_low_fp",
            "reward_low_FN_rate": "nab_low_fn",
        }
        out = {short.get(name, f"nab_{name}"): s.score for name, s in scores.items()}
        out["threshold_optimised"] = scores["standard"].threshold if "standard" in scores else None
        return out
