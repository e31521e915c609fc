"""Load: 1,000 open watches on one resource and a fast writer. Watchers that read keep up; watchers
that never read are dropped with ``WatcherOverflow`` once their bounded queue fills, so memory stays
bounded (RSS is sampled while the writer runs) instead of buffering every event for every watcher."""

from __future__ import annotations

import asyncio
import contextlib
import resource

import pytest

from kapi.watchcache import Dispatcher, Watcher, WatcherOverflow
from kapi_plugins.storage_memory import MemoryStorage

PREFIX = "/registry/configmaps/"
WATCHERS = 1000
READERS = 50
WRITES = 3000
QUEUE = 200


def rss_mib() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * resource.getpagesize() / 2**20


async def read_all(watcher: Watcher, seen: list[int]) -> None:
    with contextlib.suppress(WatcherOverflow):
        async for event in watcher.events():
            seen.append(event.obj.revision)


@pytest.mark.timeout(60)
async def test_thousand_watches_and_a_fast_writer() -> None:
    store = MemoryStorage(history=WRITES * 2)
    dispatcher = Dispatcher(store, "/registry", [PREFIX], capacity=1000, watcher_queue=QUEUE)
    await dispatcher.start()
    cache = dispatcher.caches[PREFIX]
    subs: list[Watcher] = []
    for _ in range(WATCHERS):
        sub = dispatcher.subscribe(cache, PREFIX, dispatcher.revision)
        assert sub is not None
        subs.append(sub[1])
    seen: list[list[int]] = [[] for _ in range(READERS)]
    readers = [asyncio.create_task(read_all(subs[i], seen[i])) for i in range(READERS)]
    value = b'{"metadata":{"name":"x"},"data":{"k":"' + b"v" * 1024 + b'"}}'
    kv = await store.create(f"{PREFIX}ns/x", value)
    curve = [rss_mib()]
    try:
        for i in range(WRITES):
            kv = await store.update(f"{PREFIX}ns/x", value, expected_revision=kv.revision)
            if i % 100 == 0:
                await asyncio.sleep(0)
            if i % 500 == 0:
                curve.append(rss_mib())
        assert await dispatcher.wait_for(kv.revision, 10)
        await asyncio.sleep(0.2)
        curve.append(rss_mib())
        dropped = [w for w in subs[READERS:] if w.overflowed]
        print(f"RSS MiB over the run: {[round(x) for x in curve]}; dropped slow watchers: {len(dropped)}"
              f"/{WATCHERS - READERS}; readers got {min(map(len, seen))}..{max(map(len, seen))} events")
        assert len(dropped) == WATCHERS - READERS  # every non-reading watcher was cut off
        assert len(cache.watchers) <= READERS
        with pytest.raises(WatcherOverflow, match="could not keep up"):
            await anext(subs[-1].events())
        for got in seen:  # readers lose nothing, in order (or end cleanly after an overflow)
            assert got == list(range(got[0], got[0] + len(got))) if got else True
        assert max(curve) - curve[0] < 200, curve  # bounded: not WATCHERS x WRITES x 1 KiB (~3 GiB)
    finally:
        for task in readers:
            task.cancel()
        await asyncio.gather(*readers, return_exceptions=True)
        await dispatcher.stop()

