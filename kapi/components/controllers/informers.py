"""Shared informers with secondary indexes (client-go's ``SharedInformerFactory`` + ``Indexer``).

Every controller asks ``SharedInformers.cache(resource, ...)`` for what it reads; one
``kapi.informer.Informer`` (list+watch) serves all controllers asking for the same resource and
selectors. A ``Cache`` wraps it with:

* ``get(key)`` / ``items()`` over the informer's store (keys ``namespace/name`` or ``name``);
* named secondary indexes (``add_index(name, fn)`` where ``fn(obj)`` returns index values) kept
  current by the cache's own handlers, which run before any controller handler; built-ins are
  ``namespace`` and ``controller`` (the controller owner's uid);
* ``add_handler(on_add, on_update, on_delete)``, passed to the informer.

The informer is created by ``factory(client, path, field_selector, label_selector)``: ``Informer``
in production, an in-memory fake in unit tests (anything with ``store``, ``add_handler``,
``start``, ``stop``, ``wait_synced`` and ``has_synced``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

from kapi.client import Client, object_key
from kapi.components.controllers.gvr import Resource
from kapi.components.controllers.objects import controller_uid, namespace_of

Obj = dict[str, Any]
IndexFunc = Callable[[Obj], Iterable[str]]


class InformerLike(Protocol):
    """What ``Cache`` needs of an informer (``kapi.informer.Informer`` has it)."""

    @property
    def store(self) -> Mapping[str, Obj]: ...

    @property
    def has_synced(self) -> bool: ...

    def add_handler(self, on_add: Any = None, on_update: Any = None, on_delete: Any = None) -> None: ...

    def start(self) -> Any: ...

    def stop(self) -> None: ...

    async def wait_synced(self, timeout: float | None = None) -> bool: ...


InformerFactory = Callable[[Client, str, str, str], InformerLike]


def default_factory(client: Client, path: str, field_selector: str, label_selector: str) -> InformerLike:
    """A real list+watch ``Informer``."""
    from kapi.informer import Informer

    return Informer(client, path, field_selector=field_selector, label_selector=label_selector)


def _namespace_index(obj: Obj) -> Iterable[str]:
    return (namespace_of(obj),)


def _controller_index(obj: Obj) -> Iterable[str]:
    uid = controller_uid(obj)
    return (uid,) if uid else ()


class Cache:
    """One shared informer of a resource, with indexes. See the module docstring."""

    def __init__(self, resource: Resource, informer: InformerLike) -> None:
        self.resource = resource
        self.informer = informer
        self._index_funcs: dict[str, IndexFunc] = {}
        self._indexes: dict[str, dict[str, set[str]]] = {}
        informer.add_handler(self._on_add, self._on_update, self._on_delete)
        self.add_index("namespace", _namespace_index)
        self.add_index("controller", _controller_index)

    # -- reads ---------------------------------------------------------------------------------

    @property
    def has_synced(self) -> bool:
        return bool(self.informer.has_synced)

    def get(self, key: str) -> Obj | None:
        """The object stored under ``namespace/name`` (or ``name``), or None."""
        return self.informer.store.get(key)

    def items(self) -> list[Obj]:
        """A snapshot of every object."""
        return list(self.informer.store.values())

    def keys(self) -> list[str]:
        return list(self.informer.store)

    def by_index(self, index: str, value: str) -> list[Obj]:
        """Objects whose index function returned ``value`` (``by_index("namespace", "default")``)."""
        keys = self._indexes.get(index, {}).get(value)
        if not keys:
            return []
        store = self.informer.store
        return [obj for obj in (store.get(k) for k in list(keys)) if obj is not None]

    # -- indexes and handlers ------------------------------------------------------------------

    def add_index(self, name: str, fn: IndexFunc) -> None:
        """Maintain index ``name``; a no-op when it exists. Built from the store if it has items."""
        if name in self._index_funcs:
            return
        self._index_funcs[name] = fn
        table: dict[str, set[str]] = {}
        self._indexes[name] = table
        for key, obj in self.informer.store.items():
            for value in fn(obj):
                table.setdefault(value, set()).add(key)

    def add_handler(self, on_add: Callable[[Obj], Any] | None = None,
                    on_update: Callable[[Obj, Obj], Any] | None = None,
                    on_delete: Callable[[Obj], Any] | None = None) -> None:
        """Register change handlers (they run after the store and indexes are updated)."""
        self.informer.add_handler(on_add, on_update, on_delete)

    def _index(self, key: str, obj: Obj, add: bool) -> None:
        for name, fn in self._index_funcs.items():
            table = self._indexes[name]
            for value in fn(obj):
                if add:
                    table.setdefault(value, set()).add(key)
                else:
                    keys = table.get(value)
                    if keys is not None:
                        keys.discard(key)
                        if not keys:
                            del table[value]

    def _on_add(self, obj: Obj) -> None:
        self._index(object_key(obj), obj, True)

    def _on_update(self, old: Obj, new: Obj) -> None:
        key = object_key(new)
        self._index(key, old, False)
        self._index(key, new, True)

    def _on_delete(self, obj: Obj) -> None:
        self._index(object_key(obj), obj, False)


class SharedInformers:
    """The caches of one controller manager: one informer per (resource, namespace, selectors)."""

    def __init__(self, client: Client, factory: InformerFactory = default_factory) -> None:
        self.client = client
        self.factory = factory
        self._caches: dict[tuple[Resource, str, str, str], Cache] = {}
        self._tasks: list[asyncio.Task[Any]] = []
        self._started = False

    def cache(self, resource: Resource, *, namespace: str = "", field_selector: str = "",
              label_selector: str = "") -> Cache:
        """The shared cache of ``resource`` (started at once when the informers already run)."""
        key = (resource, namespace, field_selector, label_selector)
        cache = self._caches.get(key)
        if cache is None:
            informer = self.factory(self.client, resource.path(namespace), field_selector, label_selector)
            cache = Cache(resource, informer)
            self._caches[key] = cache
            if self._started:
                self._keep(informer.start())
        return cache

    def caches(self) -> list[Cache]:
        return list(self._caches.values())

    def start(self) -> None:
        """Start every informer (later ones start when created)."""
        self._started = True
        for cache in self._caches.values():
            self._keep(cache.informer.start())

    def _keep(self, task: Any) -> None:
        if isinstance(task, asyncio.Task):
            self._tasks.append(task)

    async def wait_synced(self, caches: Iterable[Cache] | None = None, timeout: float | None = None) -> bool:
        """Wait until ``caches`` (default: all) listed once; False on timeout."""
        chosen = list(caches) if caches is not None else self.caches()
        results = await asyncio.gather(*(c.informer.wait_synced(timeout) for c in chosen))
        return all(results)

    async def stop(self) -> None:
        """Stop every informer and wait for their tasks to end."""
        self._started = False
        for cache in self._caches.values():
            cache.informer.stop()
        tasks, self._tasks = self._tasks, []
        await asyncio.gather(*tasks, return_exceptions=True)
