"""admission_limit_ranger: LimitRange defaults on pods, min/max/ratio bounds, the LimitRange kind."""

from __future__ import annotations

from typing import Any

from kapi_plugins import admission_limit_ranger as plugin
from tests.plugins.admission_fakes import create_namespace, pod, running

URL = "/api/v1/namespaces/lr"


def limit_range(*items: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "LimitRange", "metadata": {"name": "limits"}, "spec": {"limits": list(items)}}


def test_aliases() -> None:
    assert plugin.ALIASES == ("LimitRanger",)


async def test_hook_kapi_mutate_admission() -> None:
    async with running("LimitRanger") as (app, client):
        await create_namespace(client, "lr")
        item = {"type": "Container", "default": {"cpu": "500m", "memory": "256Mi"},
                "defaultRequest": {"cpu": "100m"}}
        resp = await client.post(f"{URL}/limitranges", json=limit_range(item))
        assert resp.status_code == 201, resp.text
        await app.cache.sync()  # the plugin reads LimitRanges from the watch cache
        # LimitRange defaulting: defaultRequest memory from default
        assert resp.json()["spec"]["limits"][0]["defaultRequest"] == {"cpu": "100m", "memory": "256Mi"}
        own = {"name": "own", "image": "x", "resources": {"limits": {"cpu": "1"}}}
        resp = await client.post(f"{URL}/pods", json=pod("p", {"name": "web", "image": "x"}, own))
        assert resp.status_code == 201, resp.text
        body = resp.json()
        web, mine = body["spec"]["containers"]
        assert web["resources"] == {"limits": {"cpu": "500m", "memory": "256Mi"},
                                    "requests": {"cpu": "100m", "memory": "256Mi"}}
        assert mine["resources"] == {"limits": {"cpu": "1", "memory": "256Mi"},
                                     "requests": {"cpu": "1", "memory": "256Mi"}}
        assert body["metadata"]["annotations"][plugin.ANNOTATION] == (
            "LimitRanger plugin set: cpu, memory request for container web; cpu, memory limit for container web; "
            "memory request for container own; memory limit for container own")


async def test_hook_kapi_validate_admission() -> None:
    async with running("LimitRanger") as (app, client):
        await create_namespace(client, "lr")
        item = {"type": "Container", "min": {"cpu": "100m"}, "max": {"cpu": "1"}, "maxLimitRequestRatio": {"cpu": "2"}}
        assert (await client.post(f"{URL}/limitranges", json=limit_range(item))).status_code == 201
        await app.cache.sync()
        big = {"name": "big", "image": "x", "resources": {"limits": {"cpu": "2"}, "requests": {"cpu": "500m"}}}
        resp = await client.post(f"{URL}/pods", json=pod("p", big))
        assert resp.status_code == 403
        assert resp.json()["message"] == (
            'pods "p" is forbidden: [maximum cpu usage per Container is 1, but limit is 2, cpu max limit to request '
            'ratio per Container is 2, but provided ratio is 4.000000]')
        small = {"name": "s", "image": "x", "resources": {"requests": {"cpu": "50m"}, "limits": {"cpu": "50m"}}}
        resp = await client.post(f"{URL}/pods", json=pod("q", small))
        assert resp.json()["message"] == ('pods "q" is forbidden: minimum cpu usage per Container is 100m, but '
                                          'request is 50m')
        fine = {"name": "f", "image": "x", "resources": {"requests": {"cpu": "500m"}, "limits": {"cpu": "1"}}}
        assert (await client.post(f"{URL}/pods", json=pod("r", fine))).status_code == 201


async def test_pod_bounds() -> None:
    async with running("LimitRanger") as (app, client):
        await create_namespace(client, "lr")
        assert (await client.post(f"{URL}/limitranges", json=limit_range({"type": "Pod", "max": {"memory": "1Gi"}}))) \
            .status_code == 201
        await app.cache.sync()
        containers = [{"name": n, "image": "x", "resources": {"limits": {"memory": "600Mi"}}} for n in ("a", "b")]
        resp = await client.post(f"{URL}/pods", json=pod("p", *containers))
        assert resp.status_code == 403
        assert resp.json()["message"].endswith("maximum memory usage per Pod is 1Gi, but limit is 1200Mi")


async def test_limit_range_validation() -> None:
    async with running() as (_app, client):
        bad = {"type": "Container", "min": {"cpu": "2"}, "max": {"cpu": "1"}}
        resp = await client.post("/api/v1/namespaces/default/limitranges", json=limit_range(bad))
        assert resp.status_code == 422
        assert "min value 2 is greater than max value 1" in resp.json()["message"]


def test_no_ranges_no_change() -> None:
    assert plugin.apply_defaults({"spec": {"containers": [{"name": "a"}]}}, []) is None
    assert plugin.pod_violations({"spec": {}}, []) == []
