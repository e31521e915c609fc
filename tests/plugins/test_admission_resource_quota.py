"""admission_resource_quota: counts, compute, scopes, exact usage under concurrency, the reconciler."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from kapi_plugins import admission_resource_quota as plugin
from tests.plugins.admission_fakes import create_namespace, eventually, pod, running

NS = "/api/v1/namespaces/q"


def quota(name: str, hard: dict[str, str], **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": name}, "spec": {"hard": hard, **spec}}


def cm(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}}


async def used(client: httpx.AsyncClient, name: str) -> dict[str, str]:
    status = (await client.get(f"{NS}/resourcequotas/{name}")).json().get("status") or {}
    return dict(status.get("used") or {})


def test_aliases() -> None:
    assert plugin.ALIASES == ("ResourceQuota",)


async def test_hook_kapi_validate_admission() -> None:
    async with running("ResourceQuota") as (app, client):
        await create_namespace(client, "q")
        objs = quota("objs", {"configmaps": "2", "count/secrets": "1"})
        assert (await client.post(f"{NS}/resourcequotas", json=objs)).status_code == 201
        await app.cache.sync()  # quotas are read from the watch cache
        assert (await client.post(f"{NS}/configmaps", json=cm("a"))).status_code == 201
        assert (await client.post(f"{NS}/configmaps", json=cm("b"))).status_code == 201
        resp = await client.post(f"{NS}/configmaps", json=cm("c"))
        assert resp.status_code == 403
        assert resp.json()["message"] == ('configmaps "c" is forbidden: exceeded quota: objs, requested: '
                                          'configmaps=1, used: configmaps=2, limited: configmaps=2')
        assert await used(client, "objs") == {"configmaps": "2", "count/secrets": "0"}
        # dry run checks without charging
        secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}}
        assert (await client.post(f"{NS}/secrets?dryRun=All", json=secret)).status_code == 201
        assert (await client.post(f"{NS}/secrets", json=secret)).status_code == 201
        assert (await used(client, "objs"))["count/secrets"] == "1"


async def test_compute_quota_and_required_resources() -> None:
    async with running("ResourceQuota") as (app, client):
        await create_namespace(client, "q")
        hard = {"requests.cpu": "1", "limits.memory": "1Gi"}
        assert (await client.post(f"{NS}/resourcequotas", json=quota("compute", hard))).status_code == 201
        await app.cache.sync()
        resp = await client.post(f"{NS}/pods", json=pod("bare"))
        assert resp.status_code == 403
        assert resp.json()["message"] == ('pods "bare" is forbidden: failed quota: compute: must specify '
                                          'limits.memory for: c; requests.cpu for: c')
        sized = {"name": "c", "image": "x", "resources": {"requests": {"cpu": "600m"}, "limits": {"memory": "512Mi"}}}
        assert (await client.post(f"{NS}/pods", json=pod("one", sized))).status_code == 201
        resp = await client.post(f"{NS}/pods", json=pod("two", sized))
        assert resp.status_code == 403
        assert "exceeded quota: compute, requested: requests.cpu=600m, used: requests.cpu=600m, limited: " \
               "requests.cpu=1" in resp.json()["message"]
        assert await used(client, "compute") == {"requests.cpu": "600m", "limits.memory": "512Mi"}


async def test_scopes() -> None:
    async with running("ResourceQuota") as (app, client):
        await create_namespace(client, "q")
        body = quota("besteffort", {"pods": "1"}, scopes=["BestEffort"])
        assert (await client.post(f"{NS}/resourcequotas", json=body)).status_code == 201
        await app.cache.sync()
        assert (await client.post(f"{NS}/pods", json=pod("be1"))).status_code == 201
        assert (await client.post(f"{NS}/pods", json=pod("be2"))).status_code == 403
        sized = {"name": "c", "image": "x", "resources": {"requests": {"cpu": "1m"}}}
        assert (await client.post(f"{NS}/pods", json=pod("burstable", sized))).status_code == 201
        assert (await client.post(f"{NS}/configmaps", json=cm("any"))).status_code == 201


async def test_concurrent_creates_exact_usage() -> None:
    async with running("ResourceQuota") as (_app, client):
        await create_namespace(client, "q")
        assert (await client.post(f"{NS}/resourcequotas", json=quota("pods", {"pods": "10"}))).status_code == 201
        await eventually(lambda: used(client, "pods"))
        results = await asyncio.gather(*(client.post(f"{NS}/pods", json=pod(f"p{i}")) for i in range(20)))
        codes = sorted(r.status_code for r in results)
        assert codes == [201] * 10 + [403] * 10
        assert await used(client, "pods") == {"pods": "10"}
        listed = (await client.get(f"{NS}/pods")).json()["items"]
        assert len(listed) == 10


async def test_hook_kapi_startup() -> None:
    """The reconciler fills a new quota's status and gives usage back on delete."""
    async with running("ResourceQuota") as (_app, client):
        await create_namespace(client, "q")
        assert (await client.post(f"{NS}/configmaps", json=cm("before"))).status_code == 201
        assert (await client.post(f"{NS}/resourcequotas", json=quota("cms", {"configmaps": "5"}))).status_code == 201
        await eventually(lambda: _is(client, "cms", {"configmaps": "1"}))
        status = (await client.get(f"{NS}/resourcequotas/cms")).json()["status"]
        assert status["hard"] == {"configmaps": "5"}
        assert (await client.post(f"{NS}/configmaps", json=cm("after"))).status_code == 201
        assert await used(client, "cms") == {"configmaps": "2"}
        assert (await client.delete(f"{NS}/configmaps/before")).status_code == 200
        await eventually(lambda: _is(client, "cms", {"configmaps": "1"}))
        table = await client.get(f"{NS}/resourcequotas",
                                 headers={"accept": "application/json;as=Table;v=v1;g=meta.k8s.io"})
        assert table.json()["rows"][0]["cells"][2] == "configmaps: 1/5"


async def _is(client: httpx.AsyncClient, name: str, expected: dict[str, str]) -> bool:
    return await used(client, name) == expected


async def test_hook_kapi_shutdown() -> None:
    async with running("ResourceQuota") as (app, _client):
        assert len(app.plugin_state(plugin.PLUGIN_NAME)["tasks"]) == 4
    assert not app.plugin_state(plugin.PLUGIN_NAME).get("tasks")


def test_object_usage() -> None:
    sized = pod("p", {"name": "a", "image": "x", "resources": {"requests": {"cpu": "1", "memory": "1Gi"},
                                                               "limits": {"cpu": "2"}}},
                initContainers=[{"name": "i", "image": "x", "resources": {"requests": {"cpu": "3"}}}])
    usage = plugin.object_usage("", "pods", sized)
    assert {k: str(v) for k, v in usage.items()} == {
        "count/pods": "1", "pods": "1", "requests.cpu": "3", "cpu": "3", "requests.memory": "1073741824",
        "memory": "1073741824", "limits.cpu": "2"}
    assert plugin.object_usage("", "pods", {**sized, "status": {"phase": "Succeeded"}}) == {}
    svc = {"spec": {"type": "NodePort", "ports": [{"port": 1}, {"port": 2}]}}
    assert {k: int(v) for k, v in plugin.object_usage("", "services", svc).items()} == {
        "count/services": 1, "services": 1, "services.nodeports": 2}
    assert plugin.object_usage("apps", "deployments", {}) == {"count/deployments.apps": 1}
