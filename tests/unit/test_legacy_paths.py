"""Models registered before the layout change still load (models.legacy_paths)."""

from __future__ import annotations

import pickle
import subprocess
import sys

import pytest

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
