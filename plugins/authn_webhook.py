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
import base64
import binascii
import hashlib
import logging
import re
import ssl
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import yaml

from kapi import AuthenticationError, AuthnRequest, UserInfo, hookimpl

if TYPE_CHECKING:
    from kapi import App

PLUGIN_NAME = "authn_webhook"
ALIASES = ("webhook",)
DEFAULT_TTL = 120
DEFAULT_CACHE_SIZE = 4096
DEFAULT_TIMEOUT = 10.0
RETRY_DELAY = 0.5
VERSIONS = {"v1": "authentication.k8s.io/v1", "v1beta1": "authentication.k8s.io/v1beta1"}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(h|ms|m|s)")

log = logging.getLogger(__name__)


class WebhookConfigError(ValueError):
    """The webhook configuration cannot be used; the message names the file and the field."""


def duration_seconds(value: Any) -> float:
    """Seconds from a number, a digit string or a Go duration (``2m``, ``1m30s``).

    :raises ValueError: anything else.
    """
    if isinstance(value, int | float):
        return float(value)
    text = str(value).strip()
    try:
        return float(text)
    except ValueError:
        pass
    parts = _DURATION.findall(text)
    if not text or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"invalid duration {text!r}: use e.g. 120, 90s, 2m or 1h")
    scale = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
    return sum(float(n) * scale[u] for n, u in parts)


# ---------------------------------------------------------------------------------------------
# the kubeconfig


@dataclass(frozen=True)
class Target:
    """Where and how to call the webhook."""

    server: str
    tls: ssl.SSLContext
    bearer: str = ""


def _named(config: Mapping[str, Any], kind: str, name: str | None) -> dict[str, Any]:
    entries = [e for e in config.get(kind) or [] if isinstance(e, dict)]
    chosen = next((e for e in entries if e.get("name") == name), None) if name else None
    if chosen is None and entries:
        chosen = entries[0]
    key = kind[:-1]
    return chosen.get(key) or {} if chosen is not None else {}


def _material(section: Mapping[str, Any], name: str, base: Path, source: str) -> bytes | None:
    """The bytes of ``name-data`` (base64) or of the file ``name``, or None when neither is set."""
    data = section.get(f"{name}-data")
    if data:
        try:
            return base64.b64decode(str(data), validate=True)
        except binascii.Error:
            raise WebhookConfigError(f"{source}: {name}-data is not valid base64") from None
    path = section.get(name)
    if not path:
        return None
    try:
        return (base / str(path)).read_bytes()
    except OSError as exc:
        raise WebhookConfigError(f"{source}: {name} {str(path)!r} cannot be read: {exc.strerror}") from None


def _tls(cluster: Mapping[str, Any], user: Mapping[str, Any], base: Path, source: str) -> ssl.SSLContext:
    ca = _material(cluster, "certificate-authority", base, source)
    try:
        context = ssl.create_default_context(cadata=ca.decode() if ca else None)
    except (ssl.SSLError, UnicodeDecodeError):
        raise WebhookConfigError(f"{source}: the certificate authority is not a PEM certificate") from None
    if cluster.get("insecure-skip-tls-verify"):
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    cert = _material(user, "client-certificate", base, source)
    key = _material(user, "client-key", base, source)
    if bool(cert) != bool(key):
        raise WebhookConfigError(f"{source}: client-certificate and client-key go together")
    if cert and key:
        # ssl loads a certificate chain only from files: stage them privately, just for the load
        with tempfile.TemporaryDirectory() as folder:
            cert_path, key_path = Path(folder) / "cert.pem", Path(folder) / "key.pem"
            cert_path.write_bytes(cert)
            key_path.touch(mode=0o600)
            key_path.write_bytes(key)
            try:
                context.load_cert_chain(cert_path, key_path)
            except ssl.SSLError:
                raise WebhookConfigError(f"{source}: the client certificate and key cannot be loaded "
                                         f"(not PEM, or they do not belong together)") from None
    return context


def load_target(path: str) -> Target:
    """Read the webhook kubeconfig at ``path``. :raises WebhookConfigError: unusable."""
    source = f"--authentication-token-webhook-config-file {path!r}"
    try:
        config = yaml.safe_load(Path(path).read_text())
    except OSError as exc:
        raise WebhookConfigError(f"{source} cannot be read: {exc.strerror}") from None
    except yaml.YAMLError:
        raise WebhookConfigError(f"{source} is not valid YAML") from None
    if not isinstance(config, dict):
        raise WebhookConfigError(f"{source} is not a kubeconfig")
    context = _named(config, "contexts", config.get("current-context"))
    cluster = _named(config, "clusters", context.get("cluster"))
    user = _named(config, "users", context.get("user"))
    server = str(cluster.get("server") or "")
    if not server.startswith("https://"):
        raise WebhookConfigError(f"{source}: the cluster's server must be an https URL")
    base = Path(path).parent
    bearer = str(user.get("token") or "")
    if not bearer and user.get("tokenFile"):
        token_file = _material({"token": user["tokenFile"]}, "token", base, source)
        bearer = (token_file or b"").decode().strip()
    return Target(server, _tls(cluster, user, base, source), bearer)


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
