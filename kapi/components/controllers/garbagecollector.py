"""The garbage collector: dependents follow their owners (``metadata.ownerReferences``).

It watches every resource that can be listed, watched and deleted (found through discovery,
re-read every ``discovery_period``; Events are left out as in kube) and keeps a graph: object uid
-> where it is, owner uid -> dependents. Keys on its queue are uids. For each object it
reconciles, like ``pkg/controller/garbagecollector``:

* **orphan** — the object is being deleted with the ``orphan`` finalizer (``kubectl delete
  --cascade=orphan``): its dependents lose their reference to it, then the finalizer is removed
  (so the API server deletes it);
* **foreground** — it is being deleted with the ``foregroundDeletion`` finalizer
  (``--cascade=foreground``): every dependent is deleted in the foreground too (a dependent that
  has another live owner only loses the reference); once no dependent with
  ``blockOwnerDeletion`` remains, the finalizer is removed;
* **background** (the default: the owner is simply gone) — an object whose owners are all gone
  (absent from the graph and confirmed by a read, or present under another uid) is deleted,
  honouring its own orphan/foreground finalizers and propagating foreground deletion when an
  owner waits for its dependents; an object with a live owner only loses its dangling references.

Every write names the object's uid (a precondition or a resourceVersion guard), so an object
re-created under the same name is never touched by mistake.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from dataclasses import dataclass
from typing import Any

from kapi.client import ApiError
from kapi.components.controllers.claims import set_owner_references_patch
from kapi.components.controllers.discovery import Discovered
from kapi.components.controllers.framework import Controller
from kapi.components.controllers.gvr import Resource
from kapi.components.controllers.informers import Cache
from kapi.components.controllers.objects import (
    finalizers_of,
    is_deleting,
    meta,
    namespace_of,
    owner_references,
    uid_of,
)
from kapi.components.controllers.writes import delete_if_present

log = logging.getLogger("kapi.controllers.garbagecollector")

Obj = dict[str, Any]

ORPHAN = "orphan"
FOREGROUND = "foregroundDeletion"
IGNORED = frozenset({("", "events"), ("events.k8s.io", "events")})

SOLID, WAITING, ABSENT = "solid", "waiting", "absent"


@dataclass(frozen=True)
class Node:
    """Where an object of the graph lives."""

    resource: Resource
    key: str


def monitorable(discovered: Discovered) -> list[Resource]:
    """The resources the collector watches: preferred versions with list, watch and delete."""
    return [api.resource for api in discovered.preferred()
            if api.supports("list", "watch", "delete") and (api.resource.group, api.resource.plural) not in IGNORED]


def _waits_for_dependents(obj: Obj) -> bool:
    return is_deleting(obj) and FOREGROUND in finalizers_of(obj)


class GarbageCollector(Controller):
    """``garbagecollector``: see the module docstring."""

    name = "garbagecollector"
    component = "garbage-collector-controller"
    service_account = "generic-garbage-collector"

    def setup(self) -> None:
        self.nodes: dict[str, Node] = {}
        self.dependents: dict[str, set[str]] = {}
        self.monitors: dict[Resource, Cache] = {}
        self.kinds: dict[tuple[str, str], Resource] = {}

    # -- monitors ------------------------------------------------------------------------------

    async def prepare(self) -> None:
        """Discover and watch every resource, retrying (with backoff) until discovery works."""
        delay = 0.5
        while True:
            try:
                await self.sync_monitors()
                return
            except ApiError as exc:
                log.warning("garbage collector: discovery failed (%s); retrying in %.1fs", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)

    async def sync_monitors(self) -> None:
        """Watch every monitorable resource not watched yet (new ones after a rediscovery)."""
        discovered = await self.ctx.discovery.get(self.client, self.options.discovery_period)
        self.kinds = discovered.by_kind()
        for resource in monitorable(discovered):
            if resource in self.monitors:
                continue
            cache = self.cache(resource)
            self.monitors[resource] = cache
            cache.add_handler(functools.partial(self._added, resource), functools.partial(self._updated, resource),
                              functools.partial(self._deleted, resource))
            for obj in cache.items():
                self._added(resource, obj)

    async def background(self) -> None:
        while True:
            await asyncio.sleep(self.options.discovery_period)
            try:
                await self.sync_monitors()
            except ApiError as exc:
                log.warning("garbage collector: discovery failed: %s", exc)

    # -- the graph -----------------------------------------------------------------------------

    def _track(self, resource: Resource, obj: Obj) -> None:
        uid = uid_of(obj)
        key = f"{namespace_of(obj)}/{meta(obj).get('name')}" if resource.namespaced else str(meta(obj).get("name"))
        self.nodes[uid] = Node(resource, key)
        for ref in owner_references(obj):
            self.dependents.setdefault(str(ref.get("uid")), set()).add(uid)

    def _untrack_refs(self, uid: str, refs: list[Obj]) -> None:
        for ref in refs:
            owner = str(ref.get("uid"))
            deps = self.dependents.get(owner)
            if deps is not None:
                deps.discard(uid)
                if not deps:
                    del self.dependents[owner]

    def _added(self, resource: Resource, obj: Obj) -> None:
        self._track(resource, obj)
        self._check(obj)

    def _updated(self, resource: Resource, old: Obj, new: Obj) -> None:
        old_refs, new_refs = owner_references(old), owner_references(new)
        if old_refs != new_refs:
            self._untrack_refs(uid_of(old), old_refs)
            kept = {str(r.get("uid")) for r in new_refs}
            for ref in old_refs:
                if str(ref.get("uid")) not in kept:
                    self._enqueue_waiting_owner(str(ref.get("uid")))
        self._track(resource, new)
        self._check(new)

    def _deleted(self, resource: Resource, obj: Obj) -> None:
        uid = uid_of(obj)
        node = self.nodes.get(uid)
        if node is not None and node.resource == resource:
            del self.nodes[uid]
        refs = owner_references(obj)
        self._untrack_refs(uid, refs)
        for dependent in self.dependents.get(uid, ()):
            self.enqueue(dependent)
        for ref in refs:
            self._enqueue_waiting_owner(str(ref.get("uid")))

    def _enqueue_waiting_owner(self, owner_uid: str) -> None:
        owner = self._object(owner_uid)
        if owner is not None and _waits_for_dependents(owner[1]):
            self.enqueue(owner_uid)

    def _check(self, obj: Obj) -> None:
        """Queue the object when something may be to do: pending deletion with our finalizers,
        an owner missing from the graph, or an owner waiting for its dependents."""
        uid = uid_of(obj)
        if is_deleting(obj) and {ORPHAN, FOREGROUND} & set(finalizers_of(obj)):
            self.enqueue(uid)
            return
        for ref in owner_references(obj):
            owner = self._object(str(ref.get("uid")))
            if owner is None or _waits_for_dependents(owner[1]):
                self.enqueue(uid)
                return

    def _object(self, uid: str) -> tuple[Node, Obj] | None:
        node = self.nodes.get(uid)
        if node is None:
            return None
        cache = self.monitors.get(node.resource)
        obj = cache.get(node.key) if cache is not None else None
        if obj is None or uid_of(obj) != uid:
            return None
        return node, obj

    # -- reconcile -----------------------------------------------------------------------------

    async def sync(self, key: str) -> float | None:
        found = self._object(key)
        if found is None:
            return None
        node, obj = found
        if is_deleting(obj):
            finalizers = finalizers_of(obj)
            if ORPHAN in finalizers:
                await self._orphan_dependents(node, obj)
            elif FOREGROUND in finalizers:
                await self._delete_dependents(node, obj)
            return None
        if owner_references(obj):
            await self._attempt_to_delete(node, obj)
        return None

    async def _owner_state(self, dependent: Obj, ref: Obj) -> str:
        """SOLID (exists), WAITING (being deleted in the foreground) or ABSENT (confirmed gone)."""
        uid = str(ref.get("uid"))
        found = self._object(uid)
        if found is not None:
            return WAITING if _waits_for_dependents(found[1]) else SOLID
        resource = self.kinds.get((str(ref.get("apiVersion")), str(ref.get("kind"))))
        if resource is None:
            log.info("garbage collector: unknown owner kind %s %s of %s", ref.get("apiVersion"), ref.get("kind"),
                     uid_of(dependent))
            return SOLID
        try:
            owner = await self.client.get(resource.path(namespace_of(dependent), str(ref.get("name"))))
        except ApiError as exc:
            if exc.not_found:
                return ABSENT
            raise
        if uid_of(owner) != uid:
            return ABSENT
        return WAITING if _waits_for_dependents(owner) else SOLID

    async def _attempt_to_delete(self, node: Node, obj: Obj) -> None:
        refs = owner_references(obj)
        states = [await self._owner_state(obj, ref) for ref in refs]
        if SOLID in states:
            keep = [ref for ref, state in zip(refs, states, strict=True) if state == SOLID]
            if len(keep) != len(refs):
                await self._set_refs(node, obj, keep)
            return
        if WAITING in states and self.dependents.get(uid_of(obj)):
            policy = "Foreground"
        elif ORPHAN in finalizers_of(obj):
            policy = "Orphan"
        elif FOREGROUND in finalizers_of(obj):
            policy = "Foreground"
        else:
            policy = "Background"
        await self._delete(node, obj, policy)

    async def _delete(self, node: Node, obj: Obj, policy: str) -> None:
        options = {"propagationPolicy": policy, "preconditions": {"uid": uid_of(obj)}}
        try:
            await delete_if_present(self.client, node.resource.path_of(obj), options=options)
        except ApiError as exc:
            if not exc.conflict:  # a uid precondition failure: another object has the name now
                raise

    async def _set_refs(self, node: Node, obj: Obj, refs: list[Obj]) -> None:
        try:
            await self.client.patch(node.resource.path_of(obj), set_owner_references_patch(obj, refs))
        except ApiError as exc:
            if not exc.not_found:
                raise

    async def _remove_finalizer(self, node: Node, obj: Obj, finalizer: str) -> None:
        try:
            fresh = await self.client.get(node.resource.path_of(obj))
        except ApiError as exc:
            if exc.not_found:
                return
            raise
        if uid_of(fresh) != uid_of(obj) or finalizer not in finalizers_of(fresh):
            return
        remaining = [f for f in finalizers_of(fresh) if f != finalizer]
        patch = {"metadata": {"finalizers": remaining or None, "resourceVersion": meta(fresh).get("resourceVersion")}}
        try:
            await self.client.patch(node.resource.path_of(fresh), patch)
        except ApiError as exc:
            if not exc.not_found:
                raise

    async def _orphan_dependents(self, node: Node, owner: Obj) -> None:
        uid = uid_of(owner)
        for dependent_uid in list(self.dependents.get(uid, ())):
            found = self._object(dependent_uid)
            if found is None:
                continue
            dep_node, dep = found
            await self._set_refs(dep_node, dep, [r for r in owner_references(dep) if r.get("uid") != uid])
        await self._remove_finalizer(node, owner, ORPHAN)

    async def _delete_dependents(self, node: Node, owner: Obj) -> None:
        uid = uid_of(owner)
        blocking = 0
        for dependent_uid in list(self.dependents.get(uid, ())):
            found = self._object(dependent_uid)
            if found is None:
                continue
            dep_node, dep = found
            refs = owner_references(dep)
            mine = [r for r in refs if r.get("uid") == uid]
            others = [r for r in refs if r.get("uid") != uid]
            if others and not is_deleting(dep) and SOLID in [await self._owner_state(dep, r) for r in others]:
                await self._set_refs(dep_node, dep, others)
                continue
            if any(r.get("blockOwnerDeletion") for r in mine):
                blocking += 1
            if not is_deleting(dep):
                await self._delete(dep_node, dep, "Foreground")
        if blocking == 0:
            await self._remove_finalizer(node, owner, FOREGROUND)
