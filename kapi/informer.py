"""Informer: a local, always-current copy of one collection, with change handlers.

client-go's reflector + store + handler in one small class. ``run()`` lists the collection,
fills ``store`` (key ``namespace/name``, or ``name`` when cluster-scoped), sets ``has_synced``,
then watches from the list's resourceVersion. After a dropped connection or a watch the server
ended, it resumes from the last resourceVersion seen (bookmarks included); on 410 Expired it
relists and reports the difference to the handlers (adds, updates, deletes), so a handler sees
every object that changed even across a relist. Handlers may be sync or async; a handler that
raises is logged and never stops the informer. Handlers run in the informer's task, one at a
time, in event order, with the store already updated.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import random
from collections.abc import Awaitable, Callable
from typing import Any

from kapi.client import ApiError, Client, object_key

log = logging.getLogger("kapi.informer")

Obj = dict[str, Any]
AddHandler = Callable[[Obj], Awaitable[None] | None]
UpdateHandler = Callable[[Obj, Obj], Awaitable[None] | None]
DeleteHandler = Callable[[Obj], Awaitable[None] | None]

MIN_BACKOFF = 0.2
MAX_BACKOFF = 5.0


class Informer:
    """List+watch of ``path`` (a collection path, see ``kapi.client.path_for``) into ``store``.

    :param field_selector: / :param label_selector: restrict the collection, as in a list call.
    :param page_size: list in pages of this many objects (0: one request).
    :param watch_timeout: seconds each watch lasts before it is renewed (randomised up to 2x).
    """

    def __init__(self, client: Client, path: str, *, field_selector: str = "", label_selector: str = "",
                 page_size: int = 500, watch_timeout: int = 300) -> None:
        self.client = client
        self.path = path
        self.field_selector = field_selector
        self.label_selector = label_selector
        self.page_size = page_size
        self.watch_timeout = watch_timeout
        self.store: dict[str, Obj] = {}
        self.resource_version = ""
        self._adds: list[AddHandler] = []
        self._updates: list[UpdateHandler] = []
        self._deletes: list[DeleteHandler] = []
        self._synced = asyncio.Event()
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    # -- handlers ------------------------------------------------------------------------------

    def add_handler(self, on_add: AddHandler | None = None, on_update: UpdateHandler | None = None,
                    on_delete: DeleteHandler | None = None) -> None:
        """Register callbacks: ``on_add(obj)``, ``on_update(old, new)``, ``on_delete(obj)`` (the last
        state known). Register before ``run()``: objects already listed are not replayed."""
        if on_add is not None:
            self._adds.append(on_add)
        if on_update is not None:
            self._updates.append(on_update)
        if on_delete is not None:
            self._deletes.append(on_delete)

    def on_add(self, handler: AddHandler) -> AddHandler:
        """Decorator form of ``add_handler(on_add=...)``."""
        self._adds.append(handler)
        return handler

    def on_update(self, handler: UpdateHandler) -> UpdateHandler:
        """Decorator form of ``add_handler(on_update=...)``."""
        self._updates.append(handler)
        return handler

    def on_delete(self, handler: DeleteHandler) -> DeleteHandler:
        """Decorator form of ``add_handler(on_delete=...)``."""
        self._deletes.append(handler)
        return handler

    async def _call(self, handlers: list[Any], *args: Obj) -> None:
        for handler in handlers:
            try:
                result = handler(*args)
                if inspect.isawaitable(result):
                    await result
            except Exception:
                log.exception("informer %s: handler %r failed", self.path, handler)

    # -- state ---------------------------------------------------------------------------------

    @property
    def has_synced(self) -> bool:
        """True once the first list is in ``store`` (and stays true)."""
        return self._synced.is_set()

    async def wait_synced(self, timeout: float | None = None) -> bool:
        """Wait for the first list; False on timeout."""
        try:
            await asyncio.wait_for(self._synced.wait(), timeout)
        except TimeoutError:
            return False
        return True

    def get(self, key: str) -> Obj | None:
        """The stored object with key ``namespace/name`` (or ``name``), or None."""
        return self.store.get(key)

    def items(self) -> list[Obj]:
        """A snapshot of every stored object."""
        return list(self.store.values())

    # -- list + watch --------------------------------------------------------------------------

    def _selectors(self) -> dict[str, str]:
        return {"fieldSelector": self.field_selector, "labelSelector": self.label_selector}

    async def _list(self) -> None:
        """List every page, then replace the store, telling handlers what changed."""
        items: list[Obj] = []
        token = ""
        while True:
            page = await self.client.list(self.path, limit=self.page_size or None, **{"continue": token or None},
                                          **self._selectors())
            items.extend(page.get("items") or [])
            token = (page.get("metadata") or {}).get("continue") or ""
            if not token:
                break
        fresh = {object_key(o): o for o in items}
        old = self.store
        self.store = fresh
        self.resource_version = str((page.get("metadata") or {}).get("resourceVersion") or "")
        for key, obj in fresh.items():
            before = old.get(key)
            if before is None:
                await self._call(self._adds, obj)
            elif _rv(before) != _rv(obj):
                await self._call(self._updates, before, obj)
        for key, obj in old.items():
            if key not in fresh:
                await self._call(self._deletes, obj)
        self._synced.set()

    async def _apply(self, event: Obj) -> None:
        kind = event.get("type")
        obj = event.get("object") or {}
        rv = _rv(obj)
        if rv:
            self.resource_version = rv
        if kind == "BOOKMARK":
            return
        key = object_key(obj)
        if kind == "DELETED":
            self.store.pop(key, None)
            await self._call(self._deletes, obj)
            return
        before = self.store.get(key)
        self.store[key] = obj
        if before is None:
            await self._call(self._adds, obj)
        else:
            await self._call(self._updates, before, obj)

    async def _watch(self) -> None:
        timeout = int(self.watch_timeout * (1 + random.random()))
        async for event in self.client.watch(self.path, self.resource_version, timeoutSeconds=timeout,
                                             **self._selectors()):
            await self._apply(event)
            if self._stopping.is_set():
                return

    async def run(self) -> None:
        """List, then watch until ``stop()`` (or cancellation). Never raises for API or
        connection errors: it retries with backoff (0.2 s doubling to 5 s)."""
        backoff = MIN_BACKOFF
        need_list = True
        while not self._stopping.is_set():
            try:
                if need_list:
                    await self._list()
                    need_list = False
                await self._watch()
                backoff = MIN_BACKOFF
            except ApiError as exc:
                if exc.gone:
                    log.info("informer %s: %s, relisting", self.path, exc.message)
                    need_list = True
                    continue
                log.warning("informer %s: %s; retrying in %.1fs", self.path, exc, backoff)
                await self._sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF)

    async def _sleep(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self._stopping.wait(), seconds)
        except TimeoutError:
            pass

    def start(self) -> asyncio.Task[None]:
        """Run in a background task (kept on the informer); returns it."""
        if self._task is None or self._task.done():
            self._stopping.clear()
            self._task = asyncio.create_task(self.run(), name=f"informer {self.path}")
        return self._task

    def stop(self) -> None:
        """Stop: the current watch is cancelled when started with ``start()``, else ``run()``
        returns after its next event or retry."""
        self._stopping.set()
        if self._task is not None and not self._task.done():
            self._task.cancel()


def _rv(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion") or "")
