"""Write helpers shared by the controllers: status updates, idempotent creates and deletes.

All of them go through ``kapi.client.Client`` and translate the expected API answers: a status
update retries once on 409 with a fresh read (as the controllers in kube-controller-manager
do); ``create_if_absent`` treats 409 AlreadyExists as success; ``delete_if_present`` treats 404
as success. Other errors propagate as ``ApiError`` (the framework requeues the key).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kapi.client import ApiError, Client
from kapi.components.controllers.gvr import Resource

Obj = dict[str, Any]

#: the cause kube-apiserver gives when a namespace being deleted refuses new content
NAMESPACE_TERMINATING = "being terminated"


def is_namespace_terminating(exc: ApiError) -> bool:
    """True for the 403 "unable to create new content in namespace ... being terminated"."""
    return exc.code == 403 and NAMESPACE_TERMINATING in exc.message


async def put_status(client: Client, resource: Resource, obj: Obj, status: Obj) -> Obj:
    """PUT ``status`` to ``obj``'s status subresource (guarded by its resourceVersion); on a 409
    conflict read the object again and retry once. Returns the stored object."""
    current = obj
    for attempt in range(2):
        body = {**current, "status": status}
        try:
            return await client.update(resource.path_of(current, "status"), body)
        except ApiError as exc:
            if not exc.conflict or attempt:
                raise
            current = await client.get(resource.path_of(current))
    raise AssertionError("unreachable")


async def create_if_absent(client: Client, resource: Resource, obj: Mapping[str, Any]) -> Obj | None:
    """Create ``obj``; None when an object of that name already exists."""
    namespace = str((obj.get("metadata") or {}).get("namespace") or "")
    try:
        return await client.create(resource.path(namespace), obj)
    except ApiError as exc:
        if exc.code == 409 and exc.reason == "AlreadyExists":
            return None
        raise


async def delete_if_present(client: Client, path: str, *, options: Mapping[str, Any] | None = None) -> bool:
    """DELETE ``path``; False when it was already gone."""
    try:
        await client.delete(path, options=options)
    except ApiError as exc:
        if exc.not_found:
            return False
        raise
    return True
