"""Detect flow: the champion incident pipeline (:mod:`models.incidents.pipeline`, registered as
``anomaly-detector`` by the train flow, which judged exactly these pages) turns the recent
telemetry and the failure predictor's risk into incidents, written to the PagerDuty outbox with
deterministic dedup keys (a re-run never opens a second incident) and resolved once their
condition clears; its detector's per-series scores go out as metrics. Its mode and settings
(stream or roll-up, ``stream_params``, the page budget's calibration) are the champion's, not
this run's configuration: a change to them pages once a train run has gated it.

In stream mode the incident engine's state is kept between runs (:mod:`flows.detect_state`,
:mod:`models.incidents.stream_resume`): a run feeds only the steps after the last one the previous
run scored, and replays its window only when that state cannot be used (first run, a new
champion version or settings, a checkpoint older than the loaded window or unreadable: the
warning and ``stream_state`` in the result say why). Samples for steps already scored are not
rescored, only counted (``stream_state.late_samples``). The per-series detector's state is kept the
same way (:mod:`flows.detect_scoring`, :mod:`models.anomaly.state_resume`; ``detector_state`` in the
result): a run scores only the new steps, and the scores of the reported window match one replay
of all the data. The checkpoints are written after the outbox, so a run that fails before them
resumes from the previous states and re-derives the same events. ``full_replay=True`` (``foresight
run detect --full-replay``) ignores both states and replays the window, then keeps the new ones.

With ``sinks.pagerduty_routing_key`` set, every pending outbox event is then delivered to the
Events API v2 (``connectors.sinks.pagerduty``: bounded retries, a delivery ledger so nothing is lost
or sent twice); without one (embedded mode) the outbox is the only output.

A source whose newest batch failed its data contract holds back only what depends on it
(:mod:`foresight.source_holds`):

- its series (the catalogue's ``source``) are left out of scoring, the stream replay and the
  failure features, so no incident, score or risk is built from them;
- a service with series from both a failed and a healthy source still pages on its healthy
  series (a broken metrics source must not silence a service that is visibly failing), but none
  of its incidents resolves while any of its series is held back: a missing signal is not a
  recovery. With the stream builder, whose incidents span a system (a connected part of the
  call graph; every service when there is none), that holds for every service of its system.
  Their resolves go out in the first run after the source's next clean batch (if the incident
  has cleared by then);
- everything else is published as in a clean run: other services' pages, events pending in the
  outbox from earlier runs, Grafana annotations, the Pushgateway's metrics (with
  ``foresight_source_contract_failed`` and ``foresight_series_held_back`` per source).

Then the run ends Failed with :class:`~foresight.source_holds.SourceContractFailedError` naming
the sources (``foresight run detect`` exits non-zero). Only configured sources count: one
removed from the settings can never send the clean batch that would clear it."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import pandas as pd
from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from connectors.sinks.pagerduty import deliver_outbox
from connectors.sinks.pagerduty_page_links import PageLinks
from features.windows import service_features
from flows.detect_scoring import score_window
from flows.detect_state import load_detector_state, load_stream_state, save_detector_state, save_stream_state
from flows.detection_sinks import annotate_incidents, push_detect_metrics, respond_to_incidents, sink_outcome
from flows.forecast_plan import NoChampionError
from flows.incident_pages import incident_events
from flows.resources import (
    NoTelemetryError,
    known_call_graph,
    open_lake,
    open_outbox,
    open_registry,
    settings_for_run,
)
from flows.retries import retry_unless_permanent
from flows.self_metrics import SELF_METRICS
from foresight.model_registry import REGISTERED
from foresight.schemas import empty_incident_history
from foresight.settings import Settings
from foresight.source_holds import SourceHold, source_hold
from foresight.timeutil import utc_timestamp
from models.evaluation.gate import match_incidents, operating_threshold
from models.incidents.base import IncidentInputs
from models.incidents.pipeline import as_pipeline

if TYPE_CHECKING:
    from models.anomaly.state_resume import ResumeReport
    from models.incidents.pipeline import IncidentPipeline
    from models.incidents.stream_resume import Resumed

# Failure-risk windows need this much history before the scored window; the anomaly detector
# says how much its causal baselines need (``context_length``), and the larger one is loaded.
FEATURE_WARMUP = pd.Timedelta(hours=3)


@task(retries=2, retry_delay_seconds=[2, 10], retry_condition_fn=retry_unless_permanent, cache_policy=NO_CACHE)
def load_recent(settings: Settings, warmup: pd.Timedelta) -> dict[str, Any]:
    lake = open_lake(settings)
    newest = lake.sql("select max(ds) as newest from telemetry", ["telemetry"])["newest"].iloc[0]
    if pd.isna(newest):
        raise NoTelemetryError(f"no telemetry in the lake at {settings.lake_location}; run the ingest flow first")
    newest = utc_timestamp(newest, "newest telemetry ds")
    window_start = newest - pd.Timedelta(hours=settings.detect.lookback_hours)
    telemetry = lake.read("telemetry", start=window_start - warmup)
    logs = lake.read("logs", start=window_start - warmup) if lake.exists("logs") else None
    truth = lake.read("incidents") if lake.exists("incidents") else empty_incident_history()
    batches = lake.read("batches") if lake.exists("batches") else pd.DataFrame()
    return {"telemetry": telemetry, "catalogue": lake.read("catalogue"), "logs": logs, "truth": truth,
            "window_start": window_start, "batches": batches}


# No Prefect retries: MLflow's client retries each request (settings.mlflow), one layer.
@task(cache_policy=NO_CACHE)
def load_champions(settings: Settings) -> dict[str, Any]:
    """Per family ``(model, version)`` of its champion; the anomaly family's as an incident
    pipeline (a bare detector registered before pipelines is wrapped with the configured settings)."""
    registry = open_registry(settings)
    out: dict[str, Any] = {}
    for family in ("anomaly", "failure"):
        champion = registry.champion(REGISTERED[family])
        if champion is None:
            if family == "anomaly":
                raise NoChampionError(f"{REGISTERED[family]} has no champion yet; run the train flow first")
            # Anomalies alone still make incidents; failure risk joins once a predictor earns it.
            get_run_logger().warning("%s has no champion yet: incidents from anomalies only", REGISTERED[family])
            out[family] = (None, None)
            continue
        model = registry.load_model(REGISTERED[family])
        out[family] = (as_pipeline(model, settings.detect) if family == "anomaly" else model, champion.version)
    return out


@task(retries=3, retry_delay_seconds=[1, 5, 15], retry_condition_fn=retry_unless_permanent, cache_policy=NO_CACHE)
def write_outbox(settings: Settings, events: list[dict[str, Any]]) -> dict[str, int]:
    report = open_outbox(settings).append(events)
    return {"written": report.written, "skipped_duplicates": report.skipped_duplicates}


# No Prefect retries: the sender retries each event itself, and a retried task would resend
# nothing anyway (the ledger), only wait again.
@task(cache_policy=NO_CACHE)
def page_pagerduty(settings: Settings) -> dict[str, Any]:
    """Deliver the outbox's pending events to PagerDuty; what was delivered, suppressed, left pending."""
    report = deliver_outbox(settings)
    if report is None:  # pragma: no cover - callers only page with a routing key
        raise ValueError("page_pagerduty needs sinks.pagerduty_routing_key")
    return report.as_dict()


def held_back(settings: Settings, batches: pd.DataFrame, catalogue: pd.DataFrame,
              pipeline: IncidentPipeline) -> SourceHold:
    """What this run leaves out because a configured source's newest batch failed its contract;
    services stay open across the system the pipeline's incidents can span (the stream's: a
    connected part of the call graph; the roll-up's: the service)."""
    services = sorted(str(s) for s in catalogue["service"].dropna().unique() if str(s))
    systems = pipeline.builder.systems(services, known_call_graph(settings))
    return source_hold(batches, catalogue, configured={source.name for source in settings.sources},
                       systems=systems)


@flow(name="detect", log_prints=True, on_completion=SELF_METRICS, on_failure=SELF_METRICS)
def detect(config_file: str | None = None, full_replay: bool = False) -> dict[str, Any]:
    """Score recent telemetry, raise incidents with evidence, page (via the outbox) once each;
    ``full_replay`` ignores the kept states (detector and incident stream) and replays the window."""
    settings = settings_for_run(config_file)
    logger = get_run_logger()
    champions = load_champions(settings)
    pipeline, detector_version = champions["anomaly"]
    predictor, predictor_version = champions["failure"]
    data = load_recent(settings, max(pipeline.context_length, FEATURE_WARMUP))
    hold = held_back(settings, data["batches"], data["catalogue"], pipeline)
    if hold:
        logger.error("held back %s: newest batch failed its data contract; %d series left out, incidents of %s "
                     "stay open until its next clean batch", ", ".join(hold.sources), len(hold.series),
                     ", ".join(sorted(hold.kept_open)) or "no service")
    telemetry, catalogue = hold.healthy(data["telemetry"]), hold.healthy(data["catalogue"])
    window_start = data["window_start"]

    # Each batch of whole services resumes its kept detector state, or all replay the window.
    forced = "full replay requested (full_replay=True)"
    kept, no_kept = (None, forced) if full_replay else load_detector_state(settings)
    window = score_window(pipeline.detector, str(detector_version), telemetry, catalogue, window_start,
                          settings.detect.scoring_batches, kept, no_kept, pipeline.builder.needs_scores)
    scores = window.scores
    detector_state = _replay_report(window.report, "per-series detector", logger)
    # Only a failure predictor reads them (its risk and each page's top features).
    features = service_features(telemetry, catalogue, data["logs"]) if predictor is not None and len(telemetry) \
        else pd.DataFrame()
    risk = None
    if predictor is not None and len(features):
        risk = predictor.predict(features)
        risk = risk[risk["ds"] >= window_start]
    cfg = settings.detect.model_copy(update={"risk_threshold": operating_threshold(predictor, settings.detect)})
    # The champion's mode, settings and page calibration; the warm-up before window_start is replayed.
    inputs = IncidentInputs(telemetry, catalogue, since=window_start, scores=scores, risk=risk,
                            risk_threshold=cfg.risk_threshold, call_graph=known_call_graph(settings))
    state, no_state = (None, forced) if full_replay or pipeline.settings.mode != "stream" else load_stream_state(settings)
    built, resumed = pipeline.resumable_incidents(inputs, state, str(detector_version), no_state_reason=no_state)
    incidents = hold.keep_open(built.incidents)
    stream_state = _stream_report(resumed, logger)

    published = publish_incidents(settings, incidents, features=features, predictor=predictor,
                                  detector_version=detector_version, predictor_version=predictor_version,
                                  logger=logger, telemetry=telemetry, catalogue=catalogue,
                                  mode=pipeline.settings.mode)
    outbox, paging = published["outbox"], published["paging"]
    # Both sinks are no-ops when unconfigured; a sink that is down shows in the result instead of
    # failing a run whose pages already went out.
    if resumed is not None:  # after the outbox: a run that failed before it resumes from the older state
        resumed.state.forget_resolved(window_start, kept_open=hold.kept_open)
        stream_state["checkpoint"] = save_stream_state(settings, resumed.state)
    if window.state is not None:
        detector_state["checkpoint"] = save_detector_state(settings, window.state)
    annotated = annotate_incidents(settings, incidents, return_state=True)
    responded = respond_to_incidents(settings, incidents, return_state=True)  # docs/response.md
    pushed = push_detect_metrics(settings, scores, risk, incidents, catalogue, cfg.risk_threshold,
                                 sources=hold.verdicts(), return_state=True)

    truth = data["truth"]
    truth = truth[truth["start"] >= window_start] if len(truth) else truth
    evaluation = match_incidents(incidents, truth, settings.detect) if len(truth) else {}
    create_markdown_artifact(key="detect-summary",
                             markdown=_summary_markdown(incidents, outbox, paging, evaluation, hold, stream_state,
                                                       detector_state),
                             description="Incidents raised and how they compare with ground truth")
    result = {
        "incidents": len(incidents), "open": int(incidents["end"].isna().sum()) if len(incidents) else 0,
        "events_written": outbox["written"], "events_skipped": outbox["skipped_duplicates"],
        "blocked_sources": list(hold.sources), "held_back_series": len(hold.series),
        "kept_open_services": sorted(hold.kept_open), "stream_state": stream_state,
        "detector_state": detector_state,
        "paging": paging, "evaluation": evaluation,
        "anomaly_detector_version": detector_version, "failure_predictor_version": predictor_version,
        "grafana_annotations": sink_outcome(annotated),
        "pushgateway": sink_outcome(pushed),
        "response": sink_outcome(responded),
    }
    if hold:
        # Last, after everything healthy went out: the run's state shows the held-back sources.
        raise hold.error(result)
    return result


def _stream_report(resumed: Resumed | None, logger: logging.Logger | logging.LoggerAdapter) -> dict[str, Any]:  # type: ignore[type-arg]
    """The run summary's ``stream_state``; a full replay says why (a warning unless it is the first run)."""
    if resumed is None:
        return {"resumed": False, "full_replay_reason": "no incident stream state (roll-up mode or no telemetry)",
                "steps_scored": 0, "late_samples": 0, "last_step": None}
    return _replay_report(resumed.report, "incident stream", logger)


def _replay_report(report: ResumeReport, what: str,
                   logger: logging.Logger | logging.LoggerAdapter) -> dict[str, Any]:  # type: ignore[type-arg]
    """``report`` for the run summary; a full replay says why (a warning unless it is the first
    run, one asked for, or a detector that keeps no state)."""
    if not report.resumed:
        reason = report.full_replay_reason
        expected = reason.startswith(("no checkpoint yet", "full replay requested")) or "no step-wise state" in reason
        (logger.info if expected else logger.warning)("%s replayed in full (%d steps): %s", what,
                                                      report.steps_scored, report.full_replay_reason)
    if report.late_samples:
        logger.warning("%s: %d late samples (at or before the checkpointed step %s) were not scored",
                       what, report.late_samples, report.last_step)
    return report.as_dict()


def publish_incidents(
    settings: Settings,
    incidents: pd.DataFrame,
    *,
    features: pd.DataFrame,
    predictor: Any,
    detector_version: str,
    predictor_version: str | None,
    logger: logging.Logger | logging.LoggerAdapter | None = None,  # type: ignore[type-arg]
    telemetry: pd.DataFrame | None = None,
    catalogue: pd.DataFrame | None = None,
    mode: str | None = None,
) -> dict[str, Any]:
    """Incidents -> outbox events -> PagerDuty (with a routing key); returns the outbox and paging reports.

    Pages explain themselves (:mod:`flows.incident_pages`): ``telemetry`` and ``catalogue`` give
    a resource fault's instance nearest full and its time to full, ``mode`` the builder named.

    Every pending event is delivered, this run's and those earlier runs left pending. What a
    failed source holds back is already out of ``incidents`` (:func:`detect`). ``paging`` is
    None in embedded mode.
    """
    logger = logger or logging.getLogger(__name__)
    events = incident_events(incidents, links=PageLinks.from_sinks(settings.sinks),
                             known_keys=open_outbox(settings).dedup_keys() if len(incidents) else set(),
                             detector_version=str(detector_version), predictor_version=predictor_version,
                             predictor=predictor, features=features, telemetry=telemetry, catalogue=catalogue,
                             mode=mode)
    outbox = write_outbox(settings, events) if events else {"written": 0, "skipped_duplicates": 0}
    paging = page_pagerduty(settings) if settings.sinks.pagerduty_routing_key is not None else None
    if paging and (paging["pending"] or paging["failures"]):
        logger.warning("PagerDuty: %d events still pending after this run (%s)", paging["pending"],
                       "; ".join(f"{f['event_action']} {f['dedup_key']}: {f['status']}" for f in paging["failures"]))
    return {"outbox": outbox, "paging": paging}


def _summary_markdown(incidents: pd.DataFrame, outbox: dict[str, int], paging: dict[str, Any] | None,
                      evaluation: dict[str, float], hold: SourceHold, stream_state: dict[str, Any],
                      detector_state: dict[str, Any]) -> str:
    lines = [f"# Detect\n\n{len(incidents)} incidents; outbox: {outbox['written']} events written, "
             f"{outbox['skipped_duplicates']} already there.\n"]
    how = "resumed from its checkpoint" if stream_state["resumed"] else f"replayed ({stream_state['full_replay_reason']})"
    lines.append(f"Incident stream {how}: {stream_state['steps_scored']} steps scored, "
                 f"{stream_state['late_samples']} late samples not rescored.\n")
    how = "resumed from its checkpoint" if detector_state["resumed"] else \
        f"replayed ({detector_state['full_replay_reason']})"
    lines.append(f"Per-series detector {how}: {detector_state['steps_scored']} steps scored, "
                 f"{detector_state['late_samples']} late samples not rescored.\n")
    if hold:
        lines.append(f"**Held back**: {', '.join(hold.sources)} (newest batch failed its data contract): "
                     f"{len(hold.series)} series left out; incidents of {', '.join(sorted(hold.kept_open)) or 'no service'} "
                     "stay open until its next clean batch.\n")
    if paging is not None:
        lines.append(f"PagerDuty: {paging['delivered']} delivered, {paging['suppressed']} suppressed (cleared "
                     f"before delivery), {paging['pending']} pending.\n")
    if evaluation:
        lines.append("Against ground truth: " + ", ".join(f"{k} {v:.2f}" for k, v in evaluation.items()) + "\n")
    if len(incidents):
        lines += ["| service | category | start | end | severity |", "|---|---|---|---|---|"]
        for row in incidents.head(30).itertuples():
            lines.append(f"| {row.service} | {row.category} | {row.start} | {row.end} | {row.severity} |")
    return "\n".join(lines)
