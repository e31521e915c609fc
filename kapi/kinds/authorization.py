"""The authorization.k8s.io/v1 review resources beside SelfSubjectAccessReview (``kapi.kinds.misc``).

* ``SubjectAccessReview`` (cluster-scoped): may user X do Y? (webhooks, proxies, ``kubectl auth
  can-i --as`` goes through impersonation instead);
* ``LocalSubjectAccessReview`` (namespaced): the same, limited to the request's namespace;
* ``SelfSubjectRulesReview`` (cluster-scoped): what may I do in a namespace (``kubectl auth can-i
  --list``).

All are create-only and never stored; the answers come from ``kapi.rest.reviews``. The strategies
hold kube's request validation (``ValidateSubjectAccessReview`` and friends) so the handler can
return the same 422 causes.
"""

from __future__ import annotations

from typing import Any

from kapi.errors import Cause
from kapi.kinds import fielderrors as fe
from kapi.kinds.access import as_dict, as_list
from kapi.resources import ResourceType, Strategy

Obj = dict[str, Any]

GROUP = "authorization.k8s.io"


def validate_access_spec(spec: Any, *, self_review: bool) -> list[Cause]:
    """``ValidateSubjectAccessReviewSpec`` (``self_review``: the Self variant, which has no user)."""
    spec = as_dict(spec)
    resource, non_resource = spec.get("resourceAttributes"), spec.get("nonResourceAttributes")
    errs: list[Cause] = []
    if resource is not None and non_resource is not None:
        errs.append(fe.invalid("spec.nonResourceAttributes", fe.GoRepr(str(non_resource)),
                               "cannot be specified in combination with resourceAttributes"))
    if resource is None and non_resource is None:
        errs.append(fe.invalid("spec.resourceAttributes", None,
                               "exactly one of nonResourceAttributes or resourceAttributes must be specified"))
    if not self_review and not spec.get("user") and not as_list(spec.get("groups")):
        errs.append(fe.invalid("spec.user", spec.get("user") or "", "at least one of user or group must be specified"))
    return errs


def _metadata_empty(obj: Obj, namespace_allowed: bool = False) -> list[Cause]:
    meta = {k: v for k, v in as_dict(obj.get("metadata")).items()
            if k != "managedFields" and not (namespace_allowed and k == "namespace")}
    if any(v not in (None, "", {}, []) for v in meta.values()):
        detail = "must be empty except for namespace" if namespace_allowed else "must be empty"
        return [fe.invalid("metadata", fe.GoRepr(str(obj.get("metadata"))), detail)]
    return []


class SubjectAccessReviewStrategy(Strategy):
    """``ValidateSubjectAccessReview``: one kind of attributes, a user or a group, empty metadata."""

    def validate(self, obj: Obj) -> list[Cause]:
        return [*validate_access_spec(obj.get("spec"), self_review=False), *_metadata_empty(obj)]


class LocalSubjectAccessReviewStrategy(Strategy):
    """``ValidateLocalSubjectAccessReview``: resource attributes only, in the review's namespace;
    metadata only a namespace."""

    def validate(self, obj: Obj) -> list[Cause]:
        spec = as_dict(obj.get("spec"))
        errs = [*validate_access_spec(spec, self_review=False), *_metadata_empty(obj, namespace_allowed=True)]
        resource = spec.get("resourceAttributes")
        namespace = as_dict(obj.get("metadata")).get("namespace") or ""
        if isinstance(resource, dict) and (resource.get("namespace") or "") != namespace:
            errs.append(fe.invalid("spec.resourceAttributes.namespace", resource.get("namespace") or "",
                                   "must match metadata.namespace"))
        if spec.get("nonResourceAttributes") is not None:
            errs.append(fe.invalid("spec.nonResourceAttributes", fe.GoRepr(str(spec["nonResourceAttributes"])),
                                   "disallowed on this kind of request"))
        return errs


class SelfSubjectRulesReviewStrategy(Strategy):
    """SelfSubjectRulesReview: only ``spec.namespace`` is read."""


def resources() -> list[ResourceType]:
    """SubjectAccessReview, LocalSubjectAccessReview and SelfSubjectRulesReview (create only)."""
    return [
        ResourceType(GROUP, "v1", "SubjectAccessReview", "subjectaccessreviews", "subjectaccessreview", False,
                     verbs=("create",), strategy=SubjectAccessReviewStrategy()),
        ResourceType(GROUP, "v1", "LocalSubjectAccessReview", "localsubjectaccessreviews",
                     "localsubjectaccessreview", True, verbs=("create",), strategy=LocalSubjectAccessReviewStrategy()),
        ResourceType(GROUP, "v1", "SelfSubjectRulesReview", "selfsubjectrulesreviews", "selfsubjectrulesreview",
                     False, verbs=("create",), strategy=SelfSubjectRulesReviewStrategy()),
    ]
