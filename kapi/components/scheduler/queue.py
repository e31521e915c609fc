"""The scheduling queue: pods waiting for a decision, best first, with unschedulable pods parked.

* active: a heap by priority (higher first), then age (older first); ``pop`` waits for one.
* unschedulable: pods no node could take. They go back to active when the cluster changes
  (``move_all_to_active``: a node was added or changed, a bound pod went away), but not before
  their backoff expires (1 s doubling per attempt up to 10 s, kube-scheduler's defaults), and at
  the latest after ``max_parked`` seconds anyway.
* the latest version of every queued pod is kept, so an update while queued is not lost; an
  update to a parked pod's spec or labels reactivates it.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from typing import Any

from kapi.components.scheduler.cache import pod_key

Obj = dict[str, Any]

INITIAL_BACKOFF = 1.0
MAX_BACKOFF = 10.0


def _priority(pod: Obj) -> int:
    return int((pod.get("spec") or {}).get("priority") or 0)


def _created(pod: Obj) -> str:
    return str((pod.get("metadata") or {}).get("creationTimestamp") or "")


class SchedulingQueue:
    """See the module docstring. Not thread-safe: use from the scheduler's loop only."""

    def __init__(self, *, initial_backoff: float = INITIAL_BACKOFF, max_backoff: float = MAX_BACKOFF,
                 max_parked: float = 60.0) -> None:
        self.initial_backoff = initial_backoff
        self.max_backoff = max_backoff
        self.max_parked = max_parked
        self.pods: dict[str, Obj] = {}  # every known pending pod, latest version
        self._heap: list[tuple[int, str, int, str]] = []
        self._active: set[str] = set()
        self._parked: dict[str, float] = {}  # key -> parked since (monotonic)
        self._attempts: dict[str, int] = {}
        self._waiting: dict[str, asyncio.TimerHandle] = {}  # backoff timers
        self._seq = itertools.count()
        self._ready = asyncio.Event()

    def __len__(self) -> int:
        return len(self.pods)

    @property
    def active_count(self) -> int:
        return len(self._active)

    @property
    def parked(self) -> frozenset[str]:
        return frozenset(self._parked)

    def _activate(self, key: str) -> None:
        self._waiting.pop(key, None)
        pod = self.pods.get(key)
        if pod is None or key in self._active:
            return
        self._parked.pop(key, None)
        self._active.add(key)
        heapq.heappush(self._heap, (-_priority(pod), _created(pod), next(self._seq), key))
        self._ready.set()

    def add(self, pod: Obj) -> None:
        """A new or updated pending pod. New pods become active at once; a parked pod whose spec or
        labels changed is reactivated (after its backoff)."""
        key = pod_key(pod)
        before = self.pods.get(key)
        self.pods[key] = pod
        if before is None:
            self._activate(key)
        elif key in self._parked and _scheduling_relevant(before) != _scheduling_relevant(pod):
            self._reactivate(key)

    def delete(self, key: str) -> None:
        """The pod was bound, deleted or is no longer ours."""
        self.pods.pop(key, None)
        self._active.discard(key)
        self._parked.pop(key, None)
        self._attempts.pop(key, None)
        timer = self._waiting.pop(key, None)
        if timer is not None:
            timer.cancel()

    async def pop(self) -> Obj:
        """The next pod to schedule (waits while none is active)."""
        while True:
            while self._heap:
                _, _, _, key = heapq.heappop(self._heap)
                if key in self._active:
                    self._active.discard(key)
                    return self.pods[key]
            self._ready.clear()
            await self._ready.wait()

    def backoff(self, key: str) -> float:
        attempts = self._attempts.get(key, 0)
        return min(self.max_backoff, self.initial_backoff * (2 ** max(0, attempts - 1)))

    def park(self, pod: Obj) -> None:
        """No node fits ``pod`` now: wait for a cluster change (or ``max_parked``)."""
        key = pod_key(pod)
        if key not in self.pods:
            return
        self._attempts[key] = self._attempts.get(key, 0) + 1
        self._parked[key] = time.monotonic()

    def retry(self, pod: Obj) -> None:
        """A transient failure (the binding failed): try again after the backoff."""
        key = pod_key(pod)
        if key in self.pods:
            self._attempts[key] = self._attempts.get(key, 0) + 1
            self._parked[key] = time.monotonic()
            self._reactivate(key)

    def _reactivate(self, key: str) -> None:
        if key in self._waiting:
            return
        delay = self.backoff(key) - (time.monotonic() - self._parked.get(key, 0.0))
        if delay <= 0:
            self._activate(key)
        else:
            self._waiting[key] = asyncio.get_running_loop().call_later(delay, self._activate, key)

    def move_all_to_active(self) -> None:
        """The cluster changed: every parked pod gets another try once its backoff is over."""
        for key in list(self._parked):
            self._reactivate(key)

    def flush_stale(self) -> None:
        """Reactivate pods parked for longer than ``max_parked`` seconds."""
        now = time.monotonic()
        for key, since in list(self._parked.items()):
            if now - since >= self.max_parked:
                self._reactivate(key)


def _scheduling_relevant(pod: Obj) -> tuple[Any, ...]:
    meta = pod.get("metadata") or {}
    return (pod.get("spec"), meta.get("labels"), meta.get("annotations"))
