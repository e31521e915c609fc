"""Small in-server controllers: follow one resource (list, then watch) and react to changes.

``Informer`` lists a storage prefix, hands every existing object to the handler as ADDED, then
follows the storage watch from the list's revision; when history was compacted it relists (and
the handler sees the current objects again, as ADDED), when the store fails it retries after a
pause. Handlers must be idempotent (kube's controllers are level-triggered too). It reads the
store directly rather than the watch cache, so it can start in ``kapi_startup`` (which runs before
the cache is filled).

``Background`` holds a plugin's tasks in ``app.plugin_state(plugin)`` and cancels them at
shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from kapi.admissionkit.objects import resource_type
from kapi.storage import CompactedError, EventType, KeyValue

if TYPE_CHECKING:
    from kapi.app import App

log = logging.getLogger("kapi.admissionkit")

Obj = dict[str, Any]
RETRY_PAUSE = 0.5


@dataclass(frozen=True)
class Change:
    """One observed change. ``obj`` is the object after it (for DELETED: its last state); ``old``
    the object before (None for ADDED and for objects seen in a (re)list)."""

    type: EventType
    key: str
    obj: Obj
    old: Obj | None


Handler = Callable[[Change], "Awaitable[None] | None"]


def _decode(kv: KeyValue) -> Obj:
    obj: Obj = orjson.loads(kv.value) if kv.value else {}
    obj.setdefault("metadata", {})["resourceVersion"] = str(kv.revision)
    return obj


class Informer:
    """List-then-watch of one resource, calling ``handler`` for each change (in order)."""

    def __init__(self, app: App, group: str, version: str, plural: str, handler: Handler) -> None:
        self.app = app
        self.prefix = resource_type(app, group, version, plural).key_prefix(app.root)
        self.handler = handler
        self.synced = asyncio.Event()

    async def _handle(self, change: Change) -> None:
        try:
            result = self.handler(change)
            if result is not None:
                await result
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("handler failed for %s %s", change.type.value, change.key)

    async def _list(self) -> int:
        page = await self.app.storage.list(self.prefix)
        for kv in page.items:
            await self._handle(Change(EventType.ADDED, kv.key, _decode(kv), None))
        self.synced.set()
        return page.revision

    async def run(self) -> None:
        """Run until cancelled."""
        while True:
            try:
                revision = await self._list()
                async for event in self.app.storage.watch(self.prefix, revision=revision):
                    old = _decode(event.prev) if event.prev is not None else None
                    await self._handle(Change(event.type, event.kv.key, _decode(event.kv), old))
                return
            except asyncio.CancelledError:
                raise
            except CompactedError:
                log.info("watch on %s fell behind a compaction; relisting", self.prefix)
            except Exception:
                log.exception("watch on %s failed; retrying", self.prefix)
                await asyncio.sleep(RETRY_PAUSE)


class Background:
    """The background tasks of one plugin, kept in ``app.plugin_state(plugin)["tasks"]``."""

    def __init__(self, app: App, plugin: str) -> None:
        self.state = app.plugin_state(plugin)

    def spawn(self, coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self.state.setdefault("tasks", []).append(task)
        return task

    async def stop(self) -> None:
        """Cancel and await every task (errors are swallowed: this runs at shutdown)."""
        tasks: list[asyncio.Task[None]] = self.state.pop("tasks", [])
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
