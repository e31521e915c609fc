"""The scheduler's control loop: informers feed the cache and the queue; one loop decides;
bindings and status reports go out concurrently.

Pods are watched once (every non-terminal pod: bound ones are the cache's accounting, unbound
ones this scheduler is responsible for - ``spec.schedulerName`` - are queued); nodes are watched
too. A decision assumes the pod on its node at once, then ``POST pods/NAME/binding`` runs in the
background (a failed binding forgets the assumption and retries after a backoff). A pod no node
can take gets ``PodScheduled=False`` (reason ``Unschedulable``, kube-scheduler's message) through
a status patch plus a ``FailedScheduling`` Event, and waits in the queue for a cluster change.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from typing import Any

from kapi.client import ApiError, Client, Informer, path_for
from kapi.components.events import NORMAL, WARNING, EventRecorder
from kapi.components.scheduler.algorithm import find_node
from kapi.components.scheduler.cache import SchedulerCache, pod_key
from kapi.components.scheduler.queue import SchedulingQueue
from kapi.components.scheduler.resources import PodInfo
from kapi.timestamps import now_rfc3339

log = logging.getLogger("kapi.scheduler")

Obj = dict[str, Any]
DEFAULT_SCHEDULER = "default-scheduler"
NON_TERMINAL = "status.phase!=Succeeded,status.phase!=Failed"


def _node_relevant(node: Obj) -> tuple[Any, ...]:
    """What in a Node matters to scheduling (heartbeats and conditions do not)."""
    status = node.get("status") or {}
    return ((node.get("metadata") or {}).get("labels"), node.get("spec"), status.get("allocatable"),
            status.get("capacity"))


class Scheduler:
    """Schedules the pods naming ``scheduler_name`` through ``client``.

    ``run()`` starts the informers and, once they synced, the scheduling loop; it returns only when
    cancelled. Counters: ``scheduled``, ``unschedulable_attempts``, ``bind_errors``.
    """

    def __init__(self, client: Client, scheduler_name: str = DEFAULT_SCHEDULER, *, identity: str = "",
                 bind_concurrency: int = 64, rng: random.Random | None = None) -> None:
        self.client = client
        self.scheduler_name = scheduler_name
        self.cache = SchedulerCache()
        self.queue = SchedulingQueue()
        self.rng = rng or random.Random()
        self.events = EventRecorder(client, scheduler_name, instance=identity)
        self.pods = Informer(client, path_for("", "v1", "pods"), field_selector=NON_TERMINAL)
        self.nodes = Informer(client, path_for("", "v1", "nodes"))
        self.pods.add_handler(self._pod_added, self._pod_updated, self._pod_deleted)
        self.nodes.add_handler(self._node_added, self._node_updated, self._node_deleted)
        self._binds = asyncio.Semaphore(bind_concurrency)
        self._background: set[asyncio.Task[Any]] = set()
        self.scheduled = 0
        self.unschedulable_attempts = 0
        self.bind_errors = 0

    # -- informer handlers -------------------------------------------------------------------------

    def _responsible(self, pod: Obj) -> bool:
        spec = pod.get("spec") or {}
        return (not spec.get("nodeName") and (spec.get("schedulerName") or DEFAULT_SCHEDULER) == self.scheduler_name
                and not (pod.get("metadata") or {}).get("deletionTimestamp") and not spec.get("schedulingGates"))

    def _pod_added(self, pod: Obj) -> None:
        self._pod_updated(None, pod)

    def _pod_updated(self, old: Obj | None, pod: Obj) -> None:
        key = pod_key(pod)
        if (pod.get("spec") or {}).get("nodeName"):
            self.queue.delete(key)
            self.cache.update_pod(pod)
            return
        if self._responsible(pod):
            self.queue.add(pod)
        else:
            self.queue.delete(key)

    def _pod_deleted(self, pod: Obj) -> None:
        key = pod_key(pod)
        self.queue.delete(key)
        if self.cache.node_of(key) is not None:
            self.cache.remove_pod(key)
            self.queue.move_all_to_active()

    def _node_added(self, node: Obj) -> None:
        self.cache.set_node(node)
        self.queue.move_all_to_active()

    def _node_updated(self, old: Obj, node: Obj) -> None:
        self.cache.set_node(node)
        if _node_relevant(old) != _node_relevant(node):
            self.queue.move_all_to_active()

    def _node_deleted(self, node: Obj) -> None:
        self.cache.remove_node(str((node.get("metadata") or {}).get("name") or ""))

    # -- scheduling --------------------------------------------------------------------------------

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def schedule_one(self, pod: Obj) -> str:
        """Decide for one pod now (synchronously), start its binding or report it unschedulable.
        :returns: the chosen node name, or ``""``."""
        info = PodInfo.of(pod)
        decision = find_node(info, self.cache, self.rng)
        if decision.node:
            self.cache.assume(info, decision.node)
            self._spawn(self._bind(pod, decision.node))
            return decision.node
        self.unschedulable_attempts += 1
        self.queue.park(pod)
        self._spawn(self._report_unschedulable(pod, decision.message))
        return ""

    async def _bind(self, pod: Obj, node: str) -> None:
        meta = pod["metadata"]
        binding = {"apiVersion": "v1", "kind": "Binding",
                   "metadata": {"name": meta["name"], "namespace": meta.get("namespace", ""), "uid": meta.get("uid")},
                   "target": {"apiVersion": "v1", "kind": "Node", "name": node}}
        async with self._binds:
            try:
                await self.client.create(path_for("", "v1", "pods", meta.get("namespace", ""), meta["name"],
                                                  "binding"), binding)
            except ApiError as exc:
                self.bind_errors += 1
                self.cache.forget(pod_key(pod))
                if exc.code in (404, 409):  # gone, or already bound (the informer will tell)
                    log.info("binding %s to %s: %s", pod_key(pod), node, exc.message)
                    return
                log.warning("binding %s to %s failed: %s", pod_key(pod), node, exc)
                self.queue.retry(pod)
                return
        self.scheduled += 1
        self.events.record(pod, NORMAL, "Scheduled",
                           f"Successfully assigned {meta.get('namespace', '')}/{meta['name']} to {node}")

    async def _report_unschedulable(self, pod: Obj, message: str) -> None:
        meta = pod["metadata"]
        current: Obj = next((c for c in (pod.get("status") or {}).get("conditions") or []
                             if c.get("type") == "PodScheduled"), {})
        if current.get("status") == "False" and current.get("message") == message:
            return  # already reported; do not write again on every retry
        log.info("pod %s is unschedulable: %s", pod_key(pod), message)
        self.events.record(pod, WARNING, "FailedScheduling", message)
        condition = {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": message,
                     "lastProbeTime": None, "lastTransitionTime": now_rfc3339()}
        try:
            await self.client.patch(path_for("", "v1", "pods", meta.get("namespace", ""), meta["name"], "status"),
                                    {"status": {"conditions": [condition]}}, type="strategic")
        except ApiError as exc:
            log.info("could not report %s unschedulable: %s", pod_key(pod), exc)

    async def loop(self) -> None:
        """Pop and decide until cancelled (the informers must have synced)."""
        last_flush = time.monotonic()
        while True:
            pod = await self.queue.pop()
            key = pod_key(pod)
            if self.queue.pods.get(key) is not pod or not self._responsible(pod):
                continue
            try:
                self.schedule_one(pod)
            except Exception:
                log.exception("scheduling %s failed", key)
                self.queue.retry(pod)
            if time.monotonic() - last_flush > 5:
                self.queue.flush_stale()
                last_flush = time.monotonic()
            await asyncio.sleep(0)  # let informer events in between decisions

    async def start_informers(self) -> None:
        """Start both informers and wait until they listed."""
        self.nodes.start()
        self.pods.start()
        await asyncio.gather(self.nodes.wait_synced(), self.pods.wait_synced())

    async def _flusher(self) -> None:
        while True:
            await asyncio.sleep(self.queue.max_parked / 4)
            self.queue.flush_stale()

    async def run(self) -> None:
        """Informers, then the scheduling loop, until cancelled."""
        await self.start_informers()
        self._spawn(self._flusher())
        try:
            await self.loop()
        finally:
            await self.close()

    async def close(self) -> None:
        """Stop informers and background work (queued events are sent first, briefly)."""
        self.pods.stop()
        self.nodes.stop()
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        await self.events.stop()
