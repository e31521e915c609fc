"""Durability: a kapi-apiserver killed with SIGKILL in the middle of a write load and restarted on
the same data keeps every acknowledged write, resourceVersions keep increasing, and a watch from
before the crash either streams the history in order or answers 410 Expired. SQLite and etcd."""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path

import httpx
import orjson
import pytest
from etcd_server import EtcdCluster, require_etcd

from tests.e2e.conftest import Server, start_server
from tests.reliability.support import CM_PATH, aclient, client
from tests.reliability.test_lost_updates import etcd_flags

pytestmark = pytest.mark.e2e

WRITERS = 8
LOAD_SECONDS = 1.5


async def write_load(server: Server, acked: dict[str, int]) -> None:
    """Create ConfigMaps from ``WRITERS`` tasks until the server dies; ``acked`` gets name -> RV of
    every create the server acknowledged with 201."""
    async with aclient(server, timeout=5) as http:
        async def writer(w: int) -> None:
            for i in range(100_000):
                name = f"w{w}-{i}"
                body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"i": str(i)}}
                try:
                    resp = await http.post(CM_PATH, json=body)
                except httpx.HTTPError:
                    return
                if resp.status_code == 201:
                    acked[name] = int(resp.json()["metadata"]["resourceVersion"])

        await asyncio.gather(*(writer(w) for w in range(WRITERS)))


def crash_during_load(server: Server) -> dict[str, int]:
    acked: dict[str, int] = {}

    async def go() -> None:
        load = asyncio.create_task(write_load(server, acked))
        await asyncio.sleep(LOAD_SECONDS)
        server.process.kill()
        await asyncio.wait_for(load, 30)

    asyncio.run(go())
    server.process.wait(10)
    return acked


def watch_lines(server: Server, rv: str, seconds: int = 2) -> tuple[int, list[dict[str, object]]]:
    """Status and decoded events of a watch from ``rv`` (bounded by ``timeoutSeconds``)."""
    with client(server) as http, http.stream(
            "GET", CM_PATH, params={"watch": "1", "resourceVersion": rv, "timeoutSeconds": str(seconds)}) as resp:
        if resp.status_code != 200:
            return resp.status_code, []
        return 200, [orjson.loads(line) for line in resp.iter_lines() if line.strip()]


def check_recovered(server: Server, acked: dict[str, int], pre_rv: str) -> None:
    assert len(acked) > 20, "the load acknowledged too few writes to mean anything"
    with client(server) as http:
        listed = http.get(CM_PATH)
        assert listed.status_code == 200
        present = {item["metadata"]["name"]: int(item["metadata"]["resourceVersion"])
                   for item in listed.json()["items"]}
        lost = sorted(set(acked) - set(present))
        assert not lost, f"{len(lost)} acknowledged creates lost: {lost[:10]}"
        for name, rv in acked.items():
            assert present[name] == rv, name  # the very version that was acknowledged
            got = http.get(f"{CM_PATH}/{name}").json()
            assert got["data"]["i"] == name.rsplit("-", 1)[1]
        after = http.post(CM_PATH, json={"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "after"}})
        assert after.status_code == 201, after.text
        assert int(after.json()["metadata"]["resourceVersion"]) > max(acked.values())
        assert int(listed.json()["metadata"]["resourceVersion"]) >= max(acked.values())
    status, events = watch_lines(server, pre_rv)
    print(f"acked={len(acked)} present_after_restart={len(present)} watch_status={status} events={len(events)}")
    if status == 410 or (events and events[0]["type"] == "ERROR"):
        assert status == 410 or events[0]["object"]["code"] == 410  # type: ignore[index]
        return
    assert status == 200
    rvs = [int(e["object"]["metadata"]["resourceVersion"]) for e in events]  # type: ignore[index]
    assert rvs == sorted(rvs) and len(rvs) == len(set(rvs)), "watch events out of order or duplicated"
    seen = {e["object"]["metadata"]["name"] for e in events if e["type"] == "ADDED"}  # type: ignore[index]
    assert set(acked) <= seen, "the watch from before the crash missed acknowledged creates"


def pre_crash_rv(server: Server) -> str:
    with client(server) as http:
        return str(http.get(CM_PATH).json()["metadata"]["resourceVersion"])


def crash_and_restart(data_dir: Path, *flags: str) -> None:
    server = start_server(data_dir, *flags)
    try:
        rv = pre_crash_rv(server)
        acked = crash_during_load(server)
        started = time.monotonic()
        restarted = start_server(data_dir, *flags)
        print(f"restart took {time.monotonic() - started:.1f}s")
        try:
            check_recovered(restarted, acked, rv)
        finally:
            restarted.stop()
    finally:
        with contextlib.suppress(Exception):
            server.stop()


def test_sqlite_sigkill_during_writes(tmp_path: Path) -> None:
    crash_and_restart(tmp_path / "data")


def test_etcd_apiserver_sigkill_during_writes(tmp_path: Path) -> None:
    require_etcd()
    with EtcdCluster.started(tmp_path / "etcd") as cluster:
        crash_and_restart(tmp_path / "data", *etcd_flags(cluster))
