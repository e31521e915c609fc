"""OpenID Connect / JWT issuers (kube-apiserver's ``--oidc-*`` flags and ``--authentication-config``),
alias ``oidc``.

Accepts ID tokens (JWTs) from one issuer given by flags, or from several issuers listed in an
``AuthenticationConfiguration`` file (``apiserver.config.k8s.io/v1``, ``v1beta1`` or ``v1alpha1``;
the two ways are exclusive, as in kube-apiserver)::

    apiVersion: apiserver.config.k8s.io/v1
    kind: AuthenticationConfiguration
    jwt:
    - issuer:
        url: https://issuer.example.com          # must equal the tokens' iss; https only
        discoveryURL: https://internal/.well-known/openid-configuration   # optional
        certificateAuthority: |                  # optional PEM that verifies the issuer's TLS
          -----BEGIN CERTIFICATE-----...
        audiences: [kapi]                        # the token's aud must contain one
      claimValidationRules: [{claim: hd, requiredValue: example.com}]
      claimMappings:
        username: {claim: email, prefix: ""}     # prefix is required with claim
        groups: {claim: groups, prefix: "oidc:"}
        uid: {claim: sub}

CEL expressions (``expression``, ``userValidationRules``, ``extra`` mappings) are refused at
startup with an error naming the field; ``anonymous`` in the file is ignored (use
``--anonymous-auth``).

Keys: the issuer's discovery document (``<url>/.well-known/openid-configuration``, or
``discoveryURL``; its ``issuer`` must equal ``url``) names ``jwks_uri``, both fetched over HTTPS
with httpx, trusting ``certificateAuthority`` / ``--oidc-ca-file`` (else the system CAs). Fetching
starts at startup in the background and retries with backoff; a token signed by an unknown key id
triggers a refetch (at most every 10 s). For the flag issuer, the option ``jwks_file`` (a local
JWKS JSON file) replaces discovery.

Checks: signature (``--oidc-signing-algs``, default RS256; config issuers accept RS*, ES*, PS*),
``exp`` (required), ``nbf`` and ``iat`` (5 minutes of leeway), ``aud``, required claims, and for
the ``email`` username claim ``email_verified`` when present. The user: the username claim with its
prefix (flags: default prefix ``<issuer url>#`` unless the claim is ``email``; ``-`` means none),
groups from the groups claim (a string or a list of strings) with their prefix, uid from the uid
claim.

Errors (the rule): a token that is not a JWT, or whose ``iss`` is not a configured issuer, is not
this plugin's (None). A JWT from a configured issuer that fails any check, or whose issuer's keys
cannot be fetched, is a 401 saying which check failed (never the token). Verified tokens are cached
in a per-app LRU until they expire. Tokens are never logged.

Flags -> options (``config.plugin_options["authn_oidc"]``; ``--plugin-option`` works too):
``--oidc-issuer-url`` ``issuer_url``, ``--oidc-client-id`` ``client_id``, ``--oidc-username-claim``
``username_claim`` (sub), ``--oidc-username-prefix`` ``username_prefix``, ``--oidc-groups-claim``
``groups_claim``, ``--oidc-groups-prefix`` ``groups_prefix``, ``--oidc-ca-file`` ``ca_file``,
``--oidc-signing-algs`` ``signing_algs``, ``--oidc-required-claim`` (``key=value``, repeatable)
``required_claims``, ``--authentication-config`` ``config_file``; options only: ``jwks_file``,
``cache_size`` (4096). Setting an issuer sets ``enabled``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import logging
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import orjson
import yaml
from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from kapi import AuthenticationError, AuthnRequest, UserInfo, hookimpl

if TYPE_CHECKING:
    from kapi import App

PLUGIN_NAME = "authn_oidc"
ALIASES = ("oidc", "jwt")
CONFIG_VERSIONS = ("apiserver.config.k8s.io/v1", "apiserver.config.k8s.io/v1beta1",
                   "apiserver.config.k8s.io/v1alpha1")
ALL_ALGORITHMS = ("RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256", "PS384", "PS512")
LEEWAY = 300.0
REFRESH_INTERVAL = 10.0
FETCH_TIMEOUT = 10.0
DEFAULT_CACHE_SIZE = 4096

log = logging.getLogger(__name__)


class OIDCConfigError(ValueError):
    """The OIDC configuration cannot be used; the message names the flag or file field."""


# ---------------------------------------------------------------------------------------------
# configuration


@dataclass(frozen=True)
class Issuer:
    """One trusted JWT issuer and how its tokens map to users."""

    url: str
    audiences: tuple[str, ...]
    username_claim: str = "sub"
    username_prefix: str = ""
    groups_claim: str = ""
    groups_prefix: str = ""
    uid_claim: str = ""
    required_claims: tuple[tuple[str, str], ...] = ()
    algorithms: tuple[str, ...] = ("RS256",)
    discovery_url: str = ""
    ca_pem: str = ""
    jwks_file: str = ""

    @property
    def discovery(self) -> str:
        return self.discovery_url or self.url.rstrip("/") + "/.well-known/openid-configuration"


def _strings(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    items = value.split(",") if isinstance(value, str) else [str(v) for v in value]
    return tuple(s.strip() for s in items if s.strip())


def _https(url: str, where: str) -> str:
    if not url.startswith("https://"):
        raise OIDCConfigError(f"{where}: {url!r} must be an https URL")
    return url


def _read_text(path: str, where: str) -> str:
    try:
        return Path(path).read_text()
    except OSError as exc:
        raise OIDCConfigError(f"{where} {path!r} cannot be read: {exc.strerror}") from None


def issuer_from_options(options: Mapping[str, Any]) -> Issuer | None:
    """The issuer of the ``--oidc-*`` flags (None without ``issuer_url``)."""
    url = str(options.get("issuer_url") or "")
    if not url:
        return None
    _https(url, "--oidc-issuer-url")
    client_id = str(options.get("client_id") or "")
    if not client_id:
        raise OIDCConfigError("--oidc-client-id is required with --oidc-issuer-url")
    claim = str(options.get("username_claim") or "sub")
    prefix = options.get("username_prefix")
    if prefix is None or prefix == "":
        prefix = "" if claim == "email" else f"{url}#"
    elif prefix == "-":
        prefix = ""
    required = []
    for item in _strings(options.get("required_claims")):
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise OIDCConfigError(f"--oidc-required-claim {item!r}: expected key=value")
        required.append((key, value))
    ca_file = str(options.get("ca_file") or "")
    return Issuer(url=url, audiences=(client_id,), username_claim=claim, username_prefix=str(prefix),
                  groups_claim=str(options.get("groups_claim") or ""),
                  groups_prefix=str(options.get("groups_prefix") or ""), required_claims=tuple(required),
                  algorithms=_strings(options.get("signing_algs")) or ("RS256",),
                  ca_pem=_read_text(ca_file, "--oidc-ca-file") if ca_file else "",
                  jwks_file=str(options.get("jwks_file") or ""))


def _no_expression(section: Any, where: str) -> None:
    if isinstance(section, dict) and section.get("expression"):
        raise OIDCConfigError(f"{where}.expression: CEL expressions are not supported by kapi; use claim")


def _jwt_issuer(entry: Any, where: str) -> Issuer:
    if not isinstance(entry, dict):
        raise OIDCConfigError(f"{where}: must be a mapping")
    issuer = entry.get("issuer") or {}
    url = _https(str(issuer.get("url") or ""), f"{where}.issuer.url")
    audiences = _strings(issuer.get("audiences"))
    if not audiences:
        raise OIDCConfigError(f"{where}.issuer.audiences: at least one audience is required")
    if issuer.get("audienceMatchPolicy") not in (None, "", "MatchAny"):
        raise OIDCConfigError(f"{where}.issuer.audienceMatchPolicy: only MatchAny is supported")
    required = []
    for i, rule in enumerate(entry.get("claimValidationRules") or []):
        _no_expression(rule, f"{where}.claimValidationRules[{i}]")
        if not isinstance(rule, dict) or not rule.get("claim"):
            raise OIDCConfigError(f"{where}.claimValidationRules[{i}].claim: required")
        required.append((str(rule["claim"]), str(rule.get("requiredValue", ""))))
    if entry.get("userValidationRules"):
        raise OIDCConfigError(f"{where}.userValidationRules: CEL expressions are not supported by kapi")
    mappings = entry.get("claimMappings") or {}
    if mappings.get("extra"):
        raise OIDCConfigError(f"{where}.claimMappings.extra: CEL expressions are not supported by kapi")
    username, groups, uid = (mappings.get(k) or {} for k in ("username", "groups", "uid"))
    for name, section in (("username", username), ("groups", groups), ("uid", uid)):
        _no_expression(section, f"{where}.claimMappings.{name}")
    if not username.get("claim"):
        raise OIDCConfigError(f"{where}.claimMappings.username.claim: required")
    if username.get("prefix") is None:
        raise OIDCConfigError(f"{where}.claimMappings.username.prefix: required when claim is set (may be \"\")")
    return Issuer(url=url, audiences=audiences, username_claim=str(username["claim"]),
                  username_prefix=str(username["prefix"]), groups_claim=str(groups.get("claim") or ""),
                  groups_prefix=str(groups.get("prefix") or ""), uid_claim=str(uid.get("claim") or ""),
                  required_claims=tuple(required), algorithms=ALL_ALGORITHMS,
                  discovery_url=_https(str(issuer["discoveryURL"]), f"{where}.issuer.discoveryURL")
                  if issuer.get("discoveryURL") else "", ca_pem=str(issuer.get("certificateAuthority") or ""))


def issuers_from_config(text: str, source: str) -> tuple[Issuer, ...]:
    """The issuers of an AuthenticationConfiguration document. :raises OIDCConfigError: invalid."""
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise OIDCConfigError(f"--authentication-config {source!r}: not valid YAML ({exc})") from None
    if not isinstance(doc, dict) or doc.get("kind") != "AuthenticationConfiguration" or \
            doc.get("apiVersion") not in CONFIG_VERSIONS:
        raise OIDCConfigError(f"--authentication-config {source!r}: expected kind AuthenticationConfiguration, "
                              f"apiVersion one of {', '.join(CONFIG_VERSIONS)}")
    if doc.get("anonymous"):
        log.warning("--authentication-config %r: the anonymous section is ignored; use --anonymous-auth", source)
    issuers = tuple(_jwt_issuer(e, f"{source}: jwt[{i}]") for i, e in enumerate(doc.get("jwt") or []))
    urls = [i.url for i in issuers]
    if len(set(urls)) != len(urls):
        raise OIDCConfigError(f"--authentication-config {source!r}: an issuer url is listed twice")
    return issuers


def configured_issuers(options: Mapping[str, Any]) -> tuple[Issuer, ...]:
    """Every issuer of this plugin's options. :raises OIDCConfigError: invalid or conflicting."""
    flag_issuer = issuer_from_options(options)
    config_file = str(options.get("config_file") or "")
    if flag_issuer is not None and config_file:
        raise OIDCConfigError("--authentication-config and --oidc-* flags are mutually exclusive")
    if config_file:
        return issuers_from_config(_read_text(config_file, "--authentication-config"), config_file)
    return (flag_issuer,) if flag_issuer is not None else ()


# ---------------------------------------------------------------------------------------------
# keys


def keys_from_jwks(document: Any, source: str) -> tuple[Any, ...]:
    """The public keys of a JWKS document. :raises OIDCConfigError: not a usable JWKS."""
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise OIDCConfigError(f"{source}: not a JWKS document (no keys list)")
    usable = [k for k in document["keys"] if isinstance(k, dict) and k.get("use", "sig") == "sig"
              and k.get("kty") in ("RSA", "EC")]
    try:
        return tuple(KeySet.import_key_set({"keys": usable}).keys)
    except (JoseError, ValueError, TypeError) as exc:
        raise OIDCConfigError(f"{source}: a key cannot be imported ({type(exc).__name__})") from None


@dataclass
class KeySource:
    """The current keys of one issuer and the bookkeeping to refresh them."""

    issuer: Issuer
    keys: tuple[Any, ...] = ()
    client: httpx.AsyncClient | None = None
    last_attempt: float = 0.0
    error: str = ""
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def fetch(self) -> None:
        """Fetch discovery then JWKS; on failure keep the old keys and remember why."""
        assert self.client is not None
        self.last_attempt = time.monotonic()
        try:
            response = await self.client.get(self.issuer.discovery)
            response.raise_for_status()
            doc = response.json()
            named = doc.get("issuer") if isinstance(doc, dict) else None
            if named != self.issuer.url:
                raise OIDCConfigError(f"the discovery document's issuer {named!r} is not {self.issuer.url!r}")
            response = await self.client.get(str(doc.get("jwks_uri", "")))
            response.raise_for_status()
            self.keys = keys_from_jwks(response.json(), f"JWKS of {self.issuer.url}")
            self.error = ""
        except (httpx.HTTPError, ValueError) as exc:
            self.error = f"{type(exc).__name__}: {exc}"
            log.warning("OIDC issuer %s: cannot fetch keys: %s", self.issuer.url, self.error)

    async def refresh(self, force: bool = False) -> None:
        """Refetch unless another fetch ran in the last 10 s (or none can: a local JWKS file)."""
        if self.client is None:
            return
        async with self.lock:
            if force or time.monotonic() - self.last_attempt >= REFRESH_INTERVAL:
                await self.fetch()

    async def keep_trying(self) -> None:
        """Background start-up fetch: retry with backoff (0.5 s doubling to 30 s) until keys arrive."""
        delay = 0.5
        while not self.keys:
            await self.refresh(force=True)
            if self.keys:
                return
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)


def _client(issuer: Issuer) -> httpx.AsyncClient:
    verify: ssl.SSLContext | bool = True
    if issuer.ca_pem:
        verify = ssl.create_default_context(cadata=issuer.ca_pem)
    return httpx.AsyncClient(verify=verify, timeout=FETCH_TIMEOUT, follow_redirects=False)


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


class UnknownKey(Exception):
    """No key of the issuer has the token's kid (the keys may have rotated)."""


def check_signature(token: str, keys: tuple[Any, ...], algorithms: tuple[str, ...]) -> None:
    """Accept when a key verifies the JWS: the key with the token's kid, or any key without one.

    :raises UnknownKey: no key has the token's kid. :raises AuthenticationError: bad signature.
    """
    try:
        kid = jws.extract_compact(token.encode()).headers().get("kid")
    except (JoseError, ValueError):
        raise AuthenticationError("invalid OIDC token: malformed JWS") from None
    candidates = [k for k in keys if k.kid == kid] if kid else list(keys)
    if not candidates:
        raise UnknownKey(kid)
    for key in candidates:
        try:
            jws.deserialize_compact(token, key, algorithms=list(algorithms))
            return
        except JoseError:
            continue
    raise AuthenticationError("invalid OIDC token: the signature does not verify with the issuer's keys")


def _number(claims: Mapping[str, Any], name: str) -> float | None:
    value = claims.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise AuthenticationError(f"invalid OIDC token: the {name} claim is not a number")
    return float(value)


def _claim_strings(claims: Mapping[str, Any], name: str) -> tuple[str, ...]:
    value = claims.get(name)
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise AuthenticationError(f"invalid OIDC token: the {name} claim is not a string or a list of strings")


def user_of(issuer: Issuer, claims: Mapping[str, Any], now: float) -> tuple[UserInfo, float]:
    """Check the verified ``claims`` and map them to ``(user, expiry)``.

    :raises AuthenticationError: expired, wrong audience, a required claim, or a missing username.
    """
    exp, nbf, iat = _number(claims, "exp"), _number(claims, "nbf"), _number(claims, "iat")
    if exp is None:
        raise AuthenticationError("invalid OIDC token: the exp claim is required")
    if now > exp:
        raise AuthenticationError("OIDC token has expired")
    if (nbf is not None and now + LEEWAY < nbf) or (iat is not None and now + LEEWAY < iat):
        raise AuthenticationError("OIDC token is not valid yet (nbf or iat is in the future)")
    if set(_claim_strings(claims, "aud")).isdisjoint(issuer.audiences):
        raise AuthenticationError(f"invalid OIDC token: its audience is not one of {list(issuer.audiences)}")
    for claim, wanted in issuer.required_claims:
        if claims.get(claim) != wanted:
            raise AuthenticationError(f"invalid OIDC token: required claim {claim!r} is missing or has another value")
    name = claims.get(issuer.username_claim)
    if not isinstance(name, str) or not name:
        raise AuthenticationError(f"invalid OIDC token: the username claim {issuer.username_claim!r} is missing "
                                  f"or not a string")
    if issuer.username_claim == "email" and claims.get("email_verified", True) is not True:
        raise AuthenticationError("invalid OIDC token: email_verified is not true")
    groups = tuple(issuer.groups_prefix + g for g in _claim_strings(claims, issuer.groups_claim)) \
        if issuer.groups_claim else ()
    uid = claims.get(issuer.uid_claim) if issuer.uid_claim else ""
    if not isinstance(uid, str):
        raise AuthenticationError(f"invalid OIDC token: the uid claim {issuer.uid_claim!r} is not a string")
    return UserInfo(name=issuer.username_prefix + name, uid=uid, groups=groups), exp


# ---------------------------------------------------------------------------------------------
# per-app state


@dataclass
class State:
    """What this plugin keeps per app (``app.plugin_state``)."""

    sources: dict[str, KeySource]
    cache_size: int
    verified: dict[str, tuple[UserInfo, float]] = field(default_factory=dict)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)


def build_state(options: Mapping[str, Any]) -> State:
    """Issuers from ``options``; local JWKS files are read now, remote keys are fetched later.

    :raises OIDCConfigError: the configuration or a JWKS file is unusable.
    """
    sources: dict[str, KeySource] = {}
    for issuer in configured_issuers(options):
        source = KeySource(issuer)
        if issuer.jwks_file:
            text = _read_text(issuer.jwks_file, "jwks_file")
            try:
                document = orjson.loads(text)
            except orjson.JSONDecodeError:
                raise OIDCConfigError(f"jwks_file {issuer.jwks_file!r}: not JSON") from None
            source.keys = keys_from_jwks(document, f"jwks_file {issuer.jwks_file!r}")
        else:
            source.client = _client(issuer)
        sources[issuer.url] = source
    return State(sources, max(1, int(options.get("cache_size", DEFAULT_CACHE_SIZE))))


def state_of(app: App) -> State:
    """This app's state (built at startup; built here without background fetching otherwise)."""
    holder = app.plugin_state(PLUGIN_NAME)
    state: State | None = holder.get("state")
    if state is None:
        state = holder["state"] = build_state(app.config.options_for(PLUGIN_NAME))
    return state


async def verify(source: KeySource, token: str, claims: Mapping[str, Any], now: float) -> tuple[UserInfo, float]:
    """Verify ``token`` with the issuer's keys (refetching them once for an unknown kid)."""
    if not source.keys:
        await source.refresh()
    if not source.keys:
        raise AuthenticationError(f"the keys of OIDC issuer {source.issuer.url} are not available yet")
    try:
        check_signature(token, source.keys, source.issuer.algorithms)
    except UnknownKey:
        await source.refresh()
        try:
            check_signature(token, source.keys, source.issuer.algorithms)
        except UnknownKey:
            raise AuthenticationError("invalid OIDC token: no key of the issuer has its key id") from None
    return user_of(source.issuer, claims, now)


# ---------------------------------------------------------------------------------------------
# hooks


@hookimpl
def kapi_add_options(parser: argparse.ArgumentParser) -> None:
    """kube-apiserver's ``--oidc-*`` flags and ``--authentication-config``."""
    group = parser.add_argument_group("OpenID Connect (authn_oidc)")
    group.add_argument("--oidc-issuer-url", default="", metavar="URL", help="the OIDC issuer (https); tokens' iss")
    group.add_argument("--oidc-client-id", default="", help="the audience tokens must carry")
    group.add_argument("--oidc-username-claim", default="sub", help="claim holding the user name (default sub)")
    group.add_argument("--oidc-username-prefix", default=None, help="prefix of user names (default "
                       "'<issuer>#' unless the claim is email; '-' for none)")
    group.add_argument("--oidc-groups-claim", default="", help="claim holding the groups")
    group.add_argument("--oidc-groups-prefix", default="", help="prefix of group names")
    group.add_argument("--oidc-ca-file", default="", metavar="FILE", help="CA bundle for the issuer's TLS")
    group.add_argument("--oidc-signing-algs", default="RS256", metavar="ALG[,ALG]", help="accepted JWS "
                       "algorithms (default RS256)")
    group.add_argument("--oidc-required-claim", action="append", default=None, metavar="KEY=VALUE",
                       help="a claim every token must carry with this value (repeatable)")
    group.add_argument("--authentication-config", default="", metavar="FILE",
                       help="AuthenticationConfiguration file (jwt issuers); exclusive with --oidc-*")


@hookimpl
def kapi_read_options(args: argparse.Namespace) -> dict[str, Any] | None:
    """The flags as this plugin's options section; None when no issuer is configured."""
    url, config_file = getattr(args, "oidc_issuer_url", ""), getattr(args, "authentication_config", "")
    if not url and not config_file:
        return None
    section: dict[str, Any] = {"enabled": True}
    if config_file:
        section["config_file"] = config_file
    if url:
        section.update(issuer_url=url, client_id=args.oidc_client_id, username_claim=args.oidc_username_claim,
                       groups_claim=args.oidc_groups_claim, groups_prefix=args.oidc_groups_prefix,
                       ca_file=args.oidc_ca_file, signing_algs=list(_strings(args.oidc_signing_algs)),
                       required_claims=list(args.oidc_required_claim or []))
        if args.oidc_username_prefix is not None:
            section["username_prefix"] = args.oidc_username_prefix
    configured_issuers(section)  # fail at startup with the flag's name, not at the first request
    return section


@hookimpl
async def kapi_startup(app: App) -> None:
    """Read the configuration and start fetching the issuers' keys in the background."""
    holder = app.plugin_state(PLUGIN_NAME)
    holder.pop("state", None)
    state = state_of(app)
    for source in state.sources.values():
        if source.client is not None:
            state.tasks.append(asyncio.create_task(source.keep_trying()))
    if state.sources:
        log.info("OIDC: %d issuer(s): %s", len(state.sources), ", ".join(state.sources))


@hookimpl
async def kapi_shutdown(app: App) -> None:
    """Stop background fetches and close the HTTP clients."""
    state: State | None = app.plugin_state(PLUGIN_NAME).get("state")
    if state is None:
        return
    for task in state.tasks:
        task.cancel()
    for task in state.tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task
    for source in state.sources.values():
        if source.client is not None:
            await source.client.aclose()


@hookimpl
async def kapi_authenticate(request: AuthnRequest, app: App) -> UserInfo | None:
    """The user of a valid token from a configured issuer; None for any other token.

    :raises AuthenticationError: a JWT from a configured issuer that fails a check.
    """
    token = request.bearer_token()
    if token is None:
        return None
    state = state_of(app)
    now = time.time()
    found = state.verified.pop(token, None)
    if found is not None:
        if now > found[1]:
            raise AuthenticationError("OIDC token has expired")
        state.verified[token] = found
        return found[0]
    claims = peek_claims(token)
    issuer = claims.get("iss") if claims is not None else None
    source = state.sources.get(issuer) if isinstance(issuer, str) else None
    if source is None or claims is None:
        return None
    user, expires = await verify(source, token, claims, now)
    state.verified[token] = (user, expires)
    if len(state.verified) > state.cache_size:
        del state.verified[next(iter(state.verified))]
    return user
