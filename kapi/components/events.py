"""Recording core/v1 Events about objects, without slowing the component down.

``EventRecorder.record(obj, type, reason, message)`` returns at once: the Event is queued and
posted by background workers (a full queue drops the event, as client-go's broadcaster does under
pressure). Events are named like client-go names them (``OBJECT.HEX_NANOSECONDS``), carry
``involvedObject`` (kind, namespace, name, uid, apiVersion, resourceVersion) so ``kubectl
describe`` finds them, and ``source.component`` / ``reportingComponent`` naming the component.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping
from typing import Any

from kapi.client import ApiError, Client, path_for
from kapi.timestamps import now_rfc3339

log = logging.getLogger("kapi.events")

NORMAL = "Normal"
WARNING = "Warning"




def make_event(obj: Mapping[str, Any], type_: str, reason: str, message: str, *, component: str,
               host: str = "", instance: str = "") -> dict[str, Any]:
    """The Event object for ``obj`` (any API object with kind, apiVersion and metadata)."""
    meta = obj.get("metadata") or {}
    stamp = now_rfc3339()
    namespace = meta.get("namespace") or "default"
    source: dict[str, str] = {"component": component}
    if host:
        source["host"] = host
    return {
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"name": f"{meta.get('name', 'unknown')}.{time.time_ns():x}", "namespace": namespace},
        "involvedObject": {"kind": obj.get("kind") or "Pod", "namespace": meta.get("namespace") or "",
                           "name": meta.get("name") or "", "uid": meta.get("uid") or "",
                           "apiVersion": obj.get("apiVersion") or "v1",
                           "resourceVersion": meta.get("resourceVersion") or ""},
        "reason": reason, "message": message, "type": type_, "source": source, "count": 1,
        "firstTimestamp": stamp, "lastTimestamp": stamp,
        "reportingComponent": component, "reportingInstance": instance or host,
    }


class EventRecorder:
    """Posts Events for one component through ``client`` with ``workers`` background tasks.

    Use ``start()`` / ``await stop()`` (``stop`` sends what is queued, up to ``drain`` seconds).
    """

    def __init__(self, client: Client, component: str, *, host: str = "", instance: str = "",
                 workers: int = 4, queue_size: int = 10000) -> None:
        self.client = client
        self.component = component
        self.host = host
        self.instance = instance
        self.workers = workers
        self._queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(queue_size)
        self._tasks: list[asyncio.Task[None]] = []

    def record(self, obj: Mapping[str, Any], type_: str, reason: str, message: str) -> None:
        """Queue an Event about ``obj`` (``type_`` is ``Normal`` or ``Warning``)."""
        if not self._tasks:
            self.start()
        event = make_event(obj, type_, reason, message, component=self.component, host=self.host,
                           instance=self.instance)
        try:
            self._queue.put_nowait(event)
        except asyncio.QueueFull:
            log.warning("event queue full, dropping %s %s", reason, event["metadata"]["name"])

    def start(self) -> None:
        """Start the posting workers (``record`` does it on first use)."""
        if not self._tasks:
            self._tasks = [asyncio.create_task(self._work(), name=f"events-{i}") for i in range(self.workers)]

    async def _work(self) -> None:
        while True:
            event = await self._queue.get()
            try:
                await self.client.create(path_for("", "v1", "events", event["metadata"]["namespace"]), event)
            except ApiError as exc:
                log.info("event %s not recorded: %s", event["reason"], exc)
            finally:
                self._queue.task_done()

    async def stop(self, drain: float = 2.0) -> None:
        """Send what is queued (for at most ``drain`` seconds), then stop the workers."""
        if self._tasks:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._queue.join(), drain)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
