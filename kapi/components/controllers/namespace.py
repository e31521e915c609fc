"""The namespace controller: a deleted namespace empties, then goes.

``kubectl delete namespace N`` only marks the namespace (``deletionTimestamp``, phase
``Terminating``; the ``kubernetes`` finalizer in ``spec.finalizers`` keeps it). This controller
then, like ``pkg/controller/namespace/deletion``:

1. discovers every namespaced resource (``/api``, ``/apis``) that can be deleted;
2. deletes the namespace's objects of each (``deletecollection`` when supported, else list and
   delete one by one); pods bound to nodes stay until their kubelet stops them;
3. lists again, and while anything is left records the ``NamespaceContentRemaining`` /
   ``NamespaceFinalizersRemaining`` conditions and retries shortly;
4. when a pass found nothing left to delete, removes ``kubernetes`` through ``PUT
   namespaces/N/finalize`` (a pass that did delete something is confirmed by another half a
   second later, so an object created while the deletion raced in is not left behind); with no
   finalizer left the API server deletes the namespace.

Status conditions (``NamespaceDeletionDiscoveryFailure``, ``NamespaceDeletionContentFailure``,
``NamespaceContentRemaining``, ``NamespaceFinalizersRemaining``) are written as
kube-controller-manager writes them, so ``kubectl describe namespace`` explains a slow deletion.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

from kapi.client import ApiError
from kapi.components.controllers.discovery import ApiResource
from kapi.components.controllers.framework import Controller
from kapi.components.controllers.gvr import NAMESPACES
from kapi.components.controllers.objects import (
    conditions_of,
    finalizers_of,
    is_deleting,
    rfc3339,
    set_condition,
    spec_of,
    status_of,
)

log = logging.getLogger("kapi.controllers.namespace")

Obj = dict[str, Any]

KUBERNETES_FINALIZER = "kubernetes"
CONFIRM_DELAY = 0.5


@dataclass
class Remaining:
    """What one deletion pass left behind."""

    counts: dict[str, int] = field(default_factory=dict)  # "pods." -> instances
    finalizers: dict[str, int] = field(default_factory=dict)  # finalizer -> instances
    errors: list[str] = field(default_factory=list)
    deleted: int = 0  # objects this pass deleted (a pass that deleted something is confirmed by another)

    @property
    def empty(self) -> bool:
        return not self.counts and not self.errors


def deletable(resources: list[ApiResource]) -> list[ApiResource]:
    """The namespaced resources a namespace deletion must empty (preferred versions, deletable)."""
    return [r for r in resources if r.resource.namespaced and r.supports("list") and
            (r.supports("deletecollection") or r.supports("delete"))]


def _qualified(api: ApiResource) -> str:
    return f"{api.resource.plural}.{api.resource.group}"


def namespace_conditions(current: list[Obj], remaining: Remaining, discovery_failed: list[str], now: Any) -> list[Obj]:
    """The five deletion conditions for the outcome of one pass."""
    stamp = rfc3339(now)
    conditions = [dict(c) for c in current]

    def put(kind: str, active: bool, reason: str, message: str) -> None:
        set_condition(conditions, {"type": kind, "status": "True" if active else "False", "lastTransitionTime": stamp,
                                   "reason": reason, "message": message}, update_unchanged=True)

    if discovery_failed:
        put("NamespaceDeletionDiscoveryFailure", True, "DiscoveryFailed",
            f"Discovery failed for some groups, {len(discovery_failed)} failing: {', '.join(discovery_failed)}")
    else:
        put("NamespaceDeletionDiscoveryFailure", False, "ResourcesDiscovered", "All resources successfully discovered")
    put("NamespaceDeletionGroupVersionParsingFailure", False, "ParsedGroupVersions",
        "All legacy kube types successfully parsed")
    if remaining.errors:
        put("NamespaceDeletionContentFailure", True, "ContentDeletionFailed",
            f"Failed to delete all resource types, {len(remaining.errors)} remaining: {', '.join(remaining.errors)}")
    else:
        put("NamespaceDeletionContentFailure", False, "ContentDeleted",
            "All content successfully deleted, may be waiting on finalization")
    if remaining.counts:
        detail = ", ".join(f"{k} has {v} resource instances" for k, v in sorted(remaining.counts.items()))
        put("NamespaceContentRemaining", True, "SomeResourcesRemain", f"Some resources are remaining: {detail}")
    else:
        put("NamespaceContentRemaining", False, "ContentRemoved", "All content successfully removed")
    if remaining.finalizers:
        detail = ", ".join(f"{k} in {v} resource instances" for k, v in sorted(remaining.finalizers.items()))
        put("NamespaceFinalizersRemaining", True, "SomeFinalizersRemain",
            f"Some content in the namespace has finalizers remaining: {detail}")
    else:
        put("NamespaceFinalizersRemaining", False, "ContentHasNoFinalizers",
            "All content-preserving finalizers finished")
    return conditions


class NamespaceController(Controller):
    """``namespace``: see the module docstring."""

    name = "namespace"
    component = "namespace-controller"
    service_account = "namespace-controller"

    def setup(self) -> None:
        self.namespaces = self.cache(NAMESPACES)
        self.namespaces.add_handler(self._changed, lambda old, new: self._changed(new))

    def _changed(self, ns: Obj) -> None:
        if is_deleting(ns):
            self.enqueue(ns)

    async def sync(self, key: str) -> float | None:
        cached = self.namespaces.get(key)
        if cached is None or not is_deleting(cached):
            return None
        try:
            ns = await self.client.get(NAMESPACES.path(name=key))
        except ApiError as exc:
            if exc.not_found:
                return None
            raise
        if not is_deleting(ns) or KUBERNETES_FINALIZER not in (spec_of(ns).get("finalizers") or []):
            return None
        discovered = await self.ctx.discovery.get(self.client, self.options.discovery_period)
        remaining = await self.delete_content(key, deletable(discovered.preferred()))
        if remaining.empty and not remaining.deleted and not discovered.failed:
            await self._finalize(ns)
            return None
        if remaining.empty and not discovered.failed:
            # something was deleted: confirm with one more pass that nothing came back (a create
            # that raced with the deletion), as kube's deleter does before finalizing
            return min(self.options.namespace_sync_period, CONFIRM_DELAY)
        conditions = namespace_conditions(conditions_of(ns), remaining, list(discovered.failed), self.now())
        if conditions != conditions_of(ns):
            status = {**status_of(ns), "conditions": conditions}
            try:
                await self.client.update(NAMESPACES.path(name=key, subresource="status"), {**ns, "status": status})
            except ApiError as exc:
                if not (exc.conflict or exc.not_found):
                    raise
        return self.options.namespace_sync_period

    async def delete_content(self, namespace: str, resources: list[ApiResource]) -> Remaining:
        """Delete every object of ``resources`` in ``namespace``; report what is left."""
        results = await asyncio.gather(*(self._empty(namespace, api) for api in resources))
        remaining = Remaining()
        for api, (deleted, count, finalizers, error) in zip(resources, results, strict=True):
            remaining.deleted += deleted
            if error:
                remaining.errors.append(f"{_qualified(api)}: {error}")
            if count:
                remaining.counts[_qualified(api)] = count
            for name, n in finalizers.items():
                remaining.finalizers[name] = remaining.finalizers.get(name, 0) + n
        return remaining

    async def _empty(self, namespace: str, api: ApiResource) -> tuple[int, int, dict[str, int], str]:
        """Delete one resource's objects; (objects deleted, objects left, their finalizers, error text)."""
        path = api.resource.path(namespace)
        deleted = 0
        try:
            if api.supports("deletecollection"):
                deleted = len((await self.client.delete(path)).get("items") or [])
            else:
                listing = await self.client.list(path)
                deleted = len(listing.get("items") or [])
                for obj in listing.get("items") or []:
                    name = str((obj.get("metadata") or {}).get("name") or "")
                    try:
                        await self.client.delete(api.resource.path(namespace, name))
                    except ApiError as exc:
                        if not exc.not_found:
                            raise
            listing = await self.client.list(path)
        except ApiError as exc:
            if exc.code in (404, 405):
                return 0, 0, {}, ""
            return deleted, 0, {}, exc.message or str(exc)
        items = listing.get("items") or []
        finalizers: dict[str, int] = {}
        for obj in items:
            for name in finalizers_of(obj):
                finalizers[name] = finalizers.get(name, 0) + 1
        return deleted, len(items), finalizers, ""

    async def _finalize(self, ns: Obj) -> None:
        """Remove the ``kubernetes`` finalizer (the API server then deletes the namespace)."""
        finalizers = [f for f in spec_of(ns).get("finalizers") or [] if f != KUBERNETES_FINALIZER]
        body = {**ns, "spec": {**spec_of(ns), "finalizers": finalizers}}
        name = str(ns["metadata"]["name"])
        try:
            await self.client.update(NAMESPACES.path(name=name, subresource="finalize"), body)
        except ApiError as exc:
            if not exc.not_found:
                raise
