"""Subresources with their own shapes: ``pods/binding`` and ``*/scale`` (autoscaling/v1 Scale)."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from kapi import errors
from kapi.kinds import pods
from kapi.rest import body, selectorstr
from kapi.rest.context import Ctx, json_response
from kapi.rest.write import guaranteed_update, read_object

Obj = dict[str, Any]


async def bind_pod(ctx: Ctx) -> Response:
    """POST pods/NAME/binding: assign the pod to ``target.name`` (a Node), once."""
    data = await body.read_body(ctx.request, ctx.app.config.max_request_body_bytes)
    binding = body.decode_object(data, ctx.request.headers.get("content-type", "application/json"))
    bind_name = (binding.get("metadata") or {}).get("name", ctx.name)
    if bind_name != ctx.name:
        raise errors.bad_request(f"the name of the binding ({bind_name}) does not match the pod ({ctx.name})")

    async def assign(pod: Obj) -> Obj:
        pod["metadata"].pop("resourceVersion", None)
        pods.bind_pod(pod, binding)
        return pod

    await guaranteed_update(ctx, assign, subresource="binding")
    return json_response({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201},
                         201)


def _scale_of(ctx: Ctx, obj: Obj) -> Obj:
    meta = obj["metadata"]
    spec = obj.get("spec", {})
    selector = spec.get("selector") or {}
    return {
        "kind": "Scale", "apiVersion": "autoscaling/v1",
        "metadata": {"name": meta["name"], "namespace": meta.get("namespace", ""), "uid": meta.get("uid"),
                     "resourceVersion": meta.get("resourceVersion"),
                     "creationTimestamp": meta.get("creationTimestamp")},
        "spec": {"replicas": spec.get("replicas", 0)},
        "status": {"replicas": obj.get("status", {}).get("replicas", 0),
                   "selector": selectorstr.to_string(selector)},
    }


async def get_scale(ctx: Ctx) -> Response:
    from kapi.storage import KeyNotFoundError
    from kapi.watchcache import decode

    try:
        obj = decode(await ctx.app.storage.get(ctx.key())).obj
    except KeyNotFoundError:
        raise ctx.not_found() from None
    return json_response(_scale_of(ctx, obj))


async def _write_scale(ctx: Ctx, scale: Obj) -> Response:
    replicas = (scale.get("spec") or {}).get("replicas")
    if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
        raise errors.invalid("autoscaling", "Scale", ctx.name, (errors.Cause(
            "spec.replicas", f"Invalid value: {replicas!r}: must be greater than or equal to 0"),))
    wanted_rv = (scale.get("metadata") or {}).get("resourceVersion")

    async def set_replicas(obj: Obj) -> Obj:
        if not wanted_rv:
            obj["metadata"].pop("resourceVersion", None)
        else:
            obj["metadata"]["resourceVersion"] = wanted_rv
        obj.setdefault("spec", {})["replicas"] = replicas
        return obj

    new, _ = await guaranteed_update(ctx, set_replicas, subresource="scale")
    return json_response(_scale_of(ctx, new))


async def put_scale(ctx: Ctx) -> Response:
    data = await body.read_body(ctx.request, ctx.app.config.max_request_body_bytes)
    scale = body.decode_object(data, ctx.request.headers.get("content-type", "application/json"))
    return await _write_scale(ctx, scale)


async def patch_scale(ctx: Ctx) -> Response:
    from kapi import patch
    from kapi.storage import KeyNotFoundError
    from kapi.watchcache import decode

    data = await body.read_body(ctx.request, ctx.app.config.max_request_body_bytes)
    document = body.decode(data, "application/json")
    try:
        obj = decode(await ctx.app.storage.get(ctx.key())).obj
    except KeyNotFoundError:
        raise ctx.not_found() from None
    current = _scale_of(ctx, obj)
    current["metadata"].pop("resourceVersion", None)
    media = body.media_type(ctx.request.headers.get("content-type", ""))
    try:
        if media == "application/json-patch+json":
            scale = patch.json_patch(current, document)
        else:
            scale = patch.merge_patch(current, document)
    except (ValueError, TypeError, KeyError, IndexError) as exc:
        raise errors.bad_request(f"the patch could not be applied: {exc}") from None
    return await _write_scale(ctx, scale)


SCALE = {"get": get_scale, "update": put_scale, "patch": patch_scale}

__all__ = ["SCALE", "bind_pod", "read_object"]
