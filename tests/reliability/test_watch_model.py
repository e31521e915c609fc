"""Watch integrity: a property test of the watch cache (``Dispatcher`` + ``ResourceCache``) over the
memory store against a plain list of events. Random creates/updates/deletes in two namespaces,
watchers starting at random resourceVersions on one namespace or all: each watcher gets exactly the
model's events after its resourceVersion, in order, or (only) a clean end: ``subscribe`` returning
None (outside the window: the server falls back to storage/410) or ``WatcherOverflow`` after an
in-order prefix."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from hypothesis import Phase, given, settings
from hypothesis import strategies as st

from kapi.storage import EventType
from kapi.watchcache import CacheEvent, Dispatcher, Watcher, WatcherOverflow
from kapi_plugins.storage_memory import MemoryStorage

ROOT = "/registry"
PREFIX = "/registry/configmaps/"


@dataclass
class Subscription:
    start: int
    prefix: str
    replay: list[CacheEvent] | None
    watcher: Watcher | None


Op = tuple[str, int, int]
OPS = st.lists(st.tuples(st.sampled_from(["write", "write", "write", "delete", "watch"]),
                         st.integers(0, 5), st.integers(0, 40)), max_size=60)


async def drain(watcher: Watcher) -> tuple[list[CacheEvent], bool]:
    """Everything queued, and whether the watcher ended with an overflow."""
    try:
        return await watcher.next_batch(0) or [], False
    except WatcherOverflow:
        return [], True


async def run(ops: list[Op], capacity: int, queue: int) -> None:
    store = MemoryStorage()
    dispatcher = Dispatcher(store, ROOT, [PREFIX], capacity=capacity, watcher_queue=queue)
    model: list[tuple[EventType, str, int]] = []
    live: dict[str, int] = {}
    subs: list[Subscription] = []
    await dispatcher.start()
    cache = dispatcher.caches[PREFIX]
    try:
        for kind, k, extra in ops:
            key = f"{PREFIX}ns{k % 2}/c{k}"
            if kind == "write":
                body = b'{"metadata":{"name":"c%d"},"v":%d}' % (k, extra)
                if key in live:
                    kv = await store.update(key, body, expected_revision=live[key])
                    model.append((EventType.MODIFIED, key, kv.revision))
                else:
                    kv = await store.create(key, body)
                    model.append((EventType.ADDED, key, kv.revision))
                live[key] = kv.revision
            elif kind == "delete" and key in live:
                kv = await store.delete(key, expected_revision=live.pop(key))
                model.append((EventType.DELETED, key, kv.revision))
            elif kind == "watch":
                start = min(extra, dispatcher.revision)
                prefix = PREFIX if k >= 4 else f"{PREFIX}ns{k % 2}/"
                sub = dispatcher.subscribe(cache, prefix, start)
                subs.append(Subscription(start, prefix, *(sub if sub is not None else (None, None))))
            assert await dispatcher.wait_for(await store.current_revision(), 2)
        for sub in subs:
            expected = [e for e in model if e[2] > sub.start and e[1].startswith(sub.prefix)]
            if sub.watcher is None:
                assert not cache.covers(sub.start)
                continue
            queued, overflowed = await drain(sub.watcher)
            got = [(e.type, e.obj.key, e.obj.revision) for e in [*sub.replay, *queued]]  # type: ignore[misc]
            if overflowed:
                assert got == expected[:len(got)] and len(got) < len(expected)
            else:
                assert got == expected
            for event in [*sub.replay, *queued]:  # type: ignore[misc]
                assert event.obj.obj["metadata"]["resourceVersion"] == str(event.obj.revision)
    finally:
        await dispatcher.stop()


@settings(max_examples=150, deadline=None, phases=[Phase.explicit, Phase.generate, Phase.shrink])
@given(ops=OPS, capacity=st.integers(1, 30), queue=st.integers(1, 30))
def test_watch_cache_matches_model(ops: list[Op], capacity: int, queue: int) -> None:
    asyncio.run(run(ops, capacity, queue))
