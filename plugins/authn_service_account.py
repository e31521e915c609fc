"""Service-account tokens (kube-apiserver's ``--service-account-*`` flags), alias ``service-account``.

Verifies the JWTs that the TokenRequest API (``kubectl create token``) and the legacy token
controller sign with the service-account key (``sa.key``), as kube-apiserver does:

* the token is a compact JWS signed RS256/RS384/RS512 (RSA keys) or ES256/ES384/ES512 (ECDSA keys)
  by one of the public keys of ``--service-account-key-file`` (default ``DATA_DIR/pki/sa.pub``
  when that file exists; a file may hold several PEM keys, certificates or private keys);
* its ``iss`` is one of ``--service-account-issuer`` (default
  ``https://kubernetes.default.svc.cluster.local``), or ``kubernetes/serviceaccount`` for legacy
  secret-based tokens;
* ``exp``, ``nbf`` and ``iat`` hold, with 60 s of leeway;
* its ``aud`` shares an audience with ``--api-audiences`` (default: the issuers); legacy tokens
  carry no audience and are accepted for the API audiences;
* the objects it names still exist with the same uid: the service account, and the pod, secret or
  node it is bound to (a bound object marked for deletion more than 60 s ago counts as gone). For
  legacy tokens (``--service-account-lookup``, default true) the secret must still hold the token.

The user is ``system:serviceaccount:NS:NAME`` with the service account's uid, groups
``system:serviceaccounts`` and ``system:serviceaccounts:NS``, and extra
``authentication.kubernetes.io/pod-name``, ``pod-uid``, ``node-name``, ``node-uid`` and
``credential-id`` (``JTI=<jti>``) when the token carries them.

Errors (the rule): a bearer token that is not a JWT, or whose issuer is not ours, is not this
plugin's (None: the token file, bootstrap tokens, OIDC or a webhook may take it). A JWT with our
issuer that fails any check above is a 401 naming the failed check (never the token). Without
any key (no key file) the plugin returns None for everything.

Verified tokens are kept in a per-app LRU (token -> user, expiry, audiences, objects to check),
so a repeated token costs a dict lookup plus the existence checks, which read the watch cache
(falling back to storage only when the cache disagrees). Tokens are never logged.

It also serves the OIDC discovery documents that let other systems verify these tokens:
``/.well-known/openid-configuration`` and ``/openid/v1/jwks`` (when the first issuer is an
``https`` URL; ``--service-account-jwks-uri`` overrides the advertised ``jwks_uri``).

Flags -> options (``config.plugin_options["authn_service_account"]``; ``--plugin-option`` works
too, lists comma-separated):

=========================================  ====================  ==================================
flag                                       option                default
=========================================  ====================  ==================================
``--service-account-issuer`` (repeatable)  ``issuer``            the in-cluster URL above
``--service-account-key-file`` (repeat.)   ``key_file``          ``DATA_DIR/pki/sa.pub`` if present
``--service-account-signing-key-file``     ``signing_key_file``  ``DATA_DIR/pki/sa.key``
``--api-audiences``                        ``api_audiences``     the issuers
``--service-account-max-token-expiration`` ``max_token_expiration``  none (seconds, or ``48h``)
``--service-account-jwks-uri``             ``jwks_uri``          ``https://ADDRESS:PORT/openid/v1/jwks``
``--service-account-lookup``               ``lookup``            true
(none)                                     ``cache_size``        4096 verified tokens
=========================================  ====================  ==================================

The signing options are read by the TokenRequest handler (``kapi.rest.tokens``). The plugin
is an authenticator like any other: list it in ``config.authenticators`` (kube order: after the
token file, before bootstrap tokens, OIDC and webhooks).
"""

from __future__ import annotations

import argparse
import base64
import datetime
import hashlib
import logging
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, RSAKey
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from kapi import APIError, AuthenticationError, AuthnRequest, KeyNotFoundError, StorageError, UserInfo, hookimpl

if TYPE_CHECKING:
    from kapi import App

PLUGIN_NAME = "authn_service_account"
ALIASES = ("service-account", "ServiceAccount")
DEFAULT_ISSUER = "https://kubernetes.default.svc.cluster.local"
LEGACY_ISSUER = "kubernetes/serviceaccount"
DEFAULT_CACHE_SIZE = 4096
LEEWAY = 60.0
SA_GROUP = "system:serviceaccounts"
EXTRA = "authentication.kubernetes.io/"
_LEGACY = "kubernetes.io/serviceaccount/"
_PEM_BLOCK = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----\r?\n.+?-----END \1-----", re.S)
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(h|ms|m|s)")
_EC_ALGS = {"secp256r1": "ES256", "secp384r1": "ES384", "secp521r1": "ES512"}
_EC_CURVES = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}
_KINDS = {"serviceaccounts": "service account", "pods": "pod", "secrets": "secret", "nodes": "node"}

log = logging.getLogger(__name__)

PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey


class KeyFileError(ValueError):
    """A key file cannot be used; the message names the file and the problem, never key material."""


# ---------------------------------------------------------------------------------------------
# settings


def strings(value: Any) -> tuple[str, ...]:
    """An option as a tuple of strings: a comma-separated string or a list (None -> ())."""
    if value is None:
        return ()
    items = value.split(",") if isinstance(value, str) else [str(v) for v in value]
    return tuple(s.strip() for s in items if s.strip())


def seconds(value: Any) -> int:
    """Seconds from an int, a digit string, or a Go duration (``48h``, ``1h30m``, ``90s``).

    :raises ValueError: anything else.
    """
    if isinstance(value, int | float):
        return int(value)
    text = str(value).strip()
    if text.isdigit():
        return int(text)
    parts = _DURATION.findall(text)
    if not text or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"invalid duration {text!r}: use e.g. 3600, 90s, 30m or 48h")
    scale = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
    return int(sum(float(n) * scale[u] for n, u in parts))


def _flag_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes"):
        return True
    if text in ("false", "0", "no"):
        return False
    raise ValueError(f"expected true or false, not {value!r}")


@dataclass(frozen=True)
class Settings:
    """This plugin's settings, resolved (see the module docstring for the defaults)."""

    issuers: tuple[str, ...]
    key_files: tuple[str, ...]
    explicit_keys: bool
    audiences: tuple[str, ...]
    jwks_uri: str
    lookup: bool
    cache_size: int


def settings_of(options: Mapping[str, Any], data_dir: str, public_url: str) -> Settings:
    """Resolve ``options`` (this plugin's config section) against the defaults.

    :param public_url: ``https://host:port`` of this API server (for the default ``jwks_uri``).
    """
    issuers = strings(options.get("issuer")) or (DEFAULT_ISSUER,)
    key_files = strings(options.get("key_file"))
    explicit = bool(key_files)
    if not key_files:
        key_files = (str(Path(data_dir) / "pki" / "sa.pub"),)
    return Settings(issuers=issuers, key_files=key_files, explicit_keys=explicit,
                    audiences=strings(options.get("api_audiences")) or issuers,
                    jwks_uri=str(options.get("jwks_uri") or f"{public_url}/openid/v1/jwks"),
                    lookup=_flag_bool(options.get("lookup", True)),
                    cache_size=max(1, int(options.get("cache_size", DEFAULT_CACHE_SIZE))))


def public_url(app: App) -> str:
    """``https://ADDRESS:PORT`` of the API server (advertise address, else bind address)."""
    host = app.config.advertise_address or app.config.bind_address
    if host in ("", "0.0.0.0", "::"):
        host = "127.0.0.1"
    return f"https://{f'[{host}]' if ':' in host else host}:{app.config.secure_port}"


# ---------------------------------------------------------------------------------------------
# keys


def key_id(key: PublicKey) -> str:
    """kube-apiserver's ``kid``: unpadded base64url of SHA-256 over the PKIX DER public key."""
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.urlsafe_b64encode(hashlib.sha256(der).digest()).rstrip(b"=").decode()


def parse_public_keys(data: bytes, source: str) -> list[PublicKey]:
    """Every RSA or ECDSA public key in PEM ``data``: public keys, certificates, private keys.

    :raises KeyFileError: no usable key, an unreadable block, or another key type.
    """
    keys: list[PublicKey] = []
    for match in _PEM_BLOCK.finditer(data):
        label, block = match.group(1), match.group(0)
        try:
            if label == b"CERTIFICATE":
                key: Any = x509.load_pem_x509_certificate(block).public_key()
            elif label.endswith(b"PRIVATE KEY"):
                key = serialization.load_pem_private_key(block, None, unsafe_skip_rsa_key_validation=True).public_key()
            elif label.endswith(b"PUBLIC KEY"):
                key = serialization.load_pem_public_key(block)
            else:
                continue
        except (ValueError, TypeError) as exc:
            raise KeyFileError(f"{source}: a {label.decode()} block cannot be read ({type(exc).__name__})") from None
        if not isinstance(key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey) or (
                isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name not in _EC_ALGS):
            raise KeyFileError(f"{source}: only RSA and ECDSA (P-256, P-384, P-521) keys are supported")
        keys.append(key)
    if not keys:
        raise KeyFileError(f"{source}: no PEM public key, certificate or private key found")
    return keys


@dataclass(frozen=True)
class VerifyKey:
    """One verification key: its kid, the JWS algorithms it checks, the joserfc key and its JWK."""

    kid: str
    algorithms: tuple[str, ...]
    key: Any
    jwk: Mapping[str, str]


def verify_key(key: PublicKey) -> VerifyKey:
    """Wrap a public key for verification and for the JWKS document."""
    kid = key_id(key)
    pem = key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    if isinstance(key, rsa.RSAPublicKey):
        jose_key: Any = RSAKey.import_key(pem)
        algorithms: tuple[str, ...] = ("RS256", "RS384", "RS512")
        alg = "RS256"
    else:
        jose_key = ECKey.import_key(pem)
        alg = _EC_ALGS[key.curve.name]
        algorithms = (alg,)
    jwk = {"use": "sig", "kid": kid, "alg": alg, **jose_key.as_dict()}
    return VerifyKey(kid, algorithms, jose_key, jwk)


def load_keys(settings: Settings) -> tuple[VerifyKey, ...]:
    """The verification keys of ``settings.key_files`` (the default file may be absent).

    :raises KeyFileError: a named file is missing or unusable.
    """
    keys: list[VerifyKey] = []
    for path in settings.key_files:
        try:
            data = Path(path).read_bytes()
        except FileNotFoundError:
            if settings.explicit_keys:
                raise KeyFileError(f"--service-account-key-file {path!r} does not exist") from None
            continue
        except OSError as exc:
            raise KeyFileError(f"--service-account-key-file {path!r} cannot be read: {exc.strerror}") from None
        keys.extend(verify_key(k) for k in parse_public_keys(data, path))
    return tuple({k.kid: k for k in keys}.values())


# ---------------------------------------------------------------------------------------------
# tokens


def peek_claims(token: str) -> dict[str, Any] | None:
    """The unverified claims of a compact JWS, or None when ``token`` is not one."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        claims = orjson.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (ValueError, orjson.JSONDecodeError):
        return None
    return claims if isinstance(claims, dict) else None


def _header_kid(token: str) -> str:
    head = token.split(".", 1)[0]
    try:
        header = orjson.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
    except (ValueError, orjson.JSONDecodeError):
        return ""
    return str(header.get("kid", "")) if isinstance(header, dict) else ""


def check_signature(token: str, keys: tuple[VerifyKey, ...]) -> None:
    """Accept when one of ``keys`` verifies the JWS (the key named by ``kid`` is tried first).

    :raises AuthenticationError: no key verifies it, or it is malformed.
    """
    kid = _header_kid(token)
    for key in sorted(keys, key=lambda k: k.kid != kid):
        try:
            jws.deserialize_compact(token, key.key, algorithms=list(key.algorithms))
            return
        except JoseError:
            continue
    raise AuthenticationError("invalid service account token: the signature does not verify with any "
                              "--service-account-key-file key")


def _number(claims: Mapping[str, Any], name: str) -> float | None:
    value = claims.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise AuthenticationError(f"invalid service account token: the {name} claim is not a number")
    return float(value)


def check_times(claims: Mapping[str, Any], now: float) -> float:
    """Check ``exp``, ``nbf`` and ``iat`` (60 s leeway); return the expiry (inf if none).

    :raises AuthenticationError: expired, not valid yet, or malformed.
    """
    exp, nbf, iat = _number(claims, "exp"), _number(claims, "nbf"), _number(claims, "iat")
    if exp is not None and now - LEEWAY > exp:
        raise AuthenticationError("service account token has expired")
    if nbf is not None and now + LEEWAY < nbf:
        raise AuthenticationError("service account token is not valid yet (nbf is in the future)")
    if iat is not None and now + LEEWAY < iat:
        raise AuthenticationError("service account token was issued in the future (iat)")
    return exp + LEEWAY if exp is not None else float("inf")


@dataclass(frozen=True, slots=True)
class Ref:
    """An object a token depends on: it must exist (storage ``key``) with ``uid`` (if set); a
    legacy token's secret must still hold ``secret_token``."""

    resource: str
    namespace: str
    name: str
    key: str
    uid: str = ""
    secret_token: str = ""

    def problem(self, obj: Mapping[str, Any] | None, now: float) -> str:
        """Why ``obj`` (the stored object, or None) invalidates the token; "" when it does not."""
        if obj is None:
            return f"{self.what} has been deleted"
        meta = obj.get("metadata") or {}
        if self.uid and meta.get("uid") != self.uid:
            return f"{self.what} UID ({meta.get('uid')}) does not match the token's claim ({self.uid})"
        deleting = meta.get("deletionTimestamp")
        if deleting and _timestamp(deleting) < now - LEEWAY:
            return f"{self.what} is marked for deletion"
        if self.secret_token:
            stored = (obj.get("data") or {}).get("token", "")
            try:
                matches = base64.b64decode(stored) == self.secret_token.encode()
            except ValueError:
                matches = False
            if not matches:
                return f"{self.what} no longer holds this token"
        return ""

    @property
    def what(self) -> str:
        """``pod NS/NAME`` (for messages)."""
        return f"{_KINDS[self.resource]} {self.namespace + '/' if self.namespace else ''}{self.name}"


def _timestamp(value: Any) -> float:
    try:
        return datetime.datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return float("inf")


@dataclass(frozen=True, slots=True)
class Verified:
    """A token whose signature and claims were checked: what remains to check per request."""

    user: UserInfo
    expires: float
    audiences: frozenset[str]
    refs: tuple[Ref, ...]


def _ref(app: App, resource: str, namespace: str, name: Any, uid: Any = "", secret_token: str = "") -> Ref:
    rt = app.registry.lookup("", "v1", resource)
    if rt is None:
        raise AuthenticationError(f"cannot validate the service account token: {resource} are not served")
    if not isinstance(name, str) or not name:
        raise AuthenticationError(f"invalid service account token: the {_KINDS[resource]} name claim is missing")
    return Ref(resource, namespace if rt.namespaced else "", name, rt.key(app.root, namespace, name),
               uid if isinstance(uid, str) else "", secret_token)


def _user(namespace: str, name: str, uid: str, extra: dict[str, tuple[str, ...]]) -> UserInfo:
    return UserInfo(name=f"system:serviceaccount:{namespace}:{name}", uid=uid,
                    groups=(SA_GROUP, f"{SA_GROUP}:{namespace}"), extra=extra)


def bound_claims(app: App, claims: Mapping[str, Any], now: float) -> Verified:
    """A bound (TokenRequest) token's identity from its verified claims.

    :raises AuthenticationError: a claim is missing or malformed, or the token expired.
    """
    expires = check_times(claims, now)
    kube = claims.get("kubernetes.io")
    if not isinstance(kube, dict):
        raise AuthenticationError("invalid service account token: the kubernetes.io claim is missing")
    namespace = kube.get("namespace")
    account = kube.get("serviceaccount") or {}
    if not isinstance(namespace, str) or not namespace or not isinstance(account, dict):
        raise AuthenticationError("invalid service account token: the namespace or service account claim is missing")
    sa = _ref(app, "serviceaccounts", namespace, account.get("name"), account.get("uid"))
    if claims.get("sub") != f"system:serviceaccount:{namespace}:{sa.name}":
        raise AuthenticationError("invalid service account token: sub does not match the service account claims")
    refs = [sa]
    extra: dict[str, tuple[str, ...]] = {}
    for resource, claim, namespaced in (("pods", "pod", True), ("secrets", "secret", True), ("nodes", "node", False)):
        bound = kube.get(claim)
        if isinstance(bound, dict):
            ref = _ref(app, resource, namespace if namespaced else "", bound.get("name"), bound.get("uid"))
            if claim != "secret":
                extra[f"{EXTRA}{claim}-name"] = (ref.name,)
                if ref.uid:
                    extra[f"{EXTRA}{claim}-uid"] = (ref.uid,)
            # a pod-bound token names the pod's node for information only; kube checks the node
            # only for tokens bound to the node itself
            if claim != "node" or not isinstance(kube.get("pod"), dict):
                refs.append(ref)
    jti = claims.get("jti")
    if isinstance(jti, str) and jti:
        extra[f"{EXTRA}credential-id"] = (f"JTI={jti}",)
    aud = claims.get("aud")
    audiences = frozenset([aud] if isinstance(aud, str) else [str(a) for a in aud or ()])
    return Verified(_user(namespace, sa.name, sa.uid, extra), expires, audiences, tuple(refs))


def legacy_claims(app: App, claims: Mapping[str, Any], token: str, lookup: bool) -> Verified:
    """A legacy (secret-based) token's identity. :raises AuthenticationError: claims missing."""
    namespace = claims.get(f"{_LEGACY}namespace")
    if not isinstance(namespace, str) or not namespace:
        raise AuthenticationError("invalid service account token: the namespace claim is missing")
    sa = _ref(app, "serviceaccounts", namespace, claims.get(f"{_LEGACY}service-account.name"),
              claims.get(f"{_LEGACY}service-account.uid"))
    secret = _ref(app, "secrets", namespace, claims.get(f"{_LEGACY}secret.name"), secret_token=token)
    return Verified(_user(namespace, sa.name, sa.uid, {}), float("inf"), frozenset(),
                    (sa, secret) if lookup else ())


# ---------------------------------------------------------------------------------------------
# per-app state


@dataclass
class State:
    """What this plugin keeps per app (``app.plugin_state``)."""

    settings: Settings
    keys: tuple[VerifyKey, ...]
    issuers: frozenset[str]
    discovery: bytes | None
    jwks: bytes
    verified: dict[str, Verified] = field(default_factory=dict)


def build_state(app: App) -> State:
    """Resolve settings and load keys. :raises KeyFileError: a named key file is unusable."""
    settings = settings_of(app.config.options_for(PLUGIN_NAME), app.config.data_dir, public_url(app))
    keys = load_keys(settings)
    jwks = orjson.dumps({"keys": [dict(k.jwk) for k in keys]})
    discovery = None
    if settings.issuers[0].startswith("https://") and keys:
        algs = sorted({str(k.jwk["alg"]) for k in keys})
        discovery = orjson.dumps({"issuer": settings.issuers[0], "jwks_uri": settings.jwks_uri,
                                  "response_types_supported": ["id_token"], "subject_types_supported": ["public"],
                                  "id_token_signing_alg_values_supported": algs})
    return State(settings, keys, frozenset((*settings.issuers, LEGACY_ISSUER)), discovery, jwks)


def state_of(app: App) -> State:
    """This app's state, built on first use (normally at startup)."""
    holder = app.plugin_state(PLUGIN_NAME)
    state: State | None = holder.get("state")
    if state is None:
        state = holder["state"] = build_state(app)
    return state


# ---------------------------------------------------------------------------------------------
# request-time checks


def _cached_object(app: App, key: str) -> Mapping[str, Any] | None:
    try:
        cache = app.cache.route(key)
    except RuntimeError:
        return None
    found = cache.objects.get(key) if cache is not None else None
    return found.obj if found is not None else None


async def _stored_object(app: App, key: str) -> Mapping[str, Any] | None:
    try:
        kv = await app.storage.get(key)
    except KeyNotFoundError:
        return None
    except StorageError:
        raise APIError(503, "ServiceUnavailable", "cannot validate the service account token: storage is "
                       "unavailable") from None
    obj = orjson.loads(kv.value)
    return obj if isinstance(obj, dict) else None


async def check_refs(app: App, refs: tuple[Ref, ...], now: float) -> None:
    """Every object a token depends on still exists, unchanged (watch cache first, then storage).

    :raises AuthenticationError: one is gone, replaced or being deleted.
    """
    for ref in refs:
        if not ref.problem(_cached_object(app, ref.key), now):
            continue
        problem = ref.problem(await _stored_object(app, ref.key), now)
        if problem:
            raise AuthenticationError(f"invalid service account token: {problem}")


def _remember(state: State, token: str, verified: Verified) -> None:
    cache = state.verified
    cache[token] = verified
    if len(cache) > state.settings.cache_size:
        del cache[next(iter(cache))]


def verify(app: App, state: State, token: str, now: float) -> Verified | None:
    """Signature and claims of ``token`` (LRU-cached); None when it is not our token.

    :raises AuthenticationError: our issuer, but the token is invalid.
    """
    found = state.verified.pop(token, None)
    if found is not None:
        state.verified[token] = found  # most recently used
        if now > found.expires:
            del state.verified[token]
            raise AuthenticationError("service account token has expired")
        return found
    claims = peek_claims(token)
    issuer = claims.get("iss") if claims is not None else None
    if claims is None or not isinstance(issuer, str) or issuer not in state.issuers:
        return None
    check_signature(token, state.keys)
    if issuer == LEGACY_ISSUER:
        verified = legacy_claims(app, claims, token, state.settings.lookup)
    else:
        verified = bound_claims(app, claims, now)
    _remember(state, token, verified)
    return verified


def requested_audiences(request: AuthnRequest, state: State) -> tuple[str, ...]:
    """The audiences a token must match: the request's own (a TokenReview's ``spec.audiences``
    when the core passes them as ``request.audiences``) or the API audiences."""
    return tuple(getattr(request, "audiences", ()) or ()) or state.settings.audiences


# ---------------------------------------------------------------------------------------------
# hooks


@hookimpl
def kapi_add_options(parser: argparse.ArgumentParser) -> None:
    """kube-apiserver's service-account flags."""
    group = parser.add_argument_group("service account tokens (authn_service_account)")
    group.add_argument("--service-account-issuer", action="append", default=None, metavar="URL",
                       help=f"issuer (iss) of service-account tokens; repeatable: the first signs, all are "
                            f"accepted (default {DEFAULT_ISSUER})")
    group.add_argument("--service-account-key-file", action="append", default=None, metavar="FILE",
                       help="PEM public keys (or certificates, or private keys) that verify service-account "
                            "tokens; repeatable (default DATA_DIR/pki/sa.pub)")
    group.add_argument("--service-account-signing-key-file", default="", metavar="FILE",
                       help="PEM private key that signs service-account tokens (default DATA_DIR/pki/sa.key)")
    group.add_argument("--api-audiences", default="", metavar="AUD[,AUD]",
                       help="audiences of the API: tokens must carry one (default: the issuers)")
    group.add_argument("--service-account-max-token-expiration", default="", metavar="DURATION",
                       help="longest lifetime of a requested token, e.g. 48h (default: no limit)")
    group.add_argument("--service-account-jwks-uri", default="", metavar="URL",
                       help="jwks_uri advertised in /.well-known/openid-configuration")
    group.add_argument("--service-account-lookup", default="true", metavar="BOOL",
                       help="check that legacy tokens' secrets still exist (default true)")


@hookimpl
def kapi_read_options(args: argparse.Namespace) -> dict[str, Any] | None:
    """The flags as this plugin's options section (only the flags that were set)."""
    section: dict[str, Any] = {}
    pairs = (("issuer", "service_account_issuer"), ("key_file", "service_account_key_file"),
             ("signing_key_file", "service_account_signing_key_file"), ("jwks_uri", "service_account_jwks_uri"))
    for option, attr in pairs:
        value = getattr(args, attr, None)
        if value:
            section[option] = list(value) if isinstance(value, list) else value
    audiences = strings(getattr(args, "api_audiences", ""))
    if audiences:
        section["api_audiences"] = list(audiences)
    expiration = getattr(args, "service_account_max_token_expiration", "")
    if expiration:
        try:
            section["max_token_expiration"] = seconds(expiration)
        except ValueError as exc:
            raise ValueError(f"--service-account-max-token-expiration: {exc}") from None
    try:
        section["lookup"] = _flag_bool(getattr(args, "service_account_lookup", "true"))
    except ValueError as exc:
        raise ValueError(f"--service-account-lookup: {exc}") from None
    section["enabled"] = True
    return section


@hookimpl
def kapi_startup(app: App) -> None:
    """Load the verification keys (a named key file that is unusable stops the server)."""
    app.plugin_state(PLUGIN_NAME).pop("state", None)
    state = state_of(app)
    if state.keys:
        log.info("service-account tokens: %d verification key(s), issuer %s", len(state.keys),
                 state.settings.issuers[0])
    else:
        log.info("service-account tokens: no key file (%s), service-account authentication is off",
                 ", ".join(state.settings.key_files))


@hookimpl
async def kapi_authenticate(request: AuthnRequest, app: App) -> UserInfo | None:
    """The service account of a valid service-account token; None when the token is not ours.

    :raises AuthenticationError: a JWT from our issuer that is invalid (see the module docstring).
    """
    token = request.bearer_token()
    if token is None:
        return None
    state = state_of(app)
    if not state.keys:
        return None
    now = time.time()
    verified = verify(app, state, token, now)
    if verified is None:
        return None
    wanted = requested_audiences(request, state)
    if verified.audiences and wanted and verified.audiences.isdisjoint(wanted):
        raise AuthenticationError(f"service account token audiences {sorted(verified.audiences)} are not valid for "
                                  f"the target audiences {list(wanted)}")
    await check_refs(app, verified.refs, now)
    return verified.user


@hookimpl
def kapi_register_routes(app: App) -> list[BaseRoute]:
    """``/.well-known/openid-configuration`` and ``/openid/v1/jwks`` (service-account issuer discovery)."""

    async def discovery(_request: Request) -> Response:
        document = state_of(app).discovery
        if document is None:
            raise APIError(404, "NotFound", "service-account issuer discovery is off: the issuer is not an https "
                                            "URL or there is no service-account key")
        return Response(document, media_type="application/json", headers={"cache-control": "public, max-age=3600"})

    async def jwks(_request: Request) -> Response:
        state = state_of(app)
        if state.discovery is None:
            raise APIError(404, "NotFound", "service-account issuer discovery is off")
        return Response(state.jwks, media_type="application/jwk-set+json",
                        headers={"cache-control": "public, max-age=3600"})

    return [Route("/.well-known/openid-configuration", discovery, methods=["GET"]),
            Route("/openid/v1/jwks", jwks, methods=["GET"])]
