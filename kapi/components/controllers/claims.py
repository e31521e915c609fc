"""Adoption and release of dependents (client-go's ``ControllerRefManager``).

A controller owns the objects whose controller reference names it. ``claim`` sorts the candidates
of a namespace: objects it controls that still match its selector are kept; ones that no longer
match are released (the reference removed); orphans (no controller) that match are adopted (a
reference added), after one fresh read of the owner confirms it still exists under the same uid
and is not being deleted. Objects controlled by someone else are never touched. Writes are JSON
merge patches of ``metadata.ownerReferences`` guarded by the object's resourceVersion, so a
concurrent change fails with 409 and the controller retries.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kapi.client import ApiError, Client
from kapi.components.controllers.gvr import Resource
from kapi.components.controllers.objects import (
    controller_of,
    is_deleting,
    meta,
    owner_references,
    uid_of,
)

Obj = dict[str, Any]


def set_owner_references_patch(obj: Obj, refs: list[Obj]) -> Obj:
    """The merge patch that sets ``obj``'s owner references to ``refs`` (guarded by its resourceVersion)."""
    return {"metadata": {"ownerReferences": refs or None, "resourceVersion": meta(obj).get("resourceVersion")}}


async def adopt(client: Client, resource: Resource, obj: Obj, ref: Obj) -> Obj | None:
    """Add the controller reference ``ref`` to ``obj``; the patched object, None when it is gone."""
    try:
        return await client.patch(resource.path_of(obj), set_owner_references_patch(obj, [*owner_references(obj),
                                                                                         ref]))
    except ApiError as exc:
        if exc.not_found:
            return None
        raise


async def release(client: Client, resource: Resource, obj: Obj, owner_uid: str) -> None:
    """Remove every reference to ``owner_uid`` from ``obj`` (gone already: fine)."""
    remaining = [r for r in owner_references(obj) if r.get("uid") != owner_uid]
    try:
        await client.patch(resource.path_of(obj), set_owner_references_patch(obj, remaining))
    except ApiError as exc:
        if not exc.not_found:
            raise


class Claimer:
    """Claims dependents of one owner.

    :param owner_path: the owner's API path, read once before the first adoption.
    :param ref: the controller reference adopted objects get.
    :param matches: the owner's selector, as a predicate on a candidate.
    """

    def __init__(self, client: Client, resource: Resource, owner: Obj, owner_path: str, ref: Obj,
                 matches: Callable[[Obj], bool]) -> None:
        self.client = client
        self.resource = resource
        self.owner = owner
        self.owner_uid = uid_of(owner)
        self.owner_path = owner_path
        self.ref = ref
        self.matches = matches
        self._can_adopt: bool | None = None

    async def _owner_still_there(self) -> bool:
        if self._can_adopt is None:
            try:
                fresh = await self.client.get(self.owner_path)
            except ApiError as exc:
                if not exc.not_found:
                    raise
                fresh = None
            self._can_adopt = fresh is not None and uid_of(fresh) == self.owner_uid and not is_deleting(fresh)
        return self._can_adopt

    async def claim(self, candidates: list[Obj]) -> list[Obj]:
        """The candidates this owner controls after adopting and releasing (adopted ones as patched)."""
        owner_deleting = is_deleting(self.owner)
        claimed: list[Obj] = []
        for obj in candidates:
            ref = controller_of(obj)
            if ref is not None:
                if ref.get("uid") != self.owner_uid:
                    continue
                if self.matches(obj):
                    claimed.append(obj)
                elif not owner_deleting:
                    await release(self.client, self.resource, obj, self.owner_uid)
                continue
            if owner_deleting or is_deleting(obj) or not self.matches(obj):
                continue
            if not await self._owner_still_there():
                continue
            adopted = await adopt(self.client, self.resource, obj, self.ref)
            if adopted is not None:
                claimed.append(adopted)
        return claimed
