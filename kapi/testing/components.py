"""The control plane around a test server: controllers, the scheduler and fake kubelets, in process.

``Components(controllers=("*",), scheduler=True, fake_nodes=("node-1",))`` names what to run;
``run_components(kubeconfig, components, stop, root_dir)`` runs them (on the server's loop, as the
admin of that kubeconfig) until ``stop`` is set. With them an operator test gets what envtest lacks:
garbage collection by ownerReferences, namespace deletion, Deployments that make ReplicaSets and
Pods, Pods that are scheduled and (fake-)run to ``Running``.

The ``kapi_server`` fixture starts them when a test is marked
``@pytest.mark.kapi_components(controllers=("*",), scheduler=True, fake_nodes=("node-1",))``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Components:
    """What to run beside the API server (nothing by default)."""

    controllers: tuple[str, ...] = ()  # a --controllers list: ("*",) = kube-controller-manager's defaults
    scheduler: bool = False
    fake_nodes: tuple[str, ...] = ()  # a fake-runtime kubelet per node name

    def __bool__(self) -> bool:
        return bool(self.controllers or self.scheduler or self.fake_nodes)


async def run_components(kubeconfig: str | Path, components: Components, stop: asyncio.Event,
                         root_dir: str | Path) -> None:
    """Run ``components`` against the server of ``kubeconfig`` until ``stop`` is set."""
    from kapi.client import Client

    async with Client.from_kubeconfig(str(kubeconfig)) as client:
        work: list[Awaitable[Any]] = []
        if components.controllers:
            from kapi.components.controllers.manager import run_controllers

            work.append(run_controllers(client, controllers=components.controllers, stop=stop))
        if components.scheduler:
            from kapi.components.scheduler.scheduler import Scheduler

            work.append(Scheduler(client).run())
        if components.fake_nodes:
            work.append(_fleet(client, components.fake_nodes, Path(root_dir)).run())
        tasks = [asyncio.ensure_future(w) for w in work]
        try:
            await stop.wait()
        finally:
            for task in tasks:
                task.cancel()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 5)


def _fleet(client: Any, names: tuple[str, ...], root: Path) -> Any:
    from kapi.components.kubelet.fleet import Fleet
    from kapi.components.kubelet.kubelet import Kubelet
    from kapi.components.kubelet.node import NodeConfig
    from kapi.components.kubelet.runtime import load_runtime, plugin_manager
    from kapi.components.kubelet.worker import NodeContext

    runtime = load_runtime("fake", plugin_manager())
    kubelets = {name: Kubelet(client, NodeConfig(name=name, port=0, runtime_version=f"{runtime.name}://test"),
                              NodeContext(client, runtime, name, "127.0.0.1", str(root / name), (0.1, 1.0)),
                              lease_interval=1.0)
                for name in names}
    return Fleet(client, kubelets)
