"""The request pipeline's pure-ASGI middleware, assembled in one place (``build_middleware``).

Order, outermost first (like ``DefaultBuildHandlerChain``):

0. ``Telemetry``     - audit ID, the request's trace, metrics (``kapi.observability.middleware``).
1. ``StatusErrors``  - any ``APIError`` becomes a Status response, an unavailable store a 503, a
                       compacted revision a 410; anything else a 500 Status.
   plugin middleware at position ``outer`` (``kapi_middleware`` hook)
2. ``Authenticate``  - request info, then the authenticator chain: 401 or a ``UserInfo``.
   ``Impersonate``   - ``Impersonate-*`` headers, each authorized: 403, or the request continues
                       as the impersonated user (``kapi.impersonation``).
   plugin middleware at position ``authenticated`` (audit logging sits here)
3. ``Inflight``      - --max-requests-inflight / --max-mutating-requests-inflight: 429 + Retry-After
                       when full (long-running watches are not counted).
4. ``Authorize``     - the authorizer chain: first Allow/Deny decides, none -> 403.
5. ``RequestTimeout`` - --request-timeout (504) for requests that are not long-running.
   plugin middleware at position ``authorized``

Handlers then find ``scope["kapi.info"]`` (``RequestInfo``) and ``scope["kapi.user"]``.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from starlette.middleware import Middleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kapi import errors, hooks, requestinfo
from kapi.drain import BodyDrain
from kapi.impersonation import Impersonate
from kapi.storage import CompactedError, UnavailableError
from kapi.tls_ext import client_certificate_from_scope
from kapi.types import AUTHENTICATED, AuthnRequest, Decision, UserInfo

if TYPE_CHECKING:
    from kapi.app import App

log = logging.getLogger("kapi.request")

LONG_RUNNING_VERBS = frozenset({"watch"})
LONG_RUNNING_SUBRESOURCES = frozenset({"log"})  # streams (kubectl logs -f) hold no inflight slot
MUTATING_VERBS = frozenset({"create", "update", "patch", "delete", "deletecollection"})


async def send_status(send: Send, err: errors.APIError) -> None:
    """Write ``err`` as a Status response."""
    headers = [(b"content-type", b"application/json"), (b"cache-control", b"no-cache, private")]
    if err.retry_after is not None:
        headers.append((b"retry-after", str(err.retry_after).encode()))
    body = err.body()
    headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": err.code, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class StatusErrors:
    """Outermost: turn errors into Status objects; a response already started is just closed."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        drain = BodyDrain(scope, receive, send)  # keeps the connection usable after an early answer
        receive, send = drain.receive, drain.send
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except errors.APIError as err:
            if not started:
                await send_status(send, err)
        except UnavailableError as exc:
            log.warning("storage unavailable serving %s %s: %s", scope.get("method"), scope.get("path"), exc)
            if not started:
                await send_status(send, errors.APIError(
                    503, "ServiceUnavailable", "the storage backend is unavailable or timed out; the request may or "
                    "may not have been applied - retry", retry_after=1))
        except CompactedError as exc:
            if not started:
                await send_status(send, errors.gone(f"too old resource version: {exc.requested} ({exc.compacted})"))
        except Exception:
            log.exception("unhandled error serving %s %s", scope.get("method"), scope.get("path"))
            if not started:
                await send_status(send, errors.internal("an internal error occurred; see the server log"))


class Inflight:
    """Bounded concurrency: requests beyond the limits get 429 with Retry-After at once."""

    def __init__(self, app: ASGIApp, *, max_readonly: int, max_mutating: int) -> None:
        self.app = app
        self.max_readonly = max_readonly
        self.max_mutating = max_mutating
        self.readonly = 0
        self.mutating = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        info = scope.get("kapi.info")
        if scope["type"] != "http" or info is None or info.verb in LONG_RUNNING_VERBS \
                or info.subresource in LONG_RUNNING_SUBRESOURCES:
            await self.app(scope, receive, send)
            return
        mutating = info.verb in MUTATING_VERBS
        limit = self.max_mutating if mutating else self.max_readonly
        current = self.mutating if mutating else self.readonly
        if limit > 0 and current >= limit:
            raise errors.too_many_requests("Too many requests, please try again later.", retry_after=1)
        if mutating:
            self.mutating += 1
        else:
            self.readonly += 1
        try:
            await self.app(scope, receive, send)
        finally:
            if mutating:
                self.mutating -= 1
            else:
                self.readonly -= 1


def _headers(scope: Scope) -> dict[str, str]:
    """Request headers with lowercase names; repeated headers are joined with ", " (HTTP's rule)."""
    out: dict[str, str] = {}
    for key, value in scope.get("headers", ()):
        name = key.decode("latin-1").lower()
        text = value.decode("latin-1")
        out[name] = f"{out[name]}, {text}" if name in out else text
    return out


def request_info(scope: Scope) -> requestinfo.RequestInfo:
    """The parsed request (``scope["kapi.info"]``), parsed on first use. The path is relative to the
    ASGI ``root_path`` (the mount point when kapi is mounted inside another app)."""
    info: requestinfo.RequestInfo | None = scope.get("kapi.info")
    if info is None:
        path = scope["path"]
        root = scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root):] or "/"
        info = requestinfo.parse(scope["method"], path, scope.get("query_string", b"").decode("latin-1"))
        scope["kapi.info"] = info
    return info


class Authenticate:
    """Parse the request, then run the authenticator chain (401 when nobody is recognised)."""

    def __init__(self, app: ASGIApp, *, kapi_app: App) -> None:
        self.app = app
        self.kapi = kapi_app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        info = request_info(scope)
        path = info.path
        client = scope.get("client")
        request = AuthnRequest(method=scope["method"], path=path, headers=_headers(scope),
                               client_cert=client_certificate_from_scope(scope),
                               remote=(client[0], client[1]) if client else None)
        plugin, user = await hooks.call_first("kapi_authenticate", self.kapi.chains.authenticate,
                                              request=request, app=self.kapi)
        if user is None:
            raise errors.unauthorized()
        if plugin != "authn_anonymous" and AUTHENTICATED not in user.groups:
            user = UserInfo(user.name, user.uid, (*user.groups, AUTHENTICATED), user.extra)
        scope["kapi.user"] = user
        scope["kapi.authenticator"] = plugin
        await self.app(scope, receive, send)


def forbidden_message(info: requestinfo.RequestInfo, user: UserInfo, reason: str = "") -> str:
    """kube-apiserver's wording of a 403."""
    if not info.is_resource_request:
        msg = f'forbidden: User "{user.name}" cannot {info.verb} path "{info.path}"'
    else:
        resource = f"{info.resource}/{info.subresource}" if info.subresource else info.resource
        qualified = f"{info.resource}.{info.api_group}" if info.api_group else info.resource
        msg = (f'{qualified}{" " + repr(info.name).replace(chr(39), chr(34)) if info.name else ""} is forbidden: '
               f'User "{user.name}" cannot {info.verb} resource "{resource}" in API group "{info.api_group}"')
        msg += f' in the namespace "{info.namespace}"' if info.namespace else " at the cluster scope"
    return f"{msg}: {reason}" if reason else msg


class Authorize:
    """Run the authorizer chain; deny by default."""

    def __init__(self, app: ASGIApp, *, kapi_app: App) -> None:
        self.app = app
        self.kapi = kapi_app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        info: requestinfo.RequestInfo = scope["kapi.info"]
        user: UserInfo = scope["kapi.user"]
        decision = await authorize(self.kapi, info.attributes(user))
        if decision is not Decision.ALLOW:
            raise errors.forbidden(forbidden_message(info, user))
        await self.app(scope, receive, send)


async def authorize(kapi_app: App, attributes: Any) -> Decision:
    """The authorizer chain's decision for ``attributes`` (DENY when nobody decides)."""
    for impl in kapi_app.chains.authorize:
        result = await hooks.invoke("kapi_authorize", impl, {"attributes": attributes, "app": kapi_app})
        if result in (Decision.ALLOW, Decision.DENY):
            return result
    return Decision.DENY


#: where plugin middleware (``kapi_middleware`` hook) may sit
POSITIONS = ("outer", "authenticated", "authorized")


def plugin_middleware(kapi_app: App) -> dict[str, list[Middleware]]:
    """The ``kapi_middleware`` hook's answers by position, in plugin registration order."""
    from kapi.plugins import PluginConfigError

    out: dict[str, list[Middleware]] = {position: [] for position in POSITIONS}
    for impl in hooks.all_impls(kapi_app.pm, "kapi_middleware"):
        for factory, position in impl.call({"app": kapi_app}) or ():
            if position not in out:
                raise PluginConfigError(f"plugin {impl.plugin!r} returned middleware for position {position!r} from "
                                        f"kapi_middleware: use one of {', '.join(POSITIONS)}")
            out[position].append(Middleware(factory))
    return out


def build_middleware(kapi_app: App) -> list[Middleware]:
    """The pipeline, outermost first (``Telemetry``: audit ID, trace, metrics; then Status errors),
    with plugin middleware at its positions."""
    from kapi.observability.middleware import Telemetry
    from kapi.timeouts import RequestTimeout

    cfg = kapi_app.config
    extra = plugin_middleware(kapi_app)
    return [
        Middleware(Telemetry, kapi_app=kapi_app),
        Middleware(StatusErrors),
        *extra["outer"],
        Middleware(Authenticate, kapi_app=kapi_app),
        Middleware(Impersonate, kapi_app=kapi_app),
        *extra["authenticated"],
        Middleware(Inflight, max_readonly=cfg.max_requests_inflight, max_mutating=cfg.max_mutating_requests_inflight),
        Middleware(Authorize, kapi_app=kapi_app),
        Middleware(RequestTimeout, seconds=cfg.request_timeout),
        *extra["authorized"],
    ]
