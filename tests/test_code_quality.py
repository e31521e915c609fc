"""The code stays lint-clean (ruff, configured in ``.ruff.toml``) and fully typed (mypy over the
packages we ship: ``kapi``, ``plugins``, ``certs``; settings in ``setup.cfg``)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_ruff() -> None:
    result = run("ruff", "check", "--no-cache", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy() -> None:
    result = run("mypy", "kapi", "plugins", "certs")
    assert result.returncode == 0, result.stdout + result.stderr
