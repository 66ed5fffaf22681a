"""Detection results as Prometheus metrics, pushed to a Pushgateway after each detect run.

The detect flow is a batch job, so it pushes (Prometheus then scrapes the Pushgateway with
``honor_labels: true``) rather than serving ``/metrics``. Each push builds a fresh
``CollectorRegistry`` (no global state; a second run in one process cannot see the first's
series) and replaces the whole group ``job="foresight-detect", instance=<instance>`` (HTTP PUT),
so a series or service that is no longer scored disappears instead of going stale.

Metrics (the incidents dashboard's PromQL reads these names):

- ``foresight_anomaly_score{service, unique_id, metric}``: newest anomaly score per series, in [0, 1]
- ``foresight_failure_risk{service}``: newest failure risk per service, in [0, 1]
- ``foresight_incident_open{service}``: 1 while the service has an open incident, else 0
- ``foresight_incident_open_critical{service}``: 1 while one of them has severity ``critical``
  (the provisioned "Critical incident open" alert rule reads it), else 0
- ``foresight_anomaly_threshold`` / ``foresight_failure_risk_threshold``: the operating thresholds
- ``foresight_source_contract_failed{source}``: 1 while the source's newest batch failed its data
  contract (its series are held back from detection), else 0; one per source with a verdict
- ``foresight_series_held_back{source}``: how many of the source's series the run left out
- ``foresight_detect_last_success_timestamp_seconds``: when the run finished (staleness alerts).
  A run that held back a source still sets it (it scored and paged everything else); alert on
  ``foresight_source_contract_failed == 1`` for the source itself

Values describe the newest scored sample; Prometheus stamps them with its scrape time, so the
metrics show the detector's view over wall-clock time, not the telemetry's own timestamps.

A gateway behind basic auth is given as ``https://user:password@host:9091`` (percent-encode
``@ : /`` in the password). The credentials are taken out of the URL, which urllib would
otherwise try to resolve as part of the host name, and sent as an ``Authorization`` header; they
never appear in an error message.
"""

from __future__ import annotations

import re
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

import pandas as pd
from prometheus_client import CollectorRegistry, Gauge, push_to_gateway
from prometheus_client.exposition import basic_auth_handler, default_handler

from foresight.redact import redact_url
from foresight.schemas import require_columns

JOB = "foresight-detect"
ANOMALY_SCORE = "foresight_anomaly_score"
FAILURE_RISK = "foresight_failure_risk"
INCIDENT_OPEN = "foresight_incident_open"
INCIDENT_OPEN_CRITICAL = "foresight_incident_open_critical"
ANOMALY_THRESHOLD = "foresight_anomaly_threshold"
RISK_THRESHOLD = "foresight_failure_risk_threshold"
LAST_SUCCESS = "foresight_detect_last_success_timestamp_seconds"
SOURCE_CONTRACT_FAILED = "foresight_source_contract_failed"
SERIES_HELD_BACK = "foresight_series_held_back"
SOURCE_COLUMNS = ("source", "contract_failed", "series_held_back")


@dataclass(frozen=True)
class DetectionSnapshot:
    """The newest value of every pushed series, as plain rows (what a push will contain)."""

    scores: pd.DataFrame  # service, unique_id, metric, score
    risk: pd.DataFrame  # service, risk
    open_incidents: pd.DataFrame  # service, open (0/1), critical (0/1: an open one is critical)
    sources: pd.DataFrame = field(default_factory=lambda: _no_sources())  # source, contract_failed, series_held_back


def detection_snapshot(
    scores: pd.DataFrame,
    risk: pd.DataFrame | None,
    incidents: pd.DataFrame | None,
    catalogue: pd.DataFrame,
    sources: pd.DataFrame | None = None,
) -> DetectionSnapshot:
    """Newest score per series and risk per service, and which services have an open incident.

    ``scores``: ``unique_id, ds, score``; ``risk``: ``service, ds, risk`` (optional);
    ``incidents``: ``service, end`` (``end`` NaT = open; optional); ``catalogue`` maps series
    to ``service`` and ``metric``; scored series missing from it are left out with a warning (a
    metric without its service label would be useless on the dashboard). ``sources``: ``source,
    contract_failed`` (0/1) ``, series_held_back`` per source (optional).
    """
    require_columns(scores, ["unique_id", "ds", "score"], "anomaly scores")
    require_columns(catalogue, ["unique_id", "service", "metric"], "catalogue")
    info = catalogue.drop_duplicates("unique_id", keep="last").set_index("unique_id")[["service", "metric"]]
    newest = scores.sort_values("ds", kind="stable").drop_duplicates("unique_id", keep="last")
    joined = newest[["unique_id", "score"]].join(info, on="unique_id", how="left")
    unknown = joined["service"].isna()
    if unknown.any():
        # Like the incident roll-up: one uncatalogued series must not cost the whole push.
        missing = sorted(joined.loc[unknown, "unique_id"].astype(str))[:5]
        warnings.warn(
            f"{int(unknown.sum())} scored series are not in the catalogue and were not pushed, e.g. {missing}",
            stacklevel=2,
        )
        joined = joined[~unknown]
    score_rows = joined[["service", "unique_id", "metric", "score"]].astype(
        {"service": str, "unique_id": str, "metric": str, "score": "float64"}
    )
    if risk is not None and not risk.empty:
        require_columns(risk, ["service", "ds", "risk"], "risk")
        latest = risk.sort_values("ds", kind="stable").drop_duplicates("service", keep="last")
        risk_rows = latest[["service", "risk"]].astype({"service": str, "risk": "float64"})
    else:
        risk_rows = pd.DataFrame(
            {"service": pd.Series([], dtype=str), "risk": pd.Series([], dtype="float64")}
        )
    services = sorted(set(score_rows["service"]) | set(risk_rows["service"]))
    open_services: set[str] = set()
    critical_services: set[str] = set()
    if incidents is not None and not incidents.empty:
        require_columns(incidents, ["service", "end"], "incidents")
        still_open = incidents[incidents["end"].isna()]
        open_services = set(still_open["service"].astype(str))
        if "severity" in still_open.columns:
            critical_services = set(still_open.loc[still_open["severity"] == "critical", "service"].astype(str))
        services = sorted(set(services) | set(incidents["service"].astype(str)))
    open_rows = pd.DataFrame({"service": services, "open": [int(s in open_services) for s in services],
                              "critical": [int(s in critical_services) for s in services]})
    if sources is None or sources.empty:
        source_rows = _no_sources()
    else:
        require_columns(sources, list(SOURCE_COLUMNS), "source verdicts")
        source_rows = sources[list(SOURCE_COLUMNS)].astype(
            {"source": str, "contract_failed": "int64", "series_held_back": "int64"}
        ).sort_values("source").reset_index(drop=True)
    return DetectionSnapshot(
        score_rows.sort_values(["service", "unique_id"]).reset_index(drop=True),
        risk_rows.sort_values("service").reset_index(drop=True),
        open_rows,
        source_rows,
    )


def _no_sources() -> pd.DataFrame:
    return pd.DataFrame({"source": pd.Series([], dtype=str), "contract_failed": pd.Series([], dtype="int64"),
                         "series_held_back": pd.Series([], dtype="int64")})


def detection_registry(
    snapshot: DetectionSnapshot,
    *,
    anomaly_threshold: float | None = None,
    risk_threshold: float | None = None,
    finished_at: float | None = None,
) -> CollectorRegistry:
    """A fresh registry holding the snapshot's gauges (nothing registered globally)."""
    registry = CollectorRegistry()
    score = Gauge(
        ANOMALY_SCORE,
        "Newest anomaly score of a series (0..1, tail probability).",
        ["service", "unique_id", "metric"],
        registry=registry,
    )
    for row in snapshot.scores.itertuples(index=False):
        score.labels(service=row.service, unique_id=row.unique_id, metric=row.metric).set(row.score)
    risk = Gauge(FAILURE_RISK, "Newest failure risk of a service (0..1).", ["service"], registry=registry)
    for row in snapshot.risk.itertuples(index=False):
        risk.labels(service=row.service).set(row.risk)
    incident = Gauge(
        INCIDENT_OPEN, "1 while the service has an open Foresight incident.", ["service"], registry=registry
    )
    critical = Gauge(INCIDENT_OPEN_CRITICAL, "1 while the service has an open critical Foresight incident.",
                     ["service"], registry=registry)
    for row in snapshot.open_incidents.itertuples(index=False):
        incident.labels(service=row.service).set(row.open)
        critical.labels(service=row.service).set(getattr(row, "critical", 0))
    failed = Gauge(SOURCE_CONTRACT_FAILED, "1 while the source's newest batch failed its data contract.",
                   ["source"], registry=registry)
    held = Gauge(SERIES_HELD_BACK, "Series of the source left out of detection (contract failed).",
                 ["source"], registry=registry)
    for row in snapshot.sources.itertuples(index=False):
        failed.labels(source=row.source).set(row.contract_failed)
        held.labels(source=row.source).set(row.series_held_back)
    if anomaly_threshold is not None:
        Gauge(
            ANOMALY_THRESHOLD, "Anomaly score at which a series counts as anomalous.", registry=registry
        ).set(anomaly_threshold)
    if risk_threshold is not None:
        Gauge(RISK_THRESHOLD, "Failure risk at which a service counts as at risk.", registry=registry).set(
            risk_threshold
        )
    Gauge(LAST_SUCCESS, "Unix time the detect run finished.", registry=registry).set(
        time.time() if finished_at is None else finished_at
    )
    return registry


def push_detection_metrics(
    gateway_url: str,
    scores: pd.DataFrame,
    risk: pd.DataFrame | None,
    incidents: pd.DataFrame | None,
    catalogue: pd.DataFrame,
    *,
    instance: str = "foresight",
    anomaly_threshold: float | None = None,
    risk_threshold: float | None = None,
    timeout: float = 10.0,
    sources: pd.DataFrame | None = None,
) -> DetectionSnapshot:
    """Push the detect run's metrics, replacing the group ``job=foresight-detect, instance``.

    Raises ``ValueError`` for a gateway URL without scheme and host, and the Pushgateway's
    HTTP error (``urllib.error.URLError`` / ``HTTPError``) when the push fails; the caller's
    Prefect task owns retries. Credentials in the URL go as basic auth. Returns what was pushed.
    """
    gateway, credentials = split_credentials(gateway_url)
    if not instance:
        raise ValueError("instance must not be empty (it is part of the grouping key)")
    snapshot = detection_snapshot(scores, risk, incidents, catalogue, sources)
    registry = detection_registry(
        snapshot, anomaly_threshold=anomaly_threshold, risk_threshold=risk_threshold
    )
    push_to_gateway(
        gateway,
        job=JOB,
        registry=registry,
        grouping_key={"instance": instance},
        timeout=timeout,
        handler=push_handler(credentials),
    )
    return snapshot


def push_handler(credentials: tuple[str, str] | None) -> Callable[..., Callable[[], None]]:
    """``push_to_gateway``'s handler: plain, or basic auth with the credentials :func:`split_credentials` took out."""
    return default_handler if credentials is None else _basic_auth(*credentials)


def split_credentials(gateway_url: str) -> tuple[str, tuple[str, str] | None]:
    """``(url without user info, (user, password) or None)``; percent-escapes in the user info are
    decoded. Raises ``ValueError`` (with the credentials masked) unless the URL is http(s) with a host."""
    if not re.match(r"^https?://[^/]+", gateway_url):
        raise ValueError(
            f"pushgateway URL must start with http:// or https://, got {redact_url(gateway_url)!r}"
        )
    parts = urlsplit(gateway_url)
    userinfo, at, host = parts.netloc.rpartition("@")
    if not host:
        raise ValueError(f"pushgateway URL has no host: {redact_url(gateway_url)!r}")
    bare = urlunsplit(parts._replace(netloc=host))
    if not at:
        return bare, None
    user, _, password = userinfo.partition(":")
    return bare, (unquote(user), unquote(password))


def _basic_auth(username: str, password: str) -> Callable[..., Callable[[], None]]:
    """A ``push_to_gateway`` handler sending ``Authorization: Basic`` (prometheus_client's own)."""
    def handler(
        url: str, method: str, timeout: float | None, headers: list[Any], data: bytes
    ) -> Callable[[], None]:
        return basic_auth_handler(url, method, timeout, headers, data, username, password)

    return handler
