"""A work queue of object keys: dedup, delayed adds and per-key rate-limited retries.

client-go's ``workqueue.RateLimitingInterface`` in asyncio:

* a key added several times before a worker takes it is processed once (``dirty`` set);
* a key is never processed by two workers at once: added while being processed, it is queued
  again when the worker calls ``done(key)``;
* ``add_after(key, seconds)`` adds later (the earliest pending time per key wins);
* ``add_rate_limited(key)`` adds after a per-key exponential backoff (``base_delay`` doubling up
  to ``max_delay``) that ``forget(key)`` resets, for retries after errors;
* ``get()`` waits for a key and returns None once ``shutdown()`` was called.

Single event loop, no threads; all methods but ``get`` are synchronous.
"""

from __future__ import annotations

import asyncio
from collections import deque

DEFAULT_BASE_DELAY = 0.005
DEFAULT_MAX_DELAY = 30.0


class WorkQueue:
    """Keys waiting for a worker. See the module docstring for the semantics."""

    def __init__(self, *, base_delay: float = DEFAULT_BASE_DELAY, max_delay: float = DEFAULT_MAX_DELAY) -> None:
        self.base_delay = base_delay
        self.max_delay = max_delay
        self._queue: deque[str] = deque()
        self._dirty: set[str] = set()
        self._processing: set[str] = set()
        self._failures: dict[str, int] = {}
        self._timers: dict[str, tuple[float, asyncio.TimerHandle]] = {}
        self._wakeup = asyncio.Event()
        self._shutdown = False

    def __len__(self) -> int:
        """Keys ready to be taken (not counting delayed ones)."""
        return len(self._queue)

    @property
    def pending_delayed(self) -> int:
        """Keys waiting for their ``add_after`` time."""
        return len(self._timers)

    def add(self, key: str) -> None:
        """Queue ``key`` now (no-op when it is already waiting, or after ``shutdown``)."""
        if self._shutdown or key in self._dirty:
            return
        self._dirty.add(key)
        if key not in self._processing:
            self._queue.append(key)
            self._wakeup.set()

    def add_after(self, key: str, delay: float) -> None:
        """Queue ``key`` in ``delay`` seconds (at once when ``delay <= 0``)."""
        if self._shutdown:
            return
        if delay <= 0:
            self.add(key)
            return
        loop = asyncio.get_running_loop()
        when = loop.time() + delay
        current = self._timers.get(key)
        if current is not None:
            if current[0] <= when:
                return
            current[1].cancel()
        self._timers[key] = (when, loop.call_at(when, self._fire, key))

    def _fire(self, key: str) -> None:
        self._timers.pop(key, None)
        self.add(key)

    def add_rate_limited(self, key: str) -> None:
        """Queue ``key`` after its backoff (``base_delay * 2**failures``, at most ``max_delay``)."""
        failures = self._failures.get(key, 0)
        self._failures[key] = failures + 1
        self.add_after(key, min(self.base_delay * (2 ** min(failures, 30)), self.max_delay))

    def forget(self, key: str) -> None:
        """Reset the backoff of ``key`` (after a successful sync)."""
        self._failures.pop(key, None)

    def num_requeues(self, key: str) -> int:
        """How many rate-limited adds ``key`` had since its last ``forget``."""
        return self._failures.get(key, 0)

    def get_nowait(self) -> str | None:
        """The next ready key, marked as processing, or None when none is ready."""
        while self._queue:
            key = self._queue.popleft()
            if key in self._dirty and key not in self._processing:
                self._dirty.discard(key)
                self._processing.add(key)
                return key
        self._wakeup.clear()
        return None

    async def get(self) -> str | None:
        """Wait for the next key (marked as processing); None after ``shutdown``."""
        while not self._shutdown:
            key = self.get_nowait()
            if key is not None:
                return key
            await self._wakeup.wait()
        return None

    def done(self, key: str) -> None:
        """The worker finished ``key``: requeue it when it was added meanwhile."""
        self._processing.discard(key)
        if key in self._dirty and not self._shutdown:
            self._queue.append(key)
            self._wakeup.set()

    def shutdown(self) -> None:
        """Stop: waiting ``get()`` calls return None, timers are cancelled, adds are ignored."""
        self._shutdown = True
        for _, handle in self._timers.values():
            handle.cancel()
        self._timers.clear()
        self._wakeup.set()
