"""In-memory storage: the store kapi ships for tests and embedding (``--storage-backend=memory``).

Everything lives in one Python process and disappears when it ends. The store keeps every key's
current value plus a window of recent changes, which serves historical (paged) lists and watches
that start in the past. It implements the whole ``kapi.Storage`` contract and passes
``kapi.testing.storage_contract``:

* one store-wide revision, bumped by every successful create, update and delete;
* compare-and-swap updates and deletes (``ConflictError`` carries the current value);
* ``list`` of a prefix, in key order, paged with ``limit``/``start_after``, at the latest revision
  or at any revision still in the history window (``CompactedError`` below it);
* ``watch`` from any revision still in the history window, every event exactly once, in order;
* ``create(..., ttl=N)`` deletes the key after N seconds (a DELETED event), unless it was deleted
  or re-created meanwhile; updates keep the key's expiry.

All methods run on the caller's event loop without awaiting anything, so each one is atomic; use a
store from one event loop only.

Options (``config.plugin_options["storage_memory"]``, or ``--plugin-option storage_memory.KEY=V``):

``history`` (default 10000)
    how many recent revisions to keep for historical lists and late watches. The store compacts
    itself when the window holds twice that many; ``compact()`` can drop more.
``watch_queue`` (default 10000)
    how many undelivered events one watch may hold. A watch that falls further behind drops its
    queue and re-reads the history window from the last event it delivered (or fails with
    ``CompactedError`` when that part of the history is gone), so a stalled consumer never makes
    the store grow without bound.
"""

from __future__ import annotations

import asyncio
import bisect
from collections.abc import Mapping
from operator import attrgetter
from typing import Any

from kapi import (
    CompactedError,
    Config,
    ConflictError,
    EventType,
    KeyExistsError,
    KeyNotFoundError,
    KeyValue,
    ListResult,
    Storage,
    StorageEvent,
    UnavailableError,
    hookimpl,
    storagekit,
)

ALIASES = ("memory",)

_by_key = attrgetter("key")
# aliases: inside MemoryStorage the name ``list`` is the method
_KeyValues = list[KeyValue]
_Events = list[StorageEvent]


def _prefix_end(prefix: str) -> str | None:
    """The smallest string greater than every string that starts with ``prefix`` (None: no bound)."""
    stripped = prefix.rstrip("\U0010ffff")
    if not stripped:
        return None
    last = ord(stripped[-1]) + 1
    return stripped[:-1] + chr(0xE000 if last == 0xD800 else last)


class MemoryStorage:
    """A ``kapi.Storage`` held in process memory. See the module docstring."""

    def __init__(self, *, history: int = 10000, watch_queue: int = 10000) -> None:
        if history < 1 or watch_queue < 1:
            raise ValueError("storage_memory: history and watch_queue must be positive")
        self._history_limit = history
        self._watch_queue = watch_queue
        self._values: dict[str, KeyValue] = {}
        self._keys: list[str] = []  # sorted, the keys of _values
        self._revision = 0
        # _events[i].kv.revision == _compacted + 1 + i: every change after the compaction point.
        self._compacted = 0
        self._events: list[StorageEvent] = []
        self._watchers: dict[str, set[_MemoryWatch]] = {}
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._closed = False

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> MemoryStorage:
        """Build a store from the plugin's option section (values may be strings from the CLI)."""
        unknown = set(options) - {"history", "watch_queue"}
        if unknown:
            raise ValueError(f"storage_memory: unknown option(s) {', '.join(sorted(unknown))}")
        return cls(history=int(options.get("history", 10000)), watch_queue=int(options.get("watch_queue", 10000)))

    @property
    def closed(self) -> bool:
        """Whether ``close()`` was called."""
        return self._closed

    # ------------------------------------------------------------------ reads

    async def get(self, key: str) -> KeyValue:
        """The current value of ``key``, or ``KeyNotFoundError``."""
        self._check_open()
        kv = self._values.get(key)
        if kv is None:
            raise KeyNotFoundError(key)
        return kv

    async def list(self, prefix: str, *, revision: int = 0, limit: int = 0, start_after: str = "") -> ListResult:
        """Keys under ``prefix`` after ``start_after`` at ``revision`` (0 or a future one = latest)."""
        self._check_open()
        lo = bisect.bisect_left(self._keys, prefix)
        if start_after:
            lo = max(lo, bisect.bisect_right(self._keys, start_after))
        end = _prefix_end(prefix)
        hi = len(self._keys) if end is None else bisect.bisect_left(self._keys, end, lo)
        if revision == 0 or revision >= self._revision:
            stop = hi if limit <= 0 else min(hi, lo + limit)
            values = self._values
            items = [values[k] for k in self._keys[lo:stop]]
            return ListResult(items, self._revision, stop < hi, hi - stop if stop < hi else 0)
        if revision < self._compacted:
            raise CompactedError(revision, self._compacted)
        snapshot = self._snapshot(prefix, start_after, lo, hi, revision)
        if 0 < limit < len(snapshot):
            return ListResult(snapshot[:limit], revision, True, len(snapshot) - limit)
        return ListResult(snapshot, revision, False, 0)

    def _snapshot(self, prefix: str, start_after: str, lo: int, hi: int, revision: int) -> _KeyValues:
        """Keys in ``_keys[lo:hi]`` as of ``revision``: unchanged ones plus, for keys changed
        later, the value their first later change replaced (dropping keys created later)."""
        as_of: dict[str, KeyValue | None] = {}
        for event in self._events[revision - self._compacted:]:
            key = event.kv.key
            if key not in as_of and key.startswith(prefix) and key > start_after:
                as_of[key] = event.prev
        values = self._values
        items = [kv for kv in map(values.__getitem__, self._keys[lo:hi]) if kv.revision <= revision]
        items.extend(kv for kv in as_of.values() if kv is not None)
        items.sort(key=_by_key)
        return items

    async def current_revision(self) -> int:
        """The revision of the last write (0 when nothing was ever written)."""
        self._check_open()
        return self._revision

    # ------------------------------------------------------------------ writes

    async def create(self, key: str, value: bytes, *, ttl: int | None = None) -> KeyValue:
        """Store ``value`` if ``key`` is absent (else ``KeyExistsError``); expire it after ``ttl`` s."""
        self._check_open()
        if key in self._values:
            raise KeyExistsError(key)
        revision = self._revision + 1
        kv = KeyValue(key, value, revision, revision)
        self._values[key] = kv
        bisect.insort(self._keys, key)
        self._commit(StorageEvent(EventType.ADDED, kv))
        if ttl is not None:
            old = self._timers.pop(key, None)
            if old is not None:
                old.cancel()
            loop = asyncio.get_running_loop()
            self._timers[key] = loop.call_later(max(ttl, 0), self._expire, key, revision)
        return kv

    async def update(self, key: str, value: bytes, *, expected_revision: int) -> KeyValue:
        """Replace ``key``'s value if its revision is ``expected_revision`` (else ``ConflictError``)."""
        self._check_open()
        prev = self._values.get(key)
        if prev is None:
            raise KeyNotFoundError(key)
        if prev.revision != expected_revision:
            raise ConflictError(key, prev)
        kv = KeyValue(key, value, self._revision + 1, prev.create_revision)
        self._values[key] = kv
        self._commit(StorageEvent(EventType.MODIFIED, kv, prev))
        return kv

    async def delete(self, key: str, *, expected_revision: int = 0) -> KeyValue:
        """Delete ``key`` (guarded when ``expected_revision`` is non-zero); returns its last value
        with the deletion's revision."""
        self._check_open()
        prev = self._values.get(key)
        if prev is None:
            raise KeyNotFoundError(key)
        if expected_revision and prev.revision != expected_revision:
            raise ConflictError(key, prev)
        return self._remove(prev)

    def _remove(self, prev: KeyValue) -> KeyValue:
        del self._values[prev.key]
        del self._keys[bisect.bisect_left(self._keys, prev.key)]
        kv = KeyValue(prev.key, prev.value, self._revision + 1, prev.create_revision)
        self._commit(StorageEvent(EventType.DELETED, kv, prev))
        return kv

    def _expire(self, key: str, create_revision: int) -> None:
        """Timer callback: delete ``key`` if it is still the incarnation the TTL was given to."""
        self._timers.pop(key, None)
        kv = self._values.get(key)
        if kv is not None and kv.create_revision == create_revision and not self._closed:
            self._remove(kv)

    def _commit(self, event: StorageEvent) -> None:
        """Record a write: bump the revision, append to history, hand the event to watchers."""
        self._revision = event.kv.revision
        self._events.append(event)
        if len(self._events) >= 2 * self._history_limit:
            self._compact_to(self._revision - self._history_limit)
        key = event.kv.key
        for prefix, watchers in self._watchers.items():
            if key.startswith(prefix):
                for watcher in watchers:
                    watcher.push(event)

    async def compact(self, revision: int) -> None:
        """Forget history up to ``revision`` (capped at the current revision)."""
        self._check_open()
        self._compact_to(min(revision, self._revision))

    def _compact_to(self, revision: int) -> None:
        if revision > self._compacted:
            del self._events[: revision - self._compacted]
            self._compacted = revision

    # ------------------------------------------------------------------ watch

    def watch(self, prefix: str, *, revision: int) -> _MemoryWatch:
        """Every change under ``prefix`` after ``revision``; close the iterator with ``aclose()``."""
        self._check_open()
        return _MemoryWatch(self, prefix, revision, self._watch_queue)

    def _attach(self, watcher: _MemoryWatch, after: int) -> _Events:
        """Register ``watcher`` for live events and return the history after ``after`` it missed."""
        if after < self._compacted:
            raise CompactedError(after, self._compacted)
        self._watchers.setdefault(watcher.prefix, set()).add(watcher)
        prefix = watcher.prefix
        return [e for e in self._events[after - self._compacted:] if e.kv.key.startswith(prefix)]

    def _detach(self, watcher: _MemoryWatch) -> None:
        watchers = self._watchers.get(watcher.prefix)
        if watchers is not None:
            watchers.discard(watcher)
            if not watchers:
                del self._watchers[watcher.prefix]

    # ------------------------------------------------------------------ lifecycle

    async def close(self) -> None:
        """End every watch and expiry timer; later calls raise ``UnavailableError``."""
        if self._closed:
            return
        self._closed = True
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        for watchers in list(self._watchers.values()):
            for watcher in list(watchers):
                watcher.close()

    def _check_open(self) -> None:
        if self._closed:
            raise UnavailableError("storage_memory: the store is closed")


class _MemoryWatch(storagekit.QueuedWatch):
    """One watch: replays the history after its revision (on first iteration), then receives live
    events; past ``queue_limit`` undelivered events it replays again (``kapi.storagekit``)."""

    __slots__ = ("_store",)

    def __init__(self, store: MemoryStorage, prefix: str, revision: int, queue_limit: int) -> None:
        super().__init__(prefix, revision, queue_limit)
        self._store = store

    def _store_closed(self) -> bool:
        return self._store.closed

    async def _resume(self) -> None:
        self.go_live(self._store._attach(self, self._delivered))

    def _detach(self) -> None:
        self._store._detach(self)


@hookimpl
def kapi_storage(config: Config, backend: str) -> Storage | None:
    """Answer for ``memory``: a fresh, empty store."""
    if backend not in ALIASES:
        return None
    return MemoryStorage.from_options(config.options_for("storage_memory"))
