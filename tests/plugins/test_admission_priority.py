"""admission_priority: class resolution, global default, built-in classes, one default only."""

from __future__ import annotations

from typing import Any

from kapi_plugins import admission_priority as plugin
from tests.plugins.admission_fakes import pod, running

URL = "/apis/scheduling.k8s.io/v1/priorityclasses"
PODS = "/api/v1/namespaces/default/pods"


def pc(name: str, value: int, default: bool = False, **extra: Any) -> dict[str, Any]:
    return {"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass", "metadata": {"name": name},
            "value": value, "globalDefault": default, **extra}


def test_aliases() -> None:
    assert plugin.ALIASES == ("Priority",)


async def test_hook_kapi_startup() -> None:
    async with running("Priority") as (_app, client):
        names = {i["metadata"]["name"]: i["value"] for i in (await client.get(URL)).json()["items"]}
        assert names == {"system-node-critical": 2000001000, "system-cluster-critical": 2000000000}
        table = await client.get(URL, headers={"accept": "application/json;as=Table;v=v1;g=meta.k8s.io"})
        assert [c["name"] for c in table.json()["columnDefinitions"]] == [
            "Name", "Value", "Global-Default", "Age", "PreemptionPolicy"]


async def test_hook_kapi_mutate_admission() -> None:
    async with running("Priority") as (app, client):
        spec = (await client.post(PODS, json=pod("plain"))).json()["spec"]
        assert (spec["priority"], spec["preemptionPolicy"], spec.get("priorityClassName")) == (
            0, "PreemptLowerPriority", None)
        assert (await client.post(URL, json=pc("high", 1000, preemptionPolicy="Never"))).status_code == 201
        assert (await client.post(URL, json=pc("low", 10, default=True))).status_code == 201
        await app.cache.sync()  # the global default is read from the watch cache
        spec = (await client.post(PODS, json=pod("hi", priorityClassName="high"))).json()["spec"]
        assert (spec["priority"], spec["preemptionPolicy"]) == (1000, "Never")
        spec = (await client.post(PODS, json=pod("dflt"))).json()["spec"]
        assert (spec["priority"], spec["priorityClassName"]) == (10, "low")
        spec = (await client.post(PODS, json=pod("crit", priorityClassName="system-node-critical"))).json()["spec"]
        assert spec["priority"] == 2000001000
        resp = await client.post(PODS, json=pod("nope", priorityClassName="ghost"))
        assert resp.status_code == 403
        assert resp.json()["message"] == 'pods "nope" is forbidden: no PriorityClass with name ghost was found'
        resp = await client.post(PODS, json=pod("liar", priorityClassName="high", priority=5))
        assert resp.status_code == 403 and "the integer value of priority (5)" in resp.json()["message"]


async def test_hook_kapi_validate_admission() -> None:
    async with running("Priority") as (_app, client):
        assert (await client.post(URL, json=pc("a", 1, default=True))).status_code == 201
        resp = await client.post(URL, json=pc("b", 2, default=True))
        assert resp.status_code == 403
        assert resp.json()["message"] == ('priorityclasses.scheduling.k8s.io "b" is forbidden: PriorityClass a is '
                                          'already marked as default. Only one default can exist')
        resp = await client.delete(f"{URL}/system-node-critical")
        assert resp.status_code == 403 and "system priority class" in resp.json()["message"]
        assert (await client.delete(f"{URL}/a")).status_code == 200


async def test_priority_class_kind_rules() -> None:
    async with running() as (_app, client):
        resp = await client.post(URL, json=pc("system-mine", 5))
        assert resp.status_code == 422 and "reserved" in resp.json()["message"]
        resp = await client.post(URL, json=pc("huge", 2_000_000_000))
        assert resp.status_code == 422
        assert (await client.post(URL, json=pc("ok", 5))).status_code == 201
        resp = await client.patch(f"{URL}/ok", json={"value": 6},
                                  headers={"content-type": "application/merge-patch+json"})
        assert resp.status_code == 422 and "may not be changed in an update" in resp.json()["message"]
