"""Typed, frozen data that crosses every hook boundary.

Plugins receive and return these, never starlette objects or loose dicts, so a plugin and its
tests need no web framework. The shapes mirror k8s.io/apiserver: ``UserInfo`` is ``user.Info``,
``RequestAttributes`` is ``authorizer.AttributesRecord``, ``Decision`` is ``authorizer.Decision``.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

ANONYMOUS = "system:anonymous"
UNAUTHENTICATED = "system:unauthenticated"
AUTHENTICATED = "system:authenticated"
MASTERS = "system:masters"

READ_ONLY_VERBS = frozenset({"get", "list", "watch"})


class Decision(enum.Enum):
    """An authorizer's answer. ``None`` from a hook means NO_OPINION (try the next authorizer)."""

    DENY = "Deny"
    ALLOW = "Allow"
    NO_OPINION = "NoOpinion"


class Operation(enum.Enum):
    """Admission operations, named as in AdmissionReview."""

    CREATE = "CREATE"
    UPDATE = "UPDATE"
    DELETE = "DELETE"
    CONNECT = "CONNECT"


@dataclass(frozen=True)
class UserInfo:
    """An authenticated identity: ``user.Info``. Extra keys are lowercase and namespaced."""

    name: str
    uid: str = ""
    groups: tuple[str, ...] = ()
    extra: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The UserInfo JSON shape used by TokenReview, SubjectAccessReview and audit events."""
        out: dict[str, Any] = {"username": self.name, "groups": list(self.groups)}
        if self.uid:
            out["uid"] = self.uid
        if self.extra:
            out["extra"] = {k: list(v) for k, v in self.extra.items()}
        return out


ANONYMOUS_USER = UserInfo(name=ANONYMOUS, groups=(UNAUTHENTICATED,))


@dataclass(frozen=True)
class ClientCertificate:
    """A TLS client certificate that the server already verified against the client CA.

    ``pem`` is the leaf certificate; ``chain`` the rest as presented. Only the TLS layer fills this:
    its presence means the handshake verified it.
    """

    pem: str
    chain: tuple[str, ...] = ()


@dataclass(frozen=True)
class AuthnRequest:
    """What authenticators see of an HTTP request.

    ``headers`` keys are lowercase; a repeated header's values are joined with ", ".
    ``client_cert`` is set only when a verified certificate was presented. ``remote`` is
    ``(host, port)`` or None for in-process transports.
    """

    method: str
    path: str
    headers: Mapping[str, str]
    client_cert: ClientCertificate | None = None
    remote: tuple[str, int] | None = None
    #: audiences the credential must be valid for (TokenReview ``spec.audiences``); empty = the
    #: API server's own audiences
    audiences: tuple[str, ...] = ()

    def bearer_token(self) -> str | None:
        """The token of an ``Authorization: Bearer`` header, or None. Never log the result."""
        value = self.headers.get("authorization", "")
        scheme, _, token = value.partition(" ")
        if scheme.lower() != "bearer":
            return None
        token = token.strip()
        return token or None


@dataclass(frozen=True)
class RequestAttributes:
    """What authorizers see: ``authorizer.AttributesRecord``.

    For resource requests ``resource`` is the plural name (``pods``) and ``subresource`` e.g.
    ``status``; ``api_group`` is ``""`` for the core group. For non-resource requests
    ``is_resource_request`` is False and ``path`` carries the URL path.
    """

    verb: str
    path: str
    is_resource_request: bool
    api_group: str = ""
    api_version: str = ""
    resource: str = ""
    subresource: str = ""
    namespace: str = ""
    name: str = ""
    user: UserInfo = ANONYMOUS_USER

    @property
    def is_read_only(self) -> bool:
        """True for get, list and watch (derived from the verb, as in Kubernetes)."""
        return self.verb in READ_ONLY_VERBS


@dataclass(frozen=True)
class AdmissionRequest:
    """What admission plugins see: AdmissionReview's request, with objects as plain dicts.

    ``obj`` is the incoming object (None on DELETE); ``old_obj`` the stored one (None on CREATE).
    Mutating plugins return a new dict; validating plugins must not change ``obj``.
    ``warnings`` is the one mutable field: a plugin appends a sentence to warn the client without
    rejecting (it reaches the ``Warning`` response header); every plugin of one request shares it.
    """

    operation: Operation
    kind: str
    api_group: str
    api_version: str
    resource: str
    subresource: str
    namespace: str
    name: str
    obj: Mapping[str, Any] | None
    old_obj: Mapping[str, Any] | None
    user: UserInfo
    dry_run: bool = False
    warnings: list[str] = field(default_factory=list, compare=False)
