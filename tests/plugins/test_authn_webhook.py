"""authn_webhook: TokenReview over mutual TLS to a webhook on 127.0.0.1, with caching."""

from __future__ import annotations

import argparse
import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from kapi import AuthenticationError, Config, UserInfo
from kapi_certs import build_kubeconfig, to_yaml
from kapi_plugins import authn_webhook as wh
from tests.plugins.authn_fakes import bearer, free_port, tls_server, webhook_pki


@pytest.fixture(scope="module")
def pki_files(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    return webhook_pki(tmp_path_factory.mktemp("webhook-pki"))


@pytest.fixture
async def webhook(pki_files: SimpleNamespace) -> AsyncIterator[SimpleNamespace]:
    """The webhook: "good" -> alice, "unknown" -> not authenticated, "bad" -> error, "slow" -> alice later,
    "vault" -> alice for audience vault only, "boom" -> HTTP 500."""
    seen = SimpleNamespace(calls=0, reviews=[], url="")

    async def review(request: Request) -> Response:
        seen.calls += 1
        body = await request.json()
        seen.reviews.append(body)
        token = body["spec"]["token"]
        if token == "boom":
            return Response("broken", status_code=500)
        if token == "slow":
            await asyncio.sleep(0.2)
        status: dict[str, Any] = {"authenticated": False}
        if token in ("good", "slow"):
            status = {"authenticated": True, "user": {"username": "alice", "uid": "42", "groups": ["dev"],
                                                      "extra": {"scopes.example.com": ["read", "write"]}}}
        elif token == "vault":
            status = {"authenticated": True, "user": {"username": "alice"}, "audiences": ["vault"]}
        elif token == "bad":
            status["error"] = "token revoked"
        return JSONResponse({**body, "status": status})

    asgi = Starlette(routes=[Route("/authenticate", review, methods=["POST"])])
    folder = pki_files.folder
    async with tls_server(asgi, folder / "server.crt", folder / "server.key", client_ca=folder / "ca.crt") as url:
        seen.url = f"{url}/authenticate"
        yield seen


def write_kubeconfig(folder: Path, pki_files: SimpleNamespace, server: str, *, with_cert: bool = True) -> Path:
    if with_cert:
        config = build_kubeconfig(server=server, ca_cert=pki_files.ca, user="apiserver",
                                  client_cert=pki_files.client, client_key=pki_files.client_key)
    else:
        config = build_kubeconfig(server=server, ca_cert=pki_files.ca, user="apiserver", token="webhook-secret")
    path = folder / "webhook.kubeconfig"
    path.write_text(to_yaml(config))
    return path


def _app(**options: Any) -> SimpleNamespace:
    return SimpleNamespace(config=Config(plugin_options={wh.PLUGIN_NAME: options}),
                           plugin_state=defaultdict(dict).__getitem__)


@pytest.fixture
async def app(tmp_path: Path, pki_files: SimpleNamespace, webhook: SimpleNamespace) -> AsyncIterator[SimpleNamespace]:
    running = _app(config_file=str(write_kubeconfig(tmp_path, pki_files, webhook.url)))
    wh.kapi_startup(app=running)
    yield running
    await wh.kapi_shutdown(app=running)


async def test_hook_kapi_authenticate(app: SimpleNamespace, webhook: SimpleNamespace) -> None:
    user = await wh.kapi_authenticate(request=bearer("good"), app=app)
    assert user == UserInfo(name="alice", uid="42", groups=("dev",), extra={"scopes.example.com": ("read", "write")})
    assert webhook.reviews[0] == {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
                                  "spec": {"token": "good"}}


async def test_unknown_is_none_and_error_is_401(app: SimpleNamespace) -> None:
    assert await wh.kapi_authenticate(request=bearer("unknown"), app=app) is None
    with pytest.raises(AuthenticationError, match="rejected") as info:
        await wh.kapi_authenticate(request=bearer("bad"), app=app)
    assert "bad" not in info.value.message.replace("rejected", "")


async def test_answers_are_cached(app: SimpleNamespace, webhook: SimpleNamespace) -> None:
    for _ in range(3):
        await wh.kapi_authenticate(request=bearer("good"), app=app)
        assert await wh.kapi_authenticate(request=bearer("unknown"), app=app) is None
    assert webhook.calls == 2


async def test_concurrent_requests_share_one_call(app: SimpleNamespace, webhook: SimpleNamespace) -> None:
    users = await asyncio.gather(*(wh.kapi_authenticate(request=bearer("slow"), app=app) for _ in range(5)))
    assert {u.name for u in users if u is not None} == {"alice"} and webhook.calls == 1


async def test_ttl_zero_disables_the_cache(tmp_path: Path, pki_files: SimpleNamespace,
                                           webhook: SimpleNamespace) -> None:
    app = _app(config_file=str(write_kubeconfig(tmp_path, pki_files, webhook.url)), cache_ttl="0s")
    try:
        for _ in range(2):
            await wh.kapi_authenticate(request=bearer("good"), app=app)
        assert webhook.calls == 2
    finally:
        await wh.kapi_shutdown(app=app)


async def test_audiences(tmp_path: Path, pki_files: SimpleNamespace, webhook: SimpleNamespace) -> None:
    app = _app(config_file=str(write_kubeconfig(tmp_path, pki_files, webhook.url)), audiences="api")
    try:
        assert await wh.kapi_authenticate(request=bearer("good"), app=app) is not None
        assert webhook.reviews[-1]["spec"]["audiences"] == ["api"]
        with pytest.raises(AuthenticationError, match="other audiences"):
            await wh.kapi_authenticate(request=bearer("vault"), app=app)
    finally:
        await wh.kapi_shutdown(app=app)


async def test_failures_are_401(app: SimpleNamespace, webhook: SimpleNamespace,
                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(wh, "RETRY_DELAY", 0.01)
    with pytest.raises(AuthenticationError, match="HTTP 500"):
        await wh.kapi_authenticate(request=bearer("boom"), app=app)
    assert webhook.calls == 2  # one retry
    with pytest.raises(AuthenticationError, match="HTTP 500"):  # failures are not cached
        await wh.kapi_authenticate(request=bearer("boom"), app=app)


async def test_client_certificate_is_required(tmp_path: Path, pki_files: SimpleNamespace, webhook: SimpleNamespace,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(wh, "RETRY_DELAY", 0.01)
    app = _app(config_file=str(write_kubeconfig(tmp_path, pki_files, webhook.url, with_cert=False)))
    try:
        with pytest.raises(AuthenticationError, match="cannot be reached"):
            await wh.kapi_authenticate(request=bearer("good"), app=app)
    finally:
        await wh.kapi_shutdown(app=app)


async def test_unreachable_webhook(tmp_path: Path, pki_files: SimpleNamespace, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(wh, "RETRY_DELAY", 0.01)
    app = _app(config_file=str(write_kubeconfig(tmp_path, pki_files, f"https://127.0.0.1:{free_port()}/x")))
    try:
        with pytest.raises(AuthenticationError, match="cannot be reached"):
            await wh.kapi_authenticate(request=bearer("good"), app=app)
    finally:
        await wh.kapi_shutdown(app=app)


def test_kubeconfig_with_file_paths_and_token(pki_files: SimpleNamespace, tmp_path: Path) -> None:
    folder = pki_files.folder
    config = {"clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:1/x",
                                                     "certificate-authority": str(folder / "ca.crt")}}],
              "users": [{"name": "u", "user": {"client-certificate": str(folder / "client.crt"),
                                               "client-key": str(folder / "client.key"), "token": "t"}}],
              "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}], "current-context": "x"}
    path = tmp_path / "k.yaml"
    path.write_text(yaml.safe_dump(config))
    target = wh.load_target(str(path))
    assert target.server == "https://127.0.0.1:1/x" and target.bearer == "t"


@pytest.mark.parametrize(("change", "why"), [
    (lambda c: c["clusters"][0]["cluster"].update(server="http://plain"), "https URL"),
    (lambda c: c["users"][0]["user"].pop("client-key-data"), "go together"),
    (lambda c: c["clusters"][0]["cluster"].update({"certificate-authority-data": "!!"}), "base64"),
    (lambda c: c["users"][0]["user"].update({"client-key-data": c["clusters"][0]["cluster"]
                                             ["certificate-authority-data"]}), "cannot be loaded"),
], ids=["http", "half-pair", "base64", "mismatch"])
def test_kubeconfig_errors(pki_files: SimpleNamespace, tmp_path: Path, change: Any, why: str) -> None:
    config = build_kubeconfig(server="https://127.0.0.1:1", ca_cert=pki_files.ca, user="u",
                              client_cert=pki_files.client, client_key=pki_files.client_key)
    change(config)
    path = tmp_path / "k.yaml"
    path.write_text(to_yaml(config))
    with pytest.raises(wh.WebhookConfigError, match=why):
        wh.load_target(str(path))


def test_hook_kapi_add_options_and_read_options() -> None:
    parser = argparse.ArgumentParser()
    wh.kapi_add_options(parser=parser)
    assert wh.kapi_read_options(args=parser.parse_args([])) is None
    args = parser.parse_args(["--authentication-token-webhook-config-file", "/w.yaml",
                              "--authentication-token-webhook-cache-ttl", "30s"])
    assert wh.kapi_read_options(args=args) == {"enabled": True, "config_file": "/w.yaml", "cache_ttl": "30s",
                                               "version": "v1"}
    with pytest.raises(ValueError, match="cache-ttl"):
        wh.kapi_read_options(args=parser.parse_args(["--authentication-token-webhook-config-file", "/w",
                                                     "--authentication-token-webhook-cache-ttl", "soon"]))
    assert wh.duration_seconds("1m30s") == 90 and wh.duration_seconds("250ms") == 0.25


async def test_hook_kapi_startup_and_shutdown_without_config() -> None:
    app = _app()
    wh.kapi_startup(app=app)
    assert await wh.kapi_authenticate(request=bearer("good"), app=app) is None
    await wh.kapi_shutdown(app=app)


def test_aliases() -> None:
    assert wh.ALIASES == ("webhook",)
