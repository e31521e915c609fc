"""Garbage collector: background, foreground and orphan propagation against the fake API."""

from __future__ import annotations

from typing import Any

from kapi.components.controllers.garbagecollector import GarbageCollector

from .builders import deployment, namespace, pod, replica_set
from .fakes import FakeApi, drain, make_context

Obj = dict[str, Any]

DEPLOY = "/apis/apps/v1/namespaces/default/deployments/web"


def owned_by(owner: Obj) -> Obj:
    return {"apiVersion": owner["apiVersion"], "kind": owner["kind"], "name": owner["metadata"]["name"],
            "uid": owner["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}


def chain(api: FakeApi) -> tuple[Obj, Obj, list[Obj]]:
    """deployment web -> replicaset web-1 -> pods p0, p1."""
    api.seed(namespace("default"))
    d, = api.seed(deployment("web", 2))
    rs = replica_set("web-1", 2, {"app": "web"})
    rs["metadata"]["ownerReferences"] = [owned_by(d)]
    rs, = api.seed(rs)
    pods = api.seed(*(pod(f"p{i}", {"app": "web"}, owner=rs) for i in range(2)))
    return d, rs, pods


async def start(api: FakeApi) -> GarbageCollector:
    ctx, _ = make_context(api)
    gc = GarbageCollector(ctx)
    await gc.prepare()
    ctx.informers.start()
    await drain(gc)
    return gc


def names(api: FakeApi, plural: str, group: str = "") -> list[str]:
    return sorted(o["metadata"]["name"] for o in api.objects(plural, group))


async def test_background_deletes_dependents_of_a_deleted_owner() -> None:
    api = FakeApi()
    chain(api)
    gc = await start(api)
    assert names(api, "pods") == ["p0", "p1"]  # nothing to do while the owner exists
    await api.delete(DEPLOY)
    await drain(gc)
    assert names(api, "replicasets", "apps") == []
    assert names(api, "pods") == []


async def test_dangling_owner_at_startup_is_collected() -> None:
    api = FakeApi()
    api.seed(namespace("default"))
    ghost = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "gone", "uid": "ghost-uid"}}
    api.seed(pod("orphaned", owner=ghost))
    await start(api)
    assert names(api, "pods") == []


async def test_orphan_keeps_dependents_and_removes_references() -> None:
    api = FakeApi()
    chain(api)
    gc = await start(api)
    await api.delete(DEPLOY, options={"propagationPolicy": "Orphan"})
    await drain(gc)
    assert names(api, "deployments", "apps") == []
    remaining, = api.objects("replicasets", "apps")
    assert not remaining["metadata"].get("ownerReferences")
    assert names(api, "pods") == ["p0", "p1"]


async def test_foreground_deletes_dependents_first() -> None:
    api = FakeApi()
    chain(api)
    gc = await start(api)
    await api.delete(DEPLOY, options={"propagationPolicy": "Foreground"})
    first_pass = api.objects("deployments", "apps")
    assert first_pass and "foregroundDeletion" in first_pass[0]["metadata"]["finalizers"]
    await drain(gc)
    assert names(api, "pods") == []
    assert names(api, "replicasets", "apps") == []
    assert names(api, "deployments", "apps") == []
    deletes = [path for verb, path in api.actions if verb == "delete"]
    assert deletes.index("/apis/apps/v1/namespaces/default/replicasets/web-1") < len(deletes)


async def test_foreground_waits_for_blocking_dependents() -> None:
    api = FakeApi()
    api.seed(namespace("default"))
    d, = api.seed(deployment("web", 1))
    stuck = pod("stuck", owner=d, node="n1")  # a bound pod waits for its kubelet
    api.seed(stuck)
    gc = await start(api)
    await api.delete(DEPLOY, options={"propagationPolicy": "Foreground"})
    await drain(gc)
    assert names(api, "deployments", "apps") == ["web"]  # still waiting
    api.remove(api.objects("pods")[0])  # the kubelet confirmed
    await drain(gc)
    assert names(api, "deployments", "apps") == []


async def test_dependent_with_another_live_owner_only_loses_the_reference() -> None:
    api = FakeApi()
    api.seed(namespace("default"))
    d, = api.seed(deployment("web", 1))
    other, = api.seed(deployment("other", 1))
    shared = pod("shared")
    shared["metadata"]["ownerReferences"] = [owned_by(d), {**owned_by(other), "controller": False}]
    api.seed(shared)
    gc = await start(api)
    await api.delete(DEPLOY)
    await drain(gc)
    kept, = api.objects("pods")
    assert [r["name"] for r in kept["metadata"]["ownerReferences"]] == ["other"]
