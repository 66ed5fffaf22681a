"""``foresight bench stream`` and ``foresight bench stream-latency``: the stream processor's
throughput on raw log lines and its detection latency, on a throwaway tansu broker started with
the local stack's launcher (or a broker given with ``--bootstrap``)."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import typer
from rich.table import Table

from foresight.cli.local_stack.launcher import free_port, spawn, terminate, wait_healthy
from foresight.cli.local_stack.servers import INSTALL_HINTS, find_binary, tansu_spec
from foresight.cli.runtime import console, quiet_runtime

commands = typer.Typer()  # joined into ``foresight bench`` (foresight.cli.bench)

BOOTSTRAP_HELP = "A running broker (host:port); default: start a throwaway tansu broker (memory storage)."


@contextmanager
def broker(bootstrap: str | None) -> Iterator[str]:
    """``bootstrap`` as given, or a memory-storage tansu on a free port for the block."""
    if bootstrap:
        yield bootstrap
        return
    binary = find_binary("tansu")
    if binary is None:
        console.print(f"[red]no tansu broker binary: {INSTALL_HINTS['tansu']}[/red]")
        raise typer.Exit(1)
    port = free_port()
    spec = tansu_spec(binary, port)
    with tempfile.TemporaryDirectory(prefix="foresight-bench-tansu-") as tmp:
        log = Path(tmp) / "tansu.log"
        pid = spawn(spec.args, log)
        try:
            wait_healthy(spec, pid, log, timeout=30)
            yield f"127.0.0.1:{port}"
        finally:
            terminate(pid, spec.binary, grace=5)


@commands.command("stream")
def bench_stream(
    lines: int = typer.Option(1_000_000, "--lines", min=1, help="Raw log lines to produce and process."),
    batch_lines: int = typer.Option(
        500, "--batch-lines", min=1, help="Lines per Kafka message (1: one line per message)."
    ),
    partitions: int = typer.Option(1, "--partitions", min=1, help="Partitions of the logs topic."),
    stages: bool = typer.Option(True, "--stages/--no-stages", help="Also time each stage alone."),
    bootstrap: str = typer.Option(None, "--bootstrap", help=BOOTSTRAP_HELP),
    client: str = typer.Option(
        "confluent", "--client", help="The processor's Kafka client (stream.client): confluent or kafka-python."
    ),
) -> None:
    """Raw log lines produced to Kafka, then consumed, parsed, aggregated and written by the stream
    processor: lines/s end to end and per stage, and peak memory."""
    quiet_runtime()
    from bench.stream import run  # lazy: fast --help
    from connectors.sources.kafka.stream_client import CLIENTS  # lazy: fast --help

    if client not in CLIENTS:
        raise typer.BadParameter(f"{client!r}: choose one of {', '.join(CLIENTS)}", param_hint="--client")
    with broker(bootstrap) as address:
        figures = run(
            address, n_lines=lines, batch_lines=batch_lines, partitions=partitions, stages=stages, client=client
        )
    shape = "one line per message" if batch_lines == 1 else f"batches of {batch_lines} lines"
    table = Table(
        title=f"Stream processor on {lines:,} raw log lines ({figures.messages:,} messages, {shape}, "
        f"{partitions} partition(s), {client} client)"
    )
    for column in ("stage", "seconds", "lines/s", "lines per CPU-second"):
        table.add_column(column, justify="left" if column == "stage" else "right")
    for stage in (figures.end_to_end, *figures.stages):
        table.add_row(stage.name, f"{stage.wall:.2f}", f"{stage.rate:,.0f}", f"{stage.per_core:,.0f}")
    table.add_row(
        "(produce, not in the pipeline)", f"{figures.produce.wall:.2f}", f"{figures.produce.rate:,.0f}", ""
    )
    console.print(table)
    console.print(
        f"templates mined: {figures.templates}; aggregate rows written by the stage run: {figures.rows_written:,}"
    )
    console.print(f"peak RSS after end to end: {figures.peak_rss_mib:,.0f} MiB", end="")
    if figures.stages:
        console.print(f" (after the stages, which hold every record: {figures.stages_peak_rss_mib:,.0f} MiB)")
    else:
        console.print()
    console.print(
        f"end to end: {figures.end_to_end.rate:,.0f} lines/s in one process, "
        f"{figures.end_to_end.per_core:,.0f} lines per CPU-second (goal: 100,000 per core)"
    )


@commands.command("stream-latency")
def bench_stream_latency(
    series: int = typer.Option(10_000, "--series", min=4, help="Series in all (4 per instance)."),
    services: int = typer.Option(100, "--services", min=1, help="Services (message keys) they belong to."),
    step: float = typer.Option(10.0, "--step", min=0.1, help="Seconds between a series' samples."),
    warmup_steps: int = typer.Option(20, "--warmup-steps", min=5, help="Steps of history, sent compressed."),
    live_steps: int = typer.Option(9, "--live-steps", min=3, help="Steps streamed at real pace."),
    faulty: int = typer.Option(20, "--faulty", min=1, help="Services given a fault in the live phase."),
    partitions: int = typer.Option(4, "--partitions", min=1, help="Partitions of the input topics."),
    bootstrap: str = typer.Option(None, "--bootstrap", help=BOOTSTRAP_HELP),
) -> None:
    """Produce time of the sample that opens an incident to the incident on the incidents topic:
    p50 / p99, and whether the processor keeps up (consumer lag not growing)."""
    quiet_runtime()
    from bench.stream_latency import run  # lazy: fast --help

    with broker(bootstrap) as address:
        f = run(
            address,
            series=series,
            services=services,
            step=step,
            warmup_steps=warmup_steps,
            live_steps=live_steps,
            faulty=min(faulty, services),
            partitions=partitions,
        )
    console.print(
        f"{f.series:,} series in {f.services} services, one sample per {f.step:g} s per series "
        f"({f.series / f.step:,.0f} samples/s live); warm-up {f.warmup_steps} steps compressed "
        f"({f.produced:,} samples, taken in {f.warmup_seconds:.1f} s), {f.live_steps} live steps at real pace"
    )
    console.print(
        f"detection latency over {len(f.latencies)} incident(s) of {f.faulty} faulty services: "
        f"p50 {f.percentile(50):.3f} s, p99 {f.percentile(99):.3f} s, max {max(f.latencies, default=float('nan')):.3f} s "
        f"(goal: p99 < 2 s); incidents on healthy services: {f.other_incidents}"
    )
    first, last = f.lag_thirds()
    lags = [s.consumer_lag for s in f.lag]
    console.print(
        f"consumer lag in the live phase (sampled each second): max {max(lags, default=0):,.0f} messages, "
        f"mean {first:,.0f} in the first third and {last:,.0f} in the last, trend {f.lag_slope:+.1f} "
        f"messages/s; processing lag max {f.processing_lag_max():.2f} s; every sample taken "
        f"{f.drain_seconds:.2f} s after the last was sent"
    )
    keeps_up = bool(lags) and last <= max(first * 1.5, f.series / f.step) and f.drain_seconds < f.step
    console.print("keeps up: " + ("yes (lag not growing)" if keeps_up else "NO (lag growing)"))


@commands.command("stream-detection")
def bench_stream_detection(
    seeds: list[int] = typer.Option([3, 5, 7], "--seed", help="Simulator seeds (one fleet each)."),
    days: int = typer.Option(21, "--days", min=2, help="Days simulated per seed."),
    step_minutes: int = typer.Option(1, "--step-minutes", min=1, help="Sampling step of the metrics."),
    log_series: list[str] = typer.Option(
        None, "--log-series", help="Log series fed in the second run (repeat; default: the four stream.log_features feeds)."
    ),
) -> None:
    """The same labelled fleet through the stream's scoring path with and without log series:
    incidents detected, false pages per system-day, time to detect, per incident family."""
    quiet_runtime()
    from bench.stream_detection import NO_LOGS, run  # lazy: fast --help
    from streaming.log_steps import LOG_FEATURES, log_feature_names  # lazy: fast --help

    chosen = log_feature_names(log_series or [name for name, _ in LOG_FEATURES])
    runs, figures = run(seeds, days, step_minutes, {NO_LOGS: (), "with log series": chosen})
    table = Table(
        title=f"Stream detection, seeds {', '.join(map(str, seeds))}, {days} days, {step_minutes}-min steps; "
        f"log series: {', '.join(chosen)}"
    )
    for column in ("family", "variant", "detected", "median minutes to detect", "false pages / system-day"):
        table.add_column(column, justify="left" if column in ("family", "variant") else "right")
    order = sorted({f.family for f in figures if f.family != "all"},
                   key=lambda fam: min(f.detected / max(f.incidents, 1) for f in figures if f.family == fam))
    for family in [*order, "all"]:
        for f in (f for f in figures if f.family == family):
            table.add_row(family, f.variant, f"{f.detected}/{f.incidents}", f"{f.median_minutes:.1f}",
                          f"{f.false_per_day:.2f}" if family == "all" else "")
    console.print(table)
    for variant in dict.fromkeys(r.variant for r in runs):
        seconds = sum(r.seconds for r in runs if r.variant == variant)
        console.print(f"{variant}: {seconds:.0f} s of replay in all")
