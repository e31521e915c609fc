"""authn_bootstrap_token: kubeadm's bootstrap tokens, checked against kube-system secrets."""

from __future__ import annotations

import argparse
import base64
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from kapi import App, AuthenticationError, UserInfo
from kapi_plugins import authn_bootstrap_token as bt
from tests.plugins.authn_fakes import bearer, make_app, put, started

TOKEN_ID, TOKEN_SECRET = "abcdef", "0123456789abcdef"
TOKEN = f"{TOKEN_ID}.{TOKEN_SECRET}"


def _b64(value: str) -> str:
    return base64.b64encode(value.encode()).decode()


def secret(token_id: str = TOKEN_ID, **data: str) -> dict[str, Any]:
    values = {"token-id": token_id, "token-secret": TOKEN_SECRET, "usage-bootstrap-authentication": "true",
              **data}
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": f"bootstrap-token-{token_id}"},
            "type": "bootstrap.kubernetes.io/token", "data": {k: _b64(v) for k, v in values.items()}}


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[App]:
    async with started(make_app(tmp_path, [(bt.PLUGIN_NAME, bt)], authenticators=("bootstrap-token",))) as running:
        yield running


async def test_hook_kapi_authenticate(app: App) -> None:
    groups = "system:bootstrappers:kubeadm:default-node-token,system:bootstrappers:b,system:bootstrappers:b"
    await put(app, "secrets", "kube-system", secret(**{"auth-extra-groups": groups}))
    user = await bt.kapi_authenticate(request=bearer(TOKEN), app=app)
    assert user == UserInfo(name="system:bootstrap:abcdef",
                            groups=("system:bootstrappers", "system:bootstrappers:b",
                                    "system:bootstrappers:kubeadm:default-node-token"))


@pytest.mark.parametrize(("token", "stored"), [
    ("not-a-bootstrap-token", secret()),
    ("ABCDEF.0123456789abcdef", secret()),
    (TOKEN, None),
    (f"{TOKEN_ID}.ffffffffffffffff", secret()),
    (TOKEN, secret(expiration="2000-01-01T00:00:00Z")),
    (TOKEN, secret(expiration="garbage")),
    (TOKEN, secret(**{"usage-bootstrap-authentication": "false"})),
    (TOKEN, {**secret(), "type": "Opaque"}),
    (TOKEN, {**secret(), "data": {**secret()["data"], "token-id": _b64("zzzzzz")}}),
], ids=["shape", "uppercase", "no-secret", "wrong-secret", "expired", "bad-expiration", "no-usage", "type", "id"])
async def test_unusable_tokens_are_not_ours(app: App, token: str, stored: dict[str, Any] | None) -> None:
    if stored is not None:
        await put(app, "secrets", "kube-system", stored)
    assert await bt.kapi_authenticate(request=bearer(token), app=app) is None


async def test_future_expiration_and_deletion(app: App) -> None:
    later = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))
    stored = secret(expiration=later)
    await put(app, "secrets", "kube-system", stored)
    assert await bt.kapi_authenticate(request=bearer(TOKEN), app=app) is not None
    assert bt.refusal({**stored, "metadata": {"deletionTimestamp": later}}, TOKEN_ID, TOKEN_SECRET, time.time())


async def test_invalid_extra_group_is_401(app: App) -> None:
    await put(app, "secrets", "kube-system", secret(**{"auth-extra-groups": "system:masters"}))
    with pytest.raises(AuthenticationError, match="bootstrap-token-abcdef has an invalid auth-extra-groups") as info:
        await bt.kapi_authenticate(request=bearer(TOKEN), app=app)
    assert TOKEN_SECRET not in info.value.message


async def test_storage_is_read_when_the_cache_lacks_the_secret(app: App, monkeypatch: pytest.MonkeyPatch) -> None:
    await put(app, "secrets", "kube-system", secret())
    monkeypatch.setattr(bt, "_cached", lambda app, key: None)
    assert await bt.kapi_authenticate(request=bearer(TOKEN), app=app) is not None


async def test_no_bearer_token(app: App) -> None:
    request = bearer(TOKEN).__class__(method="GET", path="/", headers={})
    assert await bt.kapi_authenticate(request=request, app=app) is None


def test_secret_value_tolerates_garbage() -> None:
    assert bt.secret_value({"data": {"a": "!!!"}}, "a") == ""
    assert bt.secret_value({"data": None}, "a") == ""


def test_hook_kapi_add_options_and_read_options() -> None:
    parser = argparse.ArgumentParser()
    bt.kapi_add_options(parser=parser)
    assert bt.kapi_read_options(args=parser.parse_args([])) is None
    assert bt.kapi_read_options(args=parser.parse_args(["--enable-bootstrap-token-auth"])) == {"enabled": True}
    assert bt.kapi_read_options(args=parser.parse_args(["--enable-bootstrap-token-auth=true"])) == {"enabled": True}
    assert bt.kapi_read_options(args=parser.parse_args(["--enable-bootstrap-token-auth=false"])) is None
    with pytest.raises(ValueError, match="--enable-bootstrap-token-auth"):
        bt.kapi_read_options(args=parser.parse_args(["--enable-bootstrap-token-auth=maybe"]))
