"""Reading container log files: the last N lines, a byte limit, and following appended output.

Files are plain text written by the runtime (see ``runtime``). ``read_log`` returns what is
there now; ``follow_log`` yields it and then whatever is appended, polling, until ``alive()``
turns false and the file was read to its end (the container ended), or the caller stops.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable

CHUNK = 64 * 1024


def _tail_offset(path: str, lines: int) -> int:
    """Offset where the last ``lines`` lines of the file start (reading backwards in chunks)."""
    size = os.path.getsize(path)
    if lines <= 0:
        return size
    with open(path, "rb") as fh:
        position = size
        newlines = 0
        # a trailing newline ends the last line; it does not start another one
        if size:
            fh.seek(size - 1)
            if fh.read(1) == b"\n":
                position -= 1
        while position > 0:
            step = min(CHUNK, position)
            position -= step
            fh.seek(position)
            block = fh.read(step)
            for index in range(len(block) - 1, -1, -1):
                if block[index] == 0x0A:
                    newlines += 1
                    if newlines == lines:
                        return position + index + 1
    return 0


def start_offset(path: str, tail_lines: int | None) -> int:
    """Where reading starts: 0, or the start of the last ``tail_lines`` lines."""
    if not os.path.exists(path):
        return 0
    return 0 if tail_lines is None else _tail_offset(path, tail_lines)


def read_log(path: str, *, tail_lines: int | None = None, limit_bytes: int | None = None) -> bytes:
    """The log now (missing file: empty)."""
    if not os.path.exists(path):
        return b""
    with open(path, "rb") as fh:
        fh.seek(start_offset(path, tail_lines))
        return fh.read(limit_bytes if limit_bytes is not None else -1)


async def follow_log(path: str, alive: Callable[[], bool], *, tail_lines: int | None = None,
                     limit_bytes: int | None = None, poll: float = 0.1) -> AsyncIterator[bytes]:
    """The log from ``tail_lines`` back, then appended output, until the writer ended."""
    offset = start_offset(path, tail_lines)
    left = limit_bytes
    while True:
        running = alive()
        if os.path.exists(path):
            with open(path, "rb") as fh:
                fh.seek(offset)
                while left is None or left > 0:
                    data = fh.read(CHUNK if left is None else min(CHUNK, left))
                    if not data:
                        break
                    offset += len(data)
                    if left is not None:
                        left -= len(data)
                    yield data
        if not running or (left is not None and left <= 0):
            return
        await asyncio.sleep(poll)
