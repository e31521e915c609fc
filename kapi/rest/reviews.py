"""Review APIs answered on create and never stored: ``SelfSubjectAccessReview``.

``kubectl auth can-i VERB RESOURCE`` posts one; the answer comes from the configured authorizer
chain exactly as a real request would be decided.
"""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from kapi import errors
from kapi.rest.context import Ctx, json_response
from kapi.types import Decision, RequestAttributes


async def self_subject_access_review(ctx: Ctx) -> Response:
    from kapi.middleware import authorize
    from kapi.rest.write import read_object

    review = await read_object(ctx)
    spec = review.get("spec")
    if not isinstance(spec, dict):
        raise errors.invalid(ctx.rt.group, ctx.rt.kind, "", (errors.Cause("spec", "Required value",
                                                                          "FieldValueRequired"),))
    resource: dict[str, Any] | None = spec.get("resourceAttributes")
    non_resource: dict[str, Any] | None = spec.get("nonResourceAttributes")
    if bool(resource) == bool(non_resource):
        raise errors.invalid(ctx.rt.group, ctx.rt.kind, "", (errors.Cause(
            "spec.resourceAttributes", "exactly one of nonResourceAttributes or resourceAttributes must be specified",
            "FieldValueInvalid"),))
    if resource:
        attributes = RequestAttributes(
            verb=str(resource.get("verb", "")), path="", is_resource_request=True,
            api_group=str(resource.get("group", "")), api_version=str(resource.get("version", "")),
            resource=str(resource.get("resource", "")), subresource=str(resource.get("subresource", "")),
            namespace=str(resource.get("namespace", "")), name=str(resource.get("name", "")), user=ctx.user)
    else:
        assert non_resource is not None
        attributes = RequestAttributes(verb=str(non_resource.get("verb", "")), path=str(non_resource.get("path", "")),
                                       is_resource_request=False, user=ctx.user)
    decision = await authorize(ctx.app, attributes)
    status: dict[str, Any] = {"allowed": decision is Decision.ALLOW}
    if decision is Decision.DENY and ctx.app.chains.authorizer_names:
        status["denied"] = False
    review["status"] = status
    review.setdefault("metadata", {}).setdefault("creationTimestamp", None)
    return json_response(review, 201)


REVIEWS = {"selfsubjectaccessreviews": self_subject_access_review}
