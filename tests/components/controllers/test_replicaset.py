"""ReplicaSet controller: reconcile against the fake API."""

from __future__ import annotations

from kapi.client import ApiError
from kapi.components.controllers.replicaset import ReplicaSetController, pods_to_delete, replica_set_status

from .builders import namespace, pod, replica_set
from .fakes import FakeApi, drain, make_context


def setup(api: FakeApi) -> tuple[ReplicaSetController, object]:
    ctx, events = make_context(api)
    return ReplicaSetController(ctx), events


def owned_pods(api: FakeApi, rs: dict) -> list[dict]:
    uid = rs["metadata"]["uid"]
    return [p for p in api.objects("pods")
            if any(r.get("uid") == uid and r.get("controller") for r in p["metadata"].get("ownerReferences") or [])]


async def test_creates_missing_pods_with_owner_and_status() -> None:
    api = FakeApi()
    api.seed(namespace("default"))
    rs, = api.seed(replica_set("web", 3))
    ctrl, events = setup(api)
    await ctrl.sync("default/web")
    pods = owned_pods(api, rs)
    assert len(pods) == 3
    first = pods[0]
    assert first["metadata"]["generateName"] == "web-" and first["metadata"]["name"].startswith("web-")
    ref = first["metadata"]["ownerReferences"][0]
    assert ref == {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web", "uid": rs["metadata"]["uid"],
                   "controller": True, "blockOwnerDeletion": True}
    assert first["metadata"]["labels"] == {"app": "web"}
    assert events.reasons().count("SuccessfulCreate") == 3  # type: ignore[attr-defined]
    # the informer delivered the creations: expectations satisfied, the next sync writes status only
    await ctrl.sync("default/web")
    stored = api.objects("replicasets", "apps")[0]
    assert stored["status"] == {"replicas": 3, "fullyLabeledReplicas": 3, "observedGeneration": 1}
    assert len(owned_pods(api, rs)) == 3


async def test_expectations_prevent_double_creation() -> None:
    api = FakeApi()
    api.seed(namespace("default"))
    api.seed(replica_set("web", 2))
    ctrl, _ = setup(api)
    ctrl.expectations.expect_creations("default/web", 2)  # as if creations were in flight
    await ctrl.sync("default/web")
    assert api.objects("pods") == []


async def test_deletes_extra_pods_unscheduled_first() -> None:
    api = FakeApi()
    api.seed(namespace("default"))
    rs, = api.seed(replica_set("web", 1))
    api.seed(pod("a", {"app": "web"}, owner=rs, phase="Running", ready=True, node="n1"),
             pod("b", {"app": "web"}, owner=rs),
             pod("c", {"app": "web"}, owner=rs, phase="Running", node="n1"))
    ctrl, events = setup(api)
    await ctrl.sync("default/web")
    assert [p["metadata"]["name"] for p in api.objects("pods") if not p["metadata"].get("deletionTimestamp")] == ["a"]
    assert events.reasons().count("SuccessfulDelete") == 2  # type: ignore[attr-defined]


async def test_adopts_orphans_and_releases_mismatched() -> None:
    api = FakeApi()
    api.seed(namespace("default"))
    rs, = api.seed(replica_set("web", 2))
    api.seed(pod("orphan", {"app": "web"}), pod("stray", {"app": "other"}, owner=rs),
             pod("foreign", {"app": "web"}, owner={"apiVersion": "apps/v1", "kind": "ReplicaSet",
                                                    "metadata": {"name": "x", "uid": "other-uid"}}))
    ctrl, _ = setup(api)
    await ctrl.sync("default/web")
    by_name = {p["metadata"]["name"]: p for p in api.objects("pods")}
    assert by_name["orphan"]["metadata"]["ownerReferences"][0]["uid"] == rs["metadata"]["uid"]
    assert not by_name["stray"]["metadata"].get("ownerReferences")
    assert by_name["foreign"]["metadata"]["ownerReferences"][0]["uid"] == "other-uid"
    assert len(owned_pods(api, rs)) == 2  # the orphan plus one created


async def test_ready_and_available_counts_with_min_ready_seconds() -> None:
    api = FakeApi()
    rs = replica_set("web", 2, minReadySeconds=30)
    rs["metadata"].update(uid="u1", generation=4)
    now = api.clock.now()
    pods = [pod("a", {"app": "web"}, ready=True, ready_since="2023-12-31T23:00:00Z"),
            pod("b", {"app": "web"}, ready=True, ready_since="2023-12-31T23:59:50Z")]
    status, wait = replica_set_status(rs, pods, now, None)
    assert status == {"replicas": 2, "fullyLabeledReplicas": 2, "readyReplicas": 2, "availableReplicas": 1,
                      "observedGeneration": 4}
    assert wait == 20.0
    failed, _ = replica_set_status(rs, [], now, ("FailedCreate", "quota"))
    assert failed["conditions"][0]["type"] == "ReplicaFailure" and failed["conditions"][0]["reason"] == "FailedCreate"


async def test_create_failure_sets_replica_failure_and_requeues() -> None:
    api = FakeApi()
    api.seed(namespace("default"))
    api.seed(replica_set("web", 2))
    ctrl, events = setup(api)
    api.fail("create", "pods")
    try:
        await ctrl.sync("default/web")
    except ApiError:
        pass
    else:
        raise AssertionError("sync should fail")
    stored = api.objects("replicasets", "apps")[0]
    assert stored["status"]["conditions"][0]["reason"] == "FailedCreate"
    assert "FailedCreate" in events.reasons()  # type: ignore[attr-defined]
    assert ctrl.expectations.satisfied("default/web")
    await ctrl.sync("default/web")
    stored = api.objects("replicasets", "apps")[0]
    assert len(api.objects("pods")) == 2


async def test_pod_events_requeue_owner_and_scale_down_by_rank() -> None:
    api = FakeApi()
    api.seed(namespace("default"))
    rs, = api.seed(replica_set("web", 2))
    ctrl, _ = setup(api)
    ctrl.ctx.informers.start()
    await drain(ctrl)
    assert len(api.objects("pods")) == 2
    victim = api.objects("pods")[0]
    api.remove(victim)  # a pod goes away: the owner is queued and replaces it
    await drain(ctrl)
    assert len(owned_pods(api, rs)) == 2


def test_pods_to_delete_order() -> None:
    pods = [pod("running-ready", phase="Running", ready=True, node="n"), pod("pending-node", node="n"),
            pod("unscheduled"), pod("running", phase="Running", node="n")]
    assert [p["metadata"]["name"] for p in pods_to_delete(pods, 4)] == [
        "unscheduled", "pending-node", "running", "running-ready"]
