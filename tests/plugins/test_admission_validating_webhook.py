"""admission_validating_webhook: a real TLS webhook server that refuses, warns, times out."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from kapi import App
from kapi_plugins import admission_validating_webhook as plugin
from tests.plugins.admission_fakes import running
from tests.plugins.webhook_server import Hooks, webhook_server

URL = "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations"
CMS = "/api/v1/namespaces/default/configmaps"


@pytest.fixture
async def hooks(tmp_path: Path) -> AsyncIterator[Hooks]:
    async with webhook_server(tmp_path) as server:
        yield server


def webhook(name: str, hooks: Hooks, path: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "admissionReviewVersions": ["v1"], "sideEffects": "None",
            "clientConfig": {"url": hooks.url + path, "caBundle": hooks.ca_bundle},
            "rules": [{"operations": ["CREATE", "UPDATE"], "apiGroups": [""], "apiVersions": ["v1"],
                       "resources": ["configmaps"]}], **extra}


async def add(app: App, client: httpx.AsyncClient, *webhooks: dict[str, Any]) -> None:
    config = {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
              "metadata": {"name": "checks"}, "webhooks": list(webhooks)}
    resp = await client.post(URL, json=config)
    assert resp.status_code == 201, resp.text
    await app.cache.sync()


def cm(name: str, **labels: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": labels}}


def test_aliases() -> None:
    assert plugin.ALIASES == ("ValidatingAdmissionWebhook",)


async def test_hook_kapi_validate_admission(hooks: Hooks) -> None:
    async with running("ValidatingAdmissionWebhook") as (app, client):
        await add(app, client, webhook("deny.example.com", hooks, "/deny"), webhook("ok.example.com", hooks, "/ok"))
        resp = await client.post(CMS, json=cm("bad", deny="yes"))
        assert resp.status_code == 403
        assert resp.json()["message"] == 'admission webhook "deny.example.com" denied the request: nope'
        assert (await client.get(f"{CMS}/bad")).status_code == 404
        resp = await client.post(CMS, json=cm("good"))
        assert resp.status_code == 201
        assert resp.headers["warning"] == '299 - "looked at it"'
        assert sorted(hooks.paths()) == ["/deny", "/deny", "/ok", "/ok"]
        # updates are reviewed with the old object
        resp = await client.patch(f"{CMS}/good", json={"metadata": {"labels": {"deny": "yes"}}},
                                  headers={"content-type": "application/merge-patch+json"})
        assert resp.status_code == 403
        assert hooks.reviews[-1]["request"]["oldObject"]["metadata"]["name"] == "good"


async def test_dry_run_and_timeout(hooks: Hooks) -> None:
    async with running("ValidatingAdmissionWebhook") as (app, client):
        await add(app, client, webhook("ok.example.com", hooks, "/ok"))
        assert (await client.post(f"{CMS}?dryRun=All", json=cm("dry"))).status_code == 201
        assert hooks.reviews[-1]["request"]["dryRun"] is True
        assert (await client.delete(f"{URL}/checks")).status_code == 200
        await add(app, client, webhook("slow.example.com", hooks, "/slow", timeoutSeconds=1))
        resp = await client.post(CMS, json=cm("late"))
        assert resp.status_code == 500
        assert "context deadline exceeded" in resp.json()["message"]


async def test_hook_kapi_shutdown(hooks: Hooks) -> None:
    async with running("ValidatingAdmissionWebhook") as (app, client):
        await add(app, client, webhook("ok.example.com", hooks, "/ok"))
        assert (await client.post(CMS, json=cm("a"))).status_code == 201
    assert "caller" not in app.plugin_state(plugin.PLUGIN_NAME)


async def test_configuration_validation() -> None:
    async with running() as (_app, client):
        bad = {"name": "short", "admissionReviewVersions": [], "sideEffects": "Some", "timeoutSeconds": 60,
               "clientConfig": {"url": "http://x"}}
        config = {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
                  "metadata": {"name": "bad"}, "webhooks": [bad]}
        resp = await client.post(URL, json=config)
        assert resp.status_code == 422
        message = resp.json()["message"]
        for fragment in ("should be a domain with at least three segments", "admissionReviewVersions",
                         'Unsupported value: "Some"', "between 1 and 30 seconds", "'https' is the only allowed"):
            assert fragment in message
