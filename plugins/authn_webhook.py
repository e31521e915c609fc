"""Webhook token authentication (kube-apiserver's ``--authentication-token-webhook-*``), alias ``webhook``.

Asks a remote service who a bearer token belongs to: it POSTs a TokenReview to the service and
takes the answer. The service is described by a kubeconfig file
(``--authentication-token-webhook-config-file``): the current context's (else the first) cluster
gives ``server`` (an https URL) and ``certificate-authority`` / ``-data`` (else the system CAs;
``insecure-skip-tls-verify`` is honoured), its user gives the client certificate
(``client-certificate`` / ``client-key``, or the ``-data`` forms) for mutual TLS and optionally a
``token`` / ``tokenFile`` sent as the webhook's own bearer token. Relative paths are relative to the
kubeconfig's folder.

Request body (``--authentication-token-webhook-version``: ``v1``, the default, or ``v1beta1``)::

    {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
     "spec": {"token": "...", "audiences": [...]}}      # audiences only when configured

An answer with ``status.authenticated: true`` gives the user (``status.user``: username, uid,
groups, extra). When ``audiences`` were sent and ``status.audiences`` is non-empty, the two must
overlap.

Errors (the rule, kube-apiserver's): ``authenticated: false`` without ``status.error`` means "not
this webhook's token" (None, the next authenticator is tried); with ``status.error`` it is a
401. A webhook that cannot be reached, times out (10 s, one retry) or answers badly is a 401 too,
so the client learns authentication failed rather than being treated as anonymous.

Answers (both kinds) are cached per app for ``--authentication-token-webhook-cache-ttl`` (default
2m; ``0`` turns caching off), keyed by the SHA-256 of the token and audiences; concurrent
requests with one token share one webhook call. Tokens are never logged.

Options (``config.plugin_options["authn_webhook"]``): ``config_file``, ``cache_ttl`` (seconds or
a duration such as ``2m``), ``version``, ``audiences`` (comma-separated), ``cache_size`` (4096),
``timeout`` (seconds, 10). Setting ``config_file`` sets ``enabled``.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx

from kapi import AuthenticationError, AuthnRequest, UserInfo, hookimpl, webhookconfig

if TYPE_CHECKING:
    from kapi import App

PLUGIN_NAME = "authn_webhook"
ALIASES = ("webhook",)
DEFAULT_TTL = 120
DEFAULT_CACHE_SIZE = 4096
DEFAULT_TIMEOUT = 10.0
RETRY_DELAY = 0.5
VERSIONS = {"v1": "authentication.k8s.io/v1", "v1beta1": "authentication.k8s.io/v1beta1"}

log = logging.getLogger(__name__)


WebhookConfigError = webhookconfig.WebhookConfigError
Target = webhookconfig.Target
duration_seconds = webhookconfig.duration_seconds


def load_target(path: str) -> Target:
    """The webhook's URL, TLS context and bearer token from its kubeconfig file.

    :raises WebhookConfigError: unreadable file, no https server, or unusable credentials.
    """
    return webhookconfig.load_target(path, "--authentication-token-webhook-config-file")


# ---------------------------------------------------------------------------------------------
# per-app state and the call


@dataclass(frozen=True)
class Answer:
    """A webhook answer: a user, "not mine" (user None, no error), or a rejection (error)."""

    user: UserInfo | None
    error: str = ""


@dataclass
class State:
    """What this plugin keeps per app."""

    target: Target
    client: httpx.AsyncClient
    api_version: str
    audiences: tuple[str, ...]
    ttl: float
    cache_size: int
    answers: dict[bytes, tuple[Answer, float]] = field(default_factory=dict)
    inflight: dict[bytes, asyncio.Future[Answer]] = field(default_factory=dict)


def _strings(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    items = value.split(",") if isinstance(value, str) else [str(v) for v in value]
    return tuple(s.strip() for s in items if s.strip())


def build_state(options: Mapping[str, Any]) -> State | None:
    """The webhook client of ``options`` (None without ``config_file``).

    :raises WebhookConfigError: the kubeconfig or an option is unusable.
    """
    path = str(options.get("config_file") or "")
    if not path:
        return None
    version = str(options.get("version") or "v1")
    if version not in VERSIONS:
        raise WebhookConfigError(f"--authentication-token-webhook-version {version!r}: use v1 or v1beta1")
    try:
        ttl = duration_seconds(options.get("cache_ttl", DEFAULT_TTL))
        timeout = duration_seconds(options.get("timeout", DEFAULT_TIMEOUT))
    except ValueError as exc:
        raise WebhookConfigError(f"authn_webhook: {exc}") from None
    target = load_target(path)
    client = httpx.AsyncClient(verify=target.tls, timeout=timeout, follow_redirects=False)
    return State(target, client, VERSIONS[version], _strings(options.get("audiences")), ttl,
                 max(1, int(options.get("cache_size", DEFAULT_CACHE_SIZE))))


def parse_answer(review: Any, sent_audiences: tuple[str, ...]) -> Answer:
    """Turn the webhook's TokenReview into an ``Answer``. :raises ValueError: malformed."""
    if not isinstance(review, dict) or not isinstance(review.get("status", {}), dict):
        raise ValueError("the answer is not a TokenReview")
    status = review.get("status") or {}
    if not status.get("authenticated"):
        return Answer(None, "the authentication webhook rejected the token" if status.get("error") else "")
    user = status.get("user") or {}
    name = user.get("username") if isinstance(user, dict) else None
    if not isinstance(name, str) or not name:
        raise ValueError("the answer authenticates no username")
    answered = set(_strings(status.get("audiences")))
    if sent_audiences and answered and answered.isdisjoint(sent_audiences):
        return Answer(None, "the authentication webhook authenticated the token for other audiences")
    extra = {str(k): tuple(str(v) for v in values) for k, values in (user.get("extra") or {}).items()
             if isinstance(values, list)}
    return Answer(UserInfo(name=name, uid=str(user.get("uid") or ""),
                           groups=tuple(str(g) for g in user.get("groups") or ()), extra=extra))


async def call_webhook(state: State, token: str, audiences: tuple[str, ...]) -> Answer:
    """POST the TokenReview (one retry after a transport error or a 5xx).

    :raises AuthenticationError: the webhook cannot be reached or answers badly.
    """
    spec: dict[str, Any] = {"token": token}
    if audiences:
        spec["audiences"] = list(audiences)
    review = {"apiVersion": state.api_version, "kind": "TokenReview", "spec": spec}
    headers = {"authorization": f"Bearer {state.target.bearer}"} if state.target.bearer else {}
    problem = ""
    for attempt in range(2):
        if attempt:
            await asyncio.sleep(RETRY_DELAY)
        try:
            response = await state.client.post(state.target.server, json=review, headers=headers)
        except httpx.HTTPError as exc:
            problem = f"it cannot be reached ({type(exc).__name__})"
            continue
        if response.status_code >= 500:
            problem = f"it answered HTTP {response.status_code}"
            continue
        if response.status_code >= 300:
            problem = f"it answered HTTP {response.status_code}"
            break
        try:
            return parse_answer(response.json(), audiences)
        except ValueError as exc:
            problem = f"its answer is not usable ({exc})"
            break
    log.warning("authentication webhook %s failed: %s", state.target.server, problem)
    raise AuthenticationError(f"the authentication webhook failed: {problem}")


async def answer_for(state: State, token: str, audiences: tuple[str, ...], now: float) -> Answer:
    """The webhook's answer for ``token``, from the cache or one shared call."""
    key = hashlib.sha256("\0".join((token, *audiences)).encode()).digest()
    cached = state.answers.get(key)
    if cached is not None and cached[1] > now:
        return cached[0]
    pending = state.inflight.get(key)
    if pending is not None:
        return await asyncio.shield(pending)
    future: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
    state.inflight[key] = future
    try:
        answer = await call_webhook(state, token, audiences)
    except asyncio.CancelledError:
        future.cancel()
        raise
    except Exception as exc:
        future.set_exception(exc)
        future.exception()  # mark it retrieved: only waiters re-raise it
        raise
    finally:
        del state.inflight[key]
    future.set_result(answer)
    if state.ttl > 0:
        state.answers.pop(key, None)
        state.answers[key] = (answer, now + state.ttl)
        if len(state.answers) > state.cache_size:
            del state.answers[next(iter(state.answers))]
    return answer


# ---------------------------------------------------------------------------------------------
# hooks


@hookimpl
def kapi_add_options(parser: argparse.ArgumentParser) -> None:
    """kube-apiserver's token webhook flags."""
    group = parser.add_argument_group("webhook token authentication (authn_webhook)")
    group.add_argument("--authentication-token-webhook-config-file", default="", metavar="FILE",
                       help="kubeconfig of the token-review webhook (server, CA, client certificate)")
    group.add_argument("--authentication-token-webhook-cache-ttl", default="2m", metavar="DURATION",
                       help="how long webhook answers are cached (default 2m)")
    group.add_argument("--authentication-token-webhook-version", default="v1", choices=tuple(VERSIONS),
                       help="TokenReview version sent to the webhook (default v1)")


@hookimpl
def kapi_read_options(args: argparse.Namespace) -> dict[str, Any] | None:
    """The flags as this plugin's options section; None without a config file."""
    path = getattr(args, "authentication_token_webhook_config_file", "")
    if not path:
        return None
    ttl = getattr(args, "authentication_token_webhook_cache_ttl", "2m")
    try:
        duration_seconds(ttl)
    except ValueError as exc:
        raise ValueError(f"--authentication-token-webhook-cache-ttl: {exc}") from None
    return {"enabled": True, "config_file": path, "cache_ttl": ttl,
            "version": getattr(args, "authentication_token_webhook_version", "v1")}


@hookimpl
def kapi_startup(app: App) -> None:
    """Read the webhook kubeconfig (an unusable one stops the server)."""
    app.plugin_state(PLUGIN_NAME)["state"] = build_state(app.config.options_for(PLUGIN_NAME))


@hookimpl
async def kapi_shutdown(app: App) -> None:
    """Close the webhook client."""
    state: State | None = app.plugin_state(PLUGIN_NAME).get("state")
    if state is not None:
        await state.client.aclose()


@hookimpl
async def kapi_authenticate(request: AuthnRequest, app: App) -> UserInfo | None:
    """The webhook's user for the request's bearer token, or None when it does not know it.

    :raises AuthenticationError: the webhook rejected the token with an error, or failed.
    """
    token = request.bearer_token()
    if token is None:
        return None
    holder = app.plugin_state(PLUGIN_NAME)
    if "state" not in holder:
        holder["state"] = build_state(app.config.options_for(PLUGIN_NAME))
    state: State | None = holder["state"]
    if state is None:
        return None
    audiences = tuple(getattr(request, "audiences", ()) or ()) or state.audiences
    answer = await answer_for(state, token, audiences, time.monotonic())
    if answer.error:
        raise AuthenticationError(answer.error)
    return answer.user
