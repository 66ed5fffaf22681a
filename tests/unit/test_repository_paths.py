"""The repository names no path outside itself, so a clone anywhere runs the same."""

from __future__ import annotations

import re
import subprocess

from conftest import REPO_ROOT

# Absolute paths of the machines we develop on; none belongs in a tracked file.
FOREIGN_PATH = re.compile(r"(?<![\w.])/(?:work|root|home|Users)/[\w.-]+")


def test_no_tracked_file_names_an_absolute_path_outside_the_repository() -> None:
    files = subprocess.run(["git", "ls-files"], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    offenders = []
    for name in files.stdout.splitlines():
        path = REPO_ROOT / name
        if not path.is_file() or path.suffix in {".parquet", ".png", ".gz", ".db"}:
            continue
        try:
            text = path.read_text()
        except UnicodeDecodeError:
            continue
        offenders += [f"{name}:{text.count(chr(10), 0, m.start()) + 1}: {m.group()}"
                      for m in FOREIGN_PATH.finditer(text)]
    assert not offenders, "tracked files name paths outside the repository:\n" + "\n".join(offenders)
