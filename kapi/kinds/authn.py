"""The authentication.k8s.io/v1 review resources: TokenReview and SelfSubjectReview.

Both are create-only, cluster-scoped and never stored: a TokenReview asks the API server to run
its authenticators on ``spec.token`` (what webhooks and sidecars call to check a bearer token);
a SelfSubjectReview returns the caller's own identity (``kubectl auth whoami``). Their handlers
live in ``kapi.rest.authn_reviews``.
"""

from __future__ import annotations

from kapi.resources import ResourceType

GROUP = "authentication.k8s.io"


def authn_resources() -> list[ResourceType]:
    """The ResourceTypes of TokenReview and SelfSubjectReview (verbs: create only)."""
    return [
        ResourceType(GROUP, "v1", "TokenReview", "tokenreviews", "tokenreview", False, verbs=("create",)),
        ResourceType(GROUP, "v1", "SelfSubjectReview", "selfsubjectreviews", "selfsubjectreview", False,
                     verbs=("create",)),
    ]
