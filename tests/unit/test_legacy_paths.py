"""Models registered before the layout change still load (models.legacy_paths)."""

from __future__ import annotations

import io
import pickle
import subprocess
import sys
from typing import Any

import cloudpickle
import numpy as np
import pandas as pd
import pytest

from models.anomaly.base import DETECTORS
from models.legacy_paths import MOVED_MODULES, MOVED_NAMES

# Pickle protocol 2 names classes as text ("module\nname"), so an old path can be written in.
RENAMED = [
    ("models.anomaly.streaming_ensemble", "models.streaming_ensemble", "StreamingEnsembleDetector"),
    ("foresight.pyfunc", "models.pyfunc", "ForesightPyfunc"),
    ("models.anomaly.robust_seasonal", "models.anomaly", "RobustSeasonalDetector"),
    ("models.failure.lgbm", "models.failure", "LGBMFailurePredictor"),
]


@pytest.mark.slow  # a fresh interpreter, so nothing is installed before the first load
def test_classes_pickled_under_their_old_paths_load_after_install() -> None:
    code = f"""
import importlib, pickle
blobs = []
for new, old, name in {RENAMED!r}:
    cls = getattr(importlib.import_module(new), name)
    blob = pickle.dumps(cls, protocol=2).replace(("c" + new + "\\n").encode(), ("c" + old + "\\n").encode())
    assert old.encode() in blob, (old, blob)
    try:
        pickle.loads(blob)
    except (ModuleNotFoundError, AttributeError):
        pass
    else:
        raise SystemExit(f"{{old}}.{{name}} loaded without install: the test proves nothing")
    blobs.append((blob, cls))
from models.legacy_paths import install
install()
for blob, cls in blobs:
    assert pickle.loads(blob) is cls
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr[-2000:]


def test_every_new_path_exists() -> None:
    import importlib

    for new in MOVED_MODULES.values():
        importlib.import_module(new)
    for (_, name), new in MOVED_NAMES.items():
        assert hasattr(importlib.import_module(new), name), (new, name)
    assert pickle.loads(pickle.dumps(MOVED_MODULES)) == MOVED_MODULES


class _NamesRead(pickle.Unpickler):
    """An unpickler that notes every ``(module, name)`` a pickle refers to."""

    def __init__(self, blob: bytes) -> None:
        super().__init__(io.BytesIO(blob))
        self.names: set[tuple[str, str]] = set()

    def find_class(self, module: str, name: str) -> Any:
        self.names.add((module, name))
        return super().find_class(module, name)


@pytest.mark.parametrize("name", ["streaming", "streaming_ensemble", "streaming_knn"])
def test_a_streaming_champion_pickle_names_only_its_detector_class(name: str) -> None:
    """A registered streaming detector refers to no project name but its own class, so the states,
    suppression and day-phase helpers it builds at predict time can move between modules without
    an entry above; a detector that starts keeping one of them fails here first."""
    ts = pd.date_range("2024-03-04", periods=600, freq="5min", tz="UTC")
    frame = pd.DataFrame({"unique_id": "svc/i-1/cpu_pct", "ds": ts, "y": np.sin(np.arange(ts.size) / 20.0)})
    detector = DETECTORS.get(name)()
    detector.fit(frame)
    detector.predict(frame.tail(50))
    reader = _NamesRead(cloudpickle.dumps(detector))
    loaded = reader.load()
    project = {(m, n) for m, n in reader.names if m.split(".")[0] in ("models", "foresight", "features")}
    assert project == {(type(detector).__module__, type(detector).__name__)}
    assert loaded.predict(frame.tail(50))["score"].tolist() == detector.predict(frame.tail(50))["score"].tolist()
