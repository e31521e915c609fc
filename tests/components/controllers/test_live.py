"""The controllers against a real API server over mutual TLS in the test's loop.

Each test starts a memory-store kapi server (``tls_server``) and ``run_controllers`` with the
admin client; a tiny in-test "kubelet" marks pods Running and Ready where a rollout needs it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from tls_server import tls_server

from kapi.client import ApiError, Client, path_for
from kapi.components.controllers import ControllerOptions, run_controllers
from kapi.components.controllers.objects import find_condition

from .builders import deployment

Obj = dict[str, Any]

DEPLOYMENTS = path_for("apps", "v1", "deployments", "default")
REPLICA_SETS = path_for("apps", "v1", "replicasets", "default")
PODS = path_for("", "v1", "pods", "default")


async def eventually(check: Callable[[], Awaitable[Any]], timeout: float = 15.0) -> Any:
    """Poll ``check`` until it returns a truthy value (which is returned)."""
    deadline = asyncio.get_running_loop().time() + timeout
    last: Any = None
    while asyncio.get_running_loop().time() < deadline:
        try:
            last = await check()
        except (ApiError, AssertionError, KeyError, StopIteration):
            last = None
        if last:
            return last
        await asyncio.sleep(0.05)
    raise AssertionError(f"condition not met in {timeout}s (last: {last!r})")


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[Client]:
    async with tls_server(tmp_path) as srv:
        client = Client.from_kubeconfig(srv.admin_kubeconfig)
        stop = asyncio.Event()
        options = ControllerOptions(namespace_sync_period=0.2, discovery_period=60)
        task = asyncio.create_task(run_controllers(client, stop=stop, options=options))
        try:
            yield client
        finally:
            stop.set()
            await asyncio.wait_for(task, 10)
            await client.aclose()


async def kubelet(client: Client) -> None:
    """Mark every pending pod Running and Ready, forever."""
    while True:
        for pod in (await client.list(PODS)).get("items") or []:
            if pod["status"].get("phase") == "Pending" and not pod["metadata"].get("deletionTimestamp"):
                pod["status"] = {"phase": "Running", "podIP": "10.0.0.1", "conditions": [
                    {"type": "Ready", "status": "True", "lastTransitionTime": "2024-01-01T00:00:00Z"}]}
                with contextlib.suppress(ApiError):
                    await client.update(f"{PODS}/{pod['metadata']['name']}/status", pod)
        await asyncio.sleep(0.05)


async def live_pods(client: Client) -> list[Obj]:
    return [p for p in (await client.list(PODS)).get("items") or [] if not p["metadata"].get("deletionTimestamp")]


async def test_deployment_rollout_completes(cluster: Client) -> None:
    client = cluster
    fake_kubelet = asyncio.create_task(kubelet(client))
    try:
        await client.create(DEPLOYMENTS, deployment("web", 3))

        async def rolled_out(image: str) -> bool:
            d = await client.get(f"{DEPLOYMENTS}/web")
            status = d.get("status") or {}
            progressing = find_condition(status.get("conditions") or [], "Progressing") or {}
            pods = await live_pods(client)
            return (status.get("observedGeneration") == d["metadata"]["generation"]
                    and status.get("updatedReplicas") == status.get("availableReplicas") == 3
                    and status.get("replicas") == 3 and progressing.get("reason") == "NewReplicaSetAvailable"
                    and len(pods) == 3 and {p["spec"]["containers"][0]["image"] for p in pods} == {image})

        await eventually(lambda: rolled_out("nginx:1"))
        d = await client.get(f"{DEPLOYMENTS}/web")
        d["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:2"
        await client.update(f"{DEPLOYMENTS}/web", d)
        await eventually(lambda: rolled_out("nginx:2"))
        sets = (await client.list(REPLICA_SETS))["items"]
        assert sorted((s["metadata"]["annotations"]["deployment.kubernetes.io/revision"], s["spec"]["replicas"])
                      for s in sets) == [("1", 0), ("2", 3)]
        d = await client.get(f"{DEPLOYMENTS}/web")
        assert d["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "2"
    finally:
        fake_kubelet.cancel()
        await asyncio.gather(fake_kubelet, return_exceptions=True)


async def _deployment_with_pods(client: Client) -> None:
    await client.create(DEPLOYMENTS, deployment("web", 2))

    async def ready() -> bool:
        return len(await live_pods(client)) == 2 and len((await client.list(REPLICA_SETS))["items"]) == 1

    await eventually(ready)


async def test_gc_background(cluster: Client) -> None:
    await _deployment_with_pods(cluster)
    await cluster.delete(f"{DEPLOYMENTS}/web", options={"propagationPolicy": "Background"})

    async def gone() -> bool:
        return not (await cluster.list(REPLICA_SETS))["items"] and not (await cluster.list(PODS))["items"]

    await eventually(gone)


async def test_gc_foreground(cluster: Client) -> None:
    await _deployment_with_pods(cluster)
    await cluster.delete(f"{DEPLOYMENTS}/web", options={"propagationPolicy": "Foreground"})

    async def gone() -> bool:
        return not (await cluster.list(DEPLOYMENTS))["items"] and not (await cluster.list(REPLICA_SETS))["items"] \
            and not (await cluster.list(PODS))["items"]

    await eventually(gone)


async def test_gc_orphan(cluster: Client) -> None:
    await _deployment_with_pods(cluster)
    await cluster.delete(f"{DEPLOYMENTS}/web", options={"propagationPolicy": "Orphan"})

    async def orphaned() -> bool:
        sets = (await cluster.list(REPLICA_SETS))["items"]
        return not (await cluster.list(DEPLOYMENTS))["items"] and len(sets) == 1 \
            and not sets[0]["metadata"].get("ownerReferences")

    await eventually(orphaned)
    await asyncio.sleep(0.3)
    assert len(await live_pods(cluster)) == 2  # the ReplicaSet still owns its pods


async def test_namespace_deletion_removes_everything(cluster: Client) -> None:
    client = cluster
    await client.create(path_for("", "v1", "namespaces"), {"apiVersion": "v1", "kind": "Namespace",
                                                           "metadata": {"name": "doomed"}})
    await client.create(path_for("apps", "v1", "deployments", "doomed"), deployment("web", 2, ns="doomed"))
    await client.create(path_for("", "v1", "configmaps", "doomed"), {
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg", "namespace": "doomed"}})

    async def populated() -> bool:
        pods = (await client.list(path_for("", "v1", "pods", "doomed")))["items"]
        accounts = (await client.list(path_for("", "v1", "serviceaccounts", "doomed")))["items"]
        return len(pods) == 2 and [a["metadata"]["name"] for a in accounts] == ["default"]

    await eventually(populated)
    await client.delete(path_for("", "v1", "namespaces", name="doomed"))

    async def gone() -> bool:
        try:
            await client.get(path_for("", "v1", "namespaces", name="doomed"))
        except ApiError as exc:
            return exc.not_found
        return False

    await eventually(gone)
    for plural, group in (("pods", ""), ("configmaps", ""), ("deployments", "apps"), ("replicasets", "apps")):
        assert (await client.list(path_for(group, "v1", plural, "doomed")))["items"] == []


async def test_endpoints_follow_ready_pods(cluster: Client) -> None:
    client = cluster
    fake_kubelet = asyncio.create_task(kubelet(client))
    try:
        await client.create(path_for("", "v1", "services", "default"), {
            "apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "default"},
            "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]}})
        await client.create(DEPLOYMENTS, deployment("web", 2))

        async def endpoints_ready() -> bool:
            ep = await client.get(path_for("", "v1", "endpoints", "default", "web"))
            subsets = ep.get("subsets") or []
            slices = (await client.list(path_for("discovery.k8s.io", "v1", "endpointslices", "default"),
                                        labelSelector="kubernetes.io/service-name=web"))["items"]
            return (len(subsets) == 1 and len(subsets[0].get("addresses") or []) == 2
                    and subsets[0]["ports"] == [{"port": 8080, "protocol": "TCP"}]
                    and len(slices) == 1 and len(slices[0].get("endpoints") or []) == 2
                    and all(e["conditions"]["ready"] for e in slices[0]["endpoints"]))

        await eventually(endpoints_ready)
    finally:
        fake_kubelet.cancel()
        await asyncio.gather(fake_kubelet, return_exceptions=True)
