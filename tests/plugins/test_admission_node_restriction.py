"""admission_node_restriction: a kubelet touches only its own node, pods and lease."""

from __future__ import annotations

from typing import Any

from kapi_plugins import admission_node_restriction as plugin
from tests.plugins.admission_fakes import client_for, pod, running

KUBELET = "system:node:n1|system:nodes"
MERGE = {"content-type": "application/merge-patch+json"}


def node(name: str, **labels: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": labels}}


def mirror(name: str, node_name: str = "n1", **spec: Any) -> dict[str, Any]:
    manifest = pod(name, nodeName=node_name, **spec)
    manifest["metadata"]["annotations"] = {plugin.MIRROR_ANNOTATION: "hash"}
    return manifest


def test_aliases() -> None:
    assert plugin.ALIASES == ("NodeRestriction",)


async def test_hook_kapi_validate_admission() -> None:
    async with running("NodeRestriction") as (app, admin), client_for(app, KUBELET) as kubelet:
        assert (await kubelet.post("/api/v1/nodes", json=node("n1"))).status_code == 201
        resp = await kubelet.post("/api/v1/nodes", json=node("n2"))
        assert resp.status_code == 403
        assert resp.json()["message"] == 'nodes "n2" is forbidden: node "n1" is not allowed to modify node "n2"'
        assert (await admin.post("/api/v1/nodes", json=node("n2"))).status_code == 201
        resp = await kubelet.patch("/api/v1/nodes/n2", json={"metadata": {"labels": {"x": "y"}}}, headers=MERGE)
        assert resp.status_code == 403
        # restricted labels and taints
        resp = await kubelet.patch("/api/v1/nodes/n1", headers=MERGE, json={"metadata": {"labels": {
            "node-restriction.kubernetes.io/pool": "a"}}})
        assert resp.status_code == 403 and "not allowed to modify labels" in resp.json()["message"]
        resp = await kubelet.patch("/api/v1/nodes/n1", headers=MERGE,
                                   json={"spec": {"taints": [{"key": "k", "effect": "NoSchedule"}]}})
        assert resp.status_code == 403 and "not allowed to modify taints" in resp.json()["message"]
        ok = await kubelet.patch("/api/v1/nodes/n1", json={"metadata": {"labels": {"zone": "a"}}}, headers=MERGE)
        assert ok.status_code == 200


async def test_pods() -> None:
    async with running("NodeRestriction") as (app, admin), client_for(app, KUBELET) as kubelet:
        resp = await kubelet.post("/api/v1/namespaces/default/pods", json=pod("plain", nodeName="n1"))
        assert resp.status_code == 403 and "can only create mirror pods" in resp.json()["message"]
        resp = await kubelet.post("/api/v1/namespaces/default/pods", json=mirror("other", "n2"))
        assert resp.status_code == 403 and "spec.nodeName set to itself" in resp.json()["message"]
        resp = await kubelet.post("/api/v1/namespaces/default/pods",
                                  json=mirror("sec", volumes=[{"name": "s", "secret": {"secretName": "x"}}]))
        assert resp.status_code == 403 and "reference secrets" in resp.json()["message"]
        assert (await kubelet.post("/api/v1/namespaces/default/pods", json=mirror("mine"))).status_code == 201
        assert (await admin.post("/api/v1/namespaces/default/pods", json=pod("theirs", nodeName="n2"))) \
                .status_code == 201
        status = {"status": {"phase": "Running"}}
        resp = await kubelet.patch("/api/v1/namespaces/default/pods/theirs/status", json=status, headers=MERGE)
        assert resp.status_code == 403
        resp = await kubelet.patch("/api/v1/namespaces/default/pods/mine/status", json=status, headers=MERGE)
        assert resp.status_code == 200
        resp = await kubelet.patch("/api/v1/namespaces/default/pods/mine", headers=MERGE,
                                   json={"metadata": {"labels": {"a": "b"}}})
        assert resp.status_code == 403 and "can only create and delete mirror pods" in resp.json()["message"]
        assert (await kubelet.delete("/api/v1/namespaces/default/pods/theirs")).status_code == 403
        assert (await kubelet.delete("/api/v1/namespaces/default/pods/mine?gracePeriodSeconds=0")) \
                .status_code == 200


async def test_leases_and_other_users() -> None:
    lease = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "n2"}, "spec": {}}
    async with running("NodeRestriction") as (app, admin):
        async with client_for(app, KUBELET) as kubelet:
            url = "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases"
            assert (await kubelet.post(url, json=lease)).status_code == 403
            assert (await kubelet.post(url, json={**lease, "metadata": {"name": "n1"}})).status_code == 201
            assert (await admin.post(url, json=lease)).status_code == 201
        async with client_for(app, "system:node:n1|") as impostor:  # not in system:nodes: not a kubelet
            assert (await impostor.post("/api/v1/nodes", json=node("n9"))).status_code == 201
