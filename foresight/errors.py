"""Errors a person can act on, and whether waiting could clear them.

Every error Foresight raises on purpose derives from :class:`ForesightError`: its message names
the problem in one line, ``hint`` says what to do about it, and ``retryable`` says whether
running again soon could succeed. The CLI prints ``message`` and ``hint`` (a traceback only with
``--debug``); Prefect tasks retry only retryable errors (``flows.retries.retry_unless_permanent``),
so a bad config or a missing champion fails a run at once instead of after every retry delay.
"""

from __future__ import annotations

from collections.abc import Iterator


class ForesightError(Exception):
    """A problem with a one-line message and, where one exists, the fix."""

    retryable: bool = False
    exit_code: int = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message} ({self.hint})"


class ConfigError(ForesightError, ValueError):
    """The configuration is invalid: a bad key, a value out of range, an unreadable file."""

    exit_code = 2


class NotReadyError(ForesightError, LookupError):
    """A prerequisite does not exist yet (no telemetry, no champion model): waiting will not make
    it appear, running the stage that produces it will."""


class DependencyUnavailableError(ForesightError, RuntimeError):
    """A server Foresight needs (MLflow, the forecast store, a source) did not answer in time."""

    retryable = True


def exception_chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and what it was raised from or during, outermost first (cycles cut): where a
    wrapped error (MLflow's, SQLAlchemy's) hides the cause that says whether to wait."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__
