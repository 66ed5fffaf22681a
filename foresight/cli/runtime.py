"""What every command shares: the console it prints to, the root command class that reports a
failure in one or two lines, and the quiet runtime a command sets up before it imports Prefect."""

from __future__ import annotations

import logging
import os
import traceback
from typing import Any

import typer
from rich.console import Console
from typer.core import TyperGroup

from foresight.cli.errors import ConsoleLogs, Terminated, describe_failure, exit_cleanly_on_termination

console = Console()

# The running command's console log filters (the CLI is the entry point: one command per process,
# or per CliRunner.invoke in tests, which the root command's invoke sets and clears).
_console_logs: list[ConsoleLogs] = []


class ForesightGroup(TyperGroup):
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


# Library log lines a Foresight user can do nothing about, by logger and message start; dropped
# here, at the entry point, and nowhere in library code (a library user still sees them).
# - MLflow warns on every model logged as a Python object that it is pickled; Foresight logs its
#   own models that way on purpose and loads only versions its own registry holds.
SILENCED_LOGS: tuple[tuple[str, str], ...] = (
    ("mlflow.pyfunc", "Passing a Python object as `python_model`"),
)


class _SilencedMessages(logging.Filter):
    """Drops the records whose message starts with one of ``prefixes``."""

    def __init__(self, prefixes: tuple[str, ...]) -> None:
        super().__init__()
        self.prefixes = prefixes

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(self.prefixes)


def silence_library_noise() -> None:
    """Attach the :data:`SILENCED_LOGS` filters (once) to their libraries' loggers."""
    by_logger: dict[str, tuple[str, ...]] = {}
    for name, prefix in SILENCED_LOGS:
        by_logger[name] = (*by_logger.get(name, ()), prefix)
    for name, prefixes in by_logger.items():
        logger = logging.getLogger(name)
        if not any(isinstance(f, _SilencedMessages) for f in logger.filters):
            logger.addFilter(_SilencedMessages(prefixes))


def quiet_runtime() -> None:
    """Embedded defaults for a local run: no telemetry, Prefect logs only warnings, library
    noise a user cannot act on silenced (:func:`silence_library_noise`)."""
    silence_library_noise()
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    import prefect.main  # noqa: F401  # lazy: sets its log handlers from the variables above

    for logs in _console_logs:  # filter the console handlers Prefect just added
        logs.attach()
