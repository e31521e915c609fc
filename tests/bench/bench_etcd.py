"""etcd benchmark: kapi's etcd store against raw etcd3aio doing the same key-value work.

Run ``python tests/bench/bench_etcd.py`` (``--quick`` for a smoke run, ``--uvloop`` to use uvloop,
``--members 3`` for a 3-member cluster). It starts its own etcd with mutual TLS in a temporary
directory (see ``tests/etcd_server.py``), then, for each client and each concurrency (1, 16, 64
tasks), measures create, get, update, a list of a 1k-key and of a 10k-key prefix, and watch
latency (write call to event delivery, with that many watchers), and prints throughput and
p50/p99 latency. The values, the operations and the table are those of ``bench_storage.py``.

Both clients do the same etcd requests, so the difference is kapi's own cost:

* ``etcd3aio`` - the library's public API: ``txn(create_revision == 0 -> put)``, ``get``,
  ``txn(mod_revision == rv -> put, else get)``, a prefix ``get`` read into ``(key, value,
  revision)`` tuples (as ``bench_storage``'s sqlite baseline does), and ``watch`` (prev_kv) with
  raw protobuf events;
* ``kapi-etcd`` - ``EtcdStorage``: the same requests, plus conversion to ``KeyValue`` and
  ``StorageEvent`` objects, error mapping and the revision bookkeeping of watches.

Not collected by pytest.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench_storage import CONCURRENCY, VALUE, Row, print_table, timed

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: etcd_server

from etcd_server import EtcdCluster

from kapi_plugins.storage_etcd import EtcdStorage


class RawEtcd:
    """The same key-value work through etcd3aio's public client API."""

    def __init__(self, cluster: EtcdCluster) -> None:
        from etcd3aio import Etcd3Client

        files = cluster.client_tls()
        tls = {"ca_cert": Path(files["ca_file"]).read_bytes(), "cert_chain": Path(files["cert_file"]).read_bytes(),
               "cert_key": Path(files["key_file"]).read_bytes()}
        self.client = Etcd3Client([e.removeprefix("https://") for e in cluster.endpoints], rpc_max_attempts=1,
                                  tls_server_name="127.0.0.1", **tls)
        self.client._manager.grpc_options.append(("grpc.max_receive_message_length", 2**31 - 1))

    async def start(self) -> None:
        await self.client.connect()

    @property
    def kv(self) -> Any:
        return self.client.kv

    async def create(self, key: str) -> int:
        kv = self.kv
        response = await kv.txn([kv.txn_compare_create_revision(key, 0)], [kv.txn_op_put(key, VALUE)])
        if not response.succeeded:
            raise RuntimeError("exists")
        return int(response.header.revision)

    async def get(self, key: str) -> Any:
        return (await self.kv.get(key)).kvs[0]

    async def update(self, key: str, expected: int) -> int:
        from etcd3aio._protobuf import Compare

        kv = self.kv
        compare = Compare(result=Compare.EQUAL, target=Compare.MOD, key=key.encode(), mod_revision=expected)
        response = await kv.txn([compare], [kv.txn_op_put(key, VALUE)], [kv.txn_op_get(key)])
        if not response.succeeded:
            raise RuntimeError("conflict")
        return int(response.header.revision)

    async def list(self, prefix: str) -> int:
        from etcd3aio import prefix_range_end

        response = await self.kv.get(prefix, prefix_range_end(prefix))
        return len([(kv.key, kv.value, kv.mod_revision) for kv in response.kvs])  # rows, as sqlite's fetchall()

    async def revision(self) -> int:
        return int((await self.kv.get("\0", count_only=True)).header.revision)

    async def follow(self, prefix: str, revision: int, count: int, sent: dict[str, float],
                     latencies: list[float]) -> None:
        from etcd3aio import prefix_range_end

        stream = self.client.watch.watch(prefix, prefix_range_end(prefix), start_revision=revision + 1,
                                         prev_kv=True)
        seen = 0
        async for response in stream:
            for event in response.events:
                latencies.append(time.perf_counter() - sent[event.kv.key.decode()])
                seen += 1
            if seen >= count:
                break
        await stream.aclose()  # type: ignore[attr-defined]

    async def close(self) -> None:
        await self.client.close()


class Store:
    """``EtcdStorage`` behind the same calls."""

    def __init__(self, cluster: EtcdCluster) -> None:
        self.store = EtcdStorage(cluster.endpoints, compaction_interval=0, **cluster.client_tls())

    async def start(self) -> None:
        await self.store.current_revision()

    async def create(self, key: str) -> int:
        return (await self.store.create(key, VALUE)).revision

    async def get(self, key: str) -> Any:
        return await self.store.get(key)

    async def update(self, key: str, expected: int) -> int:
        return (await self.store.update(key, VALUE, expected_revision=expected)).revision

    async def list(self, prefix: str) -> int:
        return len((await self.store.list(prefix)).items)

    async def revision(self) -> int:
        return await self.store.current_revision()

    async def follow(self, prefix: str, revision: int, count: int, sent: dict[str, float],
                     latencies: list[float]) -> None:
        watch = self.store.watch(prefix, revision=revision)
        for _ in range(count):
            event = await anext(watch)
            latencies.append(time.perf_counter() - sent[event.kv.key])
        await watch.aclose()

    async def close(self) -> None:
        await self.store.close()


async def bench_client(name: str, client: Any, scale: float) -> list[Row]:
    rows: list[Row] = []
    root = f"/bench/{name}"
    n = max(64, int(2000 * scale))
    for size in (1000, 10000):
        for start in range(0, size, 500):
            await asyncio.gather(*(client.create(f"{root}/list{size}/ns/o{i:06}") for i in range(start, start + 500)))
    for c in CONCURRENCY:
        keys = [f"{root}/pods/c{c}/ns/pod-{i:06}" for i in range(n)]
        revisions: dict[str, int] = {}

        async def create(i: int, keys: list[str] = keys, revisions: dict[str, int] = revisions) -> None:
            revisions[keys[i]] = await client.create(keys[i])

        async def get(i: int, keys: list[str] = keys) -> None:
            await client.get(keys[(i * 7919) % len(keys)])

        async def update(i: int, keys: list[str] = keys, revisions: dict[str, int] = revisions) -> None:
            revisions[keys[i]] = await client.update(keys[i], revisions[keys[i]])

        for op, fn in (("create", create), ("get", get), ("update", update)):
            seconds, lat = await timed(c, n, fn)
            rows.append(Row(name, op, c, n, seconds, lat))
        for size in (1000, 10000):
            count = max(c, int((40 if size == 1000 else 8) * scale * max(1, c // 8)))

            async def listing(i: int, size: int = size) -> None:
                assert await client.list(f"{root}/list{size}/") == size

            seconds, lat = await timed(c, count, listing)
            rows.append(Row(name, f"list {size // 1000}k", c, count, seconds, lat))
        rows.append(await watch_latency(name, client, f"{root}/watch{c}/", c, max(50, int(300 * scale))))
    return rows


async def watch_latency(name: str, client: Any, prefix: str, watchers: int, writes: int) -> Row:
    """``watchers`` watches on one prefix; sequential creates; latency = create call to delivery."""
    sent: dict[str, float] = {}
    latencies: list[float] = []
    revision = await client.revision()
    consumers = [asyncio.ensure_future(client.follow(prefix, revision, writes, sent, latencies))
                 for _ in range(watchers)]
    await asyncio.sleep(0.2)  # let every watch stream open
    began = time.perf_counter()
    for i in range(writes):
        key = f"{prefix}k{i:06}"
        sent[key] = time.perf_counter()
        await client.create(key)
    await asyncio.wait_for(asyncio.gather(*consumers), 60)
    return Row(name, "watch", watchers, writes, time.perf_counter() - began, latencies)


async def main(scale: float, members: int) -> list[Row]:
    rows: list[Row] = []
    workdir = Path(tempfile.mkdtemp(prefix="kapi-bench-etcd-"))
    try:
        with EtcdCluster.started(workdir, size=members) as cluster:
            for name, factory in (("etcd3aio", RawEtcd), ("kapi-etcd", Store)):
                client = factory(cluster)
                await client.start()
                try:
                    rows += await bench_client(name, client, scale)
                finally:
                    await client.close()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    parser.add_argument("--uvloop", action="store_true", help="run on uvloop")
    parser.add_argument("--members", type=int, default=1, help="etcd cluster size (default 1)")
    args = parser.parse_args()
    if args.uvloop:
        import uvloop

        uvloop.install()
    print(f"value size {len(VALUE)} bytes, etcd members {args.members}")
    print_table(asyncio.run(main(0.1 if args.quick else 1.0, args.members)))
