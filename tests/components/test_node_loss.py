"""A node that stops renewing its Lease goes NotReady (Unknown), its pods are evicted, and the
Deployment's replacements run on the node that is left (controllers, scheduler, two fake kubelets)."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

from kapi.client import Client
from kapi.components.controllers.framework import ControllerOptions
from kapi.components.controllers.manager import run_controllers
from kapi.components.scheduler.scheduler import Scheduler
from kapi.testing.components import _fleet


async def _until(check: Any, timeout: float) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {check.__name__}")
        await asyncio.sleep(0.2)


async def test_lost_node_goes_not_ready_and_its_pods_move(kapi_kubeconfig: Path, tmp_path: Path) -> None:
    stop = asyncio.Event()
    options = ControllerOptions(node_monitor_grace_period=3, node_monitor_period=0.5, default_toleration_seconds=1,
                                node_startup_grace_period=3)
    async with Client.from_kubeconfig(str(kapi_kubeconfig)) as client:
        tasks = [asyncio.ensure_future(run_controllers(client, stop=stop, options=options)),
                 asyncio.ensure_future(Scheduler(client).run()),
                 asyncio.ensure_future(_fleet(client, ("node-b",), tmp_path).run())]
        doomed = asyncio.ensure_future(_fleet(client, ("node-a",), tmp_path).run())
        try:
            labels = {"app": "web"}
            await client.create("/apis/apps/v1/namespaces/default/deployments", {
                "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
                "spec": {"replicas": 4, "selector": {"matchLabels": labels},
                         "template": {"metadata": {"labels": labels},
                                      "spec": {"containers": [{"name": "c", "image": "x"}]}}}})

            async def pods() -> list[dict[str, Any]]:
                listed = await client.list("/api/v1/namespaces/default/pods", labelSelector="app=web")
                return [p for p in listed["items"] if not p["metadata"].get("deletionTimestamp")]

            async def all_running() -> bool:
                current = await pods()
                return len(current) == 4 and all(p["status"].get("phase") == "Running" for p in current)

            await _until(all_running, 30)
            assert {p["spec"]["nodeName"] for p in await pods()} == {"node-a", "node-b"}  # spread over both
            doomed.cancel()  # node-a's kubelet dies: no more Lease renewals

            async def node_a_not_ready() -> bool:
                node = await client.get("/api/v1/nodes/node-a")
                ready = next(c for c in node["status"]["conditions"] if c["type"] == "Ready")
                return ready["status"] != "True"

            await _until(node_a_not_ready, 30)

            async def moved() -> bool:
                current = await pods()
                return (len(current) == 4 and all(p["spec"].get("nodeName") == "node-b" for p in current)
                        and all(p["status"].get("phase") == "Running" for p in current))

            await _until(moved, 40)
        finally:
            stop.set()
            for task in [*tasks, doomed]:
                task.cancel()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.gather(*tasks, doomed, return_exceptions=True), 5)
