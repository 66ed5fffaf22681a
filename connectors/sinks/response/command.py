"""Actions through a command (e.g. ``kubectl rollout restart deployment/{service}``), run without a
shell: each ``argv`` item is filled in (:meth:`ActionRequest.fill`) and passed as one argument, so
an incident's values cannot inject another command. Exit status 0 is success; another status, a
timeout or a missing program raises :class:`ResponseActionError` with the end of its output."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence

from connectors.sinks.response.request import ActionRequest, ResponseActionError


class CommandExecutor:
    """Runs ``argv`` (templates) once per action."""

    def __init__(self, name: str, argv: Sequence[str], *, timeout: float = 60.0) -> None:
        if not argv:
            raise ValueError(f"command {name!r} has an empty argv")
        self.name, self.argv, self.timeout = name, list(argv), timeout

    def execute(self, request: ActionRequest) -> str:
        argv = [request.fill(item) for item in self.argv]
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=self.timeout, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ResponseActionError(f"command {self.name}: {type(exc).__name__}: {exc}") from exc
        if done.returncode != 0:
            tail = " ".join((done.stderr or done.stdout).split())[-200:]
            raise ResponseActionError(f"command {self.name} exited {done.returncode}: {tail}")
        return f"command {self.name} exited 0"
