"""Expectations: what a controller is still waiting to see in its informer after its own writes.

client-go's ``ControllerExpectations`` + ``UIDTrackingExpectations``. A ReplicaSet that just
created 3 pods must not count its pods again before the informer delivered those 3 creations,
or it would create them twice. So before writing, the controller records "expect 3 creations"
(or "expect these pods to go"); pod handlers report what they observe; ``satisfied(key)`` is
True once everything was observed, when nothing was expected, or when the record is older than
``ttl`` seconds (a lost event must not block the controller forever).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

EXPECTATIONS_TTL = 300.0


@dataclass
class _Record:
    adds: int = 0
    deletes: set[str] = field(default_factory=set)
    stamp: float = 0.0


class Expectations:
    """Pending creations (counts) and deletions (object keys) per controller key."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, ttl: float = EXPECTATIONS_TTL) -> None:
        self._clock = clock
        self._ttl = ttl
        self._records: dict[str, _Record] = {}

    def expect_creations(self, key: str, count: int) -> None:
        """``key`` is about to create ``count`` objects."""
        record = self._records.setdefault(key, _Record())
        record.adds = max(0, record.adds) + count
        record.stamp = self._clock()

    def creation_observed(self, key: str, count: int = 1) -> None:
        """An informer saw a creation by ``key`` (or a creation was given up)."""
        record = self._records.get(key)
        if record is not None:
            record.adds -= count

    def expect_deletions(self, key: str, object_keys: Iterable[str]) -> None:
        """``key`` is about to delete the objects ``object_keys``."""
        record = self._records.setdefault(key, _Record())
        record.deletes.update(object_keys)
        record.stamp = self._clock()

    def deletion_observed(self, key: str, object_key: str) -> None:
        """An informer saw ``object_key`` go (or start going), or its deletion failed."""
        record = self._records.get(key)
        if record is not None:
            record.deletes.discard(object_key)

    def satisfied(self, key: str) -> bool:
        """True when nothing is pending for ``key`` (or the record expired)."""
        record = self._records.get(key)
        if record is None:
            return True
        if record.adds <= 0 and not record.deletes:
            return True
        return self._clock() - record.stamp > self._ttl

    def forget(self, key: str) -> None:
        """Drop the record of ``key`` (its object is gone)."""
        self._records.pop(key, None)
