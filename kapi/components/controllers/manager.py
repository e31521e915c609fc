"""Running a set of controllers in one process: ``run_controllers``.

``run_controllers(client, controllers=("*",), stop=event)`` builds the shared informers and the
chosen controllers, starts them, and returns once ``stop`` is set (informers stopped, queued
Events sent). It is what ``kapi controller-manager`` runs (under leader election when asked) and
what tests and ``kapi up`` call in-process.

``--controllers`` semantics are kube-controller-manager's: ``*`` enables every controller that is
on by default, ``NAME`` enables one, ``-NAME`` disables one (``*,-garbagecollector``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable, Mapping

from kapi.client import Client
from kapi.components.controllers.deployment import DeploymentController
from kapi.components.controllers.endpoints import EndpointsController
from kapi.components.controllers.endpointslice import EndpointSliceController
from kapi.components.controllers.framework import Controller, ControllerContext, ControllerOptions, Recorder
from kapi.components.controllers.garbagecollector import GarbageCollector
from kapi.components.controllers.informers import InformerFactory, SharedInformers, default_factory
from kapi.components.controllers.job import JobController
from kapi.components.controllers.namespace import NamespaceController
from kapi.components.controllers.nodelifecycle import NodeLifecycleController
from kapi.components.controllers.podgc import PodGCController
from kapi.components.controllers.replicaset import ReplicaSetController
from kapi.components.controllers.rootcacert import RootCACertPublisher
from kapi.components.controllers.serviceaccount import ServiceAccountController

log = logging.getLogger("kapi.controllers")

#: every controller by its ``--controllers`` name
CONTROLLERS: Mapping[str, type[Controller]] = {c.name: c for c in (
    DeploymentController, ReplicaSetController, NamespaceController, GarbageCollector, NodeLifecycleController,
    PodGCController, JobController, ServiceAccountController, RootCACertPublisher, EndpointsController,
    EndpointSliceController)}

#: controllers ``*`` does not enable (none at the moment: every one is on by default)
OFF_BY_DEFAULT: frozenset[str] = frozenset()


def select_controllers(spec: Iterable[str]) -> list[str]:
    """The controller names a ``--controllers`` list enables, in ``CONTROLLERS`` order.

    :raises ValueError: an unknown name.
    """
    chosen: set[str] = set()
    removed: set[str] = set()
    for item in spec:
        item = item.strip()
        if not item:
            continue
        if item == "*":
            chosen.update(n for n in CONTROLLERS if n not in OFF_BY_DEFAULT)
            continue
        name = item[1:] if item.startswith("-") else item
        if name not in CONTROLLERS:
            raise ValueError(f"unknown controller {name!r}; known: {', '.join(sorted(CONTROLLERS))}")
        (removed if item.startswith("-") else chosen).add(name)
    return [n for n in CONTROLLERS if n in chosen and n not in removed]


def service_accounts(names: Iterable[str]) -> dict[str, str]:
    """``controller name -> service account`` for the chosen controllers."""
    return {n: CONTROLLERS[n].service_account for n in names if CONTROLLERS[n].service_account}


class _Recorders:
    """One ``EventRecorder`` per component, started lazily, stopped at the end."""

    def __init__(self) -> None:
        self._made: dict[str, object] = {}

    def __call__(self, component: str, client: Client) -> Recorder:
        from kapi.components.events import EventRecorder

        recorder = self._made.get(component)
        if recorder is None:
            recorder = self._made[component] = EventRecorder(client, component, workers=2)
        return recorder  # type: ignore[return-value]

    async def stop(self) -> None:
        for recorder in self._made.values():
            with contextlib.suppress(Exception):
                await recorder.stop()  # type: ignore[attr-defined]


async def _supervise(controller: Controller) -> None:
    try:
        await controller.run()
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("controller %s stopped", controller.name)


async def run_controllers(client: Client, *, controllers: Iterable[str] = ("*",), stop: asyncio.Event,
                          options: ControllerOptions | None = None, clients: Mapping[str, Client] | None = None,
                          informer_factory: InformerFactory = default_factory) -> None:
    """Run the chosen controllers until ``stop`` is set.

    :param client: reads (shared informers) and, unless ``clients`` names another, writes.
    :param controllers: a ``--controllers`` list (``*``, ``NAME``, ``-NAME``).
    :param options: the controllers' settings (defaults: kube-controller-manager's).
    :param clients: per-controller write clients (see ``credentials.ServiceAccountClients``).
    :raises ValueError: an unknown controller name.
    """
    names = select_controllers(controllers)
    options = options or ControllerOptions()
    if not options.root_ca_pem and "root-ca-cert-publisher" in names:
        names.remove("root-ca-cert-publisher")
    informers = SharedInformers(client, informer_factory)
    recorders = _Recorders()
    ctx = ControllerContext(client=client, informers=informers, options=options, recorders=recorders,
                            clients=dict(clients or {}))
    instances = [CONTROLLERS[name](ctx) for name in names]
    informers.start()
    log.info("starting controllers: %s", ", ".join(names))
    tasks = [asyncio.create_task(_supervise(c), name=f"controller {c.name}") for c in instances]
    try:
        await stop.wait()
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await informers.stop()
        await recorders.stop()
