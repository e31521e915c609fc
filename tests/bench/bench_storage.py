"""Storage benchmark: kapi's memory and SQLite stores against plain sqlite3 doing the same work.

Run ``python tests/bench/bench_storage.py`` (``--quick`` for a smoke run, ``--uvloop`` to use
uvloop). For each store and each concurrency (1, 16, 64 tasks) it measures create, get, update,
a list of a 1k-key and of a 10k-key prefix, and watch latency (write call to event delivery,
with that many watchers), and prints throughput and p50/p99 latency.

Baselines (no revisions, no history, no watch):

* ``sqlite3-sync`` - direct calls on one connection, no event loop: the floor of the work itself;
* ``sqlite3-thread`` - the naive async wrapper: every call sent to a one-thread executor, one
  transaction per write.

Values are ~1 KiB JSON documents, like small Kubernetes objects. Not collected by pytest.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import shutil
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from kapi_plugins.storage_memory import MemoryStorage
from kapi_plugins.storage_sqlite import SQLiteStorage

VALUE = orjson.dumps({"metadata": {"name": "x", "namespace": "default",
                                   "labels": {f"l{i}": "v" * 20 for i in range(10)}},
                      "spec": {"containers": [{"name": "c", "image": "nginx:1.27", "args": ["a" * 40] * 12}]}})
CONCURRENCY = (1, 16, 64)


@dataclass
class Row:
    store: str
    op: str
    concurrency: int
    ops: int
    seconds: float
    latencies: list[float]

    def cells(self) -> list[str]:
        lat = sorted(self.latencies)
        p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))]
        return [self.store, self.op, str(self.concurrency), f"{self.ops / self.seconds:,.0f}",
                f"{statistics.median(lat) * 1000:.3f}", f"{p99 * 1000:.3f}"]


class RawSQLite:
    """The same key-value work on a bare sqlite3 connection (WAL, synchronous=NORMAL)."""

    def __init__(self, path: Path, threaded: bool) -> None:
        self.conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.conn.execute("PRAGMA journal_mode = WAL")
        self.conn.execute("PRAGMA synchronous = NORMAL")
        self.conn.execute("CREATE TABLE kv (key TEXT PRIMARY KEY, value BLOB, revision INTEGER)")
        self.executor = concurrent.futures.ThreadPoolExecutor(1) if threaded else None
        self.revision = 0

    async def _run(self, fn: Callable[..., Any], *args: Any) -> Any:
        if self.executor is None:
            return fn(*args)
        return await asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)

    def _create(self, key: str, value: bytes) -> int:
        self.revision += 1
        self.conn.execute("INSERT INTO kv VALUES (?, ?, ?)", (key, value, self.revision))
        return self.revision

    def _update(self, key: str, value: bytes, expected: int) -> int:
        self.revision += 1
        cur = self.conn.execute("UPDATE kv SET value = ?, revision = ? WHERE key = ? AND revision = ?",
                                (value, self.revision, key, expected))
        if cur.rowcount != 1:
            raise RuntimeError("conflict")
        return self.revision

    def _get(self, key: str) -> tuple[Any, ...]:
        return self.conn.execute("SELECT value, revision FROM kv WHERE key = ?", (key,)).fetchone()

    def _list(self, prefix: str) -> list[tuple[Any, ...]]:
        end = prefix[:-1] + chr(ord(prefix[-1]) + 1)
        return self.conn.execute("SELECT key, value, revision FROM kv WHERE key >= ? AND key < ? ORDER BY key",
                                 (prefix, end)).fetchall()

    async def create(self, key: str, value: bytes) -> int:
        return int(await self._run(self._create, key, value))

    async def update(self, key: str, value: bytes, expected: int) -> int:
        return int(await self._run(self._update, key, value, expected))

    async def get(self, key: str) -> Any:
        return await self._run(self._get, key)

    async def list(self, prefix: str) -> Any:
        return await self._run(self._list, prefix)

    async def close(self) -> None:
        if self.executor is not None:
            self.executor.shutdown()
        self.conn.close()


async def timed(concurrency: int, count: int, op: Callable[[int], Awaitable[Any]]) -> tuple[float, list[float]]:
    """Run ``op(i)`` for i in range(count) from ``concurrency`` tasks; (wall seconds, latencies)."""
    latencies: list[float] = []
    clock = time.perf_counter

    async def worker(offset: int) -> None:
        for i in range(offset, count, concurrency):
            began = clock()
            await op(i)
            latencies.append(clock() - began)

    began = clock()
    await asyncio.gather(*(worker(n) for n in range(concurrency)))
    return clock() - began, latencies


class Adapter:
    """Uniform calls over a kapi store or the raw baseline."""

    def __init__(self, name: str, store: Any) -> None:
        self.name = name
        self.store = store
        self.kapi = not isinstance(store, RawSQLite)

    async def create(self, key: str) -> int:
        result = await self.store.create(key, VALUE)
        return int(result.revision if self.kapi else result)

    async def get(self, key: str) -> Any:
        return await self.store.get(key)

    async def update(self, key: str, expected: int) -> int:
        if self.kapi:
            return int((await self.store.update(key, VALUE, expected_revision=expected)).revision)
        return int(await self.store.update(key, VALUE, expected))

    async def list(self, prefix: str) -> int:
        result = await self.store.list(prefix)
        return len(result.items if self.kapi else result)


async def bench_store(adapter: Adapter, scale: float) -> list[Row]:
    rows: list[Row] = []
    n = max(64, int(2000 * scale))
    for size in (1000, 10000):
        for start in range(0, size, 500):
            await asyncio.gather(*(adapter.create(f"/list{size}/ns/o{i:06}") for i in range(start, start + 500)))
    for c in CONCURRENCY:
        keys = [f"/pods/c{c}/ns/pod-{i:06}" for i in range(n)]
        revisions: dict[str, int] = {}

        async def create(i: int, keys: list[str] = keys, revisions: dict[str, int] = revisions) -> None:
            revisions[keys[i]] = await adapter.create(keys[i])

        async def get(i: int, keys: list[str] = keys) -> None:
            await adapter.get(keys[(i * 7919) % len(keys)])

        async def update(i: int, keys: list[str] = keys, revisions: dict[str, int] = revisions) -> None:
            revisions[keys[i]] = await adapter.update(keys[i], revisions[keys[i]])

        for op, fn, count in (("create", create, n), ("get", get, n), ("update", update, n)):
            seconds, lat = await timed(c, count, fn)
            rows.append(Row(adapter.name, op, c, count, seconds, lat))
        for size in (1000, 10000):
            count = max(c, int((40 if size == 1000 else 8) * scale * max(1, c // 8)))

            async def listing(i: int, size: int = size) -> None:
                assert await adapter.list(f"/list{size}/") == size

            seconds, lat = await timed(c, count, listing)
            rows.append(Row(adapter.name, f"list {size // 1000}k", c, count, seconds, lat))
        if adapter.kapi:
            rows.append(await watch_latency(adapter, c, max(50, int(300 * scale))))
    return rows


async def watch_latency(adapter: Adapter, watchers: int, writes: int) -> Row:
    """``watchers`` watches on one prefix; sequential creates; latency = create call to delivery."""
    prefix = f"/watch{watchers}/"
    store = adapter.store
    sent: dict[str, float] = {}
    latencies: list[float] = []
    streams = [store.watch(prefix, revision=await store.current_revision()) for _ in range(watchers)]

    async def consume(stream: Any) -> None:
        for _ in range(writes):
            event = await stream.__anext__()
            latencies.append(time.perf_counter() - sent[event.kv.key])

    consumers = [asyncio.ensure_future(consume(s)) for s in streams]
    await asyncio.sleep(0.01)
    began = time.perf_counter()
    for i in range(writes):
        key = f"{prefix}k{i:06}"
        sent[key] = time.perf_counter()
        await store.create(key, VALUE)
        await asyncio.sleep(0)
    await asyncio.wait_for(asyncio.gather(*consumers), 30)
    seconds = time.perf_counter() - began
    for s in streams:
        await s.aclose()
    return Row(adapter.name, "watch", watchers, writes, seconds, latencies)


async def main(scale: float) -> list[Row]:
    rows: list[Row] = []
    workdir = Path(tempfile.mkdtemp(prefix="kapi-bench-"))
    try:
        factories: list[tuple[str, Callable[[Path], Any]]] = [
            ("memory", lambda _: MemoryStorage()),
            ("kapi-sqlite", lambda d: SQLiteStorage(d / "kapi.db")),
            ("sqlite3-thread", lambda d: RawSQLite(d / "raw.db", threaded=True)),
            ("sqlite3-sync", lambda d: RawSQLite(d / "raw.db", threaded=False)),
        ]
        for name, factory in factories:
            directory = workdir / name
            directory.mkdir()
            store = factory(directory)
            try:
                rows += await bench_store(Adapter(name, store), scale)
            finally:
                await store.close()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return rows


def print_table(rows: list[Row]) -> None:
    header = ["store", "op", "conc", "ops/s", "p50 ms", "p99 ms"]
    cells = [header] + [r.cells() for r in sorted(rows, key=lambda r: (r.op, r.concurrency))]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    for n, row in enumerate(cells):
        print("  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))))
        if n == 0:
            print("  ".join("-" * w for w in widths))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    parser.add_argument("--uvloop", action="store_true", help="run on uvloop")
    args = parser.parse_args()
    if args.uvloop:
        import uvloop

        uvloop.install()
    print(f"value size {len(VALUE)} bytes, sqlite {sqlite3.sqlite_version}")
    print_table(asyncio.run(main(0.1 if args.quick else 1.0)))
