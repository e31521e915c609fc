"""authn_service_account: TokenRequest tokens round-trip, bound objects, legacy tokens, discovery."""

from __future__ import annotations

import argparse
import base64
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from starlette.applications import Starlette

from kapi import APIError, App, AuthenticationError, UserInfo
from kapi.rest.tokens import create_token, load_signer
from kapi_certs import pki
from kapi_plugins import authn_service_account as sa
from tests.plugins.authn_fakes import bearer, ctx_for, make_app, put, remove, started

NAME = "authn_service_account"


def write_keys(folder: Path, key: pki.PrivateKey) -> None:
    (folder / "pki").mkdir(parents=True, exist_ok=True)
    (folder / "pki" / "sa.key").write_bytes(pki.key_pem(key))
    (folder / "pki" / "sa.pub").write_bytes(pki.public_key_pem(key))


@pytest.fixture(scope="module")
def rsa_key() -> pki.PrivateKey:
    return pki.generate_sa_key()


@pytest.fixture
async def app(tmp_path: Path, rsa_key: pki.PrivateKey) -> AsyncIterator[App]:
    write_keys(tmp_path, rsa_key)
    async with started(make_app(tmp_path, [(NAME, sa)], authenticators=(NAME,))) as running:
        await put(running, "serviceaccounts", "default", {"apiVersion": "v1", "kind": "ServiceAccount",
                                                          "metadata": {"name": "default"}})
        yield running


async def request_token(app: App, name: str = "default", namespace: str = "default", **spec: Any) -> str:
    ctx = ctx_for(app, "POST", f"/api/v1/namespaces/{namespace}/serviceaccounts/{name}/token",
                  {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec})
    response = await create_token(ctx)
    assert response.status_code == 201
    return str(orjson.loads(response.body)["status"]["token"])


def sign(app: App, claims: dict[str, Any]) -> str:
    return load_signer((Path(app.config.data_dir) / "pki" / "sa.key").read_bytes()).sign(claims)


def claims_for(now: float, **changes: Any) -> dict[str, Any]:
    claims = {"iss": sa.DEFAULT_ISSUER, "sub": "system:serviceaccount:default:default", "aud": [sa.DEFAULT_ISSUER],
              "iat": int(now), "nbf": int(now), "exp": int(now) + 600,
              "kubernetes.io": {"namespace": "default",
                                "serviceaccount": {"name": "default", "uid": "uid-serviceaccounts-default"}}}
    claims.update(changes)
    return claims


async def test_hook_kapi_authenticate(app: App) -> None:
    token = await request_token(app)
    user = await sa.kapi_authenticate(request=bearer(token), app=app)
    assert isinstance(user, UserInfo)
    assert user.name == "system:serviceaccount:default:default"
    assert user.uid == "uid-serviceaccounts-default"
    assert user.groups == ("system:serviceaccounts", "system:serviceaccounts:default")
    assert user.extra["authentication.kubernetes.io/credential-id"][0].startswith("JTI=")


async def test_token_shape_matches_kube(app: App) -> None:
    token = await request_token(app, audiences=["vault"], expirationSeconds=1200)
    head, payload = (orjson.loads(base64.urlsafe_b64decode(p + "==")) for p in token.split(".")[:2])
    assert head == {"alg": "RS256", "kid": sa.key_id(pki.load_key(
        (Path(app.config.data_dir) / "pki" / "sa.key").read_bytes()).public_key())}
    assert payload["aud"] == ["vault"] and payload["exp"] - payload["iat"] == 1200
    assert payload["kubernetes.io"]["serviceaccount"] == {"name": "default", "uid": "uid-serviceaccounts-default"}
    with pytest.raises(AuthenticationError, match="audiences"):
        await sa.kapi_authenticate(request=bearer(token), app=app)


async def test_not_ours_returns_none(app: App) -> None:
    foreign = sign(app, claims_for(time.time(), iss="https://elsewhere"))
    for request in (bearer("opaque-static-token"), bearer(foreign), bearer("a.b.c"),
                    bearer("x." + base64.urlsafe_b64encode(b'{"iss":["list"]}').decode() + ".y")):
        assert await sa.kapi_authenticate(request=request, app=app) is None
    assert await sa.kapi_authenticate(request=bearer("").__class__("GET", "/", {}), app=app) is None


async def test_bad_signature_is_401(app: App, tmp_path: Path) -> None:
    other = load_signer(pki.key_pem(pki.generate_key("rsa-2048")))
    token = other.sign(claims_for(time.time()))
    with pytest.raises(AuthenticationError, match="signature") as info:
        await sa.kapi_authenticate(request=bearer(token), app=app)
    assert info.value.code == 401 and token not in info.value.message


@pytest.mark.parametrize(("changes", "why"), [
    ({"exp": int(time.time()) - 3600}, "expired"),
    ({"nbf": int(time.time()) + 3600}, "not valid yet"),
    ({"exp": "soon"}, "not a number"),
    ({"sub": "system:serviceaccount:default:other"}, "sub does not match"),
    ({"kubernetes.io": None}, "kubernetes.io claim"),
], ids=["expired", "nbf", "exp-type", "sub", "no-kube-claims"])
async def test_invalid_claims_are_401(app: App, changes: dict[str, Any], why: str) -> None:
    with pytest.raises(AuthenticationError, match=why):
        await sa.kapi_authenticate(request=bearer(sign(app, claims_for(time.time(), **changes))), app=app)


async def test_deleted_or_replaced_service_account_is_401(app: App) -> None:
    token = await request_token(app)
    assert await sa.kapi_authenticate(request=bearer(token), app=app) is not None
    await remove(app, "serviceaccounts", "default", "default")
    with pytest.raises(AuthenticationError, match="service account default/default has been deleted"):
        await sa.kapi_authenticate(request=bearer(token), app=app)
    await put(app, "serviceaccounts", "default", {"metadata": {"name": "default", "uid": "new-uid"}})
    with pytest.raises(AuthenticationError, match="does not match"):
        await sa.kapi_authenticate(request=bearer(token), app=app)


async def test_pod_bound_token(app: App) -> None:
    await put(app, "nodes", "", {"metadata": {"name": "n1"}})
    await put(app, "pods", "default", {"metadata": {"name": "web"},
                                       "spec": {"serviceAccountName": "default", "nodeName": "n1"}})
    token = await request_token(app, boundObjectRef={"kind": "Pod", "apiVersion": "v1", "name": "web"})
    user = await sa.kapi_authenticate(request=bearer(token), app=app)
    assert user is not None
    assert user.extra["authentication.kubernetes.io/pod-name"] == ("web",)
    assert user.extra["authentication.kubernetes.io/pod-uid"] == ("uid-pods-web",)
    assert user.extra["authentication.kubernetes.io/node-name"] == ("n1",)
    await remove(app, "nodes", "", "n1")  # the pod's node is informational: still valid
    assert await sa.kapi_authenticate(request=bearer(token), app=app) is not None
    await remove(app, "pods", "default", "web")
    with pytest.raises(AuthenticationError, match="pod default/web has been deleted"):
        await sa.kapi_authenticate(request=bearer(token), app=app)


async def test_secret_bound_token_and_deletion_grace(app: App) -> None:
    await put(app, "secrets", "default", {"metadata": {"name": "s1"}})
    token = await request_token(app, boundObjectRef={"kind": "Secret", "apiVersion": "v1", "name": "s1"})
    assert await sa.kapi_authenticate(request=bearer(token), app=app) is not None
    await remove(app, "secrets", "default", "s1")
    long_ago = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 120))
    await put(app, "secrets", "default", {"metadata": {"name": "s1", "deletionTimestamp": long_ago}})
    with pytest.raises(AuthenticationError, match="marked for deletion"):
        await sa.kapi_authenticate(request=bearer(token), app=app)


async def test_storage_is_consulted_when_cache_lags(app: App, monkeypatch: pytest.MonkeyPatch) -> None:
    token = await request_token(app)
    monkeypatch.setattr(sa, "_cached_object", lambda app, key: None)
    assert await sa.kapi_authenticate(request=bearer(token), app=app) is not None


async def test_verified_tokens_are_cached(app: App, monkeypatch: pytest.MonkeyPatch) -> None:
    token = await request_token(app)
    first = await sa.kapi_authenticate(request=bearer(token), app=app)

    def fail(*_: Any) -> None:
        raise AssertionError("signature checked again")

    monkeypatch.setattr(sa, "check_signature", fail)
    started_at = time.perf_counter()
    for _ in range(1000):
        assert await sa.kapi_authenticate(request=bearer(token), app=app) == first
    assert (time.perf_counter() - started_at) / 1000 < 0.0005
    assert token in sa.state_of(app).verified


async def test_cache_is_bounded(tmp_path: Path, rsa_key: pki.PrivateKey) -> None:
    write_keys(tmp_path, rsa_key)
    app = make_app(tmp_path, [(NAME, sa)], options={NAME: {"cache_size": "2"}})
    async with started(app):
        await put(app, "serviceaccounts", "default", {"metadata": {"name": "default"}})
        for _ in range(3):
            await sa.kapi_authenticate(request=bearer(await request_token(app)), app=app)
        assert len(sa.state_of(app).verified) == 2


async def test_legacy_secret_token(app: App) -> None:
    claims = {"iss": sa.LEGACY_ISSUER, "sub": "system:serviceaccount:default:default",
              "kubernetes.io/serviceaccount/namespace": "default",
              "kubernetes.io/serviceaccount/secret.name": "default-token",
              "kubernetes.io/serviceaccount/service-account.name": "default",
              "kubernetes.io/serviceaccount/service-account.uid": "uid-serviceaccounts-default"}
    token = sign(app, claims)
    await put(app, "secrets", "default", {"metadata": {"name": "default-token"},
                                          "type": "kubernetes.io/service-account-token",
                                          "data": {"token": base64.b64encode(token.encode()).decode()}})
    user = await sa.kapi_authenticate(request=bearer(token), app=app)
    assert user is not None and user.name == "system:serviceaccount:default:default" and not user.extra
    await remove(app, "secrets", "default", "default-token")
    with pytest.raises(AuthenticationError, match="secret default/default-token has been deleted"):
        await sa.kapi_authenticate(request=bearer(token), app=app)


async def test_ecdsa_keys_and_discovery(tmp_path: Path) -> None:
    key = pki.generate_key("ecdsa-p256")
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    write_keys(tmp_path, key)
    app = make_app(tmp_path, [(NAME, sa)], options={NAME: {"issuer": "https://issuer.example,https://old.example"}})
    asgi = Starlette(routes=sa.kapi_register_routes(app=app))
    async with started(app):
        await put(app, "serviceaccounts", "default", {"metadata": {"name": "default"}})
        token = await request_token(app)
        assert orjson.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))["alg"] == "ES256"
        assert await sa.kapi_authenticate(request=bearer(token), app=app) is not None
        older = sign(app, claims_for(time.time(), iss="https://old.example", aud=["https://old.example"]))
        assert await sa.kapi_authenticate(request=bearer(older), app=app) is not None
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=asgi), base_url="http://t") as client:
            discovery = (await client.get("/.well-known/openid-configuration")).json()
            jwks = await client.get("/openid/v1/jwks")
    assert discovery == {"issuer": "https://issuer.example", "jwks_uri": "https://127.0.0.1:6443/openid/v1/jwks",
                         "response_types_supported": ["id_token"], "subject_types_supported": ["public"],
                         "id_token_signing_alg_values_supported": ["ES256"]}
    assert jwks.headers["content-type"] == "application/jwk-set+json"
    (entry,) = jwks.json()["keys"]
    assert entry["kid"] == sa.key_id(key.public_key()) and entry["crv"] == "P-256" and "d" not in entry


async def test_discovery_off_without_https_issuer(tmp_path: Path, rsa_key: pki.PrivateKey) -> None:
    write_keys(tmp_path, rsa_key)
    app = make_app(tmp_path, [(NAME, sa)], options={NAME: {"issuer": "kapi"}})
    asgi = Starlette(routes=sa.kapi_register_routes(app=app))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=asgi), base_url="http://t") as client:
        for path in ("/openid/v1/jwks", "/.well-known/openid-configuration"):
            with pytest.raises(APIError, match="discovery is off") as info:
                await client.get(path)
            assert info.value.code == 404


def test_key_files(tmp_path: Path, rsa_key: pki.PrivateKey) -> None:
    ca, ca_key = pki.make_ca("x")
    bundle = pki.public_key_pem(rsa_key) + pki.cert_pem(ca) + pki.key_pem(ca_key) + b"junk\n"
    keys = sa.parse_public_keys(bundle, "bundle")
    assert len(keys) == 3
    with pytest.raises(sa.KeyFileError, match="no PEM"):
        sa.parse_public_keys(b"nothing", "empty")
    with pytest.raises(sa.KeyFileError, match="cannot be read"):
        sa.parse_public_keys(b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n", "broken")
    settings = sa.settings_of({"key_file": str(tmp_path / "missing.pub")}, str(tmp_path), "https://h:1")
    with pytest.raises(sa.KeyFileError, match="does not exist"):
        sa.load_keys(settings)
    assert sa.load_keys(sa.settings_of({}, str(tmp_path), "https://h:1")) == ()


async def test_no_keys_means_inert(tmp_path: Path) -> None:
    app = make_app(tmp_path, [(NAME, sa)])
    sa.kapi_startup(app=app)
    token = "e30." + base64.urlsafe_b64encode(orjson.dumps({"iss": sa.DEFAULT_ISSUER})).decode() + ".sig"
    assert await sa.kapi_authenticate(request=bearer(token), app=app) is None


def test_hook_kapi_add_options_and_read_options() -> None:
    parser = argparse.ArgumentParser()
    sa.kapi_add_options(parser=parser)
    args = parser.parse_args(["--service-account-issuer", "https://a", "--service-account-issuer", "https://b",
                              "--service-account-key-file", "/k1", "--api-audiences", "x, y",
                              "--service-account-max-token-expiration", "48h", "--service-account-lookup", "false"])
    section = sa.kapi_read_options(args=args)
    assert section == {"issuer": ["https://a", "https://b"], "key_file": ["/k1"], "api_audiences": ["x", "y"],
                       "max_token_expiration": 172800, "lookup": False, "enabled": True}
    with pytest.raises(ValueError, match="max-token-expiration"):
        sa.kapi_read_options(args=parser.parse_args(["--service-account-max-token-expiration", "2 days"]))
    assert sa.seconds("1h30m") == 5400 and sa.seconds(" 600 ") == 600


def test_hook_kapi_startup_fails_on_bad_key_file(tmp_path: Path) -> None:
    (tmp_path / "bad.pub").write_text("not a key")
    app = make_app(tmp_path, [(NAME, sa)], options={NAME: {"key_file": str(tmp_path / "bad.pub")}})
    with pytest.raises(sa.KeyFileError):
        sa.kapi_startup(app=app)


def test_hook_kapi_register_routes(tmp_path: Path) -> None:
    routes = sa.kapi_register_routes(app=make_app(tmp_path, [(NAME, sa)]))
    assert [getattr(r, "path", "") for r in routes] == ["/.well-known/openid-configuration", "/openid/v1/jwks"]


def test_aliases() -> None:
    assert sa.ALIASES[0] == "service-account"
