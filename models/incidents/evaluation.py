"""What the champion gate judges: the pages an incident pipeline would have sent, on held-out time.

:func:`evaluate_pipeline` fits a clone of the pipeline on the history before ``split`` (the
detector, and in stream mode the page budget's calibration), then builds incidents over the whole
history exactly as the detect flow does (:meth:`IncidentPipeline.incidents`; the samples before
``split`` are its warm-up) and keeps those raised after it. They are matched event-wise to the
ground-truth incidents after the split (:func:`models.evaluation.events.evaluate_alarms`: an incident is
detected when a page on its service starts within ``[start - horizon, start + grace]``; any
other page is a false alarm), pooled and per *system* (the builder's: a connected part of the
call graph for the stream, each service for the roll-up):

- ``f1`` (the gate's metric, ``event_f1``), ``recall``, ``precision``, ``false_alarms``,
  ``detected``, ``missed``, ``median_lead_minutes`` over all systems;
- ``false_alarms_per_day`` per system, averaged, and ``max_false_alarms_per_day`` and
  ``min_recall`` of the worst system (what one on-call rotation lives with);
- per system ``system.<name>.recall``, ``.precision``, ``.false_alarms_per_day`` (systems with
  neither a fault nor a page are left out).

The failure predictor's risk is left out: it is judged on its own (the failure family's gate).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pandas as pd

from models.evaluation.events import match_pages
from models.incidents.base import IncidentInputs
from models.incidents.pipeline import IncidentPipeline

GATE_METRIC = "event_f1"


@dataclass(frozen=True)
class PipelineEvaluation:
    """The gate's figures (``metrics``), the pages after the split and the calibration the
    replay ended with (the page budget over the whole history: what the registered model keeps)."""

    metrics: dict[str, float]
    raised: pd.DataFrame
    calibration: dict[str, float] = field(default_factory=dict)

    @property
    def value(self) -> float:
        return self.metrics["f1"]


def evaluate_pipeline(
    pipeline: IncidentPipeline,
    telemetry: pd.DataFrame,
    catalogue: pd.DataFrame,
    truth: pd.DataFrame,
    split: pd.Timestamp,
    *,
    call_graph: Mapping[str, Sequence[str]] | None = None,
    horizon: pd.Timedelta = pd.Timedelta(minutes=60),
    grace: pd.Timedelta = pd.Timedelta(minutes=15),
) -> PipelineEvaluation:
    """Fit on the history before ``split``, page over the rest, score the pages (module doc)."""
    before = telemetry[telemetry["ds"] < split]
    if before.empty or not (telemetry["ds"] >= split).any():
        raise ValueError(f"split {split} leaves no history before it or none after it to evaluate on")
    fitted = pipeline.clone().fit(before, catalogue, call_graph)
    built = fitted.incidents(IncidentInputs(telemetry, catalogue, since=split, call_graph=call_graph))
    held_out = truth[truth["start"] >= split] if len(truth) else truth
    days = max((telemetry["ds"].max() - split) / pd.Timedelta(days=1), 1 / 24)
    services = sorted(str(s) for s in catalogue["service"].dropna().unique())
    systems = pipeline.builder.systems(services, call_graph)
    metrics = page_metrics(built.incidents, held_out, systems, days, horizon=horizon, grace=grace)
    return PipelineEvaluation(metrics, built.incidents, built.calibration)


def page_metrics(
    raised: pd.DataFrame,
    truth: pd.DataFrame,
    systems: Mapping[str, str],
    days: float,
    *,
    horizon: pd.Timedelta,
    grace: pd.Timedelta,
) -> dict[str, float]:
    """Pooled and per-system event-wise figures of ``raised`` against ``truth`` over ``days``."""
    system_of = pd.Series(systems, dtype="string")
    pooled = _match(raised, truth, horizon, grace)
    out = dict(pooled)
    per_system: dict[str, dict[str, float]] = {}
    for name in sorted(set(systems.values())):
        members = set(system_of.index[system_of == name])
        mine = raised[raised["service"].astype(str).isin(members)] if len(raised) else raised
        faults = truth[truth["service"].astype(str).isin(members)] if len(truth) else truth
        if len(mine) == 0 and len(faults) == 0:
            continue
        figures = _match(mine, faults, horizon, grace)
        per_system[name] = {"recall": figures["recall"], "precision": figures["precision"],
                            "false_alarms_per_day": figures["false_alarms"] / days, "faults": float(len(faults))}
    n_systems = max(len(set(systems.values())), 1)
    out["false_alarms_per_day"] = out["false_alarms"] / days / n_systems
    rates = [s["false_alarms_per_day"] for s in per_system.values()]
    recalls = [s["recall"] for s in per_system.values() if s["faults"] > 0]
    out["max_false_alarms_per_day"] = max(rates) if rates else 0.0
    out["min_recall"] = min(recalls) if recalls else float("nan")
    out["systems"] = float(n_systems)
    for name, figures in per_system.items():
        for key in ("recall", "precision", "false_alarms_per_day"):
            out[f"system.{_metric_safe(name)}.{key}"] = figures[key]
    return out


def _match(raised: pd.DataFrame, truth: pd.DataFrame, horizon: pd.Timedelta, grace: pd.Timedelta) -> dict[str, float]:
    return match_pages(raised, truth, horizon, grace).as_floats()


def _metric_safe(name: str) -> str:
    """A system name as MLflow accepts in a metric key (alphanumerics, ``_-. /``)."""
    return "".join(c if c.isalnum() or c in "_-." else "_" for c in name) or "_"


