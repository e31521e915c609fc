"""The controller framework: options, the shared context, and the ``Controller`` base class.

A controller watches some shared caches (``self.cache(resource)`` in ``setup()``), turns changes
into keys on its ``WorkQueue`` (``self.enqueue(obj)``), and reconciles one key at a time in
``sync(key)`` — level-triggered: ``sync`` reads the current state from the caches, never from the
event that queued the key. ``run()`` waits until its caches listed once, then runs ``workers``
concurrent workers; a key is never synced by two workers at once. ``sync`` returns None, or the
seconds after which the key must be synced again (a time-based condition); an exception
requeues the key with a per-key exponential backoff (conflicts are expected and logged quietly).

Writes go through ``self.client``: the manager's client, or the controller's own service-account
client with ``--use-service-account-credentials``. Reads of the caches use the shared informers.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from kapi.client import ApiError, Client
from kapi.components.controllers.discovery import DiscoveryCache
from kapi.components.controllers.gvr import Resource
from kapi.components.controllers.informers import Cache, SharedInformers
from kapi.components.controllers.objects import key_of
from kapi.components.controllers.workqueue import WorkQueue

log = logging.getLogger("kapi.controllers")

Obj = dict[str, Any]

FORBIDDEN_HINT = (" (under RBAC, system:kube-controller-manager may only read: run with "
                  "--use-service-account-credentials so each controller uses its system:controller:* role)")


@dataclass(frozen=True)
class ControllerOptions:
    """Settings of the controllers (kube-controller-manager's flags, in seconds).

    :param node_monitor_grace_period: a node whose Lease/heartbeat is older is marked unknown.
    :param node_monitor_period: how often node health is checked.
    :param node_startup_grace_period: grace for a node that never reported Ready.
    :param default_toleration_seconds: eviction delay for pods without a toleration for the
        not-ready/unreachable taints (the DefaultTolerationSeconds admission plugin's 300 s).
    :param root_ca_pem: the cluster CA published as ``kube-root-ca.crt`` ("" disables the publisher).
    :param workers: concurrent syncs per controller (``--concurrent-*-syncs``).
    :param job_backoff_base: / :param job_backoff_max: the Job pod-failure backoff (10 s doubling to 6 min).
    :param namespace_sync_period: recheck of a terminating namespace with content left.
    :param discovery_period: how often the garbage collector re-reads discovery for new resources.
    :param pod_gc_period: / :param pod_gc_quarantine: how often pods of vanished nodes are looked
        for, and how long such a pod must stay orphaned before it is deleted.
    """

    node_monitor_grace_period: float = 40.0
    node_monitor_period: float = 5.0
    node_startup_grace_period: float = 60.0
    default_toleration_seconds: float = 300.0
    root_ca_pem: str = ""
    workers: int = 5
    job_backoff_base: float = 10.0
    job_backoff_max: float = 360.0
    namespace_sync_period: float = 2.0
    discovery_period: float = 30.0
    pod_gc_period: float = 20.0
    pod_gc_quarantine: float = 40.0


class Recorder(Protocol):
    """Records Events (``kapi.components.events.EventRecorder`` is one)."""

    def record(self, obj: Mapping[str, Any], type_: str, reason: str, message: str) -> None: ...


class Clock:
    """Wall time for timestamps and monotonic time for durations (tests use a fake)."""

    def now(self) -> datetime.datetime:
        return datetime.datetime.now(datetime.UTC)

    def monotonic(self) -> float:
        return time.monotonic()


@dataclass
class ControllerContext:
    """What every controller gets: clients, shared caches, options, events, clock.

    :param client: the manager's client (informers, and writes unless ``clients`` names one).
    :param clients: per-controller write clients (service-account credentials), by controller name.
    :param recorders: makes the Event recorder of a component (a controller's ``component``),
        posting with the given client.
    :param discovery: discovery results shared by the controllers that need every resource.
    """

    client: Client
    informers: SharedInformers
    options: ControllerOptions = field(default_factory=ControllerOptions)
    recorders: Callable[[str, Client], Recorder] | None = None
    clock: Clock = field(default_factory=Clock)
    clients: Mapping[str, Client] = field(default_factory=dict)
    discovery: DiscoveryCache = field(default_factory=DiscoveryCache)

    def client_for(self, name: str) -> Client:
        """The client controller ``name`` writes with."""
        return self.clients.get(name, self.client)

    def recorder_for(self, component: str, client: Client) -> Recorder:
        """The Event recorder of ``component`` (a no-op recorder when none is configured)."""
        if self.recorders is None:
            return _NullRecorder()
        return self.recorders(component, client)


class _NullRecorder:
    def record(self, obj: Mapping[str, Any], type_: str, reason: str, message: str) -> None:
        log.debug("event %s %s: %s", type_, reason, message)


class Controller:
    """Base class: subclasses set ``name`` (the ``--controllers`` name), ``component`` (the Event
    source and service account), implement ``setup()`` and ``sync(key)``."""

    name: ClassVar[str] = ""
    component: ClassVar[str] = ""
    #: the service account whose credentials the controller uses (``--use-service-account-credentials``)
    service_account: ClassVar[str] = ""

    def __init__(self, ctx: ControllerContext) -> None:
        self.ctx = ctx
        self.options = ctx.options
        self.client = ctx.client_for(self.name)
        self.recorder = ctx.recorder_for(self.component or self.name, self.client)
        self.queue = WorkQueue()
        self._caches: list[Cache] = []
        self.setup()

    # -- for subclasses ------------------------------------------------------------------------

    def setup(self) -> None:
        """Ask for caches and register handlers (called once from ``__init__``)."""

    async def sync(self, key: str) -> float | None:
        """Reconcile ``key``; return seconds until it must be synced again, or None."""
        raise NotImplementedError

    async def prepare(self) -> None:
        """Called first in ``run()``, before waiting for the caches (caches chosen at run time)."""

    async def on_start(self) -> None:
        """Called once the caches synced, before the workers start."""

    async def background(self) -> None:
        """A task running beside the workers until the controller stops (default: none)."""

    def resync_period(self) -> float | None:
        """Seconds between full resyncs (every key of ``resync_keys()`` queued); None: never."""
        return None

    def resync_keys(self) -> Iterable[str]:
        """The keys a resync queues."""
        return ()

    def cache(self, resource: Resource, **selectors: str) -> Cache:
        """The shared cache of ``resource``; ``run()`` waits for it to sync."""
        cache = self.ctx.informers.cache(resource, **selectors)
        if cache not in self._caches:
            self._caches.append(cache)
        return cache

    def enqueue(self, obj: Obj | str, after: float = 0.0) -> None:
        """Queue an object's key (or a key), now or ``after`` seconds from now."""
        key = obj if isinstance(obj, str) else key_of(obj)
        if after > 0:
            self.queue.add_after(key, after)
        else:
            self.queue.add(key)

    def now(self) -> datetime.datetime:
        return self.ctx.clock.now()

    # -- running -------------------------------------------------------------------------------

    @property
    def caches(self) -> list[Cache]:
        return list(self._caches)

    async def process(self, key: str) -> None:
        """Sync one key with the framework's error handling and requeueing (one worker step)."""
        try:
            after = await self.sync(key)
        except ApiError as exc:
            level = logging.DEBUG if exc.code in (409, 404) else logging.WARNING
            hint = FORBIDDEN_HINT if exc.code == 403 and not self.ctx.clients else ""
            log.log(level, "%s: sync %s failed: %s%s", self.name, key, exc, hint)
            self.queue.add_rate_limited(key)
        except Exception:
            log.exception("%s: sync %s failed", self.name, key)
            self.queue.add_rate_limited(key)
        else:
            self.queue.forget(key)
            if after is not None:
                self.queue.add_after(key, after)

    async def _resync(self, period: float) -> None:
        while True:
            await asyncio.sleep(period)
            for key in self.resync_keys():
                self.queue.add(key)

    async def _worker(self) -> None:
        while True:
            key = await self.queue.get()
            if key is None:
                return
            try:
                await self.process(key)
            finally:
                self.queue.done(key)

    async def run(self, workers: int | None = None) -> None:
        """Wait for the caches, then process keys with ``workers`` workers until cancelled."""
        await self.prepare()
        await self.ctx.informers.wait_synced(self._caches)
        await self.on_start()
        count = max(1, workers if workers is not None else self.options.workers)
        tasks = [asyncio.create_task(self._worker(), name=f"{self.name}-{i}") for i in range(count)]
        tasks.append(asyncio.create_task(self.background(), name=f"{self.name}-background"))
        period = self.resync_period()
        if period:
            tasks.append(asyncio.create_task(self._resync(period), name=f"{self.name}-resync"))
        try:
            await asyncio.gather(*tasks)
        finally:
            self.queue.shutdown()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
