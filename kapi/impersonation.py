"""User impersonation: acting as another user with ``Impersonate-*`` headers (``kubectl --as``).

Headers (kube-apiserver's, case-insensitive):

* ``Impersonate-User: NAME`` - the user to act as; ``system:serviceaccount:NS:NAME`` means that
  service account (its groups ``system:serviceaccounts`` and ``system:serviceaccounts:NS`` are
  added when no group is asked for);
* ``Impersonate-Group: GROUP`` - repeatable; the groups to act with;
* ``Impersonate-Uid: UID``;
* ``Impersonate-Extra-KEY: VALUE`` - repeatable; extra user info (KEY is lowercased and
  %-decoded).

Groups, UID and extras need a user. The caller must be allowed the verb ``impersonate`` on each
thing asked for, checked one by one through the authorizer chain: ``users`` (name), ``groups``
(name), ``serviceaccounts`` (namespace and name) in the core group, and ``uids`` (name) and
``userextras/KEY`` (value) in ``authentication.k8s.io``. The first refusal is a 403 naming it.
The request then runs as the impersonated user, with ``system:authenticated`` added unless the
groups already say ``system:authenticated`` or ``system:unauthenticated`` (``system:anonymous``
gets ``system:unauthenticated`` instead). The impersonation headers are removed, and the original
caller is kept in ``scope["kapi.impersonator"]``.

``Impersonate`` is a pure-ASGI middleware placed after authentication and before authorization
(``kapi.middleware.build_middleware``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import unquote

from starlette.types import ASGIApp, Receive, Scope, Send

from kapi import errors
from kapi.types import ANONYMOUS, AUTHENTICATED, UNAUTHENTICATED, Decision, RequestAttributes, UserInfo

if TYPE_CHECKING:
    from kapi.app import App

USER, GROUP, UID, EXTRA = "impersonate-user", "impersonate-group", "impersonate-uid", "impersonate-extra-"
AUTHN_GROUP = "authentication.k8s.io"
SA_PREFIX = "system:serviceaccount:"
SA_GROUP = "system:serviceaccounts"
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


@dataclass(frozen=True)
class Request:
    """One thing to impersonate, as the authorization check it needs."""

    resource: str
    name: str
    namespace: str = ""
    group: str = ""
    subresource: str = ""

    def attributes(self, user: UserInfo) -> RequestAttributes:
        return RequestAttributes(verb="impersonate", path="", is_resource_request=True, api_group=self.group,
                                 resource=self.resource, subresource=self.subresource, namespace=self.namespace,
                                 name=self.name, user=user)


def split_service_account(username: str) -> tuple[str, str] | None:
    """``system:serviceaccount:NS:NAME`` -> ``(NS, NAME)``, else None (kube's ``SplitUsername``)."""
    if not username.startswith(SA_PREFIX):
        return None
    parts = username[len(SA_PREFIX):].split(":")
    if len(parts) != 2 or len(parts[0]) > 63 or not _DNS_LABEL.match(parts[0]) \
            or len(parts[1]) > 253 or not _DNS_SUBDOMAIN.match(parts[1]):
        return None
    return parts[0], parts[1]


def impersonation_headers(scope: Scope) -> list[tuple[str, str]]:
    """The ``Impersonate-*`` headers of a request, in order, names lowercased (repeats kept)."""
    out = []
    for key, value in scope.get("headers", ()):
        name = key.decode("latin-1").lower()
        if name.startswith("impersonate-"):
            out.append((name, value.decode("latin-1")))
    return out


def plan(headers: list[tuple[str, str]]) -> tuple[list[Request], UserInfo | None]:
    """What to check and whom to become (None when nothing is impersonated).

    :raises APIError: 400 when groups, a UID or extras are asked for without a user.
    """
    if not headers:
        return [], None
    requests: list[Request] = []
    username = ""
    groups: list[str] = []
    extra: dict[str, list[str]] = {}
    uid = ""
    wanted_user = next((v for k, v in headers if k == USER), "")
    group_given = any(k == GROUP for k, _ in headers)
    if wanted_user:
        username = wanted_user
        account = split_service_account(wanted_user)
        if account is not None:
            requests.append(Request("serviceaccounts", account[1], namespace=account[0]))
            if not group_given:
                groups += [SA_GROUP, f"{SA_GROUP}:{account[0]}"]
        else:
            requests.append(Request("users", wanted_user))
    for key, value in headers:
        if key == GROUP:
            requests.append(Request("groups", value))
            groups.append(value)
        elif key.startswith(EXTRA):
            extra_key = unquote(key[len(EXTRA):])
            requests.append(Request("userextras", value, group=AUTHN_GROUP, subresource=extra_key))
            extra.setdefault(extra_key, []).append(value)
        elif key == UID and not uid:
            uid = value
            requests.append(Request("uids", value, group=AUTHN_GROUP))
    if not wanted_user:
        if requests:
            raise errors.bad_request("requested impersonation of groups, a UID or extra user info without "
                                     "impersonating a user (add Impersonate-User)")
        return [], None
    if username != ANONYMOUS:
        if AUTHENTICATED not in groups and UNAUTHENTICATED not in groups:
            groups.append(AUTHENTICATED)
    elif UNAUTHENTICATED not in groups:
        groups.append(UNAUTHENTICATED)
    user = UserInfo(name=username, uid=uid, groups=tuple(groups), extra={k: tuple(v) for k, v in extra.items()})
    return requests, user


def forbidden(request: Request, caller: UserInfo) -> errors.APIError:
    """kube's 403 for a refused impersonation."""
    resource = f"{request.resource}/{request.subresource}" if request.subresource else request.resource
    qualified = f"{request.resource}.{request.group}" if request.group else request.resource
    where = f' in the namespace "{request.namespace}"' if request.namespace else " at the cluster scope"
    message = (f'{qualified} "{request.name}" is forbidden: User "{caller.name}" cannot impersonate resource '
               f'"{resource}" in API group "{request.group}"{where}')
    return errors.APIError(403, "Forbidden", message, group=request.group, kind=request.resource, name=request.name)


class Impersonate:
    """Switch ``scope["kapi.user"]`` to the impersonated user once each part is authorized."""

    def __init__(self, app: ASGIApp, *, kapi_app: App) -> None:
        self.app = app
        self.kapi = kapi_app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = impersonation_headers(scope)
        if not headers:
            await self.app(scope, receive, send)
            return
        requests, user = plan(headers)
        if user is None:
            await self.app(scope, receive, send)
            return
        caller: UserInfo = scope["kapi.user"]
        for request in requests:
            if await self.kapi.authorize(request.attributes(caller)) is not Decision.ALLOW:
                raise forbidden(request, caller)
        scope["kapi.impersonator"] = caller
        scope["kapi.user"] = user
        scope["headers"] = [(k, v) for k, v in scope.get("headers", ())
                            if not k.decode("latin-1").lower().startswith("impersonate-")]
        await self.app(scope, receive, send)
