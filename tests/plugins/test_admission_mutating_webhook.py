"""admission_mutating_webhook: a real TLS webhook server patches objects; reinvocation; selectors;
service references; failure policies."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from kapi import App
from kapi_plugins import admission_mutating_webhook as plugin
from tests.plugins.admission_fakes import create_namespace, running
from tests.plugins.webhook_server import Hooks, webhook_server

URL = "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations"
CMS = "/api/v1/namespaces/default/configmaps"


@pytest.fixture
async def hooks(tmp_path: Path) -> AsyncIterator[Hooks]:
    async with webhook_server(tmp_path) as server:
        yield server


def webhook(name: str, hooks: Hooks, path: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "admissionReviewVersions": ["v1"], "sideEffects": "None",
            "clientConfig": {"url": hooks.url + path, "caBundle": hooks.ca_bundle},
            "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"],
                       "resources": ["configmaps"]}], **extra}


def configuration(name: str, *webhooks: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
            "metadata": {"name": name}, "webhooks": list(webhooks)}


def cm(name: str, **labels: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": labels}}


async def add(app: App, client: httpx.AsyncClient, config: dict[str, Any]) -> None:
    """Create a configuration and wait until the watch cache (which the plugin reads) has it."""
    resp = await client.post(URL, json=config)
    assert resp.status_code == 201, resp.text
    await app.cache.sync()


def test_aliases() -> None:
    assert plugin.ALIASES == ("MutatingAdmissionWebhook",)


async def test_hook_kapi_mutate_admission(hooks: Hooks) -> None:
    async with running("MutatingAdmissionWebhook") as (app, client):
        resp = await client.post(URL, json=configuration("label", webhook("label.example.com", hooks, "/label")))
        assert resp.status_code == 201, resp.text
        stored = resp.json()["webhooks"][0]
        assert (stored["failurePolicy"], stored["timeoutSeconds"], stored["reinvocationPolicy"]) == (
            "Fail", 10, "Never")
        await app.cache.sync()  # configurations take effect once the watch cache has them
        created = await client.post(CMS, json=cm("a"))
        assert created.status_code == 201, created.text
        assert created.json()["metadata"]["labels"] == {"mutated": "yes"}
        review = hooks.reviews[-1]
        assert review["query"] == "timeout=10s"
        request = review["request"]
        assert (request["operation"], request["namespace"], request["name"]) == ("CREATE", "default", "a")
        assert request["kind"] == {"group": "", "version": "v1", "kind": "ConfigMap"}
        assert request["resource"] == {"group": "", "version": "v1", "resource": "configmaps"}
        assert request["userInfo"]["username"] == "admin" and request["dryRun"] is False
        assert request["options"]["kind"] == "CreateOptions"
        # not matched: other resources, and the configuration objects themselves
        secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}}
        assert (await client.post("/api/v1/namespaces/default/secrets", json=secret)).json()["metadata"].get(
            "labels") is None
        assert len(hooks.reviews) == 1


async def test_reinvocation(hooks: Hooks) -> None:
    async with running("MutatingAdmissionWebhook") as (app, client):
        config = configuration("chain", webhook("count.example.com", hooks, "/count", reinvocationPolicy="IfNeeded"),
                               webhook("label.example.com", hooks, "/label"))
        await add(app, client, config)
        created = (await client.post(CMS, json=cm("a"))).json()
        assert created["metadata"]["annotations"] == {"calls": "2"}
        assert hooks.paths() == ["/count", "/label", "/count"]


async def test_selectors(hooks: Hooks) -> None:
    async with running("MutatingAdmissionWebhook") as (app, client):
        await create_namespace(client, "team", {"env": "prod"})
        await create_namespace(client, "other")
        selected = webhook("label.example.com", hooks, "/label", namespaceSelector={"matchLabels": {"env": "prod"}},
                           objectSelector={"matchExpressions": [{"key": "skip", "operator": "DoesNotExist"}]})
        await add(app, client, configuration("sel", selected))
        team = "/api/v1/namespaces/team/configmaps"
        assert (await client.post(team, json=cm("a"))).json()["metadata"]["labels"] == {"mutated": "yes"}
        assert (await client.post(team, json=cm("b", skip="1"))).json()["metadata"]["labels"] == {"skip": "1"}
        other = (await client.post("/api/v1/namespaces/other/configmaps", json=cm("c"))).json()
        assert not other["metadata"].get("labels")


async def test_service_reference(hooks: Hooks) -> None:
    port = int(hooks.url.rsplit(":", 1)[1])
    async with running("MutatingAdmissionWebhook") as (app, client):
        await create_namespace(client, "webhooks")
        service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "hooks"},
                   "spec": {"ports": [{"name": "https", "port": 443, "targetPort": port}]}}
        assert (await client.post("/api/v1/namespaces/webhooks/services", json=service)).status_code == 201
        endpoints = {"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "hooks"},
                     "subsets": [{"addresses": [{"ip": "127.0.0.1"}], "ports": [{"name": "https", "port": port}]}]}
        assert (await client.post("/api/v1/namespaces/webhooks/endpoints", json=endpoints)).status_code == 201
        hook = webhook("svc.example.com", hooks, "")
        hook["clientConfig"] = {"service": {"namespace": "webhooks", "name": "hooks", "path": "/label"},
                                "caBundle": hooks.ca_bundle}
        await add(app, client, configuration("svc", hook))
        created = await client.post(CMS, json=cm("a"))
        assert created.status_code == 201, created.text
        assert created.json()["metadata"]["labels"] == {"mutated": "yes"}


@pytest.mark.parametrize(("policy", "path", "code", "message"), [
    ("Ignore", "/baduid", 201, ""),
    ("Fail", "/baduid", 500, 'failed calling webhook "bad.example.com": failed to call webhook: expected '
                             'response.uid='),
])
async def test_failure_policy(hooks: Hooks, policy: str, path: str, code: int, message: str) -> None:
    async with running("MutatingAdmissionWebhook") as (app, client):
        config = configuration("bad", webhook("bad.example.com", hooks, path, failurePolicy=policy))
        await add(app, client, config)
        resp = await client.post(CMS, json=cm("a"))
        assert resp.status_code == code, resp.text
        if message:
            assert message in resp.json()["message"]


async def test_unreachable_and_untrusted(hooks: Hooks) -> None:
    async with running("MutatingAdmissionWebhook") as (app, client):
        unreachable = webhook("gone.example.com", hooks, "/label")
        unreachable["clientConfig"] = {"url": "https://127.0.0.1:1/x"}
        untrusted = webhook("untrusted.example.com", hooks, "/label")
        untrusted["clientConfig"] = {"url": hooks.url + "/label"}  # no caBundle: the system CAs do not know it
        await add(app, client, configuration("gone", unreachable))
        resp = await client.post(CMS, json=cm("a"))
        assert resp.status_code == 500 and 'failed calling webhook "gone.example.com"' in resp.json()["message"]
        assert (await client.delete(f"{URL}/gone")).status_code == 200
        await app.cache.sync()
        await add(app, client, configuration("untrusted", untrusted))
        resp = await client.post(CMS, json=cm("b"))
        assert resp.status_code == 500 and "certificate" in resp.json()["message"].lower()


async def test_hook_kapi_validate_admission(hooks: Hooks) -> None:
    """Mutating webhooks registered for DELETE are asked (and may refuse) on deletes."""
    async with running("MutatingAdmissionWebhook") as (app, client):
        assert (await client.post(CMS, json=cm("keep", deny="yes"))).status_code == 201
        hook = webhook("deny.example.com", hooks, "/deny")
        hook["rules"][0]["operations"] = ["DELETE"]
        await add(app, client, configuration("guard", hook))
        resp = await client.delete(f"{CMS}/keep")
        assert resp.status_code == 403
        assert resp.json()["message"] == 'admission webhook "deny.example.com" denied the request: nope'
        assert hooks.reviews[-1]["request"]["oldObject"]["metadata"]["name"] == "keep"


async def test_hook_kapi_shutdown(hooks: Hooks) -> None:
    async with running("MutatingAdmissionWebhook") as (app, client):
        await add(app, client, configuration("l", webhook("l.example.com", hooks, "/label")))
        assert (await client.post(CMS, json=cm("a"))).status_code == 201
        assert app.plugin_state(plugin.PLUGIN_NAME)["caller"].clients
    assert "caller" not in app.plugin_state(plugin.PLUGIN_NAME)
