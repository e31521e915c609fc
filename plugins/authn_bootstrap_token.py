"""Bootstrap tokens (kube-apiserver's ``--enable-bootstrap-token-auth``), alias ``bootstrap-token``.

A bearer token of the form ``<id>.<secret>`` (``[a-z0-9]{6}.[a-z0-9]{16}``) is checked against
the Secret ``kube-system/bootstrap-token-<id>``, as kubeadm writes it::

    type: bootstrap.kubernetes.io/token
    data:                                    # base64, as stored
      token-id: <id>
      token-secret: <secret>
      usage-bootstrap-authentication: "true"
      expiration: 2026-12-01T00:00:00Z       # optional, RFC 3339
      auth-extra-groups: system:bootstrappers:kubeadm:default-node-token   # optional, comma-separated

The user is ``system:bootstrap:<id>``, groups ``system:bootstrappers`` plus the extra groups
(sorted, without repeats, as kube-apiserver lists them).

Errors (the rule, kube-apiserver's): a token that does not have the bootstrap shape, or that no
usable secret matches (no secret, another type, being deleted, another id, the wrong secret part,
expired, not marked for authentication) is not this plugin's: None, so the next authenticator
is tried, and a token nobody recognises gets 401. Only a matching secret whose
``auth-extra-groups`` holds a group outside ``system:bootstrappers:*`` is a 401 here. The secret
part is compared in constant time and is never logged; the reason a token is refused is logged
at debug level with the token id only (the id is public).

Secrets are read from the watch cache; a token whose secret the cache does not (yet) hold is
looked up in storage once more, so a just-created token works at once.

Flags -> options (``config.plugin_options["authn_bootstrap_token"]``): ``--enable-bootstrap-token-auth``
sets ``enabled``; list the plugin in ``config.authenticators`` (kube order: after service-account
tokens) for it to run.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import datetime
import hmac
import logging
import re
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import orjson

from kapi import AuthenticationError, AuthnRequest, KeyNotFoundError, UserInfo, hookimpl

if TYPE_CHECKING:
    from kapi import App

PLUGIN_NAME = "authn_bootstrap_token"
ALIASES = ("bootstrap-token",)
NAMESPACE = "kube-system"
SECRET_PREFIX = "bootstrap-token-"
SECRET_TYPE = "bootstrap.kubernetes.io/token"
DEFAULT_GROUP = "system:bootstrappers"
USER_PREFIX = "system:bootstrap:"
TOKEN = re.compile(r"([a-z0-9]{6})\.([a-z0-9]{16})")
EXTRA_GROUP = re.compile(r"system:bootstrappers:[a-z0-9:-]{0,255}[a-z0-9]")

log = logging.getLogger(__name__)


def secret_value(secret: Mapping[str, Any], key: str) -> str:
    """``secret.data[key]`` decoded from base64 (``""`` when absent or malformed)."""
    data = secret.get("data")
    raw = data.get(key) if isinstance(data, dict) else None
    if not isinstance(raw, str):
        return ""
    try:
        return base64.b64decode(raw, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return ""


def _expired(secret: Mapping[str, Any], now: float) -> bool:
    value = secret_value(secret, "expiration")
    if not value:
        return False
    try:
        return datetime.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() <= now
    except ValueError:
        return True  # kube-apiserver treats an unparseable expiration as expired


def refusal(secret: Mapping[str, Any] | None, token_id: str, token_secret: str, now: float) -> str:
    """Why ``secret`` does not accept the token (``""`` when it does). Never names the secret part."""
    if secret is None:
        return "no secret"
    if secret.get("type") != SECRET_TYPE:
        return f"the secret's type is not {SECRET_TYPE}"
    if (secret.get("metadata") or {}).get("deletionTimestamp"):
        return "the secret is being deleted"
    if secret_value(secret, "token-id") != token_id:
        return "the secret's token-id differs"
    if not hmac.compare_digest(secret_value(secret, "token-secret").encode(), token_secret.encode()):
        return "the token secret does not match"
    if _expired(secret, now):
        return "the token has expired"
    if secret_value(secret, "usage-bootstrap-authentication") != "true":
        return "the token is not marked usage-bootstrap-authentication"
    return ""


def groups_of(secret: Mapping[str, Any], token_id: str) -> tuple[str, ...]:
    """``system:bootstrappers`` and the secret's ``auth-extra-groups``, sorted and distinct.

    :raises AuthenticationError: an extra group outside ``system:bootstrappers:*``.
    """
    groups = {DEFAULT_GROUP}
    for group in secret_value(secret, "auth-extra-groups").split(","):
        group = group.strip()
        if not group:
            continue
        if not EXTRA_GROUP.fullmatch(group):
            raise AuthenticationError(f"bootstrap token secret {NAMESPACE}/{SECRET_PREFIX}{token_id} has an invalid "
                                      f"auth-extra-groups entry {group!r}: it must start with {DEFAULT_GROUP}:")
        groups.add(group)
    return tuple(sorted(groups))


def _key(app: App, token_id: str) -> str | None:
    rt = app.registry.lookup("", "v1", "secrets")
    return rt.key(app.root, NAMESPACE, SECRET_PREFIX + token_id) if rt is not None else None


def _cached(app: App, key: str) -> Mapping[str, Any] | None:
    try:
        cache = app.cache.route(key)
    except RuntimeError:
        return None
    found = cache.objects.get(key) if cache is not None else None
    return found.obj if found is not None else None


async def _stored(app: App, key: str) -> Mapping[str, Any] | None:
    try:
        obj = orjson.loads((await app.storage.get(key)).value)
    except KeyNotFoundError:
        return None
    return obj if isinstance(obj, dict) else None


@hookimpl
def kapi_add_options(parser: argparse.ArgumentParser) -> None:
    """``--enable-bootstrap-token-auth``."""
    parser.add_argument("--enable-bootstrap-token-auth", nargs="?", const="true", default="false", metavar="BOOL",
                        help="accept bootstrap tokens (secrets of type bootstrap.kubernetes.io/token in kube-system)")


@hookimpl
def kapi_read_options(args: argparse.Namespace) -> dict[str, Any] | None:
    """``{"enabled": True}`` when ``--enable-bootstrap-token-auth`` is set."""
    value = str(getattr(args, "enable_bootstrap_token_auth", "false")).lower()
    if value not in ("true", "false", "1", "0"):
        raise ValueError(f"--enable-bootstrap-token-auth: expected true or false, not {value!r}")
    return {"enabled": True} if value in ("true", "1") else None


@hookimpl
async def kapi_authenticate(request: AuthnRequest, app: App) -> UserInfo | None:
    """``system:bootstrap:<id>`` for a valid bootstrap token; None for any other token.

    :raises AuthenticationError: the matching secret lists an invalid extra group.
    """
    token = request.bearer_token()
    match = TOKEN.fullmatch(token) if token is not None else None
    if match is None:
        return None
    token_id, token_secret = match.groups()
    key = _key(app, token_id)
    if key is None:
        return None
    now = time.time()
    secret = _cached(app, key)
    why = refusal(secret, token_id, token_secret, now)
    if why:
        secret = await _stored(app, key)
        why = refusal(secret, token_id, token_secret, now)
    if why or secret is None:
        log.debug("bootstrap token %s refused: %s", token_id, why)
        return None
    return UserInfo(name=USER_PREFIX + token_id, groups=groups_of(secret, token_id))
