"""Detections -> incidents: roll series anomalies and failure risk up to service incidents.

An on-call engineer wants one page per service problem, not one per noisy sample:

- **roll-up**: at each time a service is *active* when at least ``min_series`` of its series
  score at or above ``anomaly_threshold`` or its failure risk is at or above ``risk_threshold``;
  many anomalous series of one service at once are one service anomaly;
- **hysteresis**: an incident opens at the first active sample and closes only after the
  service has been clear for ``resolve_after``; activity again within that time (flapping)
  continues the same incident, so repeats are suppressed;
- **identity**: ``incident_id`` is a hash of the service and ``window_start`` (the start floored
  to ``resolve_after``), so rebuilding incidents from overlapping detect runs yields the same ids
  and downstream sinks (the PagerDuty outbox) de-duplicate on them. Two incidents of one service
  cannot share a window start: they are more than ``resolve_after`` apart.

Each incident gets a category guessed from its anomalous metrics (mem -> resource_leak, disk ->
disk, cpu / latency -> saturation, error_rate -> errors: :data:`METRIC_CATEGORIES`, the
simulator's names); an incident none of whose anomalous metrics that table knows (real exporters' names,
``container_cpu_usage_seconds_total``, ``pod_server_latency_p95``) is categorised from the kinds
of its anomalous metrics by :func:`models.incidents.category.categorise`, the rules the streaming
incident pipeline uses. It also gets a severity from its score, and JSON evidence naming the
series behind it. Given the call graph, each incident also gets
``ranked_services``: every service anomalous within ``resolve_after`` before the incident was raised,
most likely root cause first (:func:`models.incidents.rca.rank_root_causes`), ``;``-joined. Pure: frames in,
a frame out.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from foresight.schemas import UTC_DTYPE, require_columns
from models.evaluation.events import as_timedelta
from models.incidents.base import INCIDENT_OUTPUT_COLUMNS, empty_incidents, incident_id
from models.incidents.category import categorise, metric_kind
from models.incidents.evidence import TOP_RANKED, evidence_payload, score_surprise, series_record, severity
from models.incidents.fault_types import FaultEvidence, classify_fault
from models.incidents.rca import rank_root_causes

METRIC_CATEGORIES: dict[str, str] = {
    "mem_pct": "resource_leak",
    "disk_pct": "disk",
    "cpu_pct": "saturation",
    "latency_p95": "saturation",
    "request_rate": "saturation",
    "error_rate": "errors",
}
UNKNOWN_CATEGORY = "unknown"  # only when a service has no scored series at all
TOP_EVIDENCE = 5


def build_incidents(
    scores: pd.DataFrame,
    risk: pd.DataFrame | None,
    catalogue: pd.DataFrame,
    *,
    anomaly_threshold: float,
    risk_threshold: float,
    min_series: int = 1,
    resolve_after: str | pd.Timedelta = "30min",
    min_active: int = 1,
    call_graph: Mapping[str, Sequence[str]] | None = None,
) -> pd.DataFrame:
    """Incidents from anomaly ``scores`` (``unique_id, ds, score``) and optional ``risk``
    (``service, ds, risk``): one row per incident with :data:`INCIDENT_OUTPUT_COLUMNS`.

    ``end`` is NaT while an incident is open (the data does not yet show ``resolve_after`` of
    calm after its last active sample); otherwise it is the first sample after the last active
    one. ``score`` is the highest anomaly score among its series (the highest risk for an
    incident raised by risk alone); severity is critical / error / warning as the score's tail
    probability ``1 - score`` is within 1 %, 10 % or 100 % of ``1 - anomaly_threshold``; an
    incident raised by risk alone is a warning (it has not happened yet).

    ``min_active`` is Prometheus' ``for:`` in samples: an episode opens an incident only once it
    has that many active samples, and its ``start`` is then (when it would have been raised live).

    With ``call_graph`` (caller -> callees) a ``ranked_services`` column is appended (see the
    module doc); without it the columns are exactly :data:`INCIDENT_OUTPUT_COLUMNS`.
    """
    if min_series < 1:
        raise ValueError(f"min_series must be at least 1, got {min_series}")
    if min_active < 1:
        raise ValueError(f"min_active must be at least 1, got {min_active}")
    for name, value in (("anomaly_threshold", anomaly_threshold), ("risk_threshold", risk_threshold)):
        if not 0.0 < value <= 1.0:
            raise ValueError(f"{name} must be within (0, 1], got {value}")
    resolve = as_timedelta(resolve_after, "resolve_after")
    if resolve <= pd.Timedelta(0):
        raise ValueError(f"resolve_after must be positive, got {resolve_after!r}")

    points = _series_points(scores, catalogue, anomaly_threshold)
    timeline = _service_timeline(points, risk, min_series, risk_threshold)
    episodes = _episodes(timeline, resolve, min_active)
    if episodes.empty:
        empty = empty_incidents()
        return empty if call_graph is None else empty.assign(ranked_services=pd.Series([], dtype="string"))
    evidence = _evidence_rows(points, episodes)
    # The likely causes (the incident's own service alone without a call graph), into the table
    # and the evidence record alike.
    ranking = (episodes["service"].astype("string") if call_graph is None
               else ranked_causes(episodes, points, call_graph, resolve))
    out = _describe(episodes, evidence, anomaly_threshold, ranking)
    out["window_start"] = out["start"].dt.floor(resolve)
    out["incident_id"] = [
        incident_id(s, w) for s, w in zip(out["service"], out["window_start"], strict=True)
    ]
    columns = list(INCIDENT_OUTPUT_COLUMNS)
    if call_graph is not None:
        out["ranked_services"] = ranking
        columns.append("ranked_services")
    return out[columns].sort_values(["start", "service"]).reset_index(drop=True)


def ranked_causes(
    incidents: pd.DataFrame, points: pd.DataFrame, call_graph: Mapping[str, Sequence[str]], lookback: pd.Timedelta
) -> pd.Series:
    """Per incident, services anomalous within ``lookback`` up to its ``start`` ranked as root causes.

    A service's evidence is its largest anomaly score there as a surprise ``-log10(1 - score)``
    (scores are calibrated tail probabilities); services with no anomalous sample are left out.
    """
    hot = points[points["anomalous"]]
    hot = hot.assign(surprise=surprise(hot["score"]))
    ranked = []
    for service, start in zip(incidents["service"], incidents["start"], strict=True):
        near = hot[(hot["ds"] > start - lookback) & (hot["ds"] <= start)]
        evidence = near.groupby("service")["surprise"].max().to_dict()
        evidence.setdefault(str(service), 0.0)
        order = [s for s, _ in rank_root_causes(evidence, call_graph) if s in evidence]
        ranked.append(";".join(order))
    return pd.Series(ranked, index=incidents.index, dtype="string")


def surprise(scores: pd.Series | np.ndarray | float) -> np.ndarray:
    """``-log10(1 - score)`` of calibrated tail probabilities (capped at 12: a score of 1)."""
    return -np.log10(np.clip(1.0 - np.asarray(scores, dtype="float64"), 1e-12, 1.0))


def _series_points(scores: pd.DataFrame, catalogue: pd.DataFrame, threshold: float) -> pd.DataFrame:
    """Scores joined with their service / metric / resource, and whether each is anomalous."""
    require_columns(scores, ["unique_id", "ds", "score"], "anomaly scores")
    require_columns(catalogue, ["unique_id", "service", "metric"], "catalogue")
    info_cols = ["service", "metric"] + (["resource_id"] if "resource_id" in catalogue.columns else [])
    info = catalogue.drop_duplicates("unique_id").set_index("unique_id")[info_cols]
    points = scores[["unique_id", "ds", "score"]].join(info, on="unique_id", how="left")
    unknown = points["service"].isna()
    if unknown.any():
        missing = sorted(points.loc[unknown, "unique_id"].astype(str).unique())
        warnings.warn(
            f"{len(missing)} scored series are not in the catalogue and were left out, e.g. {missing[:5]}",
            stacklevel=3,
        )
        points = points[~unknown]
    if "resource_id" not in points.columns:
        points = points.assign(resource_id=pd.NA)
    return points.assign(
        ds=points["ds"].astype(UTC_DTYPE),
        service=points["service"].astype("string"),
        anomalous=points["score"].to_numpy() >= threshold,
    )


def _service_timeline(
    points: pd.DataFrame, risk: pd.DataFrame | None, min_series: int, risk_threshold: float
) -> pd.DataFrame:
    """``service, ds, active, max_risk``: every observed time of each service and its state."""
    per_time = points.groupby(["service", "ds"], as_index=False).agg(n_anomalous=("anomalous", "sum"))
    per_time["active"] = per_time["n_anomalous"] >= min_series
    if risk is not None and not risk.empty:
        require_columns(risk, ["service", "ds", "risk"], "risk")
        r = risk.assign(service=risk["service"].astype("string"), ds=risk["ds"].astype(UTC_DTYPE))
        r = r.groupby(["service", "ds"], as_index=False).agg(max_risk=("risk", "max"))
        per_time = per_time.merge(r, on=["service", "ds"], how="outer")
        risky = per_time["max_risk"].to_numpy(dtype="float64", na_value=np.nan) >= risk_threshold
        per_time["active"] = per_time["active"].fillna(False).astype(bool) | risky
    else:
        per_time["max_risk"] = np.nan
    return per_time[["service", "ds", "active", "max_risk"]].sort_values(["service", "ds"]).reset_index(drop=True)


def _episodes(timeline: pd.DataFrame, resolve: pd.Timedelta, min_active: int = 1) -> pd.DataFrame:
    """``episode, service, start, last_active, end, max_risk`` with hysteresis of ``resolve``;
    episodes with fewer than ``min_active`` active samples are dropped, and ``start`` is the
    ``min_active``-th active sample (when the incident is raised)."""
    active = timeline[timeline["active"]]
    if active.empty:
        return pd.DataFrame()
    service = active["service"].to_numpy(dtype=object)
    new = np.r_[True, service[1:] != service[:-1]] | active["ds"].diff().gt(resolve).to_numpy(dtype=bool)
    episode = pd.Series(np.cumsum(new), index=active.index, name="episode")
    raised_at = active["ds"].groupby(episode).nth(min_active - 1)
    if raised_at.empty:  # no episode reached min_active samples (and mapping onto none fails)
        return pd.DataFrame()
    raised_at.index = episode.loc[raised_at.index].to_numpy()
    eps = active.groupby(episode).agg(
        service=("service", "first"), last_active=("ds", "max"), max_risk=("max_risk", "max")
    ).reset_index()
    eps["start"] = eps["episode"].map(raised_at)
    eps = eps[eps["start"].notna()].reset_index(drop=True)
    if eps.empty:
        return pd.DataFrame()
    last_seen = timeline.groupby("service")["ds"].max()
    resolved = eps["service"].map(last_seen) >= eps["last_active"] + resolve
    after = pd.merge_asof(
        eps[["episode", "service", "last_active"]].sort_values("last_active"),
        timeline[["service", "ds"]].rename(columns={"ds": "next_ds"}).sort_values("next_ds"),
        left_on="last_active", right_on="next_ds", by="service",
        direction="forward", allow_exact_matches=False,
    ).set_index("episode")["next_ds"]
    eps["end"] = eps["episode"].map(after).where(resolved.to_numpy())
    eps["end"] = eps["end"].astype(UTC_DTYPE)
    return eps


def _evidence_rows(points: pd.DataFrame, episodes: pd.DataFrame) -> pd.DataFrame:
    """Per ``(episode, series)``: max score and anomalous samples within the episode's active span."""
    bounds = episodes[["episode", "service", "start", "last_active"]].sort_values("start")
    tagged = pd.merge_asof(
        points.sort_values("ds"), bounds, left_on="ds", right_on="start", by="service", direction="backward"
    )
    tagged = tagged[tagged["episode"].notna() & (tagged["ds"] <= tagged["last_active"])]
    return tagged.groupby(["episode", "unique_id"], as_index=False).agg(
        service=("service", "first"),
        metric=("metric", "first"),
        resource_id=("resource_id", "first"),
        max_score=("score", "max"),
        anomalous_samples=("anomalous", "sum"),
    )


def _describe(episodes: pd.DataFrame, evidence: pd.DataFrame, threshold: float, ranking: pd.Series) -> pd.DataFrame:
    """Category, score, severity, resource and evidence JSON per episode; severity and evidence
    by the rules both builders share (:mod:`models.incidents.evidence`), on the surprise
    ``-log10(1 - score)`` of the episode's highest anomaly score against the threshold's."""
    ranked = evidence.sort_values(
        ["episode", "anomalous_samples", "max_score"], ascending=[True, False, False]
    )
    top = ranked.drop_duplicates("episode").set_index("episode")
    out = episodes.copy()
    categories = _categories(evidence, threshold)
    out["category"] = out["episode"].map(categories).fillna(UNKNOWN_CATEGORY).astype("string")
    anomalous = ranked[ranked["anomalous_samples"] > 0]
    anomaly_score = anomalous.groupby("episode")["max_score"].max()
    by_anomaly = out["episode"].map(anomaly_score)
    out["score"] = by_anomaly.fillna(out["max_risk"]).fillna(0.0).astype("float64")
    level = score_surprise(by_anomaly.to_numpy(dtype="float64", na_value=np.nan))
    out["severity"] = severity(level, float(score_surprise(threshold)))
    out["resource_id"] = out["episode"].map(top["resource_id"]).astype("string")
    out["evidence"] = [
        _evidence_json(ranked[ranked["episode"] == e], r, threshold, causes)
        for e, r, causes in zip(out["episode"], out["max_risk"], ranking, strict=True)
    ]
    out["evidence"] = out["evidence"].astype("string")
    return out


def _categories(evidence: pd.DataFrame, threshold: float) -> pd.Series:
    """Per episode, its category from its anomalous series (all its series when it was raised by
    risk alone): by :data:`METRIC_CATEGORIES` when that knows one of their metrics
    (:func:`_known_metric_categories`), else from their metrics' kinds (:func:`_kind_categories`)."""
    anomalous = evidence["anomalous_samples"] > 0
    basis = evidence[anomalous | ~anomalous.groupby(evidence["episode"]).transform("any")]
    known = _known_metric_categories(basis)
    return pd.concat([known, _kind_categories(basis[~basis["episode"].isin(known.index)], threshold)])


def _known_metric_categories(evidence: pd.DataFrame) -> pd.Series:
    """Per episode, the category of the known metric with most anomalous samples (then highest score)."""
    per_metric = evidence.assign(category=evidence["metric"].map(METRIC_CATEGORIES)).dropna(subset=["category"])
    weights = per_metric.groupby(["episode", "category"], as_index=False).agg(
        n=("anomalous_samples", "sum"), peak=("max_score", "max")
    )
    best = weights.sort_values(["episode", "n", "peak"], ascending=[True, False, False]).drop_duplicates("episode")
    return best.set_index("episode")["category"]


def _kind_categories(evidence: pd.DataFrame, threshold: float) -> pd.Series:
    """Per episode, :func:`~models.incidents.category.categorise` of the surprise ``-log10(1 - score)``
    of each metric kind (:func:`~models.incidents.category.metric_kind`) at the episode's service.

    A kind counts when it reached the anomaly threshold; in an episode raised by failure risk
    alone (nothing reached it) the episode's most surprising kinds count instead.
    """
    kinds = evidence.assign(
        kind=evidence["metric"].astype(str).map(metric_kind), surprise=surprise(evidence["max_score"])
    )
    kinds = kinds[kinds["surprise"] > 0]  # a score of 0 says nothing about what is wrong
    if kinds.empty:
        return pd.Series([], dtype="string")
    per_kind = kinds.groupby(["episode", "kind"])["surprise"].max()
    bar = float(surprise(threshold))
    categories = {}
    for episode, by_kind in per_kind.groupby(level="episode"):
        surprises = by_kind.droplevel("episode").to_dict()
        categories[episode] = categorise(surprises, surprises, min(bar, max(surprises.values())))
    return pd.Series(categories, dtype="string")


def _evidence_json(rows: pd.DataFrame, max_risk: float, threshold: float, causes: str) -> str:
    """The evidence record (:func:`models.incidents.evidence.evidence_payload`) of one episode from
    its series ``rows`` (most anomalous samples first): surprises are ``-log10(1 - score)``
    (capped at 12, a score of 1), ``evidence_level`` the highest anomalous series' and
    ``open_threshold`` the anomaly threshold's. The roll-up knows no observed or expected values;
    ``ranked_services`` are the incident's likely causes (its own service without a call graph)."""
    anomalous = rows[rows["anomalous_samples"] > 0]
    series = [
        series_record(
            unique_id=str(r.unique_id),
            service=str(r.service),
            metric=str(r.metric),
            resource_id=None if pd.isna(r.resource_id) else str(r.resource_id),
            surprise=float(surprise(r.max_score)),
            anomalous_samples=int(r.anomalous_samples),
        )
        for r in rows.head(TOP_EVIDENCE).itertuples(index=False)
    ]
    fault_type, confidence = _fault_type(rows, threshold)
    return evidence_payload(
        series=series,
        ranked_services=[c for c in str(causes).split(";") if c][:TOP_RANKED],
        evidence_level=float(surprise(anomalous["max_score"].max())) if len(anomalous) else None,
        open_threshold=float(surprise(threshold)),
        fault_type=fault_type,
        fault_type_confidence=confidence,
        max_risk=None if pd.isna(max_risk) else float(max_risk),
        anomalous_series=len(anomalous),
    )


def _fault_type(rows: pd.DataFrame, threshold: float) -> tuple[str, float]:
    """The likely fault type of one episode (:func:`models.incidents.fault_types.classify_fault`)
    from the largest surprise per metric kind among its series, a kind counting from the anomaly
    threshold's surprise. The roll-up sees only its own service's scores, no observed or expected
    values, so the rules that read a rise, a fall or a full disk cannot fire."""
    if rows.empty:
        return "unknown", 0.0
    kinds = rows.assign(kind=rows["metric"].astype(str).map(metric_kind), surprise=surprise(rows["max_score"]))
    peaks = {str(k): float(v) for k, v in kinds.groupby("kind")["surprise"].max().items()}
    return classify_fault(FaultEvidence(root=peaks, incident=peaks), float(surprise(threshold)))
