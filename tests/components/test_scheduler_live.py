"""The scheduler against a real API server over mutual TLS (its own certificate): binding,
unschedulable reporting with an Event, retry when a node appears, leader election."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from tls_server import TLSServer, tls_server

from kapi.client import Client, path_for
from kapi.components.scheduler.scheduler import Scheduler

from .objects import node, pod

pytestmark = pytest.mark.timeout(30)

PODS = path_for("", "v1", "pods", "default")
NODES = path_for("", "v1", "nodes")


def strip(p: dict[str, Any]) -> dict[str, Any]:
    meta = {k: v for k, v in p["metadata"].items() if k not in ("uid", "creationTimestamp")}
    return {**{k: v for k, v in p.items() if k != "status"}, "metadata": meta}


async def eventually(check: Callable[[], Any], timeout: float = 8) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = await check()
        if result:
            return result
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[tuple[TLSServer, Client]]:
    async with tls_server(tmp_path) as srv, Client.from_kubeconfig(srv.admin_kubeconfig) as admin:
        yield srv, admin


@contextlib.asynccontextmanager
async def running(scheduler: Scheduler) -> AsyncIterator[Scheduler]:
    task = asyncio.create_task(scheduler.run())
    try:
        yield scheduler
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_binds_reports_unschedulable_and_retries(cluster: tuple[TLSServer, Client]) -> None:
    srv, admin = cluster
    for name in ("n1", "n2"):
        await admin.create(NODES, node(name, cpu="2"))
    async with Client.from_kubeconfig(srv.kubeconfig_for("kube-scheduler")) as client, \
            running(Scheduler(client)) as scheduler:
        for i in range(4):
            await admin.create(PODS, strip(pod(f"web-{i}", cpu="500m")))
        await admin.create(PODS, strip(pod("huge", cpu="3")))

        async def all_bound() -> list[str] | None:
            pods = (await admin.list(PODS, labelSelector=""))["items"]
            nodes = [p["spec"].get("nodeName") for p in pods if p["metadata"]["name"] != "huge"]
            return nodes if all(nodes) else None

        placed = await eventually(all_bound)
        assert sorted(placed) == ["n1", "n1", "n2", "n2"]

        async def unschedulable() -> dict[str, Any] | None:
            conditions = (await admin.get(f"{PODS}/huge")).get("status", {}).get("conditions") or []
            return next((c for c in conditions if c["type"] == "PodScheduled" and c["status"] == "False"), None)

        condition = await eventually(unschedulable)
        assert condition["reason"] == "Unschedulable"
        assert condition["message"] == "0/2 nodes are available: 2 Insufficient cpu."

        async def failed_event() -> list[dict[str, Any]]:
            events = await admin.list(path_for("", "v1", "events", "default"),
                                      fieldSelector="involvedObject.name=huge,reason=FailedScheduling")
            return events["items"]

        event = (await eventually(failed_event))[0]
        assert event["type"] == "Warning" and event["source"]["component"] == "default-scheduler"
        # a bigger node appears: the parked pod is retried and bound
        await admin.create(NODES, node("big", cpu="8"))
        huge = await eventually(lambda: _bound(admin, "huge"))
        assert huge == "big"
        assert scheduler.scheduled == 5


async def _bound(admin: Client, name: str) -> str:
    return str((await admin.get(f"{PODS}/{name}"))["spec"].get("nodeName") or "")


async def test_ignores_other_schedulers_and_gated_pods(cluster: tuple[TLSServer, Client]) -> None:
    srv, admin = cluster
    await admin.create(NODES, node("n1"))
    async with Client.from_kubeconfig(srv.kubeconfig_for("kube-scheduler")) as client, running(Scheduler(client)):
        await admin.create(PODS, strip(pod("mine")))
        await admin.create(PODS, strip(pod("theirs", schedulerName="other")))
        await admin.create(PODS, strip(pod("gated", schedulingGates=[{"name": "wait"}])))
        assert await eventually(lambda: _bound(admin, "mine")) == "n1"
        await asyncio.sleep(0.3)
        assert await _bound(admin, "theirs") == "" and await _bound(admin, "gated") == ""
        await admin.patch(f"{PODS}/gated", {"spec": {"schedulingGates": None}})
        assert await eventually(lambda: _bound(admin, "gated")) == "n1"
