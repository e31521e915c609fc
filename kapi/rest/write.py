"""create, update, patch, delete and deletecollection with kube-apiserver's semantics.

Every write is one guarded storage operation: updates and deletes compare the revision they
read (``GuaranteedUpdate``); a client-given ``metadata.resourceVersion`` that is stale is a 409
Conflict, an internal race is retried. Updates that change nothing are not written (the
resourceVersion stays). An object whose deletion is pending (finalizers, graceful pod deletion)
gets ``metadata.deletionTimestamp`` and is removed when the last finalizer goes.
"""

from __future__ import annotations

import datetime
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.responses import Response

from kapi import errors, patch
from kapi.rest import admit, allocation, body, fieldmanager, objects
from kapi.rest.context import Ctx, json_response
from kapi.rest.read import respond_object
from kapi.storage import ConflictError, KeyExistsError, KeyNotFoundError
from kapi.timestamps import rfc3339
from kapi.types import Operation
from kapi.watchcache import decode

Obj = dict[str, Any]
MAX_RETRIES = 16

PATCH_TYPES = {
    "application/json-patch+json": "json",
    "application/merge-patch+json": "merge",
    "application/strategic-merge-patch+json": "strategic",
    "application/apply-patch+yaml": "apply",
}


def _warnings_header(warnings: list[str]) -> dict[str, str] | None:
    if not warnings:
        return None
    text = ", ".join('299 - "' + w.replace('"', '\\"') + '"' for w in warnings)
    # header values travel as bytes: UTF-8 (as Go writes them), without control characters
    return {"warning": "".join(c if c.isprintable() else "?" for c in text).encode().decode("latin-1")}


async def read_object(ctx: Ctx) -> Obj:
    data = await body.read_body(ctx.request, ctx.app.config.max_request_body_bytes)
    obj = body.decode_object(data, ctx.request.headers.get("content-type", "application/json"))
    objects.check_type(ctx.rt, obj)
    return obj


async def create(ctx: Ctx, obj: Obj | None = None, record: fieldmanager.Recorder | None = None) -> Response:
    rt = ctx.rt
    refusal = rt.strategy.create_refusal()
    if refusal:
        raise errors.method_not_allowed(refusal)
    if obj is None:
        obj = await read_object(ctx)
    dry_run = ctx.dry_run
    meta = objects.metadata_of(obj)
    objects.check_namespace(rt, meta, ctx.namespace)
    if meta.get("resourceVersion"):
        raise errors.bad_request("resourceVersion should not be set on objects to be created")
    for field in objects.SERVER_META:
        meta.pop(field, None)
    generated = not meta.get("name") and bool(meta.get("generateName"))
    if generated:
        meta["name"] = objects.generate_name(str(meta["generateName"]))
    meta["uid"] = objects.new_uid()
    meta["creationTimestamp"] = objects.now_rfc3339()
    if rt.strategy.has_status:
        meta["generation"] = 1
    # kube-apiserver's order: defaulting, mutating admission, then the strategy's PrepareForCreate
    # (so e.g. a pod's QoS class sees the limits LimitRanger filled in)
    pruned = admit.prune_unknown(ctx, obj)
    rt.strategy.default(obj)
    obj = await admit.mutate(ctx, Operation.CREATE, obj, None, dry_run=dry_run)
    rt.strategy.prepare_for_create(obj)
    (record or fieldmanager.recorder(ctx))(None, obj)  # metadata.managedFields
    warnings = pruned + admit.validate(ctx, obj, None)
    name = obj["metadata"]["name"]
    warnings += await admit.validate_admission(ctx, Operation.CREATE, obj, None, name=name, dry_run=dry_run)
    if dry_run:
        return respond_object(ctx, obj, 201)
    release = await allocation.allocate(ctx, obj)
    try:
        for _attempt in range(5):
            try:
                stored = objects.encode_for_storage(rt.strategy.to_storage(obj))
                kv = await ctx.app.storage.create(ctx.key(name), stored, ttl=allocation.ttl_for(ctx))
                break
            except KeyExistsError:
                if not generated:
                    raise errors.already_exists(rt.group, rt.plural, name) from None
                name = obj["metadata"]["name"] = objects.generate_name(str(obj["metadata"]["generateName"]))
        else:
            raise errors.already_exists(rt.group, rt.plural, name)
    except BaseException:
        await release()
        raise
    objects.with_revision(obj, kv.revision)
    return respond_object(ctx, obj, 201) if not warnings else json_response(obj, 201, _warnings_header(warnings))


Mutation = Callable[[Obj], Awaitable[Obj]]


async def guaranteed_update(ctx: Ctx, mutation: Mutation, *, subresource: str = "",
                            record: fieldmanager.Recorder | None = None) -> tuple[Obj, list[str]]:
    """Read, change with ``mutation``, prepare/default/validate/admit, and write with a revision guard.

    ``mutation`` gets a private copy of the stored object and returns the wanted object; if that
    carries a ``metadata.resourceVersion`` other than the stored one the result is 409 Conflict.
    """
    rt = ctx.rt
    dry_run = ctx.dry_run
    storage = ctx.app.storage
    key = ctx.key()
    for _attempt in range(MAX_RETRIES):
        try:
            current = await storage.get(key)
        except KeyNotFoundError:
            raise ctx.not_found() from None
        old = rt.strategy.from_storage(decode(current).obj)
        new = await mutation(objects.deep_copy(old))
        meta = objects.metadata_of(new)
        wanted_rv = meta.get("resourceVersion")
        if wanted_rv and str(wanted_rv) != str(current.revision):
            raise errors.conflict(rt.group, rt.plural, ctx.name, "the object has been modified; please apply your "
                                  "changes to the latest version and try again")
        if meta.get("name", ctx.name) != ctx.name:
            raise errors.bad_request(f"the name of the object ({meta.get('name')}) does not match the name on the "
                                     f"URL ({ctx.name})")
        objects.check_namespace(rt, meta, ctx.namespace)
        meta["name"] = ctx.name
        old_meta = old["metadata"]
        for field in ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "generation"):
            if field in old_meta:
                meta[field] = old_meta[field]
            else:
                meta.pop(field, None)
        meta["resourceVersion"] = old_meta["resourceVersion"]
        if subresource == "status":
            rt.strategy.prepare_for_status_update(new, old)
            new["metadata"] = {**old_meta}
        elif subresource == "finalize":  # namespaces/NAME/finalize: only spec.finalizers may change
            rt.strategy.prepare_for_finalize_update(new, old)  # type: ignore[attr-defined]
            new["metadata"] = {**old_meta}
        else:
            rt.strategy.prepare_for_update(new, old)
        pruned = admit.prune_unknown(ctx, new)
        rt.strategy.default(new)
        new = await admit.mutate(ctx, Operation.UPDATE, new, old, subresource=subresource, dry_run=dry_run)
        if rt.strategy.has_status and subresource != "status" and objects.spec_changed(new, old):
            new["metadata"]["generation"] = int(old_meta.get("generation", 1)) + 1
        # a binding changes only spec.nodeName and a condition: the pod-update rules do not apply
        if subresource != "binding":
            (record or fieldmanager.recorder(ctx, subresource))(old, new)  # metadata.managedFields
        warnings = pruned + (admit.validate(ctx, new, old) if subresource != "binding" else [])
        warnings += await admit.validate_admission(ctx, Operation.UPDATE, new, old, name=ctx.name,
                                                   subresource=subresource, dry_run=dry_run)
        if new == old or dry_run:
            return new, warnings
        if new["metadata"].get("deletionTimestamp") and not new["metadata"].get("finalizers") \
                and not _waits_for_graceful_stop(rt.plural, new) and not _namespace_finalizing(rt.plural, new):
            try:
                deleted = await storage.delete(key, expected_revision=current.revision)
            except ConflictError:
                continue
            await allocation.release(ctx, new)
            return objects.with_revision(new, deleted.revision), warnings
        try:
            kv = await storage.update(key, objects.encode_for_storage(rt.strategy.to_storage(new)),
                                      expected_revision=current.revision)
        except ConflictError:
            if wanted_rv:
                raise errors.conflict(rt.group, rt.plural, ctx.name, "the object has been modified; please apply "
                                      "your changes to the latest version and try again") from None
            continue
        except KeyNotFoundError:
            raise ctx.not_found() from None
        return objects.with_revision(new, kv.revision), warnings
    raise errors.conflict(rt.group, rt.plural, ctx.name, "too many concurrent updates; try again")


async def update(ctx: Ctx, subresource: str = "") -> Response:
    wanted = await read_object(ctx)
    objects.metadata_of(wanted)

    async def replace(_old: Obj) -> Obj:
        return objects.deep_copy(wanted)

    new, warnings = await guaranteed_update(ctx, replace, subresource=subresource)
    return json_response(new, 200, _warnings_header(warnings)) if warnings else respond_object(ctx, new)


def _patch_type(ctx: Ctx) -> str:
    media = body.media_type(ctx.request.headers.get("content-type", ""))
    kind = PATCH_TYPES.get(media)
    if kind is None:
        raise errors.unsupported_media_type(f"the body of the request was in an unknown format - accepted media "
                                            f"types include: {', '.join(PATCH_TYPES)}")
    if kind == "strategic" and not getattr(ctx.rt.strategy, "strategic_merge", True):  # custom resources
        accepted = ", ".join(m for m, k in PATCH_TYPES.items() if k != "strategic")
        raise errors.unsupported_media_type(f"the body of the request was in an unknown format - accepted media "
                                            f"types include: {accepted}")
    return kind


async def patch_object(ctx: Ctx, subresource: str = "") -> Response:
    kind = _patch_type(ctx)
    data = await body.read_body(ctx.request, ctx.app.config.max_request_body_bytes)
    if kind == "apply":
        return await _server_side_apply(ctx, data, subresource)
    document = body.decode(data, "application/json")
    rt = ctx.rt
    if kind == "json" and not isinstance(document, list):
        raise errors.bad_request("a JSON patch must be a list of operations")
    if kind != "json" and not isinstance(document, dict):
        raise errors.bad_request("a merge patch must be a JSON object")

    async def apply(old: Obj) -> Obj:
        old.get("metadata", {}).pop("resourceVersion", None)
        try:
            if kind == "json":
                new = patch.json_patch(old, document)
            elif kind == "merge":
                new = patch.merge_patch(old, document)
            else:
                new = patch.strategic_merge_patch(ctx.app.schema, rt.group, rt.version, rt.kind, old, document)
        except (ValueError, TypeError, KeyError, IndexError) as exc:
            code = getattr(exc, "code", 422 if kind == "json" else 400)
            raise errors.APIError(code, "Invalid" if code == 422 else "BadRequest", str(exc)) from None
        if not isinstance(new, dict):
            raise errors.bad_request("the patched document is not an object")
        objects.check_type(rt, new)
        return new

    new, warnings = await guaranteed_update(ctx, apply, subresource=subresource)
    return json_response(new, 200, _warnings_header(warnings)) if warnings else respond_object(ctx, new)


async def _server_side_apply(ctx: Ctx, data: bytes, subresource: str) -> Response:
    """PATCH with ``application/apply-patch+yaml``: apply to the live object, or create it."""
    request = fieldmanager.ServerSideApply(ctx, data, subresource)
    try:
        new, warnings = await guaranteed_update(ctx, request.mutation, subresource=subresource, record=request.record)
    except errors.APIError as err:
        if err.code != 404 or subresource:
            raise
        return await create(ctx, request.create_object(), record=request.record)
    return json_response(new, 200, _warnings_header(warnings)) if warnings else respond_object(ctx, new)


# ---------------------------------------------------------------------------------------------
# delete


def _namespace_finalizing(plural: str, obj: Obj) -> bool:
    """A terminating namespace stays until its ``spec.finalizers`` are gone (``/finalize``)."""
    return plural == "namespaces" and bool(obj.get("spec", {}).get("finalizers"))


def _waits_for_graceful_stop(plural: str, obj: Obj) -> bool:
    """Pods bound to a node stay until their kubelet confirms the stop (grace period 0)."""
    if plural != "pods":
        return False
    meta = obj.get("metadata", {})
    return bool(obj.get("spec", {}).get("nodeName")) and int(meta.get("deletionGracePeriodSeconds") or 0) > 0


async def _delete_options(ctx: Ctx) -> Obj:
    options: Obj = {}
    data = await body.read_body(ctx.request, ctx.app.config.max_request_body_bytes)
    if data.strip():
        decoded = body.decode(data, ctx.request.headers.get("content-type", "application/json"))
        if not isinstance(decoded, dict):
            raise errors.bad_request("DeleteOptions must be an object")
        options = decoded
    for param in ("gracePeriodSeconds", "propagationPolicy", "orphanDependents"):
        raw = ctx.query(param)
        if raw:
            options[param] = int(raw) if param == "gracePeriodSeconds" and raw.lstrip("-").isdigit() else raw
    policy = options.get("propagationPolicy")
    if policy not in (None, "Orphan", "Background", "Foreground"):
        raise errors.bad_request(f'propagationPolicy must be Orphan, Background or Foreground, not "{policy}"')
    grace = options.get("gracePeriodSeconds")
    if grace is not None and not isinstance(grace, int):
        raise errors.bad_request("gracePeriodSeconds must be an integer")
    return options


async def delete_one(ctx: Ctx, name: str, options: Obj, dry_run: bool) -> Obj:
    """Delete (or start deleting) one object; returns it as last seen."""
    rt = ctx.rt
    storage = ctx.app.storage
    key = ctx.key(name)
    for _attempt in range(MAX_RETRIES):
        try:
            current = await storage.get(key)
        except KeyNotFoundError:
            raise ctx.not_found(name) from None
        obj = rt.strategy.from_storage(decode(current).obj)
        meta = obj["metadata"]
        pre = options.get("preconditions") or {}
        if pre.get("uid") and pre["uid"] != meta.get("uid"):
            raise errors.conflict(rt.group, rt.plural, name, f"Precondition failed: UID in precondition: "
                                  f"{pre['uid']}, UID in object meta: {meta.get('uid')}")
        if pre.get("resourceVersion") and str(pre["resourceVersion"]) != str(current.revision):
            raise errors.conflict(rt.group, rt.plural, name, f"Precondition failed: ResourceVersion in precondition: "
                                  f"{pre['resourceVersion']}, ResourceVersion in object meta: {current.revision}")
        await admit.validate_admission(ctx, Operation.DELETE, None, obj, name=name, dry_run=dry_run)
        pending = _pending_deletion(rt.plural, obj, options)
        if dry_run:
            return obj
        if pending is not None:
            if pending == obj:
                return obj
            try:
                kv = await storage.update(key, objects.encode_for_storage(rt.strategy.to_storage(pending)),
                                          expected_revision=current.revision)
            except (ConflictError, KeyNotFoundError):
                continue
            return objects.with_revision(pending, kv.revision)
        try:
            deleted = await storage.delete(key, expected_revision=current.revision)
        except ConflictError:
            continue
        except KeyNotFoundError:
            raise ctx.not_found(name) from None
        await allocation.release(ctx, obj)
        return objects.with_revision(obj, deleted.revision)
    raise errors.conflict(rt.group, rt.plural, name, "too many concurrent updates; try again")


def _pending_deletion(plural: str, obj: Obj, options: Obj) -> Obj | None:
    """The object marked for deletion, or None when it can be removed at once."""
    meta = obj["metadata"]
    finalizers = list(meta.get("finalizers") or [])
    policy = options.get("propagationPolicy")
    if policy is None and options.get("orphanDependents") in (True, "true"):
        policy = "Orphan"
    if policy == "Orphan" and "orphan" not in finalizers:
        finalizers.append("orphan")
    elif policy == "Foreground" and "foregroundDeletion" not in finalizers:
        finalizers.append("foregroundDeletion")
    grace = 0
    if plural == "pods" and obj.get("spec", {}).get("nodeName"):
        default = obj.get("spec", {}).get("terminationGracePeriodSeconds", 30)
        grace = max(0, int(options.get("gracePeriodSeconds", default)))
    if plural == "namespaces" and obj.get("spec", {}).get("finalizers"):
        new = objects.deep_copy(obj)
        new["metadata"].setdefault("deletionTimestamp", objects.now_rfc3339())
        new["metadata"].setdefault("deletionGracePeriodSeconds", 0)
        new.setdefault("status", {})["phase"] = "Terminating"
        return new
    if not finalizers and grace == 0:
        return None
    if meta.get("deletionTimestamp"):
        if grace == 0 and not finalizers and not meta.get("finalizers"):
            return None
        if plural == "pods" and grace < int(meta.get("deletionGracePeriodSeconds") or 0):
            new = objects.deep_copy(obj)
            new["metadata"]["deletionGracePeriodSeconds"] = grace
            return new
        return obj
    new = objects.deep_copy(obj)
    when = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=grace)
    new["metadata"]["deletionTimestamp"] = rfc3339(when)
    new["metadata"]["deletionGracePeriodSeconds"] = grace
    if finalizers:
        new["metadata"]["finalizers"] = finalizers
    return new


async def delete(ctx: Ctx) -> Response:
    options = await _delete_options(ctx)
    obj = await delete_one(ctx, ctx.name, options, ctx.dry_run)
    return respond_object(ctx, obj)


async def delete_collection(ctx: Ctx) -> Response:
    from kapi.rest import filters

    options = await _delete_options(ctx)
    dry_run = ctx.dry_run
    match = filters.build(ctx.rt, ctx.query("labelSelector"), ctx.query("fieldSelector"))
    page = await ctx.app.storage.list(ctx.prefix())
    deleted = []
    for kv in page.items:
        obj = ctx.rt.strategy.from_storage(decode(kv).obj)
        if match is not None and not match(obj):
            continue
        try:
            deleted.append(await delete_one(ctx, obj["metadata"]["name"], options, dry_run))
        except errors.APIError as err:
            if err.code != 404:
                raise
    items = deleted
    return json_response({"kind": ctx.rt.list_kind, "apiVersion": ctx.rt.group_version,
                          "metadata": {"resourceVersion": str(page.revision)}, "items": items})
