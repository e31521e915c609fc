"""authz_webhook: SubjectAccessReview over mutual TLS to a webhook on 127.0.0.1, with caches."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from kapi import APIError, Decision, RequestAttributes, UserInfo
from kapi_certs import build_kubeconfig, to_yaml
from kapi_plugins import authz_webhook as wh
from tests.plugins.authn_fakes import free_port, tls_server, webhook_pki
from tests.plugins.authz_support import client, running

JANE = UserInfo("jane", uid="7", groups=("dev", "system:authenticated"), extra={"scopes": ("a",)})


def req(verb: str, resource: str, name: str = "", ns: str = "dev", user: UserInfo = JANE) -> RequestAttributes:
    return RequestAttributes(verb=verb, path="", is_resource_request=True, api_version="v1", resource=resource,
                             namespace=ns, name=name, user=user)


@pytest.fixture(scope="module")
def pki_files(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    return webhook_pki(tmp_path_factory.mktemp("authz-webhook-pki"))


@pytest.fixture
async def webhook(pki_files: SimpleNamespace) -> AsyncIterator[SimpleNamespace]:
    """Allows get/list of pods; denies anything on secrets; no opinion otherwise; "boom" -> 500."""
    seen = SimpleNamespace(calls=0, reviews=[], url="", delay=0.0)

    async def review(request: Request) -> Response:
        seen.calls += 1
        body = await request.json()
        seen.reviews.append(body)
        if seen.delay:
            await asyncio.sleep(seen.delay)
        attributes = body["spec"].get("resourceAttributes", {})
        if attributes.get("name") == "boom":
            return Response("broken", status_code=500)
        if attributes.get("name") == "junk":
            return Response("not json")
        status: dict[str, Any] = {"allowed": False}
        if attributes.get("resource") == "pods" and attributes.get("verb") in ("get", "list"):
            status = {"allowed": True, "reason": "pods are fine"}
        elif attributes.get("resource") == "secrets":
            status = {"allowed": False, "denied": True, "reason": "never secrets"}
        return JSONResponse({**body, "status": status})

    asgi = Starlette(routes=[Route("/authorize", review, methods=["POST"])])
    folder = pki_files.folder
    async with tls_server(asgi, folder / "server.crt", folder / "server.key", client_ca=folder / "ca.crt") as url:
        seen.url = f"{url}/authorize"
        yield seen


def kubeconfig(folder: Path, pki_files: SimpleNamespace, server: str) -> Path:
    config = build_kubeconfig(server=server, ca_cert=pki_files.ca, user="apiserver", client_cert=pki_files.client,
                              client_key=pki_files.client_key)
    path = folder / "authz-webhook.kubeconfig"
    path.write_text(to_yaml(config))
    return path


@pytest.fixture
async def state(tmp_path: Path, pki_files: SimpleNamespace, webhook: SimpleNamespace) -> AsyncIterator[wh.State]:
    built = wh.build_state({"config_file": str(kubeconfig(tmp_path, pki_files, webhook.url))})
    yield built
    await built.client.aclose()


async def test_answers_and_the_review_sent(state: wh.State, webhook: SimpleNamespace) -> None:
    assert await wh.decision_for(state, wh.review_spec(req("get", "pods", "web"), "v1"), 0) is Decision.ALLOW
    assert webhook.reviews[0] == {
        "apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
        "spec": {"resourceAttributes": {"namespace": "dev", "verb": "get", "version": "v1", "resource": "pods",
                                        "name": "web"},
                 "user": "jane", "groups": ["dev", "system:authenticated"], "extra": {"scopes": ["a"]}, "uid": "7"}}
    assert await wh.decision_for(state, wh.review_spec(req("get", "secrets", "s"), "v1"), 0) is Decision.DENY
    assert await wh.decision_for(state, wh.review_spec(req("delete", "pods", "web"), "v1"), 0) is None
    path = RequestAttributes(verb="get", path="/healthz", is_resource_request=False, user=UserInfo("x"))
    assert wh.review_spec(path, "v1beta1") == {"nonResourceAttributes": {"path": "/healthz", "verb": "get"},
                                               "user": "x"}
    assert wh.review_spec(req("get", "pods"), "v1beta1")["group"] == ["dev", "system:authenticated"]


async def test_caches_by_outcome(state: wh.State, webhook: SimpleNamespace) -> None:
    allowed, refused = wh.review_spec(req("get", "pods", "a"), "v1"), wh.review_spec(req("delete", "pods", "a"), "v1")
    for now in (0.0, 10.0, 29.0):
        await wh.decision_for(state, allowed, now)
        await wh.decision_for(state, refused, now)
    assert webhook.calls == 2
    await wh.decision_for(state, refused, 31.0)  # unauthorized TTL 30s expired
    await wh.decision_for(state, allowed, 299.0)  # authorized TTL 5m still holds
    assert webhook.calls == 3
    await wh.decision_for(state, allowed, 301.0)
    assert webhook.calls == 4


async def test_concurrent_questions_share_one_call(state: wh.State, webhook: SimpleNamespace) -> None:
    webhook.delay = 0.1
    spec = wh.review_spec(req("get", "pods", "slow"), "v1")
    answers = await asyncio.gather(*(wh.decision_for(state, spec, 0) for _ in range(5)))
    assert set(answers) == {Decision.ALLOW} and webhook.calls == 1


@pytest.mark.parametrize("name", ["boom", "junk"])
async def test_failures_are_500_without_credentials(state: wh.State, webhook: SimpleNamespace, name: str,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(wh, "RETRY_DELAY", 0.01)
    with pytest.raises(APIError) as info:
        await wh.decision_for(state, wh.review_spec(req("get", "pods", name), "v1"), 0)
    assert info.value.code == 500 and "authorization webhook failed" in info.value.message
    assert webhook.calls == (2 if name == "boom" else 1)  # a 5xx is retried once


async def test_unreachable_webhook(tmp_path: Path, pki_files: SimpleNamespace, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(wh, "RETRY_DELAY", 0.01)
    state = wh.build_state({"config_file": str(kubeconfig(tmp_path, pki_files, f"https://127.0.0.1:{free_port()}")),
                            "timeout": "2s"})
    try:
        with pytest.raises(APIError, match="cannot reach the webhook"):
            await wh.decision_for(state, wh.review_spec(req("get", "pods"), "v1"), 0)
    finally:
        await state.client.aclose()


@pytest.mark.parametrize(("options", "why"), [
    ({}, "needs --authorization-webhook-config-file"),
    ({"config_file": "/nope"}, "cannot read"),
    ({"config_file": "x", "version": "v2"}, "v1 or v1beta1"),
    ({"config_file": "x", "authorized_ttl": "soon"}, "not a duration"),
])
def test_bad_options(options: dict[str, Any], why: str) -> None:
    with pytest.raises(wh.WebhookConfigError, match=why):
        wh.build_state(options)


def test_plain_http_server_is_refused(tmp_path: Path, pki_files: SimpleNamespace) -> None:
    with pytest.raises(wh.WebhookConfigError, match="https"):
        wh.load_target(str(kubeconfig(tmp_path, pki_files, "http://127.0.0.1:1")))


@pytest.mark.parametrize(("text", "seconds"), [("5m", 300.0), ("1m30s", 90.0), ("250ms", 0.25), ("12", 12.0),
                                               (7, 7.0)])
def test_duration_seconds(text: Any, seconds: float) -> None:
    assert wh.duration_seconds(text) == seconds


def test_hook_add_options_and_read_options() -> None:
    parser = argparse.ArgumentParser()
    wh.kapi_add_options(parser=parser)
    args = parser.parse_args(["--authorization-webhook-config-file", "/k", "--authorization-webhook-cache-"
                              "unauthorized-ttl", "1m"])
    assert wh.kapi_read_options(args=args) == {"config_file": "/k", "version": "v1", "authorized_ttl": "300.0",
                                               "unauthorized_ttl": "60.0"}
    assert wh.kapi_read_options(args=parser.parse_args([])) is None
    bad = parser.parse_args(["--authorization-webhook-config-file", "/k", "--authorization-webhook-cache-"
                             "authorized-ttl", "later"])
    with pytest.raises(ValueError, match="--authorization-webhook-cache-authorized-ttl"):
        wh.kapi_read_options(args=bad)


async def test_through_the_api(tmp_path: Path, pki_files: SimpleNamespace, webhook: SimpleNamespace) -> None:
    options = {"authz_webhook": {"config_file": str(kubeconfig(tmp_path, pki_files, webhook.url))}}
    async with running(authorizers=("Webhook", "AlwaysAllow"), plugin_options=options) as app, \
            client(app, "jane|dev") as jane:
        assert (await jane.get("/api/v1/namespaces/dev/pods")).status_code == 200
        denied = await jane.get("/api/v1/namespaces/dev/secrets")
        assert denied.status_code == 403  # an explicit deny is final: AlwaysAllow is not asked
        assert (await jane.get("/api/v1/namespaces/dev/configmaps")).status_code == 200  # no opinion -> next
        assert wh.rules_for(UserInfo("jane"), "dev", app)["incomplete"] is True
        assert await wh.kapi_authorize(attributes=req("get", "pods"), app=app) is Decision.ALLOW
    assert "state" not in app.plugin_state(wh.PLUGIN)
