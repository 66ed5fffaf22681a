"""``foresight show plan | rightsizing | incidents | models``: what the last runs wrote, read back.

Each reads the place the configured settings name (the same ``--config`` / ``FORESIGHT_*`` the
flows read): the forecast store (plan, rightsizing), the PagerDuty outbox (incidents the detect
flow raised) and the MLflow registry (model versions). Rows print as a table or, with
``--output json|csv``, as data on stdout (:mod:`foresight.cli.output`). Columns are printed as
the store holds them, so a column added to a table shows without a change here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from foresight.cli.output import OutputFormat, emit
from foresight.cli.runtime import console, quiet_runtime

show_app = typer.Typer(help="Show what the last runs wrote: plan, rightsizing, incidents, models.",
                       no_args_is_help=True)

CONFIG = typer.Option(None, "--config", help="Optional YAML settings file.")
OUTPUT = typer.Option(OutputFormat.table, "--output", "-o", case_sensitive=False,
                      help="table for people; json or csv (on stdout) for scripts.")


def _settings(config: Path | None) -> Any:
    from foresight.settings import load_settings  # lazy: keeps `foresight --help` fast

    return load_settings(config)


def _store(settings: Any) -> Any:
    from flows.resources import open_forecast_store  # lazy: SQLAlchemy and pandas load only when used

    return open_forecast_store(settings)


@show_app.command("plan")
def show_plan(config: Path = CONFIG, output: OutputFormat = OUTPUT) -> None:
    """The capacity plan, soonest to reach its threshold first, with the model behind each series."""
    from foresight.cli.show_rows import plan_rows  # lazy: pandas loads only when a command runs

    store = _store(_settings(config))
    try:
        rows = plan_rows(store.read_capacity_plan(), store.read_forecasts())
    finally:
        store.dispose()
    emit(rows, output, title="Capacity plan", console=console)


@show_app.command("rightsizing")
def show_rightsizing(config: Path = CONFIG, output: OutputFormat = OUTPUT) -> None:
    """The rightsizing recommendations per service (every column the store holds)."""
    from foresight.cli.output import frame_rows  # lazy: with the store below

    store = _store(_settings(config))
    try:
        rows = frame_rows(store.read_rightsizing())
    finally:
        store.dispose()
    emit(rows, output, title="Rightsizing", console=console)


@show_app.command("incidents")
def show_incidents(
    config: Path = CONFIG,
    output: OutputFormat = OUTPUT,
    open_only: bool = typer.Option(False, "--open", help="Only incidents not resolved yet."),
) -> None:
    """Incidents the detect flow raised (its PagerDuty outbox), newest first, open or resolved."""
    from flows.resources import open_outbox  # lazy: the outbox module loads pandas
    from foresight.cli.show_rows import incident_rows  # lazy: pandas loads only when a command runs

    settings = _settings(config)
    events = open_outbox(settings).read() if Path(settings.outbox_path).exists() else []
    rows = [row for row in incident_rows(events) if not open_only or row["status"] == "open"]
    emit(rows, output, title="Incidents", console=console)


@show_app.command("models")
def show_models(config: Path = CONFIG, output: OutputFormat = OUTPUT) -> None:
    """Registered model versions, newest first: aliases (champion, challenger), decision and reason."""
    from flows.resources import open_registry  # lazy: MLflow is heavy
    from foresight.model_registry import REGISTERED  # lazy: with the registry

    quiet_runtime()  # MLflow's and Prefect's log levels before they load
    registry = open_registry(_settings(config))
    rows = [row for name in REGISTERED.values() for row in registry.list_versions(name)]
    emit(rows, output, title="Registered models", console=console)
