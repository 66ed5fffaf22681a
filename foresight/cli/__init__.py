"""The ``foresight`` command: run the demo, run one flow, inspect what a run produced.

Every command fails the same way: ``error:`` and ``hint:`` lines on stderr and a non-zero exit
(see :mod:`foresight.cli.errors`); ``--debug`` adds the tracebacks. SIGTERM and SIGHUP end a run
like an exception, so the Prefect API server a run started stops with it.
"""

from __future__ import annotations

import json
import os
import time
import traceback
from pathlib import Path
from typing import Any

import typer
from rich import box
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from typer.core import TyperGroup

from foresight.cli.errors import ConsoleLogs, Terminated, describe_failure, exit_cleanly_on_termination

# The running command's console log filters (the CLI is the entry point: one command per process,
# or per CliRunner.invoke in tests, which the root command's invoke sets and clears).
_console_logs: list[ConsoleLogs] = []


class _ForesightGroup(TyperGroup):
    """The root command: reports any failure of a subcommand in one or two lines."""

    def invoke(self, ctx: Any) -> Any:
        debug = bool(ctx.params.get("debug"))
        console_logs = ConsoleLogs(debug)
        _console_logs.append(console_logs)
        console_logs.attach()
        failed_with: BaseException | None = None
        try:
            with exit_cleanly_on_termination():
                return super().invoke(ctx)
        except (typer.Exit, typer.Abort):
            raise  # deliberate exits and Ctrl-C: Typer exits as usual
        except typer.TyperException as exc:  # a usage error: a bad option, a missing argument
            if type(exc).__name__ == "NoArgsIsHelpError":
                raise  # no arguments: Typer prints the help
            command = getattr(getattr(exc, "ctx", None), "command_path", None) or ctx.command_path
            typer.echo(f"error: {exc.format_message()}", err=True)
            typer.echo(f"hint: '{command} --help' shows the usage", err=True)
            raise typer.Exit(exc.exit_code) from None
        except Terminated as exc:
            typer.echo(f"error: stopped by {exc.signal_name}", err=True)
            raise
        except Exception as exc:
            failed_with = exc
            console_logs.detach(failed_with)  # held log lines first, the error last
            if debug:
                traceback.print_exc()
            failure = describe_failure(exc, debug=debug)
            for line in failure.message.splitlines():
                typer.echo(f"error: {line}", err=True)
            if failure.hint:
                typer.echo(f"hint: {failure.hint}", err=True)
            raise typer.Exit(failure.exit_code) from None
        finally:
            console_logs.detach(failed_with)
            _console_logs.remove(console_logs)


app = typer.Typer(cls=_ForesightGroup,
                  help="Foresight: forecasts, capacity plans and incidents from your telemetry.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
console = Console()


@app.callback()
def _global_options(
    debug: bool = typer.Option(False, "--debug", envvar="FORESIGHT_DEBUG",
                               help="Show tracebacks (the CLI's and Prefect's) when something fails."),
) -> None:
    """Foresight: forecasts, capacity plans and incidents from your telemetry."""


FLOWS = ("ingest", "train", "forecast", "detect", "publish")  # the demo's stages, in order


def _quiet_runtime() -> None:
    """Embedded defaults for a local run: no telemetry, Prefect logs only warnings."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    import prefect.main  # noqa: F401  (configures its log handlers from the settings above)

    for logs in _console_logs:  # filter the console handlers Prefect just added
        logs.attach()


def _flow(name: str) -> Any:
    from flows.registry import flow_by_name

    try:
        return flow_by_name(name)
    except KeyError as exc:
        raise typer.BadParameter(str(exc.args[0])) from None


@app.command()
def demo(
    home: Path = typer.Option(None, help="Where everything is written (default: .foresight or FORESIGHT_HOME)."),
    config: Path = typer.Option(None, "--config", help="Optional YAML settings file."),
) -> None:
    """Run the whole pipeline on the built-in telemetry simulator, with no servers to set up."""
    _quiet_runtime()
    if home is not None:
        os.environ["FORESIGHT_HOME"] = str(home)
    from foresight.settings import load_settings
    from foresight.source_holds import SourceContractFailedError

    settings = load_settings(config)
    results: dict[str, Any] = {}
    timings: dict[str, float] = {}
    failed: SourceContractFailedError | None = None
    started = time.perf_counter()
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(),
                  console=console, transient=False) as progress:
        task = progress.add_task("pipeline", total=len(FLOWS))
        for name in FLOWS:
            progress.update(task, description=f"[bold]{name}[/bold]")
            kwargs: dict[str, Any] = {"config_file": str(config) if config else None}
            if name == "publish":
                kwargs["detect_summary"] = results.get("detect")
            stage_started = time.perf_counter()
            try:
                results[name] = _flow(name)(**kwargs)
            except SourceContractFailedError as exc:  # the other sources still go through every stage
                results[name], failed = exc.result, exc
            timings[name] = time.perf_counter() - stage_started
            progress.advance(task)
    elapsed = time.perf_counter() - started
    from flows.summary import render_summary

    render_summary(console, results, settings, elapsed, timings)
    if failed is not None:  # the summary named the source and the fix; the exit code says it too
        raise typer.Exit(failed.exit_code)


@app.command()
def run(
    flow: str = typer.Argument(..., help=f"One of: {', '.join(FLOWS + ('pipeline',))}."),
    config: Path = typer.Option(None, "--config", help="Optional YAML settings file."),
    apply: bool = typer.Option(False, "--apply", help="forecast only: act on AWS (S3 report, Auto Scaling "
                               "scheduled actions) instead of the default dry-run; needs sinks.aws.enabled."),
) -> None:
    """Run one flow (or the whole pipeline) once, in-process."""
    if apply and flow != "forecast":
        raise typer.BadParameter(f"--apply only applies to the forecast flow, not {flow!r}")
    from foresight.settings import load_settings

    load_settings(config)  # a bad config fails here, in a second, before Prefect is even imported
    _quiet_runtime()
    fn = _flow(flow)
    kwargs: dict[str, Any] = {"apply": True} if apply else {}
    result = fn(config_file=str(config) if config else None, **kwargs)
    table = Table(title=f"{flow} result")
    table.add_column("key")
    table.add_column("value")
    for key, value in (result.items() if isinstance(result, dict) else enumerate(result)):
        table.add_row(str(key), str(value)[:200])
    console.print(table)


bench_app = typer.Typer(help="Benchmarks that print figures (speed, memory).", no_args_is_help=True)
app.add_typer(bench_app, name="bench")


@bench_app.command("pipeline")
def bench_pipeline(
    days: int = typer.Option(21, help="Simulated days (the demo uses 21)."),
    seed: int = typer.Option(7, help="Simulator seed."),
) -> None:
    """Time every embedded pipeline stage on the simulator's fleet; print throughput and peak memory."""
    _quiet_runtime()
    from bench.pipeline import peak_memory_mib, run

    table = Table(title=f"Foresight pipeline benchmark ({days} simulated days, seed {seed})")
    for column in ("stage", "seconds", "items", "per second"):
        table.add_column(column, justify="left" if column == "stage" else "right")
    for fig in run(days=days, seed=seed):
        table.add_row(fig.stage, f"{fig.seconds:.2f}", f"{fig.items:,} {fig.unit}", f"{fig.rate:,.0f} {fig.unit}/s")
    console.print(table)
    console.print(f"peak resident memory: {peak_memory_mib():,.0f} MiB")


@bench_app.command("ingest")
def bench_ingest(
    series: int = typer.Option(1000, help="Series to backfill into a throwaway local Prometheus."),
    days: int = typer.Option(7, help="Days of 1-minute samples per series."),
) -> None:
    """Prometheus source + lake upsert against plain HTTP + JSON decoding of the same queries."""
    from bench.prometheus_ingest import run as run_ingest

    figures = run_ingest(series, days)
    table = Table(title=f"Prometheus ingest: {figures.samples:,} samples ({series} series x {days} days at 1 min)")
    for column in ("client", "seconds", "samples per second"):
        table.add_column(column, justify="left" if column == "client" else "right")
    table.add_row("Foresight fetch + lake upsert", f"{figures.foresight_seconds:.2f}", f"{figures.foresight_rate:,.0f}")
    table.add_row("  of which fetch", f"{figures.fetch_seconds:.2f}", "")
    table.add_row("plain requests + json", f"{figures.plain_seconds:.2f}", f"{figures.plain_rate:,.0f}")
    console.print(table)
    console.print(f"Foresight takes {figures.foresight_seconds / figures.plain_seconds:.2f}x the plain fetch's time "
                  "(goal: at most 1.3x)")
    console.print(f"peak resident memory: {_peak_mib():,.0f} MiB")


@bench_app.command("nab")
def bench_nab(
    data: Path = typer.Option(..., "--data", help="A NAB-layout folder: data/<category>/<name>.csv and labels/."),
    out: Path = typer.Option(..., "--out", help="Where RESULTS/<category>/<detector>_<name>.csv are written."),
    detector: str = typer.Option(None, help="Anomaly detector (registry name; default: the detect flow's)."),
    threshold: float = typer.Option(None, help="Production threshold (default: the detect flow's)."),
    refit_every: str = typer.Option("1d", help="How often a detector that needs fit is refitted on the rows so far "
                                               "(the train flow's schedule); 'never': fitted once on the probation."),
) -> None:
    """Run a detector over the NAB corpus as streams and print its NAB scores per profile."""
    import pandas as pd

    from bench.nab import run as run_nab

    try:
        refit = None if refit_every == "never" else pd.Timedelta(refit_every)
    except ValueError as exc:
        raise typer.BadParameter(f"--refit-every: {refit_every!r} is not a duration like 1d or 12h ({exc})") from exc
    result = run_nab(data, out, detector=detector, production_threshold=threshold, refit_every=refit)
    table = Table(title=f"NAB: {result.detector} on {result.files} files ({result.rows:,} rows)")
    for column in ("profile", "threshold from", "score", "threshold", "hit", "missed", "FP"):
        table.add_column(column, justify="left" if column in ("profile", "threshold from") else "right")
    short = {"standard": "standard", "reward_low_FP_rate": "low FP", "reward_low_FN_rate": "low FN"}
    for row in result.table():
        table.add_row(short.get(row["profile"], row["profile"]), row["threshold_from"], f"{row['score']:.1f}",
                      f"{row['threshold']:.6f}", str(row["hit"]), str(row["missed"]), str(row["false_positives"]))
    console.print(table)
    console.print(f"detector {result.detect_seconds:.1f} s, total {result.total_seconds:.1f} s; results in {out}")


@bench_app.command("score-latency")
def bench_score_latency(
    series: int = typer.Option(10_000, min=1, help="Series scored at once."),
    repeats: int = typer.Option(20, min=1, help="Timed updates (median and worst are reported)."),
    detector: str = typer.Option("streaming", help="Streaming state timed: streaming, streaming_knn, streaming_ensemble or incident_stream (the detect flow's default incident builder)."),
    warm_steps: int = typer.Option(300, min=0, help="Untimed updates before the timed ones."),
) -> None:
    """Time scoring the newest sample of many series with a streaming detector (goal: < 0.2 s)."""
    from bench.score_latency import TIMED_DETECTORS
    from bench.score_latency import run as run_latency

    if detector not in TIMED_DETECTORS:
        raise typer.BadParameter(f"{detector!r}; choose one of: {', '.join(TIMED_DETECTORS)}", param_hint="--detector")
    fig = run_latency(series=series, repeats=repeats, warm_steps=warm_steps, detector=detector)
    blocks = f", {fig.block_ends} of them at a coarse block's end" if fig.detector == "streaming_knn" else ""
    console.print(f"{fig.detector}: latest point of {fig.series:,} series scored in {fig.median_seconds * 1e3:.2f} ms "
                  f"(median of {fig.repeats}{blocks}; worst {fig.max_seconds * 1e3:.2f} ms; "
                  f"{fig.per_series_us:.2f} us per series; state {fig.state_mib:.1f} MiB); goal: under 0.2 s")


@bench_app.command("incidents")
def bench_incidents(
    data: Path = typer.Option(..., "--data", help="A folder in the plain layout (telemetry.csv.gz: unique_id,ds,y "
                              "with ISO 8601 UTC times; catalogue.csv: unique_id,service,metric; faults.csv: "
                              "inject_time,service,inject_type; optional call_graph.csv: source,target), a Nezha "
                              "day folder (<day>/metric/...), or a folder of such folders. See docs/incidents.md."),
    out: Path = typer.Option(..., "--out", help="CSV written with one row per incident raised."),
    pipeline: str = typer.Option("stream", "--pipeline", help="stream: the streaming incident pipeline; "
                                 "flow: the detect flow's roll-up builder (default detector, then the roll-up builder)."),
    window_min: float = typer.Option(5.0, "--window-min",
                                     help="Detection window: a fault counts as detected by an incident opened "
                                          "within this many minutes after it."),
    stream_params: str = typer.Option("{}", "--stream-params",
                                      help='The stream pipeline\'s settings as JSON, e.g. \'{"page_budget_per_day": null}\'.'),
) -> None:
    """Replay incident data (plain or Nezha layout) as a stream; score detection, RCA and fault type."""
    import pandas as pd

    from bench.incidents import PIPELINES, fault_type_confusion
    from bench.incidents import run as run_incidents
    from models.incidents.stream import StreamSettings

    if pipeline not in PIPELINES:
        raise typer.BadParameter(f"{pipeline!r}; choose one of: {', '.join(PIPELINES)}", param_hint="--pipeline")
    if not window_min > 0:
        raise typer.BadParameter(f"{window_min:g}; the detection window must be positive", param_hint="--window-min")
    try:
        settings = StreamSettings.from_params(json.loads(stream_params))
    except (ValueError, TypeError, AttributeError) as exc:  # bad JSON, not an object, or an unknown setting
        raise typer.BadParameter(str(exc), param_hint="--stream-params") from None
    figures, incidents, matches = run_incidents(data, out, settings, pipeline=pipeline,
                                          window=pd.Timedelta(minutes=window_min))

    def pct(value: float | None) -> str:
        return "n/a" if value is None else f"{100 * value:.1f}%"

    table = Table(title=f"Incidents on {data}, {pipeline} pipeline ({figures.faults} faults, "
                        f"{figures.days:.2f} days of data)")
    table.add_column("figure")
    table.add_column("value", justify="right")
    table.add_row(f"detected within {window_min:g} min",
                  f"{figures.detected}/{figures.faults} ({pct(figures.detection_rate)})")
    table.add_row("incidents raised", str(figures.incidents))
    fa_day = figures.false_alarms_per_day
    table.add_row("false alarms", f"{figures.false_alarms} ({'n/a' if fa_day is None else f'{fa_day:.2f}'} per day)")
    fa_free = figures.false_alarms_per_fault_free_day
    table.add_row("  in fault hours", str(figures.false_alarms_in_fault_hours))
    table.add_row("  in fault-free hours", f"{figures.false_alarms_outside_fault_hours} "
                  f"({'n/a' if fa_free is None else f'{fa_free:.2f}'} per fault-free day)")
    delay = figures.median_delay_seconds
    table.add_row("median delay", "n/a" if delay is None else f"{delay:.0f} s")
    table.add_row("AC@1", pct(figures.ac_at_1))
    table.add_row("AC@3", pct(figures.ac_at_3))
    table.add_row("fault-type accuracy", pct(figures.fault_type_accuracy))
    table.add_row("coarse category accuracy", pct(figures.coarse_category_accuracy))
    console.print(table)
    confusion = fault_type_confusion(matches)
    if not confusion.empty:  # plain text: a rich table would cut the type names at 80 columns
        console.print("Detected faults by injected type (rows) and the type named (columns):")
        console.print(confusion.to_string(), markup=False, highlight=False, soft_wrap=True)
    console.print(f"{len(incidents)} incidents written to {out}")


@bench_app.command("detection")
def bench_detection(
    data: Path = typer.Option(None, "--data", help="The data root holding nab-dev/ and nezha-dev/ "
                              "(default: the shared/data folder beside the checkout)."),
    corpora: list[str] = typer.Option([], "--corpus", help="A corpus to run (repeatable; default: every one)."),
    out: Path = typer.Option(None, "--out", file_okay=False, help="Folder for detection.csv and detection.json."),
    budget: float = typer.Option(2.0, "--budget", min=0.01, help="False alarms per day the incident objective "
                                 "allows before it discounts recall."),
    stream_grid: str = typer.Option(None, "--stream-grid", help="Settings of the streaming incident pipeline to "
                                    "choose from leave-one-corpus-out, as a JSON list, e.g. "
                                    '\'[{"open_threshold": 6}, {"open_threshold": 8}]\' (default: the shipped '
                                    "settings only)."),
    scenario_systems: int = typer.Option(2, "--scenario-systems", min=0, help="Generated systems per scenario "
                                         "family, each family a corpus (0: no generated corpora)."),
    scenario_seed: int = typer.Option(0, "--scenario-seed", help="Seed of the generated systems."),
) -> None:
    """Every dev corpus and scenario family, worst first: Foresight beside the robust z baselines
    (thresholds leave-one-corpus-out)."""
    from bench.detection import DEFAULT_DATA, default_corpora
    from bench.detection import run as run_detection
    from bench.detection_table import render_detection
    from bench.scenarios import scenario_corpora

    registry = default_corpora()
    for corpus in scenario_corpora(systems=scenario_systems, seed=scenario_seed) if scenario_systems else []:
        registry.register(corpus.name)(corpus)
    unknown = [c for c in corpora if c not in registry]
    if unknown:
        raise typer.BadParameter(f"{', '.join(map(repr, unknown))}; choose from: {', '.join(registry.names())}",
                                 param_hint="--corpus")
    grid = None
    if stream_grid is not None:
        from models.incidents.stream import StreamSettings

        try:
            grid = json.loads(stream_grid)
            if not isinstance(grid, list) or not grid or not all(isinstance(g, dict) for g in grid):
                raise ValueError("expected a non-empty JSON list of objects")
            for params in grid:
                StreamSettings.from_params(params)
        except (ValueError, TypeError) as exc:  # bad JSON, wrong shape, an unknown or invalid setting
            raise typer.BadParameter(str(exc), param_hint="--stream-grid") from None
    started = time.perf_counter()
    result = run_detection(data or DEFAULT_DATA, corpora or None, corpora=registry, budget=budget,
                           stream_grid=grid)
    render_detection(console, result, budget)
    if out is not None:
        csv_path, json_path = result.write(out)
        console.print(f"written: {csv_path}, {json_path}")
    console.print(f"wall time: {time.perf_counter() - started:.1f} s")


@bench_app.command("failure")
def bench_failure(
    seeds: list[int] = typer.Option([1, 2, 3], "--seed", help="Simulator seeds (repeat the option for several)."),
    days: int = typer.Option(28, min=7, help="Simulated days per seed (about 0.6 incidents a day)."),
    origins: int = typer.Option(3, min=1, help="Rolling-origin test blocks per seed."),
) -> None:
    """Failure prediction on simulated fleets: LightGBM vs the utilisation rule, event-wise, rolling origin."""
    from bench.failure import run as run_failure

    started = time.perf_counter()
    figures = run_failure(seeds, days, origins)
    table = Table(title=f"Failure prediction: {days} simulated days per seed, {origins} rolling-origin blocks "
                        "after the first 60 %")
    for column in ("seed", "model", "recall", "precision", "F1", "lead min", "found", "false", "s"):
        table.add_column(column, justify="left" if column in ("seed", "model") else "right")
    for f in figures:
        lead = "-" if f.median_lead_minutes != f.median_lead_minutes else f"{f.median_lead_minutes:.0f}"
        table.add_row("mean" if f.seed is None else str(f.seed), f.model, f"{f.recall:.2f}", f"{f.precision:.2f}",
                      f"{f.f1:.2f}", lead, f"{f.detected}/{f.incidents}", str(f.false_alarms), f"{f.seconds:.1f}")
    console.print(table)
    console.print("lead min: median minutes from the first alarm to the incident's start; found: incidents "
                  "detected; false: alarm episodes matching no incident; s: wall seconds per evaluation")
    console.print(f"wall time: {time.perf_counter() - started:.1f} s")


@bench_app.command("detect")
def bench_detect(
    seeds: list[int] = typer.Option([3, 5, 7, 11, 13, 17, 19], "--seed",
                                    help="Simulator seeds (repeat the option for several)."),
    days: int = typer.Option(21, min=2, help="Simulated days per seed (about 0.6 incidents a day)."),
    builders: list[str] = typer.Option(["rollup:streaming", "stream"], "--builder",
                                       help="The train flow's gate on an incident pipeline: "
                                            "rollup:<detector> (that detector's scores rolled up) or stream "
                                            "(the streaming pipeline, calibrated before the split); or "
                                            "stream:windows (the stream replayed in the detect flow's "
                                            "windows); repeatable."),
    stream_params: str = typer.Option("{}", "--stream-params",
                                      help='The stream builder\'s settings as JSON, e.g. \'{"error_material": 5}\'.'),
) -> None:
    """Incident detection on simulated fleets: event F1 of each builder's incidents after the 60 % split."""
    from bench.detect import run as run_detect
    from bench.detect import unknown_builders
    from foresight.settings import DetectConfig
    from models.incidents.stream import StreamSettings

    unknown = unknown_builders(builders)
    if unknown:
        raise typer.BadParameter(unknown, param_hint="--builder")
    try:
        cfg = DetectConfig(stream_params=json.loads(stream_params))
        StreamSettings.from_params(cfg.stream_params)
    except (ValueError, TypeError) as exc:  # bad JSON, not an object, or an unknown setting
        raise typer.BadParameter(str(exc), param_hint="--stream-params") from None
    started = time.perf_counter()
    figures = run_detect(seeds, days, builders, cfg)
    # Unboxed and unpadded, so the longest builder's row fits 80 columns (a log, a pipe) uncut.
    table = Table(title=f"Simulated incident detection: {days} days per seed", box=box.SIMPLE_HEAD, padding=0)
    for column in ("seed", "builder", "F1", "recall", "precision", "raised", "false", "found", "s"):
        table.add_column(column, justify="left" if column in ("seed", "builder") else "right", no_wrap=True)
    for f in figures:
        count = "{:.0f}" if f.seed is not None else "{:.1f}"
        table.add_row("mean" if f.seed is None else str(f.seed), f.builder, f"{f.f1:.2f}", f"{f.recall:.2f}",
                      f"{f.precision:.2f}", count.format(f.raised), count.format(f.false_alarms),
                      f"{count.format(f.detected)}/{count.format(f.incidents)}", f"{f.seconds:.1f}")
    console.print(table)
    console.print(f"Only incidents after the {100 * cfg.train_fraction:.0f} % split count. raised: incidents "
                  "opened after it; false: raised ones matching no incident; found: incidents detected; "
                  "mean rows: per seed; s: wall seconds per evaluation")
    console.print(f"wall time: {time.perf_counter() - started:.1f} s")


@bench_app.command("scenarios")
def bench_scenarios(
    families: list[str] = typer.Option([], "--family", help="A scenario family (repeatable; default: all). "
                                       "Families: simulator.scenario_families.FAMILIES."),
    systems: int = typer.Option(4, min=1, help="Generated systems per family."),
    seed: int = typer.Option(0, help="Seed of the generated systems."),
    days: int = typer.Option(1, min=1, help="Days per system."),
    step_minutes: int = typer.Option(1, "--step-minutes", min=1, help="Sampling interval of the generated data."),
    stream_params: str = typer.Option("{}", "--stream-params",
                                      help='The stream pipeline\'s settings as JSON, e.g. \'{"open_threshold": 8}\'.'),
    out: Path | None = typer.Option(None, "--out", help="CSV written with one row per family."),
) -> None:
    """Incident detection on generated systems: per family, the incident protocol's figures and event F1."""
    from bench.scenarios import DEFAULT_FAMILIES, write_figures
    from bench.scenarios import run as run_scenarios
    from models.incidents.stream import StreamSettings
    from simulator.scenario_families import FAMILIES

    unknown = [f for f in families if f not in FAMILIES]
    if unknown:
        raise typer.BadParameter(f"{unknown}; choose from: {', '.join(FAMILIES)}", param_hint="--family")
    try:
        settings = StreamSettings.from_params(json.loads(stream_params))
    except (ValueError, TypeError) as exc:  # bad JSON, not an object, or an unknown setting
        raise typer.BadParameter(str(exc), param_hint="--stream-params") from None
    started = time.perf_counter()
    rows = run_scenarios(families or DEFAULT_FAMILIES, systems, seed, days, step_minutes, settings)

    def num(value: float | None, spec: str = ".2f") -> str:
        return "n/a" if value is None else format(value, spec)

    # Unboxed and unpadded, so a row fits 80 columns (a log, a pipe) uncut.
    table = Table(title=f"Generated systems: {systems} per family, {days} day(s) each, seed {seed}",
                  box=box.SIMPLE_HEAD, padding=0)
    for column in ("family", "svc", "graph", "found", "FA/d", "AC@1", "AC@3", "type", "cat", "P", "R", "F1"):
        table.add_column(column, justify="left" if column == "family" else "right", no_wrap=True)
    for r in rows:
        f = r.figures
        table.add_row(r.family, r.services, f"{r.with_graph}/{r.systems}", f"{f.detected}/{f.faults}",
                      num(f.false_alarms_per_day), num(f.ac_at_1), num(f.ac_at_3), num(r.type_accuracy),
                      num(r.coarse_accuracy), num(r.precision), num(r.recall), num(r.f1))
    console.print(table)
    console.print("svc: services per system; graph: systems with a known call graph; found: faults with an "
                  "incident within 5 min after injection; FA/d: incidents matching no fault per system-day; "
                  "P: incidents matching a fault / incidents; R: found / faults; type: the incident names the "
                  "fault type; cat: its coarse category is the type's")
    if out is not None:
        write_figures(rows, out)
        console.print(f"{len(rows)} rows written to {out}")
    console.print(f"wall time: {time.perf_counter() - started:.1f} s")


@bench_app.command("fault-types")
def bench_fault_types(
    seeds: list[int] = typer.Option([3, 5, 7, 11, 13, 17, 19], "--seed",
                                    help="Simulator seeds (repeat the option for several)."),
    days: int = typer.Option(21, min=2, help="Simulated days per seed (about 0.6 incidents a day)."),
) -> None:
    """Fault types on simulated fleets: the type the stream names against the one injected, per seed."""
    import pandas as pd

    from bench.fault_types import fault_type_accuracy, simulated_fault_types

    matches = simulated_fault_types(seeds, days)

    def pct(value: float | None) -> str:
        return "n/a" if value is None else f"{100 * value:.1f}%"

    table = Table(title=f"Simulated fault types: {days} days per seed", box=box.SIMPLE_HEAD, padding=(0, 1))
    for column in ("seed", "incidents", "detected", "type accuracy"):
        table.add_column(column, justify="right", no_wrap=True)
    for seed, group in [*matches.groupby("seed"), ("all", matches)]:
        table.add_row(str(seed), str(len(group)), str(int(group["detected"].sum())), pct(fault_type_accuracy(group)))
    console.print(table)
    detected = matches[matches["detected"]]
    if len(detected):
        confusion = pd.crosstab(detected["injected"], detected["named"])
        console.print("Detected incidents by injected type (rows) and the type named (columns):")
        console.print(confusion.to_string(), markup=False, highlight=False, soft_wrap=True)


@bench_app.command("forecast")
def bench_forecast(
    data: Path = typer.Option(..., "--data", exists=True, dir_okay=False, help="Long CSV unique_id,ds,y (or .csv.gz)."),
    horizon: int = typer.Option(..., "--horizon", min=1, help="Steps to forecast after each series' end."),
    level: int = typer.Option(80, "--level", min=1, max=99, help="Central prediction interval, percent."),
    out: Path = typer.Option(..., "--out", dir_okay=False, help="Where to write unique_id,ds,yhat,yhat_lower,yhat_upper."),
) -> None:
    """Fit per-series champion selection on all of DATA and write the next HORIZON steps of every series."""
    from bench.forecast import forecast_file

    try:
        fc, seconds = forecast_file(data, horizon, level, out)
    except ValueError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None
    console.print(f"wrote {len(fc):,} rows ({fc['unique_id'].nunique():,} series x {horizon} steps) to {out}")
    console.print(f"wall time: {seconds:.2f} s; peak resident memory: {_peak_mib():,.0f} MiB")


@bench_app.command("forecast-score")
def bench_forecast_score(
    data: Path = typer.Option(..., "--data", exists=True, dir_okay=False, help="Long CSV unique_id,ds,y (or .csv.gz)."),
    methods: str = typer.Option("foresight,prophet,seasonal_naive", help="Comma-separated methods to compare."),
    level: int = typer.Option(80, "--level", min=1, max=99, help="Central prediction interval, percent."),
    per_series: Path = typer.Option(None, "--per-series", dir_okay=False, help="Optional CSV of per-series scores."),
    forecasts: Path = typer.Option(None, "--forecasts", exists=True, dir_okay=False,
                                   help="Score this forecast file (from `bench forecast`) instead; --data is then "
                                        "its training file and --actuals the held-out points."),
    actuals: Path = typer.Option(None, "--actuals", exists=True, dir_okay=False,
                                 help="Held-out points (unique_id,ds,y) for --forecasts."),
) -> None:
    """Hold out each series' last h points (the capacity-dev protocol) and compare methods in one run;
    or, with --forecasts and --actuals, score a forecast file against held-out actuals."""
    from bench.forecast import compare, read_series, score_file

    if (forecasts is None) != (actuals is None):
        console.print("[red]--forecasts and --actuals go together[/red]")
        raise typer.Exit(2)
    if forecasts is not None and actuals is not None:
        try:
            summary, scored = score_file(data, actuals, forecasts, level)
        except ValueError as exc:
            console.print(f"[red]{exc}[/red]")
            raise typer.Exit(1) from None
        console.print(f"{forecasts.name}: {int(summary['n_series'])} series; mean MASE {summary['mase']:.3f}, "
                      f"mean sMAPE {summary['smape']:.2f}, {level}% coverage {summary['coverage']:.3f}, "
                      f"pinball {summary['pinball']:.3f}")
        for group in sorted(k.removeprefix("mase_") for k in summary if k.startswith("mase_")):
            console.print(f"  {group}: MASE {summary[f'mase_{group}']:.3f}, sMAPE {summary[f'smape_{group}']:.2f}, "
                          f"coverage {summary[f'coverage_{group}']:.3f}")
        if per_series is not None:
            scored.to_csv(per_series, index=False)
        return
    try:
        results = compare(read_series(data), [m.strip() for m in methods.split(",") if m.strip()], level)
    except ValueError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None
    table = Table(title=f"{data.name}: last 288/48 points held out, {level}% interval; MASE overall, gcd, long",
                  caption="MiB: the process's peak resident memory after each method (methods run in order)")
    columns = ("method", "MASE", "gcd", "long", "sMAPE", "cover", "pinball", "sec", "MiB")
    for column in columns:
        table.add_column(column, justify="left" if column == "method" else "right", no_wrap=True)
    for r in results:
        s = r.summary
        table.add_row(r.name, f"{s['mase']:.3f}", f"{s.get('mase_gcd', float('nan')):.3f}",
                      f"{s.get('mase_long', float('nan')):.3f}", f"{s['smape']:.2f}", f"{s['coverage']:.3f}",
                      f"{s['pinball']:.3f}", f"{r.seconds:.1f}", f"{r.peak_mib:,.0f}")
    console.print(table)
    for r in results:
        groups = sorted(k.removeprefix("coverage_") for k in r.summary if k.startswith("coverage_"))
        console.print(f"{r.name}: " + "; ".join(
            f"{g}: MASE {r.summary[f'mase_{g}']:.3f}, sMAPE {r.summary[f'smape_{g}']:.2f}, "
            f"coverage {r.summary[f'coverage_{g}']:.3f}" for g in groups))
    by_name = {r.name: r for r in results}
    if "foresight" in by_name and "prophet" in by_name:
        ours, theirs = by_name["foresight"], by_name["prophet"]
        ratios = ", ".join(f"{key.removeprefix('mase').strip('_') or 'overall'} {ours.summary[key] / theirs.summary[key]:.2f}"
                           for key in ("mase", "mase_gcd", "mase_long") if key in ours.summary)
        console.print(f"Foresight MASE / Prophet MASE: {ratios} (goal <= 0.85); "
                      f"Foresight is {theirs.seconds / ours.seconds:.1f}x faster (goal >= 5x)")
    if per_series is not None:
        import pandas as pd

        pd.concat([r.per_series.assign(method=r.name) for r in results]).to_csv(per_series, index=False)


def _peak_mib() -> float:
    from bench.pipeline import peak_memory_mib

    return peak_memory_mib()


stack_app = typer.Typer(help="A local Prometheus, Kafka (tansu) and CloudWatch (moto) for development.",
                        no_args_is_help=True)
app.add_typer(stack_app, name="stack")


def _stack_home(home: Path | None) -> Path:
    return home or Path(os.environ.get("FORESIGHT_HOME", ".foresight"))


@stack_app.command("up")
def stack_up(
    seed: bool = typer.Option(False, "--seed", help="Load simulated telemetry (Prometheus is backfilled first)."),
    days: int = typer.Option(14, min=1, help="Days of telemetry to seed (train/forecast/detect want about 14)."),
    home: Path = typer.Option(None, help="Stack state lives in HOME/stack (default: FORESIGHT_HOME or .foresight)."),
    prometheus_port: int = typer.Option(9090),
    node_exporter_port: int = typer.Option(9100),
    pushgateway_port: int = typer.Option(9091),
    kafka_port: int = typer.Option(9092),
    moto_port: int = typer.Option(5055),
    timeout: float = typer.Option(60.0, help="Seconds each server may take to become healthy."),
) -> None:
    """Start every server that is not running (each in the background) and wait until all answer."""
    from foresight.cli.local_stack.stack import LocalStack, StackError, StackPorts

    ports = StackPorts(prometheus_port, node_exporter_port, pushgateway_port, kafka_port, moto_port)
    stack = LocalStack(_stack_home(home), ports)
    try:
        report = stack.up(seed_days=days if seed else 0, timeout=timeout)
    except StackError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None
    _print_stack_status(stack)
    if report is not None:
        console.print(f"seeded {report.days} days: {report.prometheus_samples:,} Prometheus samples, "
                      f"{report.cloudwatch_datapoints:,} CloudWatch datapoints, {report.kafka_metric_messages:,} "
                      f"Kafka metric and {report.kafka_log_messages:,} log messages; {report.incidents} "
                      f"incidents in {report.incident_labels}")


@stack_app.command("status")
def stack_status(home: Path = typer.Option(None, help="Default: FORESIGHT_HOME or .foresight.")) -> None:
    """Which servers run and answer their health check; exits 1 unless all are up."""
    from foresight.cli.local_stack.stack import LocalStack

    stack = LocalStack.from_state(_stack_home(home))
    if not all(s.healthy for s in _print_stack_status(stack)):
        raise typer.Exit(1)


@stack_app.command("down")
def stack_down(
    home: Path = typer.Option(None, help="Default: FORESIGHT_HOME or .foresight."),
    grace: float = typer.Option(10.0, help="Seconds between SIGTERM and SIGKILL."),
) -> None:
    """Stop every server of the stack."""
    from foresight.cli.local_stack.stack import LocalStack

    stopped = LocalStack.from_state(_stack_home(home)).down(grace=grace)
    console.print(f"stopped: {', '.join(stopped)}" if stopped else "nothing was running")


def _print_stack_status(stack: Any) -> list[Any]:
    statuses = stack.status()
    table = Table(title=f"local stack ({stack.state})")
    for column in ("server", "pid", "health", "address"):
        table.add_column(column)
    for s in statuses:
        table.add_row(s.name, str(s.pid or "-"), "[green]up[/green]" if s.healthy else "[red]down[/red]", s.address)
    console.print(table)
    return statuses


@app.command()
def settings(config: Path = typer.Option(None, "--config", help="Optional YAML settings file.")) -> None:
    """Print the effective settings (secrets masked)."""
    from foresight.settings import load_settings

    console.print_json(data=load_settings(config).redacted())

