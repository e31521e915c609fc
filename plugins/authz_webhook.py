"""Webhook authorizer (``--authorization-mode=Webhook``): ask a remote service.

For each request it POSTs a ``SubjectAccessReview`` to the service described by the kubeconfig
file ``--authorization-webhook-config-file`` and follows the answer::

    {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
     "spec": {"resourceAttributes": {"namespace": "dev", "verb": "get", "group": "",
                                     "version": "v1", "resource": "pods", "name": "web"},
              "user": "jane", "groups": ["dev", "system:authenticated"], "uid": "...", "extra": {...}}}

``status.allowed: true`` allows, ``status.denied: true`` denies (no later authorizer is asked),
anything else is no opinion. Non-resource requests send ``nonResourceAttributes`` (path, verb).

The kubeconfig's current context (else its first cluster and user) gives ``server`` (https) and
``certificate-authority`` / ``-data`` (else the system CAs), and the user's
``client-certificate`` / ``client-key`` (or ``-data``) for mutual TLS and an optional ``token`` /
``tokenFile``. Relative paths are relative to the kubeconfig's folder.

Answers are cached per request attributes: allowed ones for
``--authorization-webhook-cache-authorized-ttl`` (default 5m), the others for
``--authorization-webhook-cache-unauthorized-ttl`` (default 30s); ``0`` disables that cache.
Concurrent identical questions share one call. ``--authorization-webhook-version`` is ``v1``
(default) or ``v1beta1``.

A webhook that cannot be reached, times out (``timeout``, default 10s; one retry) or answers
badly fails the request with 500 (kube-apiserver turns the webhook's error into an internal error
when no authorizer allowed); the message never contains credentials. Unlike kube, later
authorizers are not asked after such a failure: put the webhook last.

Options (``config.plugin_options["authz_webhook"]``): ``config_file``, ``authorized_ttl``,
``unauthorized_ttl`` (seconds or Go durations such as ``5m``), ``version``, ``timeout``,
``cache_size`` (10000). ``rules_for`` reports rules as incomplete, as kube's webhook does.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx
import orjson

from kapi import APIError, Decision, RequestAttributes, UserInfo, hookimpl, webhookconfig

if TYPE_CHECKING:
    from kapi import App

ALIASES = ("Webhook",)
PLUGIN = "authz_webhook"
VERSIONS = {"v1": "authorization.k8s.io/v1", "v1beta1": "authorization.k8s.io/v1beta1"}
DEFAULT_AUTHORIZED_TTL = 300.0
DEFAULT_UNAUTHORIZED_TTL = 30.0
DEFAULT_TIMEOUT = 10.0
DEFAULT_CACHE_SIZE = 10000
RETRY_DELAY = 0.5

log = logging.getLogger(__name__)


WebhookConfigError = webhookconfig.WebhookConfigError
Target = webhookconfig.Target
duration_seconds = webhookconfig.duration_seconds


def load_target(path: str) -> Target:
    """The webhook's URL, TLS context and bearer token from its kubeconfig file.

    :raises WebhookConfigError: unreadable file, no https server, or unusable credentials.
    """
    return webhookconfig.load_target(path, "authorization webhook config")


# ---------------------------------------------------------------------------------------------
# reviews and answers


def review_spec(a: RequestAttributes, version: str) -> dict[str, Any]:
    """The SubjectAccessReview spec for a request (empty fields omitted, as kube sends it)."""
    spec: dict[str, Any] = {}
    if a.is_resource_request:
        attrs = {"namespace": a.namespace, "verb": a.verb, "group": a.api_group, "version": a.api_version,
                 "resource": a.resource, "subresource": a.subresource, "name": a.name}
        spec["resourceAttributes"] = {k: v for k, v in attrs.items() if v}
    else:
        spec["nonResourceAttributes"] = {"path": a.path, "verb": a.verb}
    user = a.user
    spec["user"] = user.name
    if user.groups:
        spec["groups" if version == "v1" else "group"] = list(user.groups)
    if user.extra:
        spec["extra"] = {k: list(v) for k, v in sorted(user.extra.items())}
    if user.uid:
        spec["uid"] = user.uid
    return spec


def parse_answer(review: Any) -> Decision | None:
    """``status.allowed`` -> ALLOW, ``status.denied`` -> DENY, else no opinion.

    :raises ValueError: the answer is not a SubjectAccessReview with a status.
    """
    if not isinstance(review, Mapping) or not isinstance(review.get("status"), Mapping):
        raise ValueError("the answer has no status")
    status = review["status"]
    if status.get("allowed") is True:
        return Decision.ALLOW
    if status.get("denied") is True:
        return Decision.DENY
    return None


@dataclass
class State:
    """Per-app webhook client, settings and answer cache."""

    target: Target
    client: httpx.AsyncClient
    version: str
    authorized_ttl: float
    unauthorized_ttl: float
    cache_size: int
    cache: dict[bytes, tuple[float, Decision | None]] = field(default_factory=dict)
    pending: dict[bytes, asyncio.Future[Decision | None]] = field(default_factory=dict)


def build_state(options: Mapping[str, Any]) -> State:
    """Settings and client from the plugin options. :raises WebhookConfigError: bad options."""
    path = str(options.get("config_file") or "")
    if not path:
        raise WebhookConfigError("--authorization-mode=Webhook needs --authorization-webhook-config-file")
    version = str(options.get("version") or "v1")
    if version not in VERSIONS:
        raise WebhookConfigError(f"--authorization-webhook-version must be v1 or v1beta1, not {version!r}")
    try:
        authorized = duration_seconds(options.get("authorized_ttl", DEFAULT_AUTHORIZED_TTL))
        unauthorized = duration_seconds(options.get("unauthorized_ttl", DEFAULT_UNAUTHORIZED_TTL))
        timeout = duration_seconds(options.get("timeout", DEFAULT_TIMEOUT))
    except ValueError as exc:
        raise WebhookConfigError(f"authorization webhook cache TTL or timeout: {exc}") from None
    target = load_target(path)
    client = httpx.AsyncClient(verify=target.tls, timeout=timeout, follow_redirects=False)
    return State(target, client, version, authorized, unauthorized,
                 max(1, int(options.get("cache_size", DEFAULT_CACHE_SIZE))))


async def call_webhook(state: State, spec: Mapping[str, Any]) -> Decision | None:
    """POST one review (one retry after a failure). :raises APIError: 500 when it cannot be had."""
    body = orjson.dumps({"apiVersion": VERSIONS[state.version], "kind": "SubjectAccessReview", "spec": spec})
    headers = {"content-type": "application/json", "accept": "application/json"}
    if state.target.bearer:
        headers["authorization"] = f"Bearer {state.target.bearer}"
    problem = ""
    for attempt in range(2):
        if attempt:
            await asyncio.sleep(RETRY_DELAY)
        try:
            response = await state.client.post(state.target.server, content=body, headers=headers)
        except httpx.HTTPError as exc:
            problem = f"cannot reach the webhook: {type(exc).__name__}"
            continue
        if response.status_code >= 500 or response.status_code == 429:
            problem = f"the webhook answered HTTP {response.status_code}"
            continue
        if response.status_code >= 300:
            problem = f"the webhook answered HTTP {response.status_code}"
            break
        try:
            return parse_answer(orjson.loads(response.content))
        except (orjson.JSONDecodeError, ValueError) as exc:
            problem = f"the webhook's answer is not a SubjectAccessReview: {exc}"
            break
    log.error("authorization webhook %s failed: %s", state.target.server, problem)
    raise APIError(500, "InternalError", f"Internal error occurred: authorization webhook failed: {problem}")


async def decision_for(state: State, spec: Mapping[str, Any], now: float) -> Decision | None:
    """The cached answer for ``spec``, or a fresh one (concurrent askers share one call)."""
    key = orjson.dumps(spec, option=orjson.OPT_SORT_KEYS)
    cached = state.cache.get(key)
    if cached is not None and cached[0] > now:
        return cached[1]
    pending = state.pending.get(key)
    if pending is not None:
        return await asyncio.shield(pending)
    future: asyncio.Future[Decision | None] = asyncio.get_running_loop().create_future()
    state.pending[key] = future
    try:
        decision = await call_webhook(state, spec)
    except BaseException as exc:
        future.set_exception(exc)
        future.exception()  # retrieved: nobody else may be waiting
        raise
    finally:
        state.pending.pop(key, None)
    future.set_result(decision)
    ttl = state.authorized_ttl if decision is Decision.ALLOW else state.unauthorized_ttl
    if ttl > 0:
        if len(state.cache) >= state.cache_size:
            state.cache.clear()
        state.cache[key] = (now + ttl, decision)
    return decision


# ---------------------------------------------------------------------------------------------
# hooks


@hookimpl
def kapi_add_options(parser: argparse.ArgumentParser) -> None:
    """kube-apiserver's ``--authorization-webhook-*`` flags."""
    group = parser.add_argument_group("authorization webhook")
    group.add_argument("--authorization-webhook-config-file", default="",
                       help="kubeconfig of the SubjectAccessReview webhook (--authorization-mode=Webhook)")
    group.add_argument("--authorization-webhook-cache-authorized-ttl", default="5m",
                       help="how long allowed answers are cached (default 5m)")
    group.add_argument("--authorization-webhook-cache-unauthorized-ttl", default="30s",
                       help="how long other answers are cached (default 30s)")
    group.add_argument("--authorization-webhook-version", default="v1", choices=tuple(VERSIONS),
                       help="SubjectAccessReview version sent (default v1)")


@hookimpl
def kapi_read_options(args: argparse.Namespace) -> Mapping[str, Any] | None:
    """The plugin section from the flags (None when no config file is given)."""
    path = getattr(args, "authorization_webhook_config_file", "")
    if not path:
        return None
    section = {"config_file": path, "version": args.authorization_webhook_version}
    for key, flag in (("authorized_ttl", "authorization_webhook_cache_authorized_ttl"),
                      ("unauthorized_ttl", "authorization_webhook_cache_unauthorized_ttl")):
        try:
            section[key] = str(duration_seconds(getattr(args, flag)))
        except ValueError as exc:
            raise ValueError(f"--{flag.replace('_', '-')}: {exc}") from None
    return section


@hookimpl
def kapi_startup(app: App) -> None:
    """Load the kubeconfig and open the client when Webhook is an enabled authorizer."""
    if any(impl.function is kapi_authorize for impl in app.chains.authorize):
        app.plugin_state(PLUGIN)["state"] = build_state(app.config.options_for(PLUGIN))


@hookimpl
async def kapi_shutdown(app: App) -> None:
    """Close the client."""
    state = app.plugin_state(PLUGIN).pop("state", None)
    if isinstance(state, State):
        await state.client.aclose()


@hookimpl
async def kapi_authorize(attributes: RequestAttributes, app: App) -> Decision | None:
    """The webhook's answer (cached)."""
    state = app.plugin_state(PLUGIN).get("state")
    if not isinstance(state, State):
        return None
    return await decision_for(state, review_spec(attributes, state.version), time.monotonic())


def rules_for(user: UserInfo, namespace: str, app: App) -> Mapping[str, Any]:
    """A webhook's rules cannot be listed (kube answers the same)."""
    return {"resourceRules": [], "nonResourceRules": [], "incomplete": True,
            "evaluationError": "webhook authorizer does not support user rule resolution"}
