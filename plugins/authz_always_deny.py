"""AlwaysDeny authorizer (``--authorization-mode=AlwaysDeny``).

Denies every request it is asked about; useful at the end of a chain or in tests.
"""

from __future__ import annotations

from kapi import Decision, RequestAttributes, hookimpl

ALIASES = ("AlwaysDeny",)


@hookimpl
def kapi_authorize(attributes: RequestAttributes) -> Decision:
    """Deny."""
    return Decision.DENY
