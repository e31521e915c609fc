"""Child processes of ``kapi up``: start with a log file, restart when they die, stop in order.

Each component runs as its own process (its own certificate, its own command line, visible in
``ps``), writing stdout and stderr to ``LOG_DIR/NAME.log``. ``check()`` restarts a child that
exited (after a short delay, logging why) unless it is ``critical`` (the API server), whose exit
is reported to the caller. ``stop_all()`` sends SIGTERM in reverse start order (kubelets first, so
they stop their containers while the API server still answers), waits, then SIGKILLs stragglers.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

RESTART_DELAY = 1.0


@dataclass
class Child:
    """One supervised process."""

    name: str
    argv: list[str]
    log_path: Path
    critical: bool = False
    process: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    died_at: float = 0.0

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


@dataclass
class Supervisor:
    """The children of one ``kapi up``."""

    log_dir: Path
    env: dict[str, str] = field(default_factory=lambda: dict(os.environ))
    children: list[Child] = field(default_factory=list)

    def _spawn(self, child: Child) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with child.log_path.open("ab") as log:
            log.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} starting: {' '.join(child.argv)}\n".encode())
            log.flush()
            child.process = subprocess.Popen(child.argv, stdout=log, stderr=subprocess.STDOUT,
                                             stdin=subprocess.DEVNULL, env=self.env, start_new_session=True)

    def start(self, name: str, argv: Sequence[str], *, critical: bool = False) -> Child:
        """Start ``argv`` as the child ``name``."""
        child = Child(name, list(argv), self.log_dir / f"{name}.log", critical)
        self._spawn(child)
        self.children.append(child)
        return child

    def check(self) -> Child | None:
        """Restart children that died (after ``RESTART_DELAY``); returns a dead critical child."""
        now = time.monotonic()
        for child in self.children:
            if child.alive or child.process is None:
                continue
            if child.critical:
                return child
            if not child.died_at:
                child.died_at = now
                print(f"  ! {child.name} exited with {child.process.returncode}; restarting "
                      f"(log: {child.log_path})", flush=True)
            elif now - child.died_at >= RESTART_DELAY:
                child.died_at = 0.0
                child.restarts += 1
                self._spawn(child)
        return None

    def stop_all(self, timeout: float = 10.0) -> None:
        """SIGTERM every child, newest first, wait up to ``timeout`` seconds in all, then SIGKILL."""
        for child in reversed(self.children):
            if child.alive and child.process is not None:
                child.process.send_signal(signal.SIGTERM)
                if not child.critical:
                    _wait(child.process, timeout / 2)
        deadline = time.monotonic() + timeout
        for child in reversed(self.children):
            if child.process is None:
                continue
            if not _wait(child.process, max(0.1, deadline - time.monotonic())):
                child.process.kill()
                _wait(child.process, 5)


def _wait(process: subprocess.Popen[bytes], timeout: float) -> bool:
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        return False
    return True
