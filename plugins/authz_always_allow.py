"""AlwaysAllow authorizer (``--authorization-mode=AlwaysAllow``).

Allows every request of every authenticated caller. Use it only on a server whose callers are all
trusted: as kube-apiserver does, kapi turns anonymous authentication off when this mode is
configured, so callers must still present a client certificate or token.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kapi import Decision, RequestAttributes, UserInfo, hookimpl

ALIASES = ("AlwaysAllow",)


@hookimpl
def kapi_authorize(attributes: RequestAttributes) -> Decision:
    """Allow."""
    return Decision.ALLOW


def rules_for(user: UserInfo, namespace: str, app: object) -> Mapping[str, Any]:
    """Everything, for ``kubectl auth can-i --list`` (SelfSubjectRulesReview)."""
    return {"resourceRules": [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}],
            "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}], "incomplete": False}
