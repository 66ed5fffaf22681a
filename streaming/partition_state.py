"""The state of one partition: a :class:`~streaming.keyed_scoring.KeyScorer` per message key,
the log aggregates and the template miner of the services in it, the log minutes sealed for
scoring (:class:`~streaming.log_steps.LogMinutes`, when log series are fed to the scorers) and the
offsets it has read.

Everything here moves together: it is checkpointed as one object with its offsets
(:mod:`connectors.sinks.checkpoint_store`) and handed to whichever consumer owns the partition
next. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from features.logs.aggregate import LogAggregator
from streaming.keyed_scoring import KeyScorer, Sample, StepResult
from streaming.log_steps import LogMinutes

MinerFactory = Callable[[dict[str, Any] | None], Any]  # None: a new miner; else from its state


class PartitionState:
    """One partition's scorers, log aggregates, template miner and offsets."""

    def __init__(
        self,
        partition: int,
        *,
        retain_minutes: int = 10,
        miner: Any = None,
        log_grace_seconds: float | None = None,
    ) -> None:
        """``log_grace_seconds`` None: log minutes are not sealed for the scorers (no log series)."""
        self.partition = partition
        self.offsets: dict[tuple[str, int], int] = {}  # (topic, partition) -> next offset to read
        self.scorers: dict[str, KeyScorer] = {}
        self.logs = LogAggregator(retain_minutes)
        self.miner = miner
        self.catalogued: set[str] = set()  # aggregate series already in the lake's catalogue
        self.messages = 0  # messages taken since the partition's first checkpoint
        self.log_minutes = (
            None if log_grace_seconds is None else LogMinutes(log_grace_seconds, keep_minutes=retain_minutes)
        )

    def seen(self, topic: str, offset: int) -> None:
        """A message of ``topic`` at ``offset`` was taken (processed or rejected)."""
        self.offsets[(topic, self.partition)] = offset + 1
        self.messages += 1

    def score(self, sample: Sample, new_scorer: Callable[[str], KeyScorer]) -> StepResult:
        scorer = self.scorers.get(sample.key)
        if scorer is None:
            scorer = self.scorers[sample.key] = new_scorer(sample.key)
        return scorer.add(sample, self.log_minutes)

    def feed_logs(self, grace_seconds: float | None) -> None:
        """Seal log minutes for the scorers (``grace_seconds``) or not (None); kept when unchanged."""
        if (grace_seconds is None) != (self.log_minutes is None):
            keep = self.logs.retain_minutes
            self.log_minutes = None if grace_seconds is None else LogMinutes(grace_seconds, keep_minutes=keep)

    def logs_counted(self, timestamps: Sequence[float]) -> StepResult:
        """A log message's lines (their epoch-second timestamps) were counted into :attr:`logs`:
        seal the minutes its logs moved past and feed every scorer's steps waiting for them."""
        result = StepResult()
        if self.log_minutes is None or not self.log_minutes.observe(timestamps, self.logs):
            return result
        for key in sorted(self.scorers):
            step = self.scorers[key].advance(self.log_minutes)
            result.events += step.events
            result.steps += step.steps
            result.evidence.update(step.evidence)
        return result

    def open_incidents(self) -> int:
        return sum(s.open_incidents for s in self.scorers.values())

    # The miner is kept as its own JSON-safe state in checkpoints, not as a pickled object, so a
    # miner of a newer version can still read it.
    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        miner = state.pop("miner")
        state["miner_state"] = None if miner is None else miner.to_state()
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.miner_state = state.pop("miner_state")
        state.setdefault("log_minutes", None)  # checkpoints from before log series
        self.__dict__.update(state)
        self.miner = None  # restored by restore_miner with the processor's factory

    def restore_miner(self, factory: MinerFactory) -> None:
        """Rebuild the miner after loading (from its saved state) or create one."""
        if self.miner is None:
            self.miner = factory(getattr(self, "miner_state", None))
        self.__dict__.pop("miner_state", None)
