"""Leases (coordination.k8s.io/v1) and SelfSubjectAccessReviews (authorization.k8s.io/v1).

Leases carry leader election and node heartbeats: a few range checks and the HOLDER column.
SelfSubjectAccessReviews are create-only and never stored; the strategy validates the request
(exactly one of resourceAttributes / nonResourceAttributes, empty metadata).
"""

from __future__ import annotations

from typing import Any

from kapi.errors import Cause
from kapi.kinds import fielderrors as fe
from kapi.kinds.access import as_dict
from kapi.kinds.formats import is_qualified_name
from kapi.kinds.printing import AGE, age
from kapi.resources import ALL_VERBS, Column, ResourceType, Strategy

Obj = dict[str, Any]

LEASE_STRATEGIES = ("OldestEmulationVersion",)


def validate_lease_spec(spec: Any) -> list[Cause]:
    """``ValidateLeaseSpec``."""
    spec = as_dict(spec)
    errs: list[Cause] = []
    duration = spec.get("leaseDurationSeconds")
    if isinstance(duration, int) and duration <= 0:
        errs.append(fe.invalid("spec.leaseDurationSeconds", duration, "must be greater than 0"))
    errs.extend(fe.nonnegative("spec.leaseTransitions", spec.get("leaseTransitions")))
    strategy = spec.get("strategy")
    if strategy:
        if "/" not in str(strategy):
            if strategy not in LEASE_STRATEGIES:
                errs.append(fe.not_supported("spec.strategy", strategy, LEASE_STRATEGIES))
        else:
            errs.extend(fe.each_invalid("spec.strategy", strategy, is_qualified_name(str(strategy))))
    elif spec.get("preferredHolder"):
        errs.append(fe.forbidden("spec.preferredHolder", "may only be specified if `strategy` is defined"))
    return errs


class LeaseStrategy(Strategy):
    """Leases (``leaseStrategy``)."""

    def validate(self, obj: Obj) -> list[Cause]:
        return validate_lease_spec(obj.get("spec"))

    def columns(self) -> list[Column]:
        return [Column("Holder", description="holderIdentity contains the identity of the holder of a current lease."),
                AGE]

    def cells(self, obj: Obj) -> list[Any]:
        return [str(as_dict(obj.get("spec")).get("holderIdentity") or ""), age(obj)]


class SelfSubjectAccessReviewStrategy(Strategy):
    """SelfSubjectAccessReviews: request validation only (``ValidateSelfSubjectAccessReview``)."""

    def validate(self, obj: Obj) -> list[Cause]:
        spec = as_dict(obj.get("spec"))
        resource, non_resource = spec.get("resourceAttributes"), spec.get("nonResourceAttributes")
        errs: list[Cause] = []
        if resource is not None and non_resource is not None:
            errs.append(fe.invalid("spec.nonResourceAttributes", fe.GoRepr(str(non_resource)),
                                   "cannot be specified in combination with resourceAttributes"))
        if resource is None and non_resource is None:
            errs.append(fe.invalid("spec.resourceAttributes", None,
                                   "exactly one of nonResourceAttributes or resourceAttributes must be specified"))
        if any(v not in (None, "", {}, []) for v in as_dict(obj.get("metadata")).values()):
            errs.append(fe.invalid("metadata", fe.GoRepr(str(obj.get("metadata"))), "must be empty"))
        return errs


def resources() -> list[ResourceType]:
    return [
        ResourceType("coordination.k8s.io", "v1", "Lease", "leases", "lease", True, verbs=ALL_VERBS,
                     storage_resource="leases", strategy=LeaseStrategy()),
        ResourceType("authorization.k8s.io", "v1", "SelfSubjectAccessReview", "selfsubjectaccessreviews",
                     "selfsubjectaccessreview", False, verbs=("create",), strategy=SelfSubjectAccessReviewStrategy()),
    ]
