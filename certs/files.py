"""The one place where kapi_certs writes files.

``write_files`` writes a batch of files under a root directory. Each file is written to a
temporary sibling opened with ``os.open(..., O_CREAT | O_EXCL, mode)`` (so a secret is never
readable by others, not even for a moment), flushed to disk and renamed over the target, so a
reader sees the old file or the new one, never half of one. Directories that have to be created
get mode 0700; existing ones are left as they are. ``locked`` serialises writers of one directory
across processes (an advisory ``flock`` on ``.lock`` in it).

Nothing here logs file contents.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

PRIVATE = 0o600
PUBLIC = 0o644
DIRECTORY = 0o700


@dataclass(frozen=True)
class OutFile:
    """One file to write: ``relpath`` under the root, its bytes, and its permission bits."""

    relpath: str
    data: bytes
    mode: int = PRIVATE


def ensure_dir(path: Path) -> None:
    """Create ``path`` and missing parents with mode 0700; existing directories are not changed."""
    missing: list[Path] = []
    current = path
    while not current.exists():
        missing.append(current)
        current = current.parent
    for directory in reversed(missing):
        try:
            os.mkdir(directory, DIRECTORY)
        except FileExistsError:
            continue
        os.chmod(directory, DIRECTORY)


def _write_one(target: Path, data: bytes, mode: int) -> None:
    tmp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), mode)
    try:
        with os.fdopen(fd, "wb") as out:
            os.fchmod(out.fileno(), mode)
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_files(root: Path, files: Iterable[OutFile]) -> list[Path]:
    """Write ``files`` under ``root`` in the given order (put a key before its certificate), each
    atomically with its mode. :returns: the paths written."""
    written: list[Path] = []
    for item in files:
        target = root / item.relpath
        ensure_dir(target.parent)
        _write_one(target, item.data, item.mode)
        written.append(target)
    return written


@contextlib.contextmanager
def locked(directory: Path) -> Iterator[None]:
    """Hold an exclusive advisory lock on ``directory`` (created 0700 if missing) for the block."""
    ensure_dir(directory)
    fd = os.open(directory / ".lock", os.O_RDWR | os.O_CREAT, PRIVATE)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
