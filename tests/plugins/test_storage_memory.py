"""The memory store: the storage contract, plus its own limits (history window, watch queue)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from kapi import CompactedError, Config, EventType, Storage
from kapi.testing.storage_contract import StorageContract, next_event
from kapi_plugins import storage_memory
from kapi_plugins.storage_memory import MemoryStorage


class TestMemoryStorageContract(StorageContract):
    async def make_storage(self, tmp_path: Path) -> Storage:
        return MemoryStorage()


def test_hook_answers_memory_only() -> None:
    store = storage_memory.kapi_storage(config=Config(), backend="memory")
    assert isinstance(store, MemoryStorage)
    assert isinstance(store, Storage)
    assert storage_memory.kapi_storage(config=Config(), backend="sqlite") is None


def test_hook_reads_options() -> None:
    config = Config(plugin_options={"storage_memory": {"history": "5"}})
    store = storage_memory.kapi_storage(config=config, backend="memory")
    assert isinstance(store, MemoryStorage)
    with pytest.raises(ValueError, match="positive"):
        MemoryStorage(history=0)
    with pytest.raises(ValueError, match="unknown option"):
        MemoryStorage.from_options({"histroy": 5})


async def test_history_window_compacts_itself() -> None:
    store = MemoryStorage(history=5)
    first = await store.create("/k", b"0")
    kv = first
    for i in range(1, 12):
        kv = await store.update("/k", b"%d" % i, expected_revision=kv.revision)
    with pytest.raises(CompactedError):
        await store.list("/", revision=first.revision)
    assert (await store.list("/", revision=kv.revision - 3)).items[0].value == b"8"
    await store.close()


async def test_slow_watch_replays_after_queue_overflow() -> None:
    store = MemoryStorage(watch_queue=3)
    watch = store.watch("/", revision=0)
    await store.create("/a", b"")
    assert (await next_event(watch)).kv.key == "/a"
    written = [await store.create(f"/k{i}", b"") for i in range(10)]
    assert [(await next_event(watch)).kv for _ in written] == written
    await watch.aclose()
    await store.close()


async def test_slow_watch_fails_when_its_history_is_compacted() -> None:
    store = MemoryStorage(history=2, watch_queue=2)
    watch = store.watch("/", revision=0)
    await store.create("/a", b"")
    await next_event(watch)
    for i in range(10):
        await store.create(f"/k{i}", b"")
    with pytest.raises(CompactedError):
        await next_event(watch)
    await store.close()


async def test_ttl_timer_spares_a_recreated_key() -> None:
    store = MemoryStorage()
    kv = await store.create("/e", b"1", ttl=0)
    await store.delete(kv.key)
    again = await store.create("/e", b"2")
    await asyncio.sleep(0.05)
    assert await store.get("/e") == again
    watch = store.watch("/", revision=again.revision)
    await store.create("/f", b"", ttl=0)
    assert (await next_event(watch)).type is EventType.ADDED
    assert (await next_event(watch)).type is EventType.DELETED
    await store.close()
