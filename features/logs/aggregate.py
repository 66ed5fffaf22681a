"""Per service and minute log aggregates, as telemetry rows in the lake's one table shape.

A :class:`LogAggregator` counts log lines as they stream in (event time: the line's own
timestamp, floored to the minute) and hands out the minutes that changed since they were last
written (:meth:`LogAggregator.changed_rows`, then :meth:`LogAggregator.mark_written` once the
write succeeded) as long telemetry (``unique_id, ds, y``) with their catalogue rows. The set of
changed minutes is part of the state, so a checkpoint taken before a write still holds them. Each row carries the minute's *full* count, not an increment, so writing it twice (or again
after a late line) with an upsert on ``(unique_id, ds)`` is harmless: the lake ends with one row
per series and minute whatever was replayed.

Series per service (``<service>/logs/<metric>``):

- ``log_lines`` and ``log_lines_<level>`` (``error``, ``warn``, ``info``, ``debug``, ``other``);
- ``log_error_ratio``: error and fatal lines over all lines of the minute (unit ``ratio``);
- ``log_new_templates``: lines that created a template the miner had not seen;
- ``log_template_<template_id>``: lines per template.

Minutes older than ``retain_minutes`` behind the newest minute seen are forgotten; a line for a
forgotten minute is *late*: it is counted in :attr:`LogAggregator.late_lines` and left out, since
re-emitting that minute from a partial count would overwrite the full one. Pure: no I/O; its state
(:meth:`to_state` / :meth:`from_state`) is plain JSON.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from foresight.schemas import CATALOGUE_COLUMNS, UTC_DTYPE, catalogue_row

LEVELS: tuple[str, ...] = ("error", "warn", "info", "debug", "other")
ERROR_LEVELS = frozenset({"error", "fatal", "critical", "crit", "emerg", "alert", "severe"})
_LEVEL_ALIASES = {"warning": "warn", "notice": "info", "trace": "debug", "verbose": "debug", "fine": "debug"}
_SAFE = re.compile(r"[^A-Za-z0-9_.:-]")
SOURCE = "stream"  # catalogue source of the aggregates
RESOURCE_SUFFIX = "logs"


def normalise_level(level: str) -> str:
    """A log level as one of :data:`LEVELS` (fatal and its kin count as ``error``)."""
    known = _NORMALISED.get(level)
    if known is not None:
        return known
    name = _normalise(level)
    if len(_NORMALISED) < _NORMALISED_LIMIT:  # a stream spells its levels a few ways, not thousands
        _NORMALISED[level] = name
    return name


_NORMALISED: dict[str, str] = {}
_NORMALISED_LIMIT = 1024


def _normalise(level: str) -> str:
    name = level.strip().lower()
    name = _LEVEL_ALIASES.get(name, name)
    if name in ERROR_LEVELS:
        return "error"
    return name if name in LEVELS else "other"


def series_id(service: str, metric: str) -> str:
    """The unique_id of one aggregate series of ``service``."""
    return f"{service}/{RESOURCE_SUFFIX}/{metric}"


def template_metric(template_id: str) -> str:
    """The metric name of a template's line count (characters a series id cannot hold replaced)."""
    return "log_template_" + _SAFE.sub("_", template_id)


@dataclass
class MinuteCounts:
    """What one service logged in one minute."""

    levels: Counter[str] = field(default_factory=Counter)
    templates: Counter[str] = field(default_factory=Counter)
    new_templates: int = 0

    @property
    def lines(self) -> int:
        return sum(self.levels.values())

    def error_ratio(self) -> float:
        total = self.lines
        return self.levels["error"] / total if total else 0.0


class LogAggregator:
    """Counts per (service, minute); the minutes that changed come out as telemetry rows."""

    def __init__(self, retain_minutes: int = 10) -> None:
        if retain_minutes < 1:
            raise ValueError(f"retain_minutes must be at least 1, got {retain_minutes}")
        self.retain_minutes = retain_minutes
        self._minutes: dict[tuple[str, int], MinuteCounts] = {}  # (service, epoch minute) -> counts
        self._changed: set[tuple[str, int]] = set()
        self._newest: int | None = None  # newest epoch minute seen
        self.late_lines = 0

    def add(
        self, service: str, ts_seconds: float, level: str, template_id: str, *, is_new: bool = False
    ) -> bool:
        """Count one line at ``ts_seconds`` (epoch); False when its minute was already forgotten (late)."""
        minute = int(ts_seconds // 60)
        if self._newest is not None and minute < self._newest - self.retain_minutes:
            self.late_lines += 1
            return False
        if self._newest is None or minute > self._newest:
            self._newest = minute
            self._forget_old()
        key = (service, minute)
        counts = self._minutes.get(key)
        if counts is None:
            counts = self._minutes[key] = MinuteCounts()
        counts.levels[normalise_level(level)] += 1
        counts.templates[template_id] += 1
        if is_new:
            counts.new_templates += 1
        self._changed.add(key)
        return True

    def _forget_old(self) -> None:
        assert self._newest is not None
        horizon = self._newest - self.retain_minutes
        # A changed minute stays until it is written, however far event time jumped.
        for key in [k for k in self._minutes if k[1] < horizon and k not in self._changed]:
            del self._minutes[key]

    def current(self, service: str) -> MinuteCounts | None:
        """The newest minute's counts of ``service`` (None when it logged nothing then)."""
        return None if self._newest is None else self._minutes.get((service, self._newest))

    def minutes_between(self, lo: int, hi: int) -> list[tuple[str, int, MinuteCounts]]:
        """``(service, epoch minute, counts)`` of every minute held in ``[lo, hi)``."""
        return [(s, m, c) for (s, m), c in self._minutes.items() if lo <= m < hi]

    @property
    def pending(self) -> int:
        """Minutes changed since they were last written."""
        return len(self._changed)

    def changed_rows(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Telemetry rows (full counts) of every minute changed since :meth:`mark_written`, and
        the catalogue rows of their series. Nothing is cleared: call :meth:`mark_written` once
        they are stored."""
        rows: list[tuple[str, int, float]] = []
        catalogue: dict[str, dict[str, str]] = {}
        for service, minute in sorted(self._changed):
            counts = self._minutes[(service, minute)]
            values: dict[str, tuple[float, str]] = {
                "log_lines": (float(counts.lines), "count"),
                "log_error_ratio": (counts.error_ratio(), "ratio"),
                "log_new_templates": (float(counts.new_templates), "count"),
            }
            for level in LEVELS:
                values[f"log_lines_{level}"] = (float(counts.levels[level]), "count")
            for template, n in counts.templates.items():
                values[template_metric(template)] = (float(n), "count")
            for metric, (y, unit) in values.items():
                uid = series_id(service, metric)
                rows.append((uid, minute, y))
                if uid not in catalogue:
                    catalogue[uid] = catalogue_row(
                        uid, SOURCE, metric, service, f"{service}/{RESOURCE_SUFFIX}", unit, {}
                    )
        telemetry = pd.DataFrame(
            {
                "unique_id": pd.Series([r[0] for r in rows], dtype="string"),
                "ds": pd.Series(
                    pd.to_datetime([r[1] * 60 for r in rows], unit="s", utc=True), dtype=UTC_DTYPE
                ),
                "y": pd.Series([r[2] for r in rows], dtype="float64"),
            }
        )
        cat = pd.DataFrame(list(catalogue.values()), columns=list(CATALOGUE_COLUMNS)).astype("string")
        return telemetry, cat

    def mark_written(self) -> None:
        """The rows :meth:`changed_rows` gave are stored: nothing is pending any more."""
        self._changed.clear()
        if self._newest is not None:
            self._forget_old()

    def take_changed(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        """:meth:`changed_rows`, marked written at once (for callers whose write cannot fail)."""
        rows = self.changed_rows()
        self.mark_written()
        return rows

    # -- state ------------------------------------------------------------------------------------
    def to_state(self) -> dict[str, Any]:
        """Everything needed to resume counting, as plain JSON."""
        return {
            "retain_minutes": self.retain_minutes,
            "newest": self._newest,
            "late_lines": self.late_lines,
            "minutes": [
                [service, minute, dict(c.levels), dict(c.templates), c.new_templates]
                for (service, minute), c in self._minutes.items()
            ],
            "changed": [[service, minute] for service, minute in sorted(self._changed)],
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> LogAggregator:
        agg = cls(int(state["retain_minutes"]))
        agg._newest = state["newest"]
        agg.late_lines = int(state["late_lines"])
        for service, minute, levels, templates, new in state["minutes"]:
            agg._minutes[(service, int(minute))] = MinuteCounts(Counter(levels), Counter(templates), int(new))
        agg._changed = {(service, int(minute)) for service, minute in state["changed"]}
        return agg
