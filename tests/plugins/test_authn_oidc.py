"""authn_oidc: JWTs from OIDC issuers - a local JWKS file, and a live issuer over TLS on 127.0.0.1."""

from __future__ import annotations

import argparse
import asyncio
import time
from collections import defaultdict
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import orjson
import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from kapi import AuthenticationError, Config, UserInfo
from kapi_certs import pki
from kapi_plugins import authn_oidc as oidc
from tests.plugins.authn_fakes import bearer, tls_server

ISSUER = "https://issuer.example"


@pytest.fixture(scope="module")
def key() -> RSAKey:
    return RSAKey.generate_key(2048, parameters={"kid": "k1"})


def _app(**options: Any) -> SimpleNamespace:
    return SimpleNamespace(config=Config(plugin_options={oidc.PLUGIN_NAME: options}),
                           plugin_state=defaultdict(dict).__getitem__)


def mint(key: Any, alg: str = "RS256", **changes: Any) -> str:
    now = int(time.time())
    claims = {"iss": ISSUER, "sub": "u-1", "aud": "kapi", "exp": now + 600, "iat": now, "email": "a@x.io",
              "email_verified": True, "groups": ["dev", "ops"]}
    claims.update(changes)
    return jwt.encode({"alg": alg, "kid": key.kid}, {k: v for k, v in claims.items() if v is not None}, key,
                      algorithms=[alg])


@pytest.fixture
def file_app(tmp_path: Path, key: RSAKey) -> SimpleNamespace:
    jwks = tmp_path / "jwks.json"
    jwks.write_bytes(orjson.dumps({"keys": [key.as_dict(private=False)]}))
    return _app(issuer_url=ISSUER, client_id="kapi", groups_claim="groups", groups_prefix="oidc:",
                jwks_file=str(jwks))


async def test_hook_kapi_authenticate(file_app: SimpleNamespace, key: RSAKey) -> None:
    user = await oidc.kapi_authenticate(request=bearer(mint(key)), app=file_app)
    assert user == UserInfo(name=f"{ISSUER}#u-1", groups=("oidc:dev", "oidc:ops"))


async def test_not_ours_is_none(file_app: SimpleNamespace, key: RSAKey) -> None:
    for token in ("opaque", "a.b.c", mint(key, iss="https://other.example"), mint(key, iss=["x"])):
        assert await oidc.kapi_authenticate(request=bearer(token), app=file_app) is None


@pytest.mark.parametrize(("changes", "why"), [
    ({"exp": int(time.time()) - 10}, "expired"),
    ({"exp": None}, "exp claim is required"),
    ({"nbf": int(time.time()) + 3600}, "not valid yet"),
    ({"aud": ["someone-else"]}, "audience"),
    ({"sub": None}, "username claim"),
    ({"groups": [1, 2]}, "groups claim"),
], ids=["expired", "no-exp", "nbf", "aud", "no-sub", "groups-type"])
async def test_bad_tokens_are_401(file_app: SimpleNamespace, key: RSAKey, changes: dict[str, Any],
                                  why: str) -> None:
    token = mint(key, **changes)
    with pytest.raises(AuthenticationError, match=why) as info:
        await oidc.kapi_authenticate(request=bearer(token), app=file_app)
    assert info.value.code == 401 and token not in info.value.message


async def test_wrong_key_and_algorithm(file_app: SimpleNamespace, key: RSAKey) -> None:
    impostor = RSAKey.generate_key(2048, parameters={"kid": "k1"})
    with pytest.raises(AuthenticationError, match="signature"):
        await oidc.kapi_authenticate(request=bearer(mint(impostor)), app=file_app)
    with pytest.raises(AuthenticationError, match="signature"):  # RS384 is not in --oidc-signing-algs
        await oidc.kapi_authenticate(request=bearer(mint(key, alg="RS384")), app=file_app)
    stranger = RSAKey.generate_key(2048, parameters={"kid": "k9"})
    with pytest.raises(AuthenticationError, match="key id"):
        await oidc.kapi_authenticate(request=bearer(mint(stranger)), app=file_app)


async def test_email_claim_and_required_claims(tmp_path: Path, key: RSAKey) -> None:
    jwks = tmp_path / "jwks.json"
    jwks.write_bytes(orjson.dumps({"keys": [key.as_dict(private=False)]}))
    app = _app(issuer_url=ISSUER, client_id="kapi", username_claim="email", required_claims=["hd=x.io"],
               jwks_file=str(jwks))
    assert (await oidc.kapi_authenticate(request=bearer(mint(key, hd="x.io")), app=app)) == UserInfo(name="a@x.io")
    with pytest.raises(AuthenticationError, match="email_verified"):
        await oidc.kapi_authenticate(request=bearer(mint(key, hd="x.io", email_verified=False)), app=app)
    with pytest.raises(AuthenticationError, match="required claim 'hd'"):
        await oidc.kapi_authenticate(request=bearer(mint(key)), app=app)


async def test_verified_tokens_are_cached_until_expiry(file_app: SimpleNamespace, key: RSAKey,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    token = mint(key, exp=int(time.time()) + 2)
    first = await oidc.kapi_authenticate(request=bearer(token), app=file_app)
    monkeypatch.setattr(oidc, "check_signature", lambda *a: pytest.fail("verified twice"))
    assert await oidc.kapi_authenticate(request=bearer(token), app=file_app) == first
    monkeypatch.setattr(oidc.time, "time", lambda: 10.0**10)
    with pytest.raises(AuthenticationError, match="expired"):
        await oidc.kapi_authenticate(request=bearer(token), app=file_app)


def test_flag_defaults() -> None:
    issuer = oidc.issuer_from_options({"issuer_url": ISSUER, "client_id": "c"})
    assert issuer is not None and issuer.username_prefix == f"{ISSUER}#" and issuer.algorithms == ("RS256",)
    email = oidc.issuer_from_options({"issuer_url": ISSUER, "client_id": "c", "username_claim": "email"})
    assert email is not None and email.username_prefix == ""
    none = oidc.issuer_from_options({"issuer_url": ISSUER, "client_id": "c", "username_prefix": "-"})
    assert none is not None and none.username_prefix == ""


@pytest.mark.parametrize(("options", "why"), [
    ({"issuer_url": "http://plain", "client_id": "c"}, "https"),
    ({"issuer_url": ISSUER}, "--oidc-client-id"),
    ({"issuer_url": ISSUER, "client_id": "c", "required_claims": ["novalue"]}, "key=value"),
    ({"issuer_url": ISSUER, "client_id": "c", "config_file": "x"}, "mutually exclusive"),
], ids=["http", "client-id", "required", "exclusive"])
def test_flag_errors(options: dict[str, Any], why: str) -> None:
    with pytest.raises(oidc.OIDCConfigError, match=why):
        oidc.configured_issuers(options)


CONFIG = """
apiVersion: apiserver.config.k8s.io/v1beta1
kind: AuthenticationConfiguration
jwt:
- issuer:
    url: {url}
    audiences: [kapi, other]
    certificateAuthority: |
{ca}
  claimValidationRules: [{{claim: tenant, requiredValue: t1}}]
  claimMappings:
    username: {{claim: email, prefix: "oidc:"}}
    groups: {{claim: groups, prefix: ""}}
    uid: {{claim: sub}}
"""


@pytest.mark.parametrize(("mutation", "why"), [
    (lambda c: c.replace('prefix: "oidc:"', "expression: claims.sub"), "CEL"),
    (lambda c: c.replace(', prefix: "oidc:"', ""), "prefix: required"),
    (lambda c: c.replace("audiences: [kapi, other]", "audiences: []"), "audience"),
    (lambda c: c.replace("kind: AuthenticationConfiguration", "kind: Other"), "AuthenticationConfiguration"),
    (lambda c: c + "  userValidationRules: [{expression: 'true'}]\n", "userValidationRules"),
], ids=["expression", "prefix", "audiences", "kind", "user-rules"])
def test_config_file_errors(mutation: Any, why: str) -> None:
    text = mutation(CONFIG.format(url=ISSUER, ca="      x"))
    with pytest.raises(oidc.OIDCConfigError, match=why):
        oidc.issuers_from_config(text, "auth.yaml")


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, bytes]:
    folder = tmp_path_factory.mktemp("issuer-tls")
    ca, ca_key = pki.make_ca("issuer-ca")
    cert, cert_key = pki.issue(ca, ca_key, cn="issuer", ips=["127.0.0.1"], server=True)
    (folder / "tls.crt").write_bytes(pki.cert_pem(cert))
    (folder / "tls.key").write_bytes(pki.key_pem(cert_key))
    return folder / "tls.crt", folder / "tls.key", pki.cert_pem(ca)


@pytest.fixture
async def issuer(tls: tuple[Path, Path, bytes], key: RSAKey) -> AsyncIterator[SimpleNamespace]:
    """A live OIDC issuer on 127.0.0.1 over TLS; ``keys`` is what its JWKS serves."""
    served = SimpleNamespace(keys=[key], url="", hits=0, issuer_override="")

    async def discovery(_: Request) -> JSONResponse:
        return JSONResponse({"issuer": served.issuer_override or served.url, "jwks_uri": f"{served.url}/keys"})

    async def keys(_: Request) -> JSONResponse:
        served.hits += 1
        return JSONResponse({"keys": [k.as_dict(private=False) for k in served.keys]})

    asgi = Starlette(routes=[Route("/.well-known/openid-configuration", discovery), Route("/keys", keys)])
    async with tls_server(asgi, tls[0], tls[1]) as url:
        served.url = url
        yield served


def _config_app(tmp_path: Path, url: str, ca: bytes) -> SimpleNamespace:
    indented = "\n".join("      " + line for line in ca.decode().splitlines())
    path = tmp_path / "auth.yaml"
    path.write_text(CONFIG.format(url=url, ca=indented))
    return _app(config_file=str(path))


async def test_live_issuer_with_discovery_and_rotation(tmp_path: Path, tls: tuple[Path, Path, bytes], key: RSAKey,
                                                       issuer: SimpleNamespace) -> None:
    app = _config_app(tmp_path, issuer.url, tls[2])
    await oidc.kapi_startup(app=app)
    try:
        token = mint(key, iss=issuer.url, aud=["other"], tenant="t1")
        user = await oidc.kapi_authenticate(request=bearer(token), app=app)
        assert user == UserInfo(name="oidc:a@x.io", uid="u-1", groups=("dev", "ops"))
        with pytest.raises(AuthenticationError, match="required claim"):
            await oidc.kapi_authenticate(request=bearer(mint(key, iss=issuer.url, tenant="t2")), app=app)
        rotated = ECKey.generate_key("P-256", parameters={"kid": "k2"})
        issuer.keys = [key, rotated]
        hits = issuer.hits
        state = oidc.state_of(app)
        state.sources[issuer.url].last_attempt = 0.0  # the 10 s refetch limit has passed
        token = mint(rotated, alg="ES256", iss=issuer.url, tenant="t1")
        assert await oidc.kapi_authenticate(request=bearer(token), app=app) is not None
        assert issuer.hits == hits + 1
        unknown = mint(RSAKey.generate_key(2048, parameters={"kid": "k3"}), iss=issuer.url, tenant="t1")
        with pytest.raises(AuthenticationError, match="key id"):  # refetch is rate-limited: no new hit
            await oidc.kapi_authenticate(request=bearer(unknown), app=app)
        assert issuer.hits == hits + 1
    finally:
        await oidc.kapi_shutdown(app=app)


async def test_live_issuer_mismatch_means_no_keys(tmp_path: Path, tls: tuple[Path, Path, bytes], key: RSAKey,
                                                  issuer: SimpleNamespace) -> None:
    issuer.issuer_override = "https://impostor.example"
    app = _config_app(tmp_path, issuer.url, tls[2])
    await oidc.kapi_startup(app=app)
    try:
        await asyncio.sleep(0.1)
        with pytest.raises(AuthenticationError, match="not available yet"):
            await oidc.kapi_authenticate(request=bearer(mint(key, iss=issuer.url, tenant="t1")), app=app)
        assert "impostor" in oidc.state_of(app).sources[issuer.url].error
    finally:
        await oidc.kapi_shutdown(app=app)


async def test_untrusted_issuer_certificate(tmp_path: Path, tls: tuple[Path, Path, bytes], key: RSAKey,
                                            issuer: SimpleNamespace) -> None:
    other_ca = pki.cert_pem(pki.make_ca("someone-else")[0])
    app = _config_app(tmp_path, issuer.url, other_ca)
    source = oidc.build_state(app.config.options_for(oidc.PLUGIN_NAME)).sources[issuer.url]
    try:
        await source.refresh(force=True)
        assert not source.keys and "ConnectError" in source.error
    finally:
        assert source.client is not None
        await source.client.aclose()


def test_hook_kapi_add_options_and_read_options(tmp_path: Path) -> None:
    parser = argparse.ArgumentParser()
    oidc.kapi_add_options(parser=parser)
    assert oidc.kapi_read_options(args=parser.parse_args([])) is None
    args = parser.parse_args(["--oidc-issuer-url", ISSUER, "--oidc-client-id", "kapi", "--oidc-groups-claim", "g",
                              "--oidc-required-claim", "a=b", "--oidc-username-prefix", "-"])
    section = oidc.kapi_read_options(args=args)
    assert section is not None and section["enabled"] and section["required_claims"] == ["a=b"]
    assert section["username_prefix"] == "-" and section["signing_algs"] == ["RS256"]
    with pytest.raises(oidc.OIDCConfigError, match="client-id"):
        oidc.kapi_read_options(args=parser.parse_args(["--oidc-issuer-url", ISSUER]))
    path = tmp_path / "auth.yaml"
    path.write_text(CONFIG.format(url=ISSUER, ca="      x"))
    assert oidc.kapi_read_options(args=parser.parse_args(["--authentication-config", str(path)])) == {
        "enabled": True, "config_file": str(path)}


async def test_hook_kapi_startup_and_shutdown_without_issuers() -> None:
    app = _app()
    await oidc.kapi_startup(app=app)
    assert await oidc.kapi_authenticate(request=bearer("x.y.z"), app=app) is None
    await oidc.kapi_shutdown(app=app)


def test_aliases() -> None:
    assert "oidc" in oidc.ALIASES
