"""Building blocks for storage implementations (exported as ``kapi.storagekit``).

``QueuedWatch`` is the watch iterator the built-in stores share: it replays what it missed (the
store's ``_resume``), then queues live events pushed by the store, and when more than
``queue_limit`` events wait undelivered it drops them and replays again from the last event it
delivered - so a stalled consumer never makes the store buffer without bound and never misses an
event. A store subclasses it and implements ``_store_closed``, ``_resume`` and ``_detach``.
"""

from __future__ import annotations

import asyncio
from collections import deque

from kapi.storage import CompactedError, StorageEvent, UnavailableError


class QueuedWatch:
    """An async iterator of the events under ``prefix`` after ``revision``.

    ``position``: every matching event up to it has been delivered or is queued.
    """

    __slots__ = ("_closed", "_delivered", "_live", "_pending", "_queue_limit", "_waiter", "position", "prefix")

    def __init__(self, prefix: str, revision: int, queue_limit: int) -> None:
        self.prefix = prefix
        self.position = revision
        self._delivered = revision
        self._queue_limit = queue_limit
        self._pending: deque[StorageEvent] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._live = False
        self._closed = False

    # -- what a store provides -----------------------------------------------------------------

    def _store_closed(self) -> bool:
        """True once the store is closed (the watch then ends)."""
        raise NotImplementedError

    async def _resume(self) -> None:
        """Replay the events after ``_delivered`` (``extend``) and go live (``go_live``); raise
        ``CompactedError`` when that history is gone."""
        raise NotImplementedError

    def _detach(self) -> None:
        """Stop pushing events to this watch."""
        raise NotImplementedError

    # -- the iterator --------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._closed

    def __aiter__(self) -> QueuedWatch:
        return self

    async def __anext__(self) -> StorageEvent:
        while True:
            if self._pending:
                event = self._pending.popleft()
                self._delivered = event.kv.revision
                return event
            if self._closed:
                raise StopAsyncIteration
            if self._store_closed():
                self.close()
                continue
            if not self._live:
                try:
                    await self._resume()
                except CompactedError:
                    self.close()
                    raise
                except UnavailableError:
                    if not self._store_closed():
                        raise
                continue
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None

    def extend(self, events: list[StorageEvent], through: int) -> None:
        """Queue replayed events (skipping any at or below the position); advance to ``through``."""
        for event in events:
            if event.kv.revision > self.position:
                self._pending.append(event)
                self.position = event.kv.revision
        self.position = max(self.position, through)

    def go_live(self, missed: list[StorageEvent]) -> None:
        """Queue the last replayed events and start taking pushed ones."""
        self.extend(missed, 0)
        self._live = True

    def push(self, event: StorageEvent) -> None:
        """Queue a live event (the store calls this for every write under the prefix)."""
        if not self._live or event.kv.revision <= self.position:
            return
        if len(self._pending) >= self._queue_limit:
            self._pending.clear()
            self.position = self._delivered
            self._live = False  # replay again on the next __anext__
        else:
            self._pending.append(event)
            self.position = event.kv.revision
        self._wake()

    def close(self) -> None:
        """Stop the watch: pending and future iterations end."""
        if self._closed:
            return
        self._closed = True
        self._pending.clear()
        self._detach()
        self._wake()

    async def aclose(self) -> None:
        """Stop the watch (the async-iterator way)."""
        self.close()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)
