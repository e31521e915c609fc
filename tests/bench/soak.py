"""Soak benchmark: minutes of mixed load on a real kapi-apiserver (SQLite, the default store) with
many open watches. Not a test: run it by hand from the repository root.

    python tests/bench/soak.py [--minutes 10] [--watchers 100] [--workers 16] [--sample 10]

Workers loop over create / get / update (with resourceVersion) / list / delete of ConfigMaps; the
watchers stream every ConfigMap event of the namespace. The report gives throughput, p50/p99
latency per verb, the server's RSS over time (it must level off, not grow with time), watch
events received and every error by status. Exit status 1 when errors (5xx, transport) occurred.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import sys
import tempfile
import time
from collections import Counter, defaultdict
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path

import httpx
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run as a script from anywhere

from tests.e2e.conftest import Server, start_server
from tests.reliability.support import tls

NS_PATH = "/api/v1/namespaces/soak/configmaps"


class Stats:
    """Latencies per verb, errors by kind, watch events, RSS samples."""

    def __init__(self) -> None:
        self.latency: dict[str, list[float]] = defaultdict(list)
        self.errors: Counter[str] = Counter()
        self.watch_events = 0
        self.rss: list[tuple[float, float]] = []

    async def timed(self, verb: str, request: asyncio.Future[httpx.Response] | object, ok: tuple[int, ...]) -> \
            httpx.Response | None:
        started = time.perf_counter()
        try:
            resp: httpx.Response = await request  # type: ignore[misc]
        except httpx.HTTPError as exc:
            self.errors[f"{verb}: {type(exc).__name__}"] += 1
            return None
        self.latency[verb].append(time.perf_counter() - started)
        if resp.status_code not in ok:
            self.errors[f"{verb}: {resp.status_code}"] += 1
        return resp


async def worker(http: httpx.AsyncClient, stats: Stats, index: int, stop: float) -> None:
    i = 0
    while time.monotonic() < stop:
        name = f"w{index}-{i}"
        i += 1
        body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"v": "0" * 256}}
        created = await stats.timed("create", http.post(NS_PATH, json=body), (201,))
        if created is None or created.status_code != 201:
            continue
        await stats.timed("get", http.get(f"{NS_PATH}/{name}"), (200,))
        obj = created.json()
        obj["data"]["v"] = "1" * 256
        await stats.timed("update", http.put(f"{NS_PATH}/{name}", json=obj), (200,))
        if i % 10 == 0:
            await stats.timed("list", http.get(NS_PATH, params={"limit": "100"}), (200,))
        await stats.timed("delete", http.delete(f"{NS_PATH}/{name}"), (200,))


async def watcher(http: httpx.AsyncClient, stats: Stats, stop: float) -> None:
    while time.monotonic() < stop:
        try:
            async with http.stream("GET", NS_PATH, params={"watch": "1", "timeoutSeconds": "60"},
                                   timeout=httpx.Timeout(10, read=90)) as resp:
                async for line in resp.aiter_lines():
                    if '"type":"ERROR"' in line:  # e.g. dropped for not keeping up: it reconnects
                        status = orjson.loads(line)["object"]
                        stats.errors[f"watch: ERROR {status.get('code')} {status.get('message', '')[:60]}"] += 1
                    elif line.strip():
                        stats.watch_events += 1
                    if time.monotonic() >= stop:
                        return
        except httpx.HTTPError as exc:
            stats.errors[f"watch: {type(exc).__name__}"] += 1
            await asyncio.sleep(0.5)


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


async def sampler(server: Server, stats: Stats, started: float, stop: float, every: float) -> None:
    while time.monotonic() < stop:
        stats.rss.append((time.monotonic() - started, rss_mib(server.process.pid)))
        await asyncio.sleep(every)
    stats.rss.append((time.monotonic() - started, rss_mib(server.process.pid)))


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


def _client(server: Server, connections: int) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    return httpx.AsyncClient(base_url=server.url, verify=tls(server), timeout=30, limits=limits)


async def _run(tasks: list[asyncio.Task[None]], seconds: float) -> None:
    await asyncio.wait(tasks, timeout=seconds + 120)
    for task in tasks:
        task.cancel()
    with contextlib.suppress(BaseException):
        await asyncio.gather(*tasks, return_exceptions=True)


def watch_process(server: Server, watchers: int, seconds: float) -> tuple[int, dict[str, int]]:
    """The watchers, in their own process so that decoding their streams does not starve the workers."""
    stats = Stats()

    async def go() -> None:
        async with _client(server, watchers + 2) as http:
            stop = time.monotonic() + seconds
            await _run([asyncio.create_task(watcher(http, stats, stop)) for _ in range(watchers)], seconds)

    asyncio.run(go())
    return stats.watch_events, dict(stats.errors)


async def soak(server: Server, seconds: float, watchers: int, workers: int, every: float) -> Stats:
    stats = Stats()
    async with _client(server, workers + 4) as http:
        await http.post("/api/v1/namespaces", json={"apiVersion": "v1", "kind": "Namespace",
                                                     "metadata": {"name": "soak"}})
        with ProcessPoolExecutor(1) as pool:
            watching = asyncio.get_running_loop().run_in_executor(pool, watch_process, replace(server, process=None),
                                                                watchers, seconds)
            await asyncio.sleep(2)
            started = time.monotonic()
            stop = started + seconds
            tasks = [asyncio.create_task(worker(http, stats, i, stop)) for i in range(workers)]
            tasks.append(asyncio.create_task(sampler(server, stats, started, stop, every)))
            await _run(tasks, seconds)
            stats.watch_events, errors = await watching
            stats.errors.update(errors)
    return stats


def report(stats: Stats, seconds: float) -> str:
    total = sum(len(v) for v in stats.latency.values())
    lines = [f"duration {seconds:.0f}s, {total} requests, {total / seconds:.0f} req/s, "
             f"{stats.watch_events} watch events received"]
    for verb, values in sorted(stats.latency.items()):
        lines.append(f"  {verb:7s} n={len(values):7d}  p50={statistics.median(values) * 1000:7.1f} ms  "
                     f"p99={percentile(values, 0.99) * 1000:7.1f} ms  max={max(values) * 1000:7.1f} ms")
    lines.append("RSS (MiB) over time: " + ", ".join(f"{t:.0f}s={r:.0f}" for t, r in stats.rss))
    lines.append(f"errors: {dict(stats.errors) or 'none'}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--watchers", type=int, default=100)
    parser.add_argument("--workers", type=int, default=16)
    parser.add_argument("--sample", type=float, default=10.0, help="seconds between RSS samples")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kapi-soak-") as tmp:
        server = start_server(Path(tmp) / "data", "--max-requests-inflight", "0",
                              "--max-mutating-requests-inflight", "0")
        try:
            seconds = args.minutes * 60
            stats = asyncio.run(soak(server, seconds, args.watchers, args.workers, args.sample))
        finally:
            server.stop()
    print(report(stats, seconds))
    return 1 if stats.errors else 0


if __name__ == "__main__":
    raise SystemExit(main())
