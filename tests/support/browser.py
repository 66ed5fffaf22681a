"""Debian's headless Chromium (``chromium-headless-shell``, infra/ci/install-system-packages.sh)
for tests that look at a page as a person would: the DOM after its scripts ran, and a screenshot.

The page is a local file and the browser gets no network, so nothing is fetched from anywhere.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from support.servers import missing_dependency

BINARIES = ("chromium-headless-shell", "chromium", "chrome-headless-shell")
# No sandbox: tests run as root (CI too), where Chromium refuses its own sandbox. No GPU, no
# first-run work, and no way out: every host resolves nowhere.
_FLAGS = ("--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run", "--hide-scrollbars",
          "--host-resolver-rules=MAP * ~NOTFOUND")
_TIMEOUT = 60.0


def chromium() -> str:
    """The headless Chromium binary; skips the test (fails it in CI) when none is installed."""
    for name in BINARIES:
        found = shutil.which(name)
        if found:
            return found
    missing_dependency("no headless Chromium: install Debian's chromium-headless-shell "
                       "(`make system-packages` does) to render the report as a browser shows it")


def _run(args: list[str]) -> subprocess.CompletedProcess[bytes]:
    with tempfile.TemporaryDirectory(prefix="foresight-chromium-") as profile:
        return subprocess.run([chromium(), *_FLAGS, f"--user-data-dir={profile}", *args], capture_output=True,
                              timeout=_TIMEOUT, check=True)


def dump_dom(page: Path) -> str:
    """The page's DOM as Chromium serialises it once the page has loaded and its scripts have run."""
    return _run(["--dump-dom", page.resolve().as_uri()]).stdout.decode("utf-8")


def screenshot(page: Path, out: Path, *, width: int = 1280, height: int = 1600) -> Path:
    """A PNG of the page's first ``width`` x ``height`` CSS pixels, written to ``out``."""
    out.parent.mkdir(parents=True, exist_ok=True)
    _run([f"--screenshot={out.resolve()}", f"--window-size={width},{height}", page.resolve().as_uri()])
    return out
