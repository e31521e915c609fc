"""The controllers against a real API server over mutual TLS in the test's loop.

The module starts one memory-store kapi server (``tls_server``) and ``run_controllers`` with the
admin client (every controller, one shared loop); each test works in its own namespace. A tiny
in-test "kubelet" marks pods Running and Ready where a rollout needs it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import pytest_asyncio
from tls_server import tls_server

from kapi.client import ApiError, Client, path_for
from kapi.components.controllers import ControllerOptions, run_controllers
from kapi.components.controllers.objects import find_condition

from .builders import deployment

Obj = dict[str, Any]

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def eventually(check: Callable[[], Awaitable[Any]], timeout: float = 30.0) -> Any:
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


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def manager(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Client]:
    async with tls_server(tmp_path_factory.mktemp("controllers")) as srv:
        client = Client.from_kubeconfig(srv.admin_kubeconfig)
        stop = asyncio.Event()
        options = ControllerOptions(namespace_sync_period=0.2, discovery_period=60,
                                    root_ca_pem=(srv.pki / "ca.crt").read_text())
        task = asyncio.create_task(run_controllers(client, stop=stop, options=options))
        try:
            yield client
        finally:
            stop.set()
            await asyncio.wait_for(task, 10)
            await client.aclose()


class Cluster:
    """The shared client and this test's namespace."""

    def __init__(self, client: Client, namespace: str) -> None:
        self.client = client
        self.ns = namespace
        self.deployments = path_for("apps", "v1", "deployments", namespace)
        self.replica_sets = path_for("apps", "v1", "replicasets", namespace)
        self.pods = path_for("", "v1", "pods", namespace)


@pytest_asyncio.fixture(loop_scope="module")
async def cluster(manager: Client, request: pytest.FixtureRequest) -> Cluster:
    name = request.node.name.removeprefix("test_").replace("_", "-")[:40]
    await manager.create(path_for("", "v1", "namespaces"), {"apiVersion": "v1", "kind": "Namespace",
                                                            "metadata": {"name": name}})
    return Cluster(manager, name)


async def kubelet(cluster: Cluster) -> None:
    """Mark every pending pod of the namespace Running and Ready, forever."""
    while True:
        for pod in (await cluster.client.list(cluster.pods)).get("items") or []:
            if pod["status"].get("phase") == "Pending" and not pod["metadata"].get("deletionTimestamp"):
                pod["status"] = {"phase": "Running", "podIP": "10.0.0.1", "conditions": [
                    {"type": "Ready", "status": "True", "lastTransitionTime": "2024-01-01T00:00:00Z"}]}
                with contextlib.suppress(ApiError):
                    await cluster.client.update(f"{cluster.pods}/{pod['metadata']['name']}/status", pod)
        await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def running_kubelet(cluster: Cluster) -> AsyncIterator[None]:
    task = asyncio.create_task(kubelet(cluster))
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def live_pods(cluster: Cluster) -> list[Obj]:
    return [p for p in (await cluster.client.list(cluster.pods)).get("items") or []
            if not p["metadata"].get("deletionTimestamp")]


async def items(cluster: Cluster, path: str) -> list[Obj]:
    return list((await cluster.client.list(path)).get("items") or [])


async def test_deployment_rollout_completes(cluster: Cluster) -> None:
    client = cluster.client
    async with running_kubelet(cluster):
        await client.create(cluster.deployments, deployment("web", 3, ns=cluster.ns))

        async def rolled_out(image: str) -> bool:
            d = await client.get(f"{cluster.deployments}/web")
            status = d.get("status") or {}
            progressing = find_condition(status.get("conditions") or [], "Progressing") or {}
            pods = await live_pods(cluster)
            return (status.get("observedGeneration") == d["metadata"]["generation"]
                    and status.get("updatedReplicas") == status.get("availableReplicas") == 3
                    and status.get("replicas") == 3 and progressing.get("reason") == "NewReplicaSetAvailable"
                    and len(pods) == 3 and {p["spec"]["containers"][0]["image"] for p in pods} == {image})

        await eventually(lambda: rolled_out("nginx:1"))
        d = await client.get(f"{cluster.deployments}/web")
        d["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:2"
        await client.update(f"{cluster.deployments}/web", d)
        await eventually(lambda: rolled_out("nginx:2"))
        sets = await items(cluster, cluster.replica_sets)
        assert sorted((s["metadata"]["annotations"]["deployment.kubernetes.io/revision"], s["spec"]["replicas"])
                      for s in sets) == [("1", 0), ("2", 3)]
        d = await client.get(f"{cluster.deployments}/web")
        assert d["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "2"


async def _deployment_with_pods(cluster: Cluster) -> None:
    await cluster.client.create(cluster.deployments, deployment("web", 2, ns=cluster.ns))

    async def ready() -> bool:
        return len(await live_pods(cluster)) == 2 and len(await items(cluster, cluster.replica_sets)) == 1

    await eventually(ready)


async def test_gc_background(cluster: Cluster) -> None:
    await _deployment_with_pods(cluster)
    await cluster.client.delete(f"{cluster.deployments}/web", options={"propagationPolicy": "Background"})

    async def gone() -> bool:
        return not await items(cluster, cluster.replica_sets) and not await items(cluster, cluster.pods)

    await eventually(gone)


async def test_gc_foreground(cluster: Cluster) -> None:
    await _deployment_with_pods(cluster)
    await cluster.client.delete(f"{cluster.deployments}/web", options={"propagationPolicy": "Foreground"})

    async def gone() -> bool:
        return not await items(cluster, cluster.deployments) and not await items(cluster, cluster.replica_sets) \
            and not await items(cluster, cluster.pods)

    await eventually(gone)


async def test_gc_orphan(cluster: Cluster) -> None:
    await _deployment_with_pods(cluster)
    await cluster.client.delete(f"{cluster.deployments}/web", options={"propagationPolicy": "Orphan"})

    async def orphaned() -> bool:
        sets = await items(cluster, cluster.replica_sets)
        return not await items(cluster, cluster.deployments) and len(sets) == 1 \
            and not sets[0]["metadata"].get("ownerReferences")

    await eventually(orphaned)
    await asyncio.sleep(0.2)
    assert len(await live_pods(cluster)) == 2  # the ReplicaSet still owns its pods


async def test_namespace_deletion_removes_everything(cluster: Cluster) -> None:
    client, ns = cluster.client, cluster.ns
    await client.create(cluster.deployments, deployment("web", 2, ns=ns))
    await client.create(path_for("", "v1", "configmaps", ns), {
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg", "namespace": ns}})

    async def populated() -> bool:
        accounts = await items(cluster, path_for("", "v1", "serviceaccounts", ns))
        return len(await live_pods(cluster)) == 2 and [a["metadata"]["name"] for a in accounts] == ["default"]

    await eventually(populated)
    await client.delete(path_for("", "v1", "namespaces", name=ns))

    async def gone() -> bool:
        try:
            await client.get(path_for("", "v1", "namespaces", name=ns))
        except ApiError as exc:
            return exc.not_found
        return False

    await eventually(gone)
    for plural, group in (("pods", ""), ("configmaps", ""), ("deployments", "apps"), ("replicasets", "apps"),
                          ("serviceaccounts", "")):
        left = await items(cluster, path_for(group, "v1", plural, ns))
        assert left == [], [(o["metadata"], o.get("status")) for o in left]


async def test_endpoints_follow_ready_pods(cluster: Cluster) -> None:
    client, ns = cluster.client, cluster.ns
    async with running_kubelet(cluster):
        await client.create(path_for("", "v1", "services", ns), {
            "apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": ns},
            "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]}})
        await client.create(cluster.deployments, deployment("web", 2, ns=ns))

        async def endpoints_ready() -> bool:
            ep = await client.get(path_for("", "v1", "endpoints", ns, "web"))
            subsets = ep.get("subsets") or []
            slices = (await client.list(path_for("discovery.k8s.io", "v1", "endpointslices", ns),
                                        labelSelector="kubernetes.io/service-name=web"))["items"]
            return (len(subsets) == 1 and len(subsets[0].get("addresses") or []) == 2
                    and subsets[0]["ports"] == [{"port": 8080, "protocol": "TCP"}]
                    and len(slices) == 1 and len(slices[0].get("endpoints") or []) == 2
                    and all(e["conditions"]["ready"] for e in slices[0]["endpoints"]))

        await eventually(endpoints_ready)


async def test_root_ca_config_map_is_published(cluster: Cluster) -> None:
    cm = await eventually(lambda: cluster.client.get(path_for("", "v1", "configmaps", cluster.ns, "kube-root-ca.crt")))
    assert "BEGIN CERTIFICATE" in cm["data"]["ca.crt"]


async def test_job_runs_to_completion(cluster: Cluster) -> None:
    client, ns = cluster.client, cluster.ns
    jobs = path_for("batch", "v1", "jobs", ns)
    await client.create(jobs, {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "pi", "namespace": ns},
                               "spec": {"completions": 2, "parallelism": 2, "template": {"spec": {
                                   "restartPolicy": "Never", "containers": [{"name": "pi", "image": "perl"}]}}}})
    pods = await eventually(lambda: _two(live_pods(cluster)))
    for pod in pods:
        pod["status"] = {"phase": "Succeeded"}
        await client.update(f"{cluster.pods}/{pod['metadata']['name']}/status", pod)

    async def complete() -> Obj | None:
        job = await client.get(f"{jobs}/pi")
        condition = find_condition((job.get("status") or {}).get("conditions") or [], "Complete")
        return job if condition is not None and condition["status"] == "True" else None

    job = await eventually(complete)
    assert job["status"]["succeeded"] == 2 and job["status"]["completionTime"]
    assert all(not p["metadata"].get("finalizers") for p in await items(cluster, cluster.pods))


async def _two(pods: Awaitable[list[Obj]]) -> list[Obj] | None:
    found = await pods
    return found if len(found) == 2 else None
