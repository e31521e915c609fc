"""Review APIs of authorization.k8s.io/v1, answered on create and never stored.

* ``SelfSubjectAccessReview``: may I do this? (``kubectl auth can-i VERB RESOURCE``);
* ``SubjectAccessReview``: may ``spec.user`` / ``spec.groups`` do this? (webhooks, proxies);
* ``LocalSubjectAccessReview``: the same inside the request's namespace;
* ``SelfSubjectRulesReview``: what may I do in ``spec.namespace``? (``kubectl auth can-i --list``).

Access reviews run the configured authorizer chain exactly as a request would be decided, except
that an authorizer's error does not fail the review: it is reported in ``status.evaluationError``
and the next authorizer is asked (kube's union). ``status.allowed`` is true on ALLOW,
``status.denied`` true on an explicit DENY.

Rules reviews ask each authorizer plugin of the chain, in order, for an optional module-level
function (not a hook)::

    def rules_for(user: UserInfo, namespace: str, app: App) -> Mapping[str, Any]   # may be async

returning a ``SubjectRulesReviewStatus``-shaped mapping: ``resourceRules`` (``verbs``,
``apiGroups``, ``resources``, ``resourceNames``), ``nonResourceRules`` (``verbs``,
``nonResourceURLs``), ``incomplete`` and optionally ``evaluationError``. The answers are
concatenated; an authorizer without ``rules_for`` makes the answer ``incomplete``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.responses import Response

from kapi import errors, hooks
from kapi.kinds.access import as_dict, as_list
from kapi.rest.context import Ctx, json_response
from kapi.types import Decision, RequestAttributes, UserInfo

Obj = dict[str, Any]


async def _review(ctx: Ctx) -> Obj:
    """The posted review (namespaced kinds get the request's namespace), checked against its kind's
    validation: 422 with kube's causes."""
    from kapi.rest.write import read_object

    review = await read_object(ctx)
    if ctx.rt.namespaced:
        meta = review.get("metadata")
        if not isinstance(meta, dict):
            meta = review["metadata"] = {}
        if meta.get("namespace") not in (None, "", ctx.info.namespace):
            raise errors.bad_request("the namespace of the provided object does not match the namespace sent on "
                                     "the request")
        meta["namespace"] = ctx.info.namespace
    causes = ctx.rt.strategy.validate(review)
    if causes:
        raise errors.invalid(ctx.rt.group, ctx.rt.kind, "", tuple(causes))
    return review


def attributes_from(spec: Mapping[str, Any], user: UserInfo) -> RequestAttributes:
    """``AuthorizationAttributesFrom``: the request a review's spec describes, for ``user``."""
    resource = spec.get("resourceAttributes")
    if isinstance(resource, Mapping):
        return RequestAttributes(
            verb=str(resource.get("verb") or ""), path="", is_resource_request=True,
            api_group=str(resource.get("group") or ""), api_version=str(resource.get("version") or ""),
            resource=str(resource.get("resource") or ""), subresource=str(resource.get("subresource") or ""),
            namespace=str(resource.get("namespace") or ""), name=str(resource.get("name") or ""), user=user)
    non_resource = as_dict(spec.get("nonResourceAttributes"))
    return RequestAttributes(verb=str(non_resource.get("verb") or ""), path=str(non_resource.get("path") or ""),
                             is_resource_request=False, user=user)


def user_from(spec: Mapping[str, Any]) -> UserInfo:
    """The subject of a SubjectAccessReview spec (taken as given: no groups are added)."""
    extra = {str(k): tuple(str(v) for v in as_list(values)) for k, values in as_dict(spec.get("extra")).items()}
    return UserInfo(name=str(spec.get("user") or ""), uid=str(spec.get("uid") or ""),
                    groups=tuple(str(g) for g in as_list(spec.get("groups"))), extra=extra)


async def decide(ctx: Ctx, attributes: RequestAttributes) -> tuple[Decision, list[str]]:
    """The chain's tri-state decision and the errors met on the way (errors do not stop it)."""
    problems: list[str] = []
    for impl in ctx.app.chains.authorize:
        try:
            result = await hooks.invoke("kapi_authorize", impl, {"attributes": attributes, "app": ctx.app})
        except errors.APIError as err:
            problems.append(err.message)
            continue
        if result in (Decision.ALLOW, Decision.DENY):
            return result, problems
    return Decision.NO_OPINION, problems


async def _answer(ctx: Ctx, review: Obj, attributes: RequestAttributes) -> Response:
    decision, problems = await decide(ctx, attributes)
    status: Obj = {"allowed": decision is Decision.ALLOW}
    if decision is Decision.DENY:
        status["denied"] = True
    if problems:
        status["evaluationError"] = "; ".join(problems)
    review["status"] = status
    review.setdefault("metadata", {}).setdefault("creationTimestamp", None)
    return json_response(review, 201)


async def self_subject_access_review(ctx: Ctx) -> Response:
    """POST selfsubjectaccessreviews: the caller's own access."""
    review = await _review(ctx)
    return await _answer(ctx, review, attributes_from(as_dict(review.get("spec")), ctx.user))


async def subject_access_review(ctx: Ctx) -> Response:
    """POST subjectaccessreviews: the access of the user the spec names."""
    review = await _review(ctx)
    spec = as_dict(review.get("spec"))
    return await _answer(ctx, review, attributes_from(spec, user_from(spec)))


async def local_subject_access_review(ctx: Ctx) -> Response:
    """POST namespaces/NS/localsubjectaccessreviews: a SubjectAccessReview confined to NS."""
    if not ctx.info.namespace:
        raise errors.bad_request("namespace is required on this type: ")
    review = await _review(ctx)
    spec = as_dict(review.get("spec"))
    return await _answer(ctx, review, attributes_from(spec, user_from(spec)))


async def rules_for(ctx: Ctx, user: UserInfo, namespace: str) -> Obj:
    """The union of the chain's ``rules_for`` answers (a SubjectRulesReviewStatus)."""
    resource: list[Any] = []
    non_resource: list[Any] = []
    incomplete = False
    problems: list[str] = []
    for impl in ctx.app.chains.authorize:
        plugin = ctx.app.pm.get_plugin(impl.plugin)
        resolver = getattr(plugin, "rules_for", None)
        if resolver is None:
            incomplete = True
            continue
        try:
            answer = as_dict(await hooks.await_me_maybe(resolver(user, namespace, ctx.app)))
        except errors.APIError as err:
            incomplete = True
            problems.append(err.message)
            continue
        resource.extend(as_list(answer.get("resourceRules")))
        non_resource.extend(as_list(answer.get("nonResourceRules")))
        incomplete = incomplete or bool(answer.get("incomplete"))
        if answer.get("evaluationError"):
            problems.append(str(answer["evaluationError"]))
    status: Obj = {"resourceRules": resource, "nonResourceRules": non_resource, "incomplete": incomplete}
    if problems:
        status["evaluationError"] = "; ".join(problems)
    return status


async def self_subject_rules_review(ctx: Ctx) -> Response:
    """POST selfsubjectrulesreviews: everything the caller may do in ``spec.namespace``."""
    review = await _review(ctx)
    namespace = str(as_dict(review.get("spec")).get("namespace") or "")
    if not namespace:
        raise errors.bad_request("no namespace on request")
    review["status"] = await rules_for(ctx, ctx.user, namespace)
    review.setdefault("metadata", {}).setdefault("creationTimestamp", None)
    return json_response(review, 201)


REVIEWS = {
    "selfsubjectaccessreviews": self_subject_access_review,
    "subjectaccessreviews": subject_access_review,
    "localsubjectaccessreviews": local_subject_access_review,
    "selfsubjectrulesreviews": self_subject_rules_review,
}
