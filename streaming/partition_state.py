"""The state of one partition: a :class:`~streaming.keyed_scoring.KeyScorer` per message key,
the log aggregates and the template miner of the services in it, and the offsets it has read.

Everything here moves together: it is checkpointed as one object with its offsets
(:mod:`connectors.sinks.checkpoint_store`) and handed to whichever consumer owns the partition
next. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from features.logs.aggregate import LogAggregator
from streaming.keyed_scoring import KeyScorer, Sample, StepResult

MinerFactory = Callable[[dict[str, Any] | None], Any]  # None: a new miner; else from its state


class PartitionState:
    """One partition's scorers, log aggregates, template miner and offsets."""

    def __init__(self, partition: int, *, retain_minutes: int = 10, miner: Any = None) -> None:
        self.partition = partition
        self.offsets: dict[tuple[str, int], int] = {}  # (topic, partition) -> next offset to read
        self.scorers: dict[str, KeyScorer] = {}
        self.logs = LogAggregator(retain_minutes)
        self.miner = miner
        self.catalogued: set[str] = set()  # aggregate series already in the lake's catalogue
        self.messages = 0  # messages taken since the partition's first checkpoint

    def seen(self, topic: str, offset: int) -> None:
        """A message of ``topic`` at ``offset`` was taken (processed or rejected)."""
        self.offsets[(topic, self.partition)] = offset + 1
        self.messages += 1

    def score(self, sample: Sample, new_scorer: Callable[[str], KeyScorer]) -> StepResult:
        scorer = self.scorers.get(sample.key)
        if scorer is None:
            scorer = self.scorers[sample.key] = new_scorer(sample.key)
        return scorer.add(sample)

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
        self.__dict__.update(state)
        self.miner = None  # restored by restore_miner with the processor's factory

    def restore_miner(self, factory: MinerFactory) -> None:
        """Rebuild the miner after loading (from its saved state) or create one."""
        if self.miner is None:
            self.miner = factory(getattr(self, "miner_state", None))
        self.__dict__.pop("miner_state", None)
