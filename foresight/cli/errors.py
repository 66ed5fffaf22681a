"""How the CLI reports a failure: one line naming the problem, one naming the fix.

A :class:`~foresight.errors.ForesightError` says both itself. Anything else is named by its type
and the first line of its message. Tracebacks, the CLI's and those Prefect logs when a task or
flow fails, are shown only with ``--debug``. Credentials inside URLs never reach the console.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType

from pydantic import ValidationError

from foresight.errors import ForesightError
from foresight.redact import redact_url

DEBUG_HINT = "run with --debug for the traceback"
_MAX_LINES = 10  # problems listed before "(and N more)"
_MAX_MESSAGE = 400  # characters: one terminal line or two, never a wall


@dataclass(frozen=True)
class Failure:
    message: str
    hint: str | None
    exit_code: int


def describe_failure(exc: BaseException, *, debug: bool = False) -> Failure:
    """What to print for an exception that ended a command (credentials masked)."""
    if isinstance(exc, ForesightError):  # one problem per line (a config with three bad keys: three)
        return Failure(_clip_lines(exc.message), exc.hint and _clip(exc.hint), exc.exit_code)
    more = None if debug else DEBUG_HINT
    validation = _validation_summary(exc)
    if validation is not None:
        title = str(getattr(exc, "title", ""))
        fix = ("fix that value in the config file or FORESIGHT_* environment"
               if title.endswith(("Settings", "Config")) else None)
        return Failure(_clip(validation), _join(fix, more), 2)
    return Failure(_clip(f"{type(exc).__name__}: {_yaml_problem(exc) or _first_line(exc)}"),
                   _join(_fix_for(exc), more), 1)


# Exception type names (matched along the MRO, so no client library needs importing here) that
# mean a server or database did not answer: sqlalchemy, psycopg, httpx, requests, urllib3.
_UNREACHABLE = {"ConnectionError", "OperationalError", "InterfaceError", "ConnectError", "ConnectTimeout",
                "TimeoutError", "NewConnectionError", "MaxRetryError"}


def _fix_for(exc: BaseException) -> str | None:
    """The usual fix for a common kind of error that is not a ForesightError."""
    names = {cls.__name__ for cls in type(exc).__mro__}
    if "FileNotFoundError" in names:
        return "check the path (relative paths start at the working directory)"
    if "PermissionError" in names:
        return "check that the user running foresight may read and write that path"
    if names & _UNREACHABLE:
        return "check that the server or database is up and that its URL in the config is right"
    if "YAMLError" in names:
        return "fix the YAML at the line and column shown"
    return None


def _join(*parts: str | None) -> str | None:
    return "; ".join(p for p in parts if p) or None


def _yaml_problem(exc: BaseException) -> str | None:
    """``expected ',' or ']' (badconfig.yaml, line 2, column 1)`` for a PyYAML error with a mark."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None)
    if mark is None or not problem:
        return None
    where = f"line {mark.line + 1}, column {mark.column + 1}"
    return f"{problem} ({where})" if str(mark.name).startswith("<") else f"{problem} ({mark.name}, {where})"


def _validation_summary(exc: BaseException) -> str | None:
    """``invalid Settings: forecast.horizn: Extra inputs are not permitted (and 1 more)`` for a
    pydantic ValidationError; its input values are left out (they may be secrets)."""
    if not isinstance(exc, ValidationError):
        return None
    errors = exc.errors(include_url=False, include_input=False)
    if not errors:
        return f"invalid {exc.title}"
    first = errors[0]
    where = ".".join(str(part) for part in first["loc"]) or "(top level)"
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"invalid {exc.title}: {where}: {first['msg']}{more}"


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    return lines[0] if lines else "(no message)"


def _clip_lines(text: str) -> str:
    """Each line of ``text`` clipped to one line; at most :data:`_MAX_LINES` of them."""
    lines = [_clip(line) for line in text.splitlines() if line.strip()] or [_clip(text)]
    if len(lines) > _MAX_LINES:
        lines = [*lines[: _MAX_LINES - 1], f"(and {len(lines) - _MAX_LINES + 1} more)"]
    return "\n".join(lines)


def _clip(text: str) -> str:
    text = redact_url(" ".join(text.split()))  # one line, whatever the message held
    return text if len(text) <= _MAX_MESSAGE else text[: _MAX_MESSAGE - 3] + "..."


class Terminated(SystemExit):
    """SIGTERM or SIGHUP: leave like an exception, so cleanup runs (Prefect stops the API server
    it started for the run through ``atexit``, which a default, immediate exit would skip)."""

    def __init__(self, signum: int) -> None:
        super().__init__(128 + signum)
        self.signal_name = signal.Signals(signum).name


def _raise_terminated(signum: int, frame: FrameType | None) -> None:
    raise Terminated(signum)


@contextmanager
def exit_cleanly_on_termination() -> Iterator[None]:
    """SIGTERM / SIGHUP raise :class:`Terminated` in the main thread while the block runs
    (unless something set them already, e.g. ``nohup`` ignoring SIGHUP).

    While a flow runs, Prefect's own SIGTERM handler marks the run crashed and then re-sends the
    signal to the handler it replaced: this one.
    """
    signals = [signal.SIGTERM] + ([signal.SIGHUP] if hasattr(signal, "SIGHUP") else [])
    try:
        # only where the default (die at once) is in force: under nohup SIGHUP stays ignored
        previous = {sig: signal.signal(sig, _raise_terminated) for sig in signals
                    if signal.getsignal(sig) == signal.SIG_DFL}
    except ValueError:  # not the main thread (e.g. a test runner's worker): nothing to install
        yield
        return
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


class ConsoleLogFilter(logging.Filter):
    """On one console handler: credentials masked in every line; without ``debug``, no
    tracebacks, and none of Prefect's reports of a failure that the CLI states itself.

    Prefect's report of a failed task is held back until the command ends: dropped if the command
    failed with that very exception (the ``error:`` line says it), printed as one line otherwise
    (a flow that carried on past a failed task must not hide it). A record that must change is
    re-emitted as a changed copy, so other handlers (Prefect's API log handler keeps the traceback
    for the run's page in the UI) still get the original.
    """

    def __init__(self, handler: logging.Handler, debug: bool) -> None:
        super().__init__("foresight.cli")
        self.handler = handler
        self.debug = debug
        self.held: list[logging.LogRecord] = []

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "_foresight_console", False):
            return True
        if not self.debug:
            engine = _prefect_engine_report(record)
            if engine == "flow" or (engine == "task" and str(record.msg).startswith("Finished in state")):
                return False  # the flow call raises: the CLI's error line reports it
            if engine == "task" and record.exc_info:
                self.held.append(record)
                return False
        message = record.getMessage()
        redacted = redact_url(message)
        strip = not self.debug and bool(record.exc_info or record.exc_text or record.stack_info)
        if redacted == message and not strip:
            return True
        self._emit_copy(record, redacted, strip)
        return False

    def release(self, failed_with: BaseException | None) -> None:
        """Print the held task failures, except the one the command itself failed with."""
        for record in self.held:
            error = record.exc_info[1] if record.exc_info else None
            if failed_with is None or error is None or not _in_chain(error, failed_with):
                self._emit_copy(record, redact_url(record.getMessage()), strip=True)
        self.held.clear()

    def _emit_copy(self, record: logging.LogRecord, message: str, strip: bool) -> None:
        copy = logging.makeLogRecord(record.__dict__)
        copy.msg, copy.args, copy._foresight_console = message, None, True  # type: ignore[attr-defined]
        if strip:
            copy.exc_info = copy.exc_text = copy.stack_info = None
        self.handler.handle(copy)


def _in_chain(error: BaseException, failed_with: BaseException) -> bool:
    seen: set[int] = set()
    current: BaseException | None = failed_with
    while current is not None and id(current) not in seen:
        if current is error:
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


def _prefect_engine_report(record: logging.LogRecord) -> str | None:
    """"flow" or "task" for an ERROR record Prefect's flow or task engine logged about a run."""
    if record.levelno < logging.ERROR:
        return None
    path = record.pathname.replace(os.sep, "/")
    if path.endswith("/prefect/flow_engine.py"):
        return "flow"
    if path.endswith("/prefect/task_engine.py"):
        return "task"
    return None


def _console_handlers() -> list[logging.Handler]:
    loggers = [logging.getLogger()] + [
        logger for logger in logging.Logger.manager.loggerDict.values() if isinstance(logger, logging.Logger)
    ]
    streams = (sys.stderr, sys.stdout, sys.__stderr__, sys.__stdout__)
    found: list[logging.Handler] = []
    for logger in loggers:
        for handler in logger.handlers:
            stream = getattr(handler, "stream", None)
            console = isinstance(handler, logging.StreamHandler) and (stream in streams or stream is None)
            if (console or type(handler).__name__ == "PrefectConsoleHandler") and handler not in found:
                found.append(handler)
    return found


class ConsoleLogs:
    """Attaches :class:`ConsoleLogFilter` to the console handlers that exist (call again after
    importing something that adds handlers, e.g. Prefect) and detaches them all at the end."""

    def __init__(self, debug: bool) -> None:
        self.debug = debug
        self._filters: list[tuple[logging.Handler, ConsoleLogFilter]] = []

    def attach(self) -> None:
        attached = {id(handler) for handler, _ in self._filters}
        for handler in _console_handlers():
            if id(handler) not in attached:
                log_filter = ConsoleLogFilter(handler, self.debug)
                handler.addFilter(log_filter)
                self._filters.append((handler, log_filter))

    def detach(self, failed_with: BaseException | None = None) -> None:
        """Release held task failures (see :meth:`ConsoleLogFilter.release`) and remove the filters."""
        for handler, log_filter in self._filters:
            log_filter.release(failed_with)
            handler.removeFilter(log_filter)
        self._filters.clear()
