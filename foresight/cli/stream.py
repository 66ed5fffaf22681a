"""``foresight stream``: the long-running stream processor (docs/stream.md).

Builds the processor from the settings (``stream`` section, lake, outbox, the champion incident
pipeline's stream settings and calibration), serves its Prometheus metrics, and runs until Ctrl-C
or SIGTERM, which stop the loop after a final checkpoint and commit.
"""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path
from types import FrameType
from typing import Any

import typer

from foresight.cli.runtime import console

log = logging.getLogger(__name__)


def stream(
    config: Path = typer.Option(None, "--config", help="Optional YAML settings file."),
    metrics_port: int = typer.Option(
        None, "--metrics-port", help="Serve /metrics here (default: stream.metrics_port; 0: off)."
    ),
) -> None:
    """Consume metrics and raw logs from Kafka; score, aggregate and page as they arrive."""
    from flows.resources import plugin_problems  # lazy: fast --help
    from foresight.settings import load_settings  # lazy: fast --help

    settings = load_settings(config, checks=(plugin_problems,))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    stop = threading.Event()

    def _stop(signum: int, frame: FrameType | None) -> None:
        log.info("stream: signal %d, stopping after a checkpoint", signum)
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _stop)
    processor = build_processor(settings, metrics_port=metrics_port)
    console.print(
        f"stream: group {settings.stream.group_id!r} on {settings.stream.metrics_topic!r} + "
        f"{settings.stream.logs_topic!r} ({settings.stream.client} client); Ctrl-C stops"
    )
    processor.run(stop)
    console.print("stream: stopped after a checkpoint")


def build_processor(settings: Any, *, metrics_port: int | None = None) -> Any:
    """A :class:`~streaming.processor.StreamProcessor` wired from ``settings``."""
    from prometheus_client import CollectorRegistry, start_http_server  # lazy: fast --help

    from connectors.sinks.checkpoint_store import CheckpointStore  # lazy: fast --help
    from connectors.sinks.pagerduty_page_links import PageLinks  # lazy: fast --help
    from connectors.sources.kafka.stream_client import (  # lazy: fast --help
        open_consumer,
        open_producer,
        topic_options,
    )
    from flows.resources import known_call_graph, open_lake, open_outbox  # lazy: fast --help
    from response.from_settings import respond  # lazy: fast --help
    from streaming.keyed_scoring import KeyScorer  # lazy: fast --help
    from streaming.log_steps import LOG_FEATURES  # lazy: fast --help
    from streaming.metrics import StreamMetrics  # lazy: fast --help
    from streaming.processor import ProcessorConfig, StreamProcessor  # lazy: fast --help

    cfg = settings.stream
    options = topic_options(
        cfg.bootstrap_servers,
        cfg.group_id,
        cfg.metrics_topic,
        cfg.logs_topic,
        cfg.dead_letter_topic,
        **cfg.kafka_options,
    )
    pipeline, version = champion_pipeline(settings)
    call_graph = known_call_graph(settings) or {}
    stream_settings, window = pipeline.settings.stream, pipeline.settings.rollup.resolve_after
    log_series = [name for name, _ in LOG_FEATURES] if cfg.log_features else []

    def new_scorer(key: str) -> KeyScorer:
        return KeyScorer(
            key,
            stream_settings,
            identity_window=window,
            calibration=pipeline.calibration,
            call_graph=call_graph,
            discovery_steps=cfg.discovery_steps,
            open_steps=cfg.open_steps,
            log_series=log_series,
        )

    registry = CollectorRegistry()
    port = cfg.metrics_port if metrics_port is None else metrics_port
    if port:
        start_http_server(port, registry=registry)
    config = ProcessorConfig(
        group_id=cfg.group_id,
        metrics_topic=cfg.metrics_topic,
        logs_topic=cfg.logs_topic,
        incidents_topic=cfg.incidents_topic,
        dead_letter_topic=cfg.dead_letter_topic,
        checkpoint_seconds=cfg.checkpoint_seconds,
        checkpoint_messages=cfg.checkpoint_messages,
        lake_seconds=cfg.lake_seconds,
        max_future_seconds=cfg.max_future_seconds,
        retain_minutes=cfg.retain_minutes,
        log_features=cfg.log_features,
        log_grace_seconds=cfg.log_grace_seconds,
        model_version=version,
        page_links=PageLinks.from_sinks(settings.sinks),
    )
    return StreamProcessor(
        config,
        consumer_factory=lambda hooks: open_consumer(cfg.client, options, hooks),
        producer=open_producer(cfg.client, options),
        checkpoints=CheckpointStore(settings.stream_checkpoint_url),
        lake=open_lake(settings),
        outbox=open_outbox(settings),
        metrics=StreamMetrics(registry),
        new_scorer=new_scorer,
        new_miner=new_miner,
        responder=(lambda records: respond(settings, records)) if settings.response.enabled else None,
    )


def new_miner(state: dict[str, Any] | None) -> Any:
    """A template miner (features.logs.miner), new or from its checkpointed state."""
    from features.logs.miner import TemplateMiner  # lazy: fast --help

    return TemplateMiner() if state is None else TemplateMiner.from_state(state)


def champion_pipeline(settings: Any) -> tuple[Any, str]:
    """The registered champion incident pipeline and its version; without one (or without
    MLflow) the configured detect settings, uncalibrated, and the version ``unregistered``."""
    from flows.resources import open_registry  # lazy: fast --help
    from foresight.model_registry import REGISTERED  # lazy: fast --help
    from models.incidents.pipeline import IncidentPipeline, as_pipeline  # lazy: fast --help
    from models.incidents.settings import PipelineSettings  # lazy: fast --help

    try:
        registry = open_registry(settings)
        champion = registry.champion(REGISTERED["anomaly"])
        if champion is not None:
            pipeline = as_pipeline(registry.load_model(REGISTERED["anomaly"]), settings.detect)
            if pipeline.settings.mode != "stream":
                log.warning(
                    "stream: the champion pages in %s mode; the stream processor uses its stream "
                    "settings with the incident engine",
                    pipeline.settings.mode,
                )
            return pipeline, str(champion.version)
    except Exception as exc:  # the stream must run without a registry; it says so
        log.warning(
            "stream: no champion loaded (%s: %s); using the configured detect settings",
            type(exc).__name__,
            exc,
        )
    log.warning("stream: no champion anomaly-detector; incidents use detect.stream_params, uncalibrated")
    return IncidentPipeline(None, PipelineSettings.from_detect(settings.detect)), "unregistered"
