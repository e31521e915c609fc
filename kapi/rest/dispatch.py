"""The resource endpoint: ``/api/v1/...`` and ``/apis/GROUP/VERSION/...`` -> verb handler.

Authentication and authorization already ran (middleware); this resolves the resource, checks
the verb and subresource it supports and calls the handler. Subresources served here: ``status``
(get/update/patch), ``scale`` (deployments, replicasets), ``binding`` and ``log`` (pods), ``finalize``
(namespaces, update only). Non-stored review
resources (``selfsubjectaccessreviews``) answer on create.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response

from kapi import errors
from kapi.rest import authn_reviews, logs, read, reviews, subresources, tokens, write
from kapi.rest.context import Ctx

if TYPE_CHECKING:
    from kapi.app import App

Handler = Callable[[Ctx], Awaitable[Response]]

MAIN: dict[str, Handler] = {
    "get": read.get,
    "list": read.list_objects,
    "watch": read.watch,
    "create": write.create,
    "update": write.update,
    "patch": write.patch_object,
    "delete": write.delete,
    "deletecollection": write.delete_collection,
}

#: non-stored review kinds, answered on create
REVIEWS: dict[str, Handler] = {**reviews.REVIEWS, **authn_reviews.REVIEWS}

STATUS: dict[str, Handler] = {
    "get": read.get,
    "update": lambda ctx: write.update(ctx, "status"),
    "patch": lambda ctx: write.patch_object(ctx, "status"),
}


async def finalize_namespace(ctx: Ctx) -> Response:
    """PUT namespaces/NAME/finalize: replace ``spec.finalizers`` (the namespace controller removes
    ``kubernetes`` once the content is gone; with no finalizer left a terminating namespace goes)."""
    return await write.update(ctx, "finalize")


def _subresource_handler(ctx: Ctx) -> Handler | None:
    sub, verb = ctx.info.subresource, ctx.info.verb
    if sub == "status":
        return STATUS.get(verb)
    if sub == "scale":
        return subresources.SCALE.get(verb)
    if sub == "binding" and ctx.rt.plural == "pods" and verb == "create":
        return subresources.bind_pod
    if sub == "finalize" and ctx.rt.plural == "namespaces" and verb == "update":
        return finalize_namespace
    if sub == "token" and ctx.rt.plural == "serviceaccounts" and verb == "create":
        return tokens.create_token
    if sub == "log" and ctx.rt.plural == "pods" and verb == "get":
        return logs.pod_log
    return None


def make_endpoint(app: App) -> Callable[[Request], Awaitable[Response]]:
    """The Starlette endpoint serving every resource path of ``app``."""

    async def endpoint(request: Request) -> Response:
        info = request.scope["kapi.info"]
        if not info.is_resource_request:
            raise errors.not_found_path(info.path)
        rt = app.registry.lookup(info.api_group, info.api_version, info.resource)
        if rt is None:
            raise errors.not_found_path(info.path)
        if info.namespace and not rt.namespaced and info.resource != "namespaces":
            raise errors.not_found_path(info.path)
        ctx = Ctx(app=app, rt=rt, info=info, user=request.scope["kapi.user"], request=request)
        review = REVIEWS.get(rt.plural)
        if review is not None:
            if info.verb != "create" or info.subresource:
                raise errors.method_not_allowed(f"{rt.plural} only supports create")
            return await review(ctx)
        if info.subresource:
            if info.subresource not in rt.subresources:
                raise errors.not_found_path(info.path)
            handler = _subresource_handler(ctx)
        else:
            if info.verb in ("get", "update", "patch", "delete") and not info.name:
                raise errors.method_not_allowed(f"{info.verb} needs a resource name")
            handler = MAIN.get(info.verb) if info.verb in rt.verbs else None
        if handler is None:
            target = f"{rt.qualified}/{info.subresource}" if info.subresource else rt.qualified
            raise errors.method_not_allowed(f"the server does not allow this method on the requested resource "
                                            f"({info.verb} {target})")
        return await handler(ctx)

    return endpoint
