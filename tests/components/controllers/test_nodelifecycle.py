"""Node lifecycle (health, taints, eviction) and pod GC against the fake API with a fake clock."""

from __future__ import annotations

from typing import Any

from kapi.components.controllers.nodelifecycle import (
    FOREVER,
    NOT_READY,
    UNREACHABLE,
    NodeLifecycleController,
    eviction_delay,
    tolerates,
)
from kapi.components.controllers.objects import find_condition
from kapi.components.controllers.podgc import SWEEP, PodGCController

from .builders import namespace, pod
from .fakes import FakeApi, make_context

Obj = dict[str, Any]


def node(name: str, ready: str = "True") -> Obj:
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name},
            "status": {"conditions": [{"type": "Ready", "status": ready, "reason": "KubeletReady",
                                       "lastHeartbeatTime": "2024-01-01T00:00:00Z",
                                       "lastTransitionTime": "2024-01-01T00:00:00Z"}]}}


def lease(name: str, renew: str) -> Obj:
    return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": name, "namespace": "kube-node-lease"},
            "spec": {"holderIdentity": name, "leaseDurationSeconds": 40, "renewTime": renew}}


def test_toleration_matching_and_delays() -> None:
    unreachable = {"key": UNREACHABLE, "effect": "NoExecute"}
    assert tolerates({"key": UNREACHABLE, "operator": "Exists", "effect": "NoExecute"}, unreachable)
    assert tolerates({"operator": "Exists"}, unreachable)
    assert not tolerates({"key": NOT_READY, "operator": "Exists"}, unreachable)
    assert not tolerates({"key": UNREACHABLE, "operator": "Exists", "effect": "NoSchedule"}, unreachable)
    bare = pod("p")
    assert eviction_delay(bare, [unreachable], 300) == 300
    bare["spec"]["tolerations"] = [{"key": UNREACHABLE, "operator": "Exists", "effect": "NoExecute",
                                    "tolerationSeconds": 5}]
    assert eviction_delay(bare, [unreachable], 300) == 5
    bare["spec"]["tolerations"] = [{"operator": "Exists"}]
    assert eviction_delay(bare, [unreachable], 300) == FOREVER
    assert eviction_delay(pod("q"), [{"key": "dedicated", "value": "x", "effect": "NoExecute"}], 300) == 0


async def test_silent_node_becomes_unknown_tainted_and_its_pods_evicted() -> None:
    api = FakeApi()
    api.seed(namespace("default"), node("n1"), lease("n1", "2024-01-01T00:00:00.000000Z"))
    api.seed(pod("tolerant", node="n1", phase="Running", ready=True,
                 tolerations=[{"key": UNREACHABLE, "operator": "Exists", "effect": "NoExecute",
                               "tolerationSeconds": 30}]),
             pod("default-toleration", node="n1", phase="Running", ready=True),
             pod("forever", node="n1", phase="Running", tolerations=[{"operator": "Exists"}]))
    ctx, events = make_context(api, node_monitor_grace_period=40, default_toleration_seconds=100)
    controller = NodeLifecycleController(ctx)
    ctx.informers.start()
    assert await controller.sync("n1") is None  # healthy
    api.clock.advance(30)
    api.seed(lease("n1", "2024-01-01T00:00:30.000000Z"))  # renewed: the silence restarts
    api.clock.advance(30)
    assert await controller.sync("n1") is None
    api.clock.advance(15)
    assert await controller.sync("n1") is not None  # 45 s silent: unknown, evictions scheduled
    stored = api.objects("nodes")[0]
    ready = find_condition(stored["status"]["conditions"], "Ready")
    assert ready is not None and ready["status"] == "Unknown" and ready["reason"] == "NodeStatusUnknown"
    assert {(t["key"], t["effect"]) for t in stored["spec"]["taints"]} == {
        (UNREACHABLE, "NoExecute"), (UNREACHABLE, "NoSchedule")}
    pods = {p["metadata"]["name"]: p for p in api.objects("pods")}
    assert find_condition(pods["tolerant"]["status"]["conditions"], "Ready")["status"] == "False"  # type: ignore[index]
    assert not any(p["metadata"].get("deletionTimestamp") for p in pods.values())
    api.clock.advance(31)
    await controller.sync("n1")
    deleted = {p["metadata"]["name"] for p in api.objects("pods") if p["metadata"].get("deletionTimestamp")}
    assert deleted == {"tolerant"}
    api.clock.advance(70)
    await controller.sync("n1")
    deleted = {p["metadata"]["name"] for p in api.objects("pods") if p["metadata"].get("deletionTimestamp")}
    assert deleted == {"tolerant", "default-toleration"}
    assert "TaintManagerEviction" in events.reasons()


async def test_recovered_node_loses_its_taints() -> None:
    api = FakeApi()
    sick = node("n1", ready="False")
    api.seed(sick)
    ctx, _ = make_context(api)
    controller = NodeLifecycleController(ctx)
    ctx.informers.start()
    await controller.sync("n1")
    assert {t["key"] for t in api.objects("nodes")[0]["spec"]["taints"]} == {NOT_READY}
    healthy = api.objects("nodes")[0]
    healthy["status"]["conditions"][0].update(status="True", lastHeartbeatTime="2024-01-01T00:01:00Z")
    await api.update("/api/v1/nodes/n1/status", healthy)
    await controller.sync("n1")
    assert "taints" not in api.objects("nodes")[0]["spec"]


async def test_pods_of_deleted_nodes_are_collected_after_quarantine() -> None:
    api = FakeApi()
    api.seed(namespace("default"), node("alive"))
    api.seed(pod("kept", node="alive"), pod("orphan", node="vanished"))
    ctx, _ = make_context(api, pod_gc_quarantine=40)
    controller = PodGCController(ctx)
    ctx.informers.start()
    await controller.sync(SWEEP)
    assert len(api.objects("pods")) == 2  # suspected only
    api.clock.advance(41)
    await controller.sync(SWEEP)
    assert [p["metadata"]["name"] for p in api.objects("pods")] == ["kept"]
