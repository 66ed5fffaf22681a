"""The ``foresight`` command: run the demo, run one flow, inspect what a run produced.

Every command fails the same way: ``error:`` and ``hint:`` lines on stderr and a non-zero exit
(see :mod:`foresight.cli.errors`); ``--debug`` adds the tracebacks. SIGTERM and SIGHUP end a run
like an exception, so the Prefect API server a run started stops with it.

The root's own commands (``demo``, ``run``, ``settings``) are here; its groups in their modules:
``bench`` (:mod:`foresight.cli.bench`), ``stack`` (:mod:`foresight.cli.stack`) and ``show``
(:mod:`foresight.cli.show`); ``--output`` formats in :mod:`foresight.cli.output`. Commands import
what they run inside their bodies, so ``--help`` and a mistyped option answer at once instead of
after the seconds Prefect, pandas and the models take to import.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import typer
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from foresight.cli.bench import bench_app
from foresight.cli.output import OutputFormat, emit, result_rows
from foresight.cli.promote import promote
from foresight.cli.runtime import ForesightGroup, console, quiet_runtime
from foresight.cli.show import show_app
from foresight.cli.stack import stack_app
from foresight.cli.stream import stream

app = typer.Typer(cls=ForesightGroup,
                  help="Foresight: forecasts, capacity plans and incidents from your telemetry.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)


@app.callback()
def _global_options(
    debug: bool = typer.Option(False, "--debug", envvar="FORESIGHT_DEBUG",
                               help="Show tracebacks (the CLI's and Prefect's) when something fails."),
) -> None:
    """Foresight: forecasts, capacity plans and incidents from your telemetry."""


FLOWS = ("ingest", "train", "forecast", "detect", "publish")  # the demo's stages, in order


def _flow(name: str) -> Any:
    from flows.registry import flow_by_name  # lazy: keeps `foresight --help` fast

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
    quiet_runtime()
    if home is not None:
        os.environ["FORESIGHT_HOME"] = str(home)
    from foresight.settings import load_settings  # lazy: keeps `foresight --help` fast
    from foresight.source_holds import SourceContractFailedError  # lazy: keeps `foresight --help` fast

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
    from flows.summary import render_summary  # lazy: keeps `foresight --help` fast

    render_summary(console, results, settings, elapsed, timings)
    if failed is not None:  # the summary named the source and the fix; the exit code says it too
        raise typer.Exit(failed.exit_code)


@app.command()
def run(
    flow: str = typer.Argument(..., help=f"One of: {', '.join(FLOWS + ('pipeline',))}."),
    config: Path = typer.Option(None, "--config", help="Optional YAML settings file."),
    apply: bool = typer.Option(False, "--apply", help="forecast only: act on AWS (S3 report, Auto Scaling "
                               "scheduled actions) instead of the default dry-run; needs sinks.aws.enabled."),
    output: OutputFormat = typer.Option(OutputFormat.table, "--output", "-o", case_sensitive=False,
                                        help="table for people; json or csv (on stdout) for scripts."),
    full_replay: bool = typer.Option(False, "--full-replay", help="detect only: ignore the kept detector and "
                                     "incident-stream states and replay the whole window (then keep new ones)."),
) -> None:
    """Run one flow (or the whole pipeline) once, in-process."""
    if apply and flow != "forecast":
        raise typer.BadParameter(f"--apply only applies to the forecast flow, not {flow!r}")
    if full_replay and flow != "detect":
        raise typer.BadParameter(f"--full-replay only applies to the detect flow, not {flow!r}")
    from flows.resources import plugin_problems  # lazy: keeps `foresight --help` fast
    from foresight.settings import load_settings  # lazy: keeps `foresight --help` fast

    # A bad config (a key, or a plug-in it names) fails here, in a second, before Prefect starts.
    load_settings(config, checks=(plugin_problems,))
    quiet_runtime()
    fn = _flow(flow)
    kwargs: dict[str, Any] = {"apply": True} if apply else {"full_replay": True} if full_replay else {}
    result = fn(config_file=str(config) if config else None, **kwargs)
    emit(result_rows(result), output, title=f"{flow} result", console=console, columns=("key", "value"),
         json_value=result)


@app.command()
def settings(config: Path = typer.Option(None, "--config", help="Optional YAML settings file.")) -> None:
    """Print the effective settings (secrets masked)."""
    from flows.resources import plugin_problems  # lazy: keeps `foresight --help` fast
    from foresight.settings import load_settings  # lazy: keeps `foresight --help` fast

    console.print_json(data=load_settings(config, checks=(plugin_problems,)).redacted())


app.command(name="stream")(stream)
app.command(name="promote")(promote)
app.add_typer(bench_app, name="bench")
app.add_typer(stack_app, name="stack")
app.add_typer(show_app, name="show")
