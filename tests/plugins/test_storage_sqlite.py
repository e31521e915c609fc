"""The SQLite store: the storage contract, plus durability, several processes on one file,
crash safety (SIGKILL), compaction, options and file permissions."""

from __future__ import annotations

import asyncio
import os
import signal
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from kapi import CompactedError, Config, EventType, Storage, UnavailableError
from kapi.testing.storage_contract import StorageContract, next_event, no_event
from kapi_plugins import storage_sqlite
from kapi_plugins.storage_sqlite import SQLiteStorage

FAST = {"maintenance_interval": 0.1, "poll_interval": 0.05}


def open_store(path: Path, **options: Any) -> SQLiteStorage:
    return SQLiteStorage(path, **{**FAST, **options})


class TestSQLiteStorageContract(StorageContract):
    async def make_storage(self, tmp_path: Path) -> Storage:
        return open_store(tmp_path / "kapi.db")

    async def reopen_storage(self, store: Storage, tmp_path: Path) -> Storage | None:
        await store.close()
        return open_store(tmp_path / "kapi.db")


class TestSQLiteSmallWindowContract(StorageContract):
    """The same contract when almost every watch must catch up from the log table."""

    supports_ttl = False

    async def make_storage(self, tmp_path: Path) -> Storage:
        return open_store(tmp_path / "kapi.db", watch_window=2, watch_queue=3)


# ---------------------------------------------------------------------------------------------
# hook, options, files


def test_hook_answers_sqlite_only(tmp_path: Path) -> None:
    config = Config(data_dir=str(tmp_path / "data"))
    assert storage_sqlite.kapi_storage(config=config, backend="memory") is None
    store = storage_sqlite.kapi_storage(config=config, backend="sqlite")
    assert isinstance(store, SQLiteStorage)
    assert isinstance(store, Storage)
    assert store.path == config.sqlite_path
    asyncio.run(store.close())


def test_new_files_are_private(tmp_path: Path) -> None:
    store = SQLiteStorage(tmp_path / "data" / "kapi.db")
    assert stat.S_IMODE(os.stat(tmp_path / "data").st_mode) == 0o700
    assert stat.S_IMODE(os.stat(store.path).st_mode) == 0o600
    asyncio.run(store.close())


def test_options_are_parsed_and_checked(tmp_path: Path) -> None:
    options = {"synchronous": "full", "poll_interval": "0.5", "readers": "2", "retention_revisions": "7"}
    config = Config(data_dir=str(tmp_path), plugin_options={"storage_sqlite": options})
    asyncio.run(SQLiteStorage.from_config(config).close())
    for bad, message in (({"synchronous": "off"}, "synchronous"), ({"colour": "red"}, "unknown option"),
                         ({"readers": "0"}, "positive")):
        with pytest.raises(ValueError, match=message):
            SQLiteStorage.from_config(config.with_changes(plugin_options={"storage_sqlite": bad}))


async def test_closed_store_refuses_calls(tmp_path: Path) -> None:
    store = open_store(tmp_path / "kapi.db")
    await store.create("/a", b"1")
    await store.close()
    with pytest.raises(UnavailableError):
        await store.get("/a")
    with pytest.raises(UnavailableError):
        store.watch("/", revision=0)


# ---------------------------------------------------------------------------------------------
# durability


async def test_history_survives_reopen(tmp_path: Path) -> None:
    store = open_store(tmp_path / "kapi.db")
    a = await store.create("/a", b"1")
    await store.update("/a", b"2", expected_revision=a.revision)
    await store.close()
    store = open_store(tmp_path / "kapi.db")
    assert (await store.list("/", revision=a.revision)).items == [a]
    events = [e async for e in _take(store.watch("/", revision=0), 2)]
    assert [e.type for e in events] == [EventType.ADDED, EventType.MODIFIED]
    await store.close()


async def _take(watch: Any, count: int) -> Any:
    for _ in range(count):
        yield await next_event(watch)
    await watch.aclose()


WRITER = textwrap.dedent("""
    import asyncio, sys
    from kapi_plugins.storage_sqlite import SQLiteStorage

    async def main():
        store = SQLiteStorage(sys.argv[1])
        i = 0
        while True:
            kvs = await asyncio.gather(*(store.create(f"/crash/{i + n:06}", b"x" * 200) for n in range(8)))
            for kv in kvs:
                print(kv.key, kv.revision, flush=True)
            i += 8

    asyncio.run(main())
""")


async def test_acknowledged_writes_survive_sigkill(tmp_path: Path) -> None:
    path = tmp_path / "kapi.db"
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    acknowledged: list[tuple[str, int]] = []
    began = time.monotonic()
    try:  # read acknowledgements for about a second of steady writing, then kill mid-stream
        while time.monotonic() - began < 1.0 or (len(acknowledged) < 200 and time.monotonic() - began < 8):
            line = await asyncio.to_thread(proc.stdout.readline)
            if not line:
                break
            key, revision = line.split()
            acknowledged.append((key, int(revision)))
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
    assert len(acknowledged) >= 100, "the writer process did not start writing"
    store = open_store(path)
    try:
        stored = {kv.key: kv.revision for kv in (await store.list("/crash/")).items}
        missing = [key for key, revision in acknowledged if stored.get(key) != revision]
        assert not missing, f"{len(missing)} acknowledged writes lost, e.g. {missing[:3]}"
        last = max(revision for _, revision in acknowledged)
        assert await store.current_revision() >= last
        assert (await store.create("/after-crash", b"1")).revision > last
    finally:
        await store.close()


# ---------------------------------------------------------------------------------------------
# several stores (processes) on one file


async def test_two_stores_on_one_file_see_each_others_writes(tmp_path: Path) -> None:
    one = open_store(tmp_path / "kapi.db")
    two = open_store(tmp_path / "kapi.db")
    try:
        start = await one.current_revision()
        watch_one = one.watch("/shared/", revision=start)
        watch_two = two.watch("/shared/", revision=start)
        a = await one.create("/shared/a", b"1")
        b = await two.create("/shared/b", b"1")
        a2 = await one.update("/shared/a", b"2", expected_revision=a.revision)
        c = await two.create("/shared/c", b"1")
        assert a.revision < b.revision < a2.revision < c.revision
        for watch in (watch_one, watch_two):
            assert [(await next_event(watch)).kv for _ in range(4)] == [a, b, a2, c]
            await no_event(watch, 0.3)
        assert (await two.get("/shared/a")) == a2
        assert await one.current_revision() == await two.current_revision() == c.revision
        await watch_one.aclose()
        await watch_two.aclose()
    finally:
        await one.close()
        await two.close()


async def test_poll_delivers_other_writers_events_quickly(tmp_path: Path) -> None:
    one = open_store(tmp_path / "kapi.db")
    two = open_store(tmp_path / "kapi.db")
    try:
        watch = two.watch("/", revision=await two.current_revision())
        began = time.monotonic()
        kv = await one.create("/x", b"1")
        assert (await next_event(watch, 2)).kv == kv
        assert time.monotonic() - began < 1.0
        await watch.aclose()
    finally:
        await one.close()
        await two.close()


# ---------------------------------------------------------------------------------------------
# compaction, windows, slow watches


async def test_background_compaction_keeps_the_configured_revisions(tmp_path: Path) -> None:
    store = open_store(tmp_path / "kapi.db", retention_seconds=0, retention_revisions=5)
    kv = await store.create("/k", b"0")
    first = kv
    for i in range(20):
        kv = await store.update("/k", b"%d" % i, expected_revision=kv.revision)
    for _ in range(50):
        await asyncio.sleep(0.05)
        try:
            await store.list("/", revision=first.revision)
        except CompactedError as err:
            assert err.compacted <= kv.revision - 5
            break
    else:
        pytest.fail("the background task never compacted")
    assert (await store.list("/", revision=kv.revision - 5)).items[0].revision == kv.revision - 5
    await store.close()


async def test_watch_catches_up_from_the_log_beyond_the_window(tmp_path: Path) -> None:
    store = open_store(tmp_path / "kapi.db", watch_window=10)
    written = await asyncio.gather(*(store.create(f"/k/{i:04}", b"v") for i in range(2500)))
    await store.create("/other", b"v")
    watch = store.watch("/k/", revision=0)
    seen = [(await next_event(watch)).kv.revision for _ in written]
    assert seen == sorted(kv.revision for kv in written)
    await no_event(watch, 0.2)
    await watch.aclose()
    await store.close()


async def test_slow_watch_recovers_after_queue_overflow(tmp_path: Path) -> None:
    store = open_store(tmp_path / "kapi.db", watch_window=5, watch_queue=4)
    watch = store.watch("/", revision=0)
    first = await store.create("/a", b"")
    assert (await next_event(watch)).kv == first
    written = [await store.create(f"/k{i:02}", b"") for i in range(30)]
    assert [(await next_event(watch)).kv for _ in written] == written
    await watch.aclose()
    await store.close()
