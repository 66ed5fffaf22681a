"""Servers that outlive the command that started them: a pid file and a log per server under one
state folder, found again by pid file to report on or stop.

Both stack profiles keep their servers this way (:mod:`~foresight.cli.local_stack.stack`, the
development stack; :mod:`~foresight.cli.local_stack.production`, the production profile); the
starting, health waiting and stopping itself is :mod:`~foresight.cli.local_stack.launcher`'s.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from foresight.cli.local_stack.launcher import ServiceSpec, answers, is_alive, spawn, terminate, wait_healthy


@dataclass(frozen=True)
class ServiceStatus:
    """Whether a server's process is alive and answers its health check."""

    name: str
    pid: int | None
    healthy: bool
    address: str


@dataclass(frozen=True)
class Supervisor:
    """The servers whose pid files and logs live in ``state``."""

    state: Path

    def log(self, name: str) -> Path:
        return self.state / f"{name}.log"

    def _pidfile(self, name: str) -> Path:
        return self.state / f"{name}.pid"

    def read_pid(self, name: str) -> tuple[int, str] | None:
        """``(pid, binary)`` from the pid file; a stale file (process gone or pid reused) is removed."""
        path = self._pidfile(name)
        if not path.exists():
            return None
        record = json.loads(path.read_text())
        pid, binary = int(record["pid"]), str(record["binary"])
        if not is_alive(pid, binary):
            path.unlink(missing_ok=True)
            return None
        return pid, binary

    def status(self, specs: Sequence[ServiceSpec]) -> list[ServiceStatus]:
        """Each server: its pid if the process lives, and whether it answers its health check."""
        out = []
        for spec in specs:
            running = self.read_pid(spec.name)
            address = spec.health_url or f"127.0.0.1:{spec.health_port}"
            out.append(ServiceStatus(spec.name, running[0] if running else None,
                                     running is not None and answers(spec), address))
        return out

    def start(self, waves: Sequence[Sequence[ServiceSpec]], *, timeout: float) -> list[str]:
        """Start the servers not running, a wave at a time: a wave's servers are spawned together,
        then waited for, before the next wave (which may need them). On a failure, stop what this
        call started and raise. Returns the names started."""
        self.state.mkdir(parents=True, exist_ok=True)
        started: list[str] = []
        try:
            for wave in waves:
                spawned = []
                for spec in wave:
                    if self.read_pid(spec.name) is not None:
                        continue
                    pid = spawn(spec.args, self.log(spec.name), env=spec.env)
                    self._pidfile(spec.name).write_text(json.dumps({"pid": pid, "binary": spec.binary}))
                    started.append(spec.name)
                    spawned.append((spec, pid))
                for spec, pid in spawned:
                    wait_healthy(spec, pid, self.log(spec.name), timeout=timeout)
        except BaseException:
            self.stop(list(reversed(started)), grace=10.0)
            raise
        return started

    def stop(self, names: Sequence[str], *, grace: float) -> list[str]:
        """Stop the named servers in that order; returns those that were running."""
        stopped = []
        for name in names:
            running = self.read_pid(name)
            if running is not None:
                terminate(*running, grace=grace)
                stopped.append(name)
            self._pidfile(name).unlink(missing_ok=True)
        return stopped
