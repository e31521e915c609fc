"""The kubelets of one process and their pod informer: one node, or many (``--fake-nodes N``,
KWOK-style).

All nodes share one client, one runtime, one HTTPS endpoint and one pod informer: the informer
watches every bound pod (``spec.nodeName!=``) and routes each to the kubelet of its node, so N
nodes cost one watch instead of N. The shared identity must be allowed to read every pod and
write the nodes, leases and pod statuses of all N nodes (``kapi up`` issues it a dedicated
certificate); a real per-node kubelet uses its own informer instead (``Kubelet.run``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from kapi.client import Client, Informer, path_for
from kapi.components.kubelet.kubelet import Kubelet
from kapi.components.kubelet.worker import PodWorker

Obj = dict[str, Any]
REGISTER_CONCURRENCY = 20


class Fleet:
    """Kubelets by node name, fed by one informer."""

    def __init__(self, client: Client, kubelets: Mapping[str, Kubelet]) -> None:
        self.client = client
        self.kubelets = dict(kubelets)
        # one node watches only its own pods (what the Node authorizer allows a real kubelet)
        selector = f"spec.nodeName={next(iter(self.kubelets))}" if len(self.kubelets) == 1 else "spec.nodeName!="
        self.informer = Informer(client, path_for("", "v1", "pods"), field_selector=selector)
        self.informer.add_handler(self._added, self._updated, self._deleted)

    def _kubelet(self, pod: Obj) -> Kubelet | None:
        return self.kubelets.get(str((pod.get("spec") or {}).get("nodeName") or ""))

    def _added(self, pod: Obj) -> None:
        kubelet = self._kubelet(pod)
        if kubelet is not None:
            kubelet.handle(pod)

    def _updated(self, old: Obj, pod: Obj) -> None:
        self._added(pod)

    def _deleted(self, pod: Obj) -> None:
        kubelet = self._kubelet(pod)
        if kubelet is not None:
            kubelet.removed(pod)

    def lookup(self, namespace: str, name: str) -> PodWorker | None:
        """The worker running ``namespace/name`` on any node of the fleet."""
        for kubelet in self.kubelets.values():
            worker = kubelet.worker_for(namespace, name)
            if worker is not None:
                return worker
        return None

    def pods(self) -> list[Obj]:
        return [w.pod for k in self.kubelets.values() for w in k.workers.values()]

    async def start(self) -> None:
        """Register every node (a few at a time)."""
        gate = asyncio.Semaphore(REGISTER_CONCURRENCY)

        async def one(kubelet: Kubelet) -> None:
            async with gate:
                await kubelet.start()

        await asyncio.gather(*(one(k) for k in self.kubelets.values()))

    async def run(self) -> None:
        """Register, then route pods until cancelled."""
        await self.start()
        try:
            await self.informer.run()
        finally:
            self.informer.stop()
            await self.close()

    async def close(self) -> None:
        await asyncio.gather(*(k.close() for k in self.kubelets.values()), return_exceptions=True)
