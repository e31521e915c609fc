"""The CRD controller inside the API server: what the established CustomResourceDefinitions serve.

``CRDController(app)`` follows the CRDs in the watch cache. On every change it recomputes, from
all CRDs at once (those whose names are already accepted first, then the oldest, so the first
CRD to claim a name keeps it):

- the served custom resource types (one ``ResourceType`` with a ``CustomStrategy`` per served
  version of every CRD whose names are accepted and that is not being deleted), handed to
  ``app.registry.set_custom`` (a ``DynamicRegistry``), and the watch cache prefix of each
  (``/registry/GROUP/PLURAL/``, as kube lays out custom objects) added to the dispatcher;
- each CRD's status: ``acceptedNames``, ``storedVersions`` and the conditions ``NamesAccepted``
  (False with the conflicting name when another CRD or a built-in resource has it),
  ``Established`` and, while deleting, ``Terminating``. Status is written after the registry
  change, so a client that sees ``Established=True`` can use the resource;
- deletion (as kube's CRD finalizer controller): a CRD marked for deletion stays served for
  reads, updates and deletes, but creates get 405 ``create not allowed while custom resource
  definition is terminating``; its objects are deleted - those with finalizers get a
  ``deletionTimestamp`` and go when their controllers remove the finalizers - and once none is
  left the ``customresourcecleanup.apiextensions.k8s.io`` finalizer is removed (and the CRD goes).

``load()`` runs before the watch cache starts (so stored custom objects are cached from the
start), ``start()`` after it; ``stop()`` at shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import orjson

from kapi.kinds.apiextensions import CLEANUP_FINALIZER, GROUP, storage_version
from kapi.kinds.custom import CustomStrategy
from kapi.resources import ResourceType
from kapi.rest.objects import encode_for_storage, now_rfc3339
from kapi.storage import ConflictError, KeyNotFoundError, KeyValue, Storage
from kapi.watchcache import WatcherOverflow, decode

if TYPE_CHECKING:
    from kapi.app import App

log = logging.getLogger("kapi.crds")

Obj = dict[str, Any]
CRD_PLURAL = "customresourcedefinitions"
CLEANUP_POLL = 0.5  # seconds between passes over a deleted CRD's remaining objects


def resource_types(crd: Obj) -> tuple[ResourceType, ...]:
    """The resource types a CRD serves (one per served version)."""
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    group, plural, kind = str(spec.get("group", "")), str(names.get("plural", "")), str(names.get("kind", ""))
    out = []
    for version in spec.get("versions") or []:
        if not version.get("served", True):
            continue
        subs = tuple(sorted(version.get("subresources") or {}))
        out.append(ResourceType(group, str(version.get("name")), kind, plural,
                                str(names.get("singular") or kind.lower()), spec.get("scope") != "Cluster",
                                short_names=tuple(names.get("shortNames") or ()),
                                categories=tuple(names.get("categories") or ()), subresources=subs,
                                storage_resource=f"{group}/{plural}", strategy=CustomStrategy.from_crd(crd, version)))
    return tuple(out)


def _condition(kind: str, ok: bool, reason: str, message: str, old: Iterable[Obj]) -> Obj:
    status = "True" if ok else "False"
    previous = next((c for c in old if c.get("type") == kind), None)
    since = previous.get("lastTransitionTime") if previous and previous.get("status") == status else None
    return {"type": kind, "status": status, "lastTransitionTime": since or now_rfc3339(), "reason": reason,
            "message": message}


class _Names:
    """The names claimed so far in each group (plural, singular, kind, short names)."""

    def __init__(self, builtin: Iterable[ResourceType]) -> None:
        self.taken: dict[tuple[str, str, str], str] = {}
        for rt in builtin:
            self.taken[(rt.group, "plural", rt.plural)] = "a built-in resource"
            self.taken[(rt.group, "kind", rt.kind)] = "a built-in resource"

    def conflict(self, crd_name: str, group: str, names: Obj) -> tuple[str, str] | None:
        """(reason, message) of the first name of ``names`` another owner has, or None."""
        wanted = [("plural", names.get("plural")), ("singular", names.get("singular")), ("kind", names.get("kind")),
                  *(("short", s) for s in names.get("shortNames") or ())]
        for field, value in wanted:
            if not value:
                continue
            for space in ("plural", "short") if field in ("plural", "singular", "short") else ("kind",):
                owner = self.taken.get((group, space, str(value)))
                if owner is not None and owner != crd_name:
                    reason = {"plural": "PluralConflict", "singular": "SingularConflict", "kind": "KindConflict",
                              "short": "ShortNamesConflict"}[field]
                    return reason, f'"{value}" is already in use by {owner}'
        return None

    def claim(self, crd_name: str, group: str, names: Obj) -> None:
        for field, space in (("plural", "plural"), ("singular", "plural"), ("kind", "kind")):
            if names.get(field):
                self.taken[(group, space, str(names[field]))] = crd_name
        for short in names.get("shortNames") or ():
            self.taken[(group, "short", str(short))] = crd_name


def desired_status(crd: Obj, conflict: tuple[str, str] | None) -> Obj:
    """The status the controller wants for ``crd``, given its name conflict (None when accepted)."""
    old = dict(crd.get("status") or {})
    conditions = old.get("conditions") or []
    names = (crd.get("spec") or {}).get("names") or {}
    terminating = bool((crd.get("metadata") or {}).get("deletionTimestamp"))
    accepted = conflict is None
    out = [_condition("NamesAccepted", accepted, *(conflict or ("NoConflicts", "no conflicts found")), conditions)]
    if accepted:
        out.append(_condition("Established", True, "InitialNamesAccepted", "the initial names have been accepted",
                              conditions))
    else:
        out.append(_condition("Established", False, "NotAccepted", "not all names are accepted", conditions))
    if terminating:
        out.append(_condition("Terminating", True, "InstanceDeletionInProgress",
                              "CustomResource deletion is in progress", conditions))
    stored = list(old.get("storedVersions") or [])
    version = storage_version(crd)
    if accepted and version and version not in stored:
        stored.append(version)
    accepted_names = dict(names) if accepted else (old.get("acceptedNames") or {"plural": "", "kind": ""})
    return {**old, "conditions": out, "acceptedNames": accepted_names, "storedVersions": stored}


class CRDController:
    """Keeps ``app.registry`` and the watch cache in step with the CRDs (see the module docstring)."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.rt = app.registry.lookup(GROUP, "v1", CRD_PLURAL)
        self._types: dict[str, tuple[tuple[bytes, bool], tuple[ResourceType, ...]]] = {}
        self._task: asyncio.Task[None] | None = None
        self._cleanups: dict[str, asyncio.Task[None]] = {}

    @property
    def prefix(self) -> str:
        assert self.rt is not None
        return self.rt.key_prefix(self.app.root)

    async def load(self) -> None:
        """Serve the stored CRDs' resources (before the watch cache starts)."""
        if self.rt is None:
            return
        page = await self.app.storage.list(self.prefix)
        self._plan([decode(kv).obj for kv in page.items])

    def start(self) -> None:
        """Follow the CRDs in the watch cache (after it started)."""
        if self.rt is not None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="kapi-crds")

    async def stop(self) -> None:
        for task in [*self._cleanups.values(), *([self._task] if self._task else [])]:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._cleanups.clear()
        self._task = None

    # -- reconciling -------------------------------------------------------------------------------
    def _types_of(self, crd: Obj) -> tuple[ResourceType, ...]:
        name = crd["metadata"]["name"]
        key = (orjson.dumps(crd.get("spec"), option=orjson.OPT_SORT_KEYS),
               bool(crd["metadata"].get("deletionTimestamp")))  # terminating types refuse creates
        cached = self._types.get(name)
        if cached is None or cached[0] != key:
            cached = self._types[name] = (key, resource_types(crd))
        return cached[1]

    def _plan(self, crds: list[Obj]) -> list[tuple[Obj, Obj]]:
        """Set the served custom types from ``crds``; returns (crd, wanted status) pairs."""
        crds = sorted(crds, key=_priority)
        names = _Names(rt for rt in self.app.registry if not isinstance(rt.strategy, CustomStrategy))
        served: list[ResourceType] = []
        plan = []
        for crd in crds:
            spec = crd.get("spec") or {}
            group, crd_names = str(spec.get("group", "")), spec.get("names") or {}
            conflict = names.conflict(crd["metadata"]["name"], group, crd_names)
            if conflict is None:
                names.claim(crd["metadata"]["name"], group, crd_names)
                served.extend(self._types_of(crd))  # while terminating: served, but creates are refused
            plan.append((crd, desired_status(crd, conflict)))
        live = {c["metadata"]["name"] for c in crds}
        for name in [n for n in self._types if n not in live]:
            del self._types[name]
        set_custom = getattr(self.app.registry, "set_custom", None)
        if set_custom is not None:
            set_custom(served)
        return plan

    async def reconcile(self) -> None:
        """One pass over every CRD in the watch cache."""
        cache = self.app.cache.route(self.prefix)
        if cache is None:
            return
        plan = self._plan([c.obj for c in cache.objects.values()])
        for rt in getattr(self.app.registry, "custom", ()):
            await self.app.cache.add_prefix(rt.key_prefix(self.app.root))
        for crd, status in plan:
            if not _same_status(crd.get("status") or {}, status):
                await self._write_status(crd["metadata"]["name"], status)
            if crd["metadata"].get("deletionTimestamp") and CLEANUP_FINALIZER in (crd["metadata"].get("finalizers")
                                                                                  or ()):
                self._start_cleanup(crd)

    async def _write_status(self, name: str, status: Obj) -> None:
        assert self.rt is not None
        key = self.rt.key(self.app.root, "", name)
        try:
            kv = await self.app.storage.get(key)
        except KeyNotFoundError:
            return
        obj = decode(kv).obj
        obj["status"] = status
        with contextlib.suppress(ConflictError, KeyNotFoundError):  # a newer version is reconciled next
            await self.app.storage.update(key, encode_for_storage(obj), expected_revision=kv.revision)

    def _start_cleanup(self, crd: Obj) -> None:
        name = crd["metadata"]["name"]
        if name in self._cleanups and not self._cleanups[name].done():
            return
        spec = crd.get("spec") or {}
        prefix = f"{self.app.root}/{spec.get('group', '')}/{(spec.get('names') or {}).get('plural', '')}/"
        self._cleanups[name] = asyncio.get_running_loop().create_task(self._cleanup(name, prefix),
                                                                      name=f"kapi-crd-cleanup-{name}")

    async def _cleanup(self, name: str, prefix: str) -> None:
        """Delete every object of a deleted CRD (those with finalizers are marked for deletion and
        go when their finalizers are removed), wait until none is left, then drop the cleanup
        finalizer."""
        assert self.rt is not None
        storage = self.app.storage
        try:
            while True:
                page = await storage.list(prefix)
                if not page.items:
                    break
                for kv in page.items:
                    await _delete_custom_object(storage, kv)
                await asyncio.sleep(CLEANUP_POLL)
            key = self.rt.key(self.app.root, "", name)
            while True:
                try:
                    kv = await storage.get(key)
                except KeyNotFoundError:
                    return
                obj = decode(kv).obj
                meta = obj["metadata"]
                meta["finalizers"] = [f for f in meta.get("finalizers") or () if f != CLEANUP_FINALIZER]
                try:
                    if not meta["finalizers"]:
                        await storage.delete(key, expected_revision=kv.revision)
                    else:
                        await storage.update(key, encode_for_storage(obj), expected_revision=kv.revision)
                    return
                except ConflictError:
                    continue
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("deleting the objects of CRD %s failed", name)

    async def _run(self) -> None:
        dispatcher = self.app.cache
        while True:
            cache = dispatcher.route(self.prefix)
            if cache is None:
                return
            subscribed = dispatcher.subscribe(cache, self.prefix, dispatcher.revision)
            if subscribed is None:
                await asyncio.sleep(0.1)
                continue
            _replay, watcher = subscribed
            try:
                await self._safe_reconcile()
                async for _event in watcher.events():
                    await self._safe_reconcile()
            except WatcherOverflow:
                continue
            finally:
                dispatcher.unsubscribe(cache, watcher)

    async def _safe_reconcile(self) -> None:
        try:
            await self.reconcile()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("reconciling CRDs failed")


async def _delete_custom_object(storage: Storage, kv: KeyValue) -> None:
    """Delete one object of a deleted CRD as a DELETE request would: one with finalizers gets a
    ``deletionTimestamp`` (once) and is left to its finalizers' owners; the others are removed."""
    obj = decode(kv).obj
    meta = obj.setdefault("metadata", {})
    with contextlib.suppress(KeyNotFoundError, ConflictError):  # changed meanwhile: the next pass sees it
        if not meta.get("finalizers"):
            await storage.delete(kv.key, expected_revision=kv.revision)
        elif not meta.get("deletionTimestamp"):
            meta["deletionTimestamp"] = now_rfc3339()
            meta["deletionGracePeriodSeconds"] = 0
            meta.pop("resourceVersion", None)
            await storage.update(kv.key, encode_for_storage(obj), expected_revision=kv.revision)


def _priority(crd: Obj) -> tuple[bool, str, str]:
    """Who keeps a contested name: CRDs whose names are accepted already, then the oldest."""
    conditions = (crd.get("status") or {}).get("conditions") or []
    accepted = any(c.get("type") == "NamesAccepted" and c.get("status") == "True" for c in conditions)
    return (not accepted, crd["metadata"].get("creationTimestamp") or "", crd["metadata"]["name"])


def _same_status(old: Obj, new: Obj) -> bool:
    """True when only condition timestamps could differ."""
    def strip(status: Obj) -> Obj:
        return {**status, "conditions": [{k: v for k, v in c.items() if k != "lastTransitionTime"}
                                         for c in status.get("conditions") or []]}
    return strip(old) == strip(new)
