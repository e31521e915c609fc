"""kapi.rest.tokens: the TokenRequest handler (``kubectl create token``) - defaults and refusals."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from kapi import APIError, App
from kapi.rest import tokens
from kapi_certs import pki
from tests.plugins.authn_fakes import ctx_for, make_app, put, started


@pytest.fixture(scope="module")
def key() -> pki.PrivateKey:
    return pki.generate_key("ecdsa-p256")


@pytest.fixture
async def app(tmp_path: Path, key: pki.PrivateKey) -> AsyncIterator[App]:
    (tmp_path / "pki").mkdir()
    (tmp_path / "pki" / "sa.key").write_bytes(pki.key_pem(key))
    options = {"authn_service_account": {"max_token_expiration": 7200, "api_audiences": "api,other"}}
    async with started(make_app(tmp_path, options=options)) as running:
        await put(running, "serviceaccounts", "ns1", {"metadata": {"name": "robot"}})
        yield running


async def call(app: App, body: dict[str, Any], name: str = "robot") -> dict[str, Any]:
    ctx = ctx_for(app, "POST", f"/api/v1/namespaces/ns1/serviceaccounts/{name}/token", body)
    response = await tokens.create_token(ctx)
    assert response.status_code == 201
    return dict(orjson.loads(response.body))


def payload(token: str) -> dict[str, Any]:
    return dict(orjson.loads(base64.urlsafe_b64decode(token.split(".")[1] + "==")))


async def test_defaults(app: App) -> None:
    out = await call(app, {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                           "metadata": {"creationTimestamp": None}, "spec": {}})
    assert out["kind"] == "TokenRequest" and out["metadata"]["name"] == "robot"
    assert out["spec"] == {"audiences": ["api", "other"], "expirationSeconds": 3600}
    assert out["status"]["expirationTimestamp"].endswith("Z")
    claims = payload(out["status"]["token"])
    assert claims["iss"] == tokens.DEFAULT_ISSUER and claims["sub"] == "system:serviceaccount:ns1:robot"
    assert claims["exp"] - claims["iat"] == 3600 and claims["nbf"] == claims["iat"]
    assert claims["kubernetes.io"] == {"namespace": "ns1", "serviceaccount": {"name": "robot",
                                                                               "uid": "uid-serviceaccounts-robot"}}


async def test_expiration_is_capped(app: App) -> None:
    out = await call(app, {"spec": {"expirationSeconds": 86400}})
    assert out["spec"]["expirationSeconds"] == 7200


@pytest.mark.parametrize(("spec", "code", "message"), [
    ({"expirationSeconds": 10}, 422, "less than 10 minutes"),
    ({"expirationSeconds": 1 << 33}, 422, r"larger than 2\^32"),
    ({"expirationSeconds": "1h"}, 422, "must be an integer"),
    ({"boundObjectRef": {"kind": "ConfigMap", "apiVersion": "v1", "name": "x"}}, 400, "cannot bind token"),
    ({"boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": "missing"}}, 404, 'pods "missing" not found'),
    ({"boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": "other-sa"}}, 400, "different serviceaccount"),
    ({"boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": "mine", "uid": "old"}}, 409, "does not match"),
], ids=["short", "long", "type", "kind", "missing", "pod-sa", "uid"])
async def test_refusals(app: App, spec: dict[str, Any], code: int, message: str) -> None:
    await put(app, "pods", "ns1", {"metadata": {"name": "other-sa"}, "spec": {"serviceAccountName": "x"}})
    await put(app, "pods", "ns1", {"metadata": {"name": "mine"}, "spec": {"serviceAccountName": "robot"}})
    with pytest.raises(APIError, match=message) as info:
        await call(app, {"spec": spec})
    assert info.value.code == code


async def test_missing_account_and_mismatched_body(app: App) -> None:
    with pytest.raises(APIError, match='serviceaccounts "ghost" not found'):
        await call(app, {"spec": {}}, name="ghost")
    with pytest.raises(APIError, match=r"metadata\.name: must match") as info:
        await call(app, {"metadata": {"name": "other"}, "spec": {}})
    assert info.value.code == 422
    with pytest.raises(APIError, match=r"expected an authentication\.k8s\.io/v1 TokenRequest"):
        await call(app, {"kind": "Pod", "spec": {}})


async def test_no_signing_key_turns_the_api_off(tmp_path: Path) -> None:
    async with started(make_app(tmp_path)) as app:
        await put(app, "serviceaccounts", "ns1", {"metadata": {"name": "robot"}})
        with pytest.raises(APIError, match="--service-account-signing-key-file") as info:
            await call(app, {"spec": {}})
    assert info.value.code == 404


async def test_signer_is_cached_until_the_file_changes(app: App) -> None:
    path = str(Path(app.config.data_dir) / "pki" / "sa.key")
    first = tokens.signer_of(app, path)
    assert tokens.signer_of(app, path) is first
    Path(path).write_bytes(pki.key_pem(pki.generate_key("ecdsa-p256")))
    assert tokens.signer_of(app, path).kid != first.kid


def test_load_signer_refuses_public_keys() -> None:
    with pytest.raises(ValueError, match="private key"):
        tokens.load_signer(pki.public_key_pem(pki.generate_key()))
