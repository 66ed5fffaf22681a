"""The nearest-neighbour state on block means, with the series' block ends spread over the steps.

:class:`models.anomaly.knn.BlockKnnState` ends every series' block at the same step, so one step
in ``block`` searches the neighbours of every series at once (the worst step of the
``streaming_knn`` ensemble). :class:`StaggeredBlockKnnState` gives each series a block origin
(``origins``: by default series ``j`` gets ``j mod block``; callers with series names pass
:func:`stable_origins`, so a series keeps its origin whichever other series share the state):
the series are split into ``block`` groups by origin, each with its own
:class:`~models.anomaly.knn.KnnState`, and at each step one group ends its blocks and searches.
With origins spread evenly the worst step costs about ``1 / block`` of the unstaggered one, and
the scores of a series are those of a :class:`~models.anomaly.knn.BlockKnnState` whose blocks
start at its origin (its first block is shorter: it closes at the first end of its group).
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from models.anomaly.knn import KnnParams, KnnState


@dataclass
class StaggeredBlockKnnState:
    """Nearest-neighbour surprise of ``block``-step means of ``n`` series, scored at each
    series' own block ends: a series with origin ``o`` at the updates ``t`` (counted from 0)
    with ``(t + 1 + o) % block == 0``; origin 0 as an unstaggered
    :class:`~models.anomaly.knn.BlockKnnState`."""

    n: int
    block: int = 8
    params: KnnParams = field(default_factory=KnnParams)
    origins: np.ndarray | None = None  # block origin of each series (None: series index)

    def __post_init__(self) -> None:
        if self.block < 1:
            raise ValueError(f"block must be at least 1 step, got {self.block}")
        origins = np.arange(self.n) if self.origins is None else np.asarray(self.origins, dtype=np.int64)
        if origins.shape != (self.n,):
            raise ValueError(f"origins must hold one origin per series ({self.n}), got shape {origins.shape}")
        group = origins % self.block
        self._members = [np.flatnonzero(group == g) for g in range(self.block)]
        self._groups = [KnnState(len(rows), self.params) for rows in self._members]
        self._sum = np.zeros(self.n)
        self._count = np.zeros(self.n, dtype=np.int64)
        self._steps = 0

    @property
    def nbytes(self) -> int:
        """Memory held by the state's arrays."""
        return sum(g.nbytes for g in self._groups) + self._sum.nbytes + self._count.nbytes

    def ending_group(self) -> int:
        """The group whose blocks end at the next update."""
        return (-(self._steps + 1)) % self.block

    def surprise(self, y: np.ndarray, phase: np.ndarray | int = 0) -> tuple[np.ndarray, np.ndarray]:
        """``-ln p`` of the block mean's nonconformity for the series whose block ends at this
        step (0 for the others and for series without a sample now), and which series had a
        sample; then learns."""
        del phase  # block ends follow the step count, not the clock
        y = np.asarray(y, dtype="float64")
        if y.shape != (self.n,):
            raise ValueError(f"expected {self.n} values, got shape {y.shape}")
        ok = np.isfinite(y)
        self._sum += np.where(ok, y, 0.0)
        self._count += ok
        g = self.ending_group()
        self._steps += 1
        out = np.zeros(self.n)
        rows = self._members[g]
        if rows.size:
            count = self._count[rows]
            # a block without any sample is a gap for the inner state
            mean = np.where(count > 0, self._sum[rows] / np.maximum(count, 1), np.nan)
            self._sum[rows] = 0.0
            self._count[rows] = 0
            out[rows] = self._groups[g].surprise(mean)[0]
        return np.where(ok, out, 0.0), ok


def stable_origins(names: Iterable[str], block: int) -> np.ndarray:
    """A block origin per series name, the same in every process and whatever the other names
    (CRC-32 of the name, modulo ``block``): roughly even over ``block`` for many series."""
    return np.array([zlib.crc32(str(name).encode()) % block for name in names], dtype=np.int64)
