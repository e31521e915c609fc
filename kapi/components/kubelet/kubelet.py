"""One node's kubelet: the Node agent plus a pod worker per pod bound to the node.

``Kubelet.handle(pod)`` / ``Kubelet.removed(pod)`` are the informer callbacks; a ``Fleet``
(``kapi.components.kubelet.fleet``) feeds them from one pod informer for one or many nodes.
Workers are keyed by pod UID: a pod deleted and re-created under the same name gets a new one.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from typing import Any

from kapi.client import Client
from kapi.components.kubelet.node import NodeAgent, NodeConfig
from kapi.components.kubelet.worker import NodeContext, PodWorker, pod_key

log = logging.getLogger("kapi.kubelet")

Obj = dict[str, Any]


class Kubelet:
    """See the module docstring."""

    def __init__(self, client: Client, node: NodeConfig, context: NodeContext, *, lease_interval: float = 10.0,
                 report_interval: float = 300.0, heartbeat_client: Client | None = None) -> None:
        self.client = client
        self.name = node.name
        self.context = context
        # heartbeats get their own connections, so a burst of pod status writes cannot delay the Lease
        self.agent = NodeAgent(heartbeat_client or client, node, lease_interval=lease_interval,
                               report_interval=report_interval)
        self.workers: dict[str, PodWorker] = {}  # uid -> worker
        self.by_key: dict[str, PodWorker] = {}  # namespace/name -> current worker
        self._tasks: set[asyncio.Task[Any]] = set()

    def _spawn(self, coro: Any, name: str) -> asyncio.Task[Any]:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # -- pods --------------------------------------------------------------------------------------

    def handle(self, pod: Obj) -> None:
        """A pod bound to this node was added or changed."""
        uid = str((pod.get("metadata") or {}).get("uid") or "")
        worker = self.workers.get(uid)
        if worker is not None:
            worker.update(pod)
            return
        key = pod_key(pod)
        old = self.by_key.get(key)
        if old is not None and old.uid != uid:
            old.gone()
        worker = PodWorker(self.context, pod)
        worker.update(pod)
        self.workers[uid] = worker
        self.by_key[key] = worker
        task = self._spawn(worker.run(), f"pod {key}")
        task.add_done_callback(functools.partial(self._forget, worker))

    def _forget(self, worker: PodWorker, _task: object = None) -> None:
        self.workers.pop(worker.uid, None)
        if self.by_key.get(worker.key) is worker:
            del self.by_key[worker.key]

    def removed(self, pod: Obj) -> None:
        """The pod object is gone from the API (or moved off this node)."""
        worker = self.workers.get(str((pod.get("metadata") or {}).get("uid") or ""))
        if worker is not None:
            worker.gone()

    def worker_for(self, namespace: str, name: str) -> PodWorker | None:
        return self.by_key.get(f"{namespace}/{name}")

    # -- lifecycle ---------------------------------------------------------------------------------

    async def start(self) -> None:
        """Register the Node and start heartbeating."""
        await self.agent.register()
        self._spawn(self.agent.heartbeat(), f"heartbeat {self.name}")

    async def close(self, *, stop_containers: bool = True) -> None:
        """Stop heartbeats and pod workers (no restarts, no more status reports); with
        ``stop_containers`` their containers are stopped too."""
        workers = list(self.workers.values())
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if stop_containers:
            await asyncio.gather(*(w.kill() for w in workers), return_exceptions=True)
