"""AlwaysDeny authorizer (``--authorization-mode=AlwaysDeny``).

Denies every request it is asked about; useful at the end of a chain or in tests.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kapi import Decision, RequestAttributes, UserInfo, hookimpl

ALIASES = ("AlwaysDeny",)


@hookimpl
def kapi_authorize(attributes: RequestAttributes) -> Decision:
    """Deny."""
    return Decision.DENY


def rules_for(user: UserInfo, namespace: str, app: object) -> Mapping[str, Any]:
    """Nothing, for ``kubectl auth can-i --list`` (SelfSubjectRulesReview)."""
    return {"resourceRules": [], "nonResourceRules": [], "incomplete": False}
