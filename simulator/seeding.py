"""Independent, named random streams derived from one seed.

Each part of the simulator draws from its own stream (``rng_for(seed, "traffic")``), so adding
or changing one part never shifts the random numbers another part sees.
"""

from __future__ import annotations

import hashlib

import numpy as np


def _stable_key(name: str) -> int:
    """A process-independent 64-bit integer for a name (``hash()`` is salted per process)."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "little")


def rng_for(seed: int, *names: str) -> np.random.Generator:
    """The generator for one named part of the simulation under ``seed``."""
    return np.random.default_rng([seed, *(_stable_key(n) for n in names)])
