"""admission_taint_nodes_by_condition: new nodes start tainted not-ready:NoSchedule."""

from __future__ import annotations

from kapi_plugins import admission_taint_nodes_by_condition as plugin
from tests.plugins.admission_fakes import running


def test_aliases() -> None:
    assert plugin.ALIASES == ("TaintNodesByCondition",)


async def test_hook_kapi_mutate_admission() -> None:
    async with running("TaintNodesByCondition") as (_app, client):
        node = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"}}
        resp = await client.post("/api/v1/nodes", json=node)
        assert resp.json()["spec"]["taints"] == [{"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"}]
        # updates are left alone: the node lifecycle controller removes the taint
        resp = await client.patch("/api/v1/nodes/n1", json={"spec": {"taints": None}},
                                  headers={"content-type": "application/merge-patch+json"})
        assert "taints" not in resp.json()["spec"]


def test_existing_taint_kept() -> None:
    node = {"spec": {"taints": [{"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"}]}}
    assert plugin.with_not_ready_taint(node) is None
