"""The record of every action an AWS sink took or would take: a JSON-lines file plus a logger.

Each line is one action: when, which run, dry-run or not, which sink and operation, on what
target, the outcome (``dry-run``, ``applied``, ``unchanged``, ``failed``, ``skipped``, ``refused``)
and its parameters. A ``refused`` line (a guard rail said no: nothing was or would be written)
always carries a top-level ``reason``.
Appending a line per action (not per run) means a run that dies halfway still leaves the trail
of what it already did.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from foresight.timeutil import utc_now

OUTCOMES: tuple[str, ...] = ("dry-run", "applied", "unchanged", "failed", "skipped", "refused")


class ActionLog:
    """Appends one JSON object per action to ``path`` and logs it on ``logger``."""

    def __init__(
        self,
        path: Path,
        *,
        run_id: str,
        dry_run: bool,
        logger: logging.Logger | logging.LoggerAdapter[Any] | None = None,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.path = Path(path)
        self.run_id = run_id
        self.dry_run = dry_run
        self._logger = logger or logging.getLogger(__name__)
        self._clock = clock
        self.entries: list[dict[str, Any]] = []

    def record(
        self, sink: str, operation: str, target: str, outcome: str, *, reason: str | None = None, **details: Any
    ) -> dict[str, Any]:
        """Write one action line (and log it); returns the entry. ``reason`` is required for
        ``refused`` (why nothing was written) and optional otherwise."""
        if outcome not in OUTCOMES:
            raise ValueError(f"unknown action outcome {outcome!r}; known: {', '.join(OUTCOMES)}")
        if outcome == "refused" and not reason:
            raise ValueError(f"a refused action needs a reason ({sink} {operation} {target})")
        entry = {
            "time": self._clock().isoformat(),
            "run_id": self.run_id,
            "dry_run": self.dry_run,
            "sink": sink,
            "operation": operation,
            "target": target,
            "outcome": outcome,
            "details": details,
        }
        if reason is not None:
            entry["reason"] = reason
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(entry, default=str, sort_keys=True) + "\n")
        self.entries.append(entry)
        level = logging.WARNING if outcome in ("failed", "refused") else logging.INFO
        self._logger.log(
            level,
            "%s %s %s %s%s: %s",
            sink,
            operation,
            target,
            outcome,
            f" ({reason})" if reason else "",
            json.dumps(details, default=str, sort_keys=True),
        )
        return entry

    def counts(self) -> dict[str, int]:
        """How many actions had each outcome in this log object's lifetime."""
        out: dict[str, int] = {}
        for entry in self.entries:
            out[entry["outcome"]] = out.get(entry["outcome"], 0) + 1
        return out


def read_action_log(path: Path) -> list[dict[str, Any]]:
    """Every entry of an action log file, oldest first (empty when the file does not exist)."""
    if not Path(path).exists():
        return []
    with Path(path).open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]
