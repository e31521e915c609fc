"""The watch cache: one storage watch feeds every list and watch the API server serves.

kube-apiserver keeps a cache per resource fed by its own etcd watch. kapi goes one step further:
a single ``Dispatcher`` watches the whole storage root, so it sees every revision of the store and
each per-resource ``ResourceCache`` always knows the store's current revision (a cache is never
"behind" just because nothing changed in its resource). That makes consistent reads cheap: ask
the store for its revision ``R`` and wait until the dispatcher has applied ``R``.

Each cache keeps the current objects (decoded once) and a window of recent events. A client watch
from a resourceVersion inside the window is served from memory; older ones fall back to a storage
watch (which answers 410 Expired once compacted). Every watcher has a bounded queue: a watcher too
slow to keep up is ended with an error instead of buffering without bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson

from kapi.storage import CompactedError, EventType, KeyValue, Storage, StorageEvent

log = logging.getLogger("kapi.watchcache")

Obj = dict[str, Any]


@dataclass(slots=True)
class CachedObject:
    """One decoded object at one revision. ``obj`` must not be mutated (copy first); ``raw`` is its
    JSON, rendered once on first use and shared by every response."""

    key: str
    obj: Obj
    revision: int
    _raw: bytes | None = None

    @property
    def raw(self) -> bytes:
        if self._raw is None:
            self._raw = orjson.dumps(self.obj)
        return self._raw


def decode(kv: KeyValue) -> CachedObject:
    """Stored bytes -> object with ``metadata.resourceVersion`` set from the key's revision."""
    obj = orjson.loads(kv.value)
    obj.setdefault("metadata", {})["resourceVersion"] = str(kv.revision)
    return CachedObject(kv.key, obj, kv.revision)


@dataclass(slots=True)
class CacheEvent:
    """A change as watchers see it. ``prev`` is the object before (None for ADDED)."""

    type: EventType
    obj: CachedObject
    prev: CachedObject | None


class WatcherOverflow(Exception):
    """A watcher fell too far behind and was dropped."""


_CLOSE = object()


@dataclass(eq=False)
class Watcher:
    """One client's watch: events arrive in ``queue``; ``prefix`` restricts keys (a namespace)."""

    prefix: str
    queue: asyncio.Queue[Any]
    overflowed: bool = False

    def offer(self, event: CacheEvent) -> bool:
        """Queue an event; False (and the watcher is marked) when its queue is full."""
        if self.overflowed:
            return False
        try:
            self.queue.put_nowait(event)
            return True
        except asyncio.QueueFull:
            self.close()
            return False

    def close(self) -> None:
        """End the watcher: its consumer gets ``WatcherOverflow`` and relists."""
        self.overflowed = True
        while True:
            try:
                self.queue.put_nowait(_CLOSE)
                return
            except asyncio.QueueFull:
                self.queue.get_nowait()

    async def next_batch(self, timeout: float | None) -> list[CacheEvent] | None:
        """Every event queued now, in order, after waiting up to ``timeout`` seconds (None: no
        limit) for the first; ``[]`` when none came in time. Raises ``WatcherOverflow`` once the
        watcher was dropped. One wake-up per batch instead of per event: a watcher that fell behind
        catches up in a few large writes. (Never None: the signature matches other event sources.)"""
        queue = self.queue
        batch: list[CacheEvent] = []
        if queue.empty():
            try:
                async with asyncio.timeout(timeout):
                    batch.append(await queue.get())
            except TimeoutError:
                return batch
        while not queue.empty():
            batch.append(queue.get_nowait())
        if self.overflowed:  # close() may have dropped queued events: never skip one
            raise WatcherOverflow("the watcher could not keep up with the event rate and was closed")
        return batch

    async def events(self) -> AsyncIterator[CacheEvent]:
        """Events until the watcher is dropped; raises ``WatcherOverflow`` after an overflow."""
        while True:
            for event in await self.next_batch(None) or ():
                yield event


@dataclass
class ResourceCache:
    """Current state and recent events of one storage prefix (one resource)."""

    prefix: str
    capacity: int
    objects: dict[str, CachedObject] = field(default_factory=dict)
    window: deque[CacheEvent] = field(default_factory=deque)
    #: every event of this prefix with revision > window_start is in ``window``
    window_start: int = 0
    watchers: set[Watcher] = field(default_factory=set)

    def apply(self, event: StorageEvent) -> None:
        key = event.kv.key
        prev = self.objects.get(key)
        if event.type is EventType.DELETED:
            self.objects.pop(key, None)
            cached = prev if prev is not None else decode(event.kv)
            gone = CachedObject(key, cached.obj, event.kv.revision)
            gone.obj = dict(cached.obj)
            gone.obj["metadata"] = {**cached.obj.get("metadata", {}), "resourceVersion": str(event.kv.revision)}
            change = CacheEvent(EventType.DELETED, gone, prev)
        else:
            cached = decode(event.kv)
            self.objects[key] = cached
            change = CacheEvent(EventType.MODIFIED if prev is not None else EventType.ADDED, cached, prev)
        self.window.append(change)
        if len(self.window) > self.capacity:
            self.window_start = self.window.popleft().obj.revision
        dropped = [w for w in self.watchers if key.startswith(w.prefix) and not w.offer(change)]
        for watcher in dropped:
            self.watchers.discard(watcher)

    def snapshot(self, prefix: str) -> list[CachedObject]:
        """Current objects under ``prefix``, ordered by key."""
        return [self.objects[k] for k in sorted(k for k in self.objects if k.startswith(prefix))]

    def covers(self, revision: int) -> bool:
        """True if every event after ``revision`` is still in the window."""
        return revision >= self.window_start


class Dispatcher:
    """Feeds every ``ResourceCache`` from one storage watch over ``root``.

    ``route(key)`` maps a storage key to its cache prefix (or None to ignore the key).
    """

    def __init__(self, storage: Storage, root: str, prefixes: Iterable[str], *, capacity: int = 10000,
                 watcher_queue: int = 1000) -> None:
        self.storage = storage
        self.root = root.rstrip("/") + "/"
        self.caches: dict[str, ResourceCache] = {p: ResourceCache(p, capacity) for p in prefixes}
        self._by_first: dict[str, list[str]] = {}
        for p in self.caches:
            first = p[len(self.root):].split("/", 1)[0]
            self._by_first.setdefault(first, []).append(p)
        self.revision = 0
        self.watcher_queue = watcher_queue
        self._cond = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self._failed: BaseException | None = None

    def route(self, key: str) -> ResourceCache | None:
        rest = key[len(self.root):] if key.startswith(self.root) else None
        if rest is None:
            return None
        for prefix in self._by_first.get(rest.split("/", 1)[0], ()):
            if key.startswith(prefix):
                return self.caches[prefix]
        return None

    async def add_prefix(self, prefix: str) -> ResourceCache:
        """Start caching ``prefix`` (a resource served from now on, e.g. a CRD's
        ``/registry/GROUP/PLURAL/``); returns its cache. Events from now on are routed to it at
        once; the objects already stored under it are loaded from storage at the current revision
        (keys an event touched meanwhile keep the newer state)."""
        existing = self.caches.get(prefix)
        if existing is not None:
            return existing
        capacity = next(iter(self.caches.values())).capacity if self.caches else 10000
        cache = self.caches[prefix] = ResourceCache(prefix, capacity, window_start=self.revision)
        self._by_first.setdefault(prefix[len(self.root):].split("/", 1)[0], []).append(prefix)
        revision = self.revision
        if revision:
            try:
                page = await self.storage.list(prefix, revision=revision)
            except CompactedError:
                page = await self.storage.list(prefix)
            touched = {event.obj.key for event in cache.window}
            for kv in page.items:
                if kv.key not in touched and kv.key not in cache.objects:
                    cache.objects[kv.key] = decode(kv)
        return cache

    async def start(self) -> None:
        """Load the current state (paged, at one revision) and start following the store."""
        revision = 0
        start_after = ""
        while True:
            page = await self.storage.list(self.root, revision=revision, limit=5000, start_after=start_after)
            revision = page.revision
            for kv in page.items:
                cache = self.route(kv.key)
                if cache is not None:
                    cache.objects[kv.key] = decode(kv)
            if not page.more or not page.items:
                break
            start_after = page.items[-1].key
        self.revision = revision
        for cache in self.caches.values():
            cache.window_start = revision
        self._task = asyncio.get_running_loop().create_task(self._follow(revision), name="kapi-watchcache")
        self._ready.set()

    async def _follow(self, revision: int) -> None:
        while True:
            try:
                async for event in self.storage.watch(self.root, revision=revision):
                    cache = self.route(event.kv.key)
                    if cache is not None:
                        cache.apply(event)
                    revision = event.kv.revision
                    self.revision = revision
                    async with self._cond:
                        self._cond.notify_all()
                return
            except asyncio.CancelledError:
                raise
            except CompactedError:
                log.error("watch cache fell behind a compaction at revision %d; reloading", revision)
                await self._reload()
                revision = self.revision
            except Exception:
                log.exception("watch cache storage watch failed; retrying")
                await asyncio.sleep(0.5)

    async def _reload(self) -> None:
        """Rebuild the state after losing history: watchers are ended (they relist)."""
        for cache in self.caches.values():
            for watcher in list(cache.watchers):
                watcher.close()
            cache.watchers.clear()
            cache.objects.clear()
            cache.window.clear()
        page = await self.storage.list(self.root)
        for kv in page.items:
            target = self.route(kv.key)
            if target is not None:
                target.objects[kv.key] = decode(kv)
        self.revision = page.revision
        for cache in self.caches.values():
            cache.window_start = page.revision

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None

    async def wait_for(self, revision: int, timeout: float = 3.0) -> bool:
        """Wait until the caches reflect ``revision``; False on timeout."""
        if self.revision >= revision:
            return True
        async with self._cond:
            try:
                await asyncio.wait_for(self._cond.wait_for(lambda: self.revision >= revision), timeout)
            except TimeoutError:
                return False
        return True

    async def sync(self, timeout: float = 3.0) -> bool:
        """Wait until the caches reflect everything the store has committed (consistent read)."""
        return await self.wait_for(await self.storage.current_revision(), timeout)

    def subscribe(self, cache: ResourceCache, prefix: str, revision: int) -> tuple[list[CacheEvent], Watcher] | None:
        """Register a watcher for events after ``revision``; returns the events to replay first and
        the watcher, or None when the window no longer covers ``revision`` (fall back to storage).
        Synchronous: no event can slip between the replay and the registration."""
        if not cache.covers(revision):
            return None
        replay = [e for e in cache.window if e.obj.revision > revision and e.obj.key.startswith(prefix)]
        watcher = Watcher(prefix, asyncio.Queue(maxsize=self.watcher_queue + len(replay)))
        cache.watchers.add(watcher)
        return replay, watcher

    def unsubscribe(self, cache: ResourceCache, watcher: Watcher) -> None:
        cache.watchers.discard(watcher)


def storage_events(storage: Storage, prefix: str, revision: int,
                   decoder: Callable[[KeyValue], CachedObject] = decode) -> AsyncIterator[CacheEvent]:
    """A watch straight from storage (for resourceVersions older than the cache window)."""

    async def gen() -> AsyncIterator[CacheEvent]:
        async for event in storage.watch(prefix, revision=revision):
            obj = decoder(event.kv)
            prev = decoder(event.prev) if event.prev is not None else None
            yield CacheEvent(event.type, obj, prev)

    return gen()
