"""The REST side of field management: who the request's manager is, recording ``managedFields``
on every write, and the pieces of a server-side apply request (``application/apply-patch+yaml``).

Contracts (the write handlers in ``kapi.rest.write`` call these):

* ``recorder(ctx, subresource)`` -> ``Recorder``: ``record(old, new)`` sets ``new``'s
  ``metadata.managedFields`` for a create (``old`` None), update or non-apply patch by the request's
  manager (operation ``Update``). Called after admission, before validation and the storage write.
* ``ServerSideApply(ctx, data, subresource)``: parses and checks the applied configuration (400 for a
  missing ``fieldManager``, a body that is not an object of this kind, or a name other than the
  URL's); ``mutation(live)`` is the ``guaranteed_update`` mutation (409 with ``details.causes`` on
  conflicts unless ``force=true``), ``create_object()`` the object to create when none exists, and
  ``record`` the recorder that keeps the ownership the apply computed.

Ownership uses the kind's schema from ``ctx.app.schema`` (``node_for(group, version, kind)``), so
custom kinds get the same list and map semantics once their schemas are in the catalog.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from kapi import errors, ssa
from kapi.errors import Cause
from kapi.rest import body, objects
from kapi.rest.context import Ctx
from kapi.schema import SchemaNode
from kapi.ssa import lastapplied

Obj = dict[str, Any]
Recorder = Callable[[Obj | None, Obj], None]


@dataclass(frozen=True)
class ConflictCause(Cause):
    """A ``FieldManagerConflict`` cause: kube does not prefix the message with the field."""

    reason: str = "FieldManagerConflict"

    def to_dict(self) -> dict[str, str]:
        return {"reason": self.reason, "message": self.message, "field": self.field}


def manager_of(ctx: Ctx) -> str:
    """The request's field manager: ``fieldManager``, else the User-Agent's first token (kube's
    default); 400 for a name longer than 128 characters."""
    given = ctx.query("fieldManager")
    if len(given) > ssa.managed.MAX_MANAGER_LENGTH:
        raise errors.bad_request(f"fieldManager: Too long: may not be more than {ssa.managed.MAX_MANAGER_LENGTH} "
                                 f"bytes")
    return ssa.manager_name(given, ctx.request.headers.get("user-agent", ""))


def schema_node(ctx: Ctx) -> SchemaNode | None:
    """The kind's root schema node, or None for a kind the catalog does not know."""
    rt = ctx.rt
    return ctx.app.schema.node_for(rt.group, rt.version, rt.kind)  # type: ignore[no-any-return]


def _ignores_status(ctx: Ctx, subresource: str) -> bool:
    """Writes to the main resource of a kind with a status subresource do not own status."""
    return bool(ctx.rt.strategy.has_status) and subresource != "status"


def recorder(ctx: Ctx, subresource: str = "") -> Recorder:
    """The ``Update`` recorder of this request (see the module docstring)."""
    manager = manager_of(ctx)

    def record(old: Obj | None, new: Obj) -> None:
        ssa.track_update(old, new, manager=manager, api_version=ctx.rt.group_version, node=schema_node(ctx),
                         subresource=subresource, ignore_status=_ignores_status(ctx, subresource))

    return record


def conflict_error(err: ssa.ApplyConflict) -> errors.APIError:
    """409 Conflict with one ``FieldManagerConflict`` cause per field, as kube-apiserver answers."""
    causes = tuple(ConflictCause(c.field, f"conflict with {c.owner.describe()}") for c in err.conflicts)
    return errors.APIError(409, "Conflict", str(err), causes=causes)


def _decode_applied(data: bytes) -> Any:
    try:
        return orjson.loads(data)  # kubectl sends JSON under the YAML media type
    except orjson.JSONDecodeError:
        return body.decode(data, "application/yaml")


class ServerSideApply:
    """One apply request; see the module docstring."""

    def __init__(self, ctx: Ctx, data: bytes, subresource: str = "") -> None:
        self.manager = ctx.query("fieldManager")
        if not self.manager:
            raise errors.APIError(400, "BadRequest", 'PatchOptions.meta.k8s.io "" is invalid: fieldManager: '
                                  "Required value: is required for apply patch")
        manager_of(ctx)  # length check
        applied = _decode_applied(data)
        if not isinstance(applied, dict):
            raise errors.bad_request("an apply patch must be an object")
        if not applied.get("apiVersion") or not applied.get("kind"):
            raise errors.bad_request("an apply patch must set apiVersion and kind")
        objects.check_type(ctx.rt, applied)
        meta = objects.metadata_of(applied)
        if meta.get("name", ctx.name) != ctx.name:
            raise errors.bad_request(f"the name of the object ({meta.get('name')}) does not match the name on the "
                                     f"URL ({ctx.name})")
        if "managedFields" in meta:
            raise errors.bad_request("metadata.managedFields must be nil in an apply patch")
        self.ctx = ctx
        self.applied = applied
        self.subresource = subresource
        self.force = ctx.flag("force")
        self._fields: Any = None

    def _apply(self, live: Obj | None) -> Obj:
        node = schema_node(self.ctx)
        sub, ignore_status = self.subresource, _ignores_status(self.ctx, self.subresource)

        def run(force: bool) -> Obj:
            return ssa.apply(live, self.applied, manager=self.manager, force=force,
                             api_version=self.ctx.rt.group_version, node=node, subresource=sub,
                             ignore_status=ignore_status)

        try:
            merged = run(self.force)
        except ssa.ApplyConflict as err:
            # kubectl taking over from its own client-side apply: conflicts on last-applied fields are forced
            allowed = lastapplied.allowed_conflicts(live, node, subresource=sub, ignore_status=ignore_status) \
                if lastapplied.eases(self.manager) else set()
            remaining = [c for c in err.conflicts if c.path not in allowed]
            if remaining:
                raise conflict_error(ssa.ApplyConflict(remaining)) from None
            merged = run(True)
        if lastapplied.eases(self.manager):
            lastapplied.sync_annotation(merged, self.applied)
        self._fields = merged["metadata"].get("managedFields")
        return merged

    async def mutation(self, live: Obj) -> Obj:
        """The ``guaranteed_update`` mutation: the live object with the configuration applied."""
        if self.applied.get("metadata", {}).get("resourceVersion") is None:
            live.get("metadata", {}).pop("resourceVersion", None)
        return self._apply(live)

    def create_object(self) -> Obj:
        """The object to create when none exists (apply creates)."""
        obj = self._apply(None)
        obj["metadata"].setdefault("name", self.ctx.name)
        return obj

    def record(self, _old: Obj | None, new: Obj) -> None:
        """Keep the ownership the apply computed (admission and defaulting own nothing)."""
        if self._fields:
            new.setdefault("metadata", {})["managedFields"] = self._fields
        else:
            new.get("metadata", {}).pop("managedFields", None)
