"""Deployment controller: rollout arithmetic and whole rollouts against the fake API."""

from __future__ import annotations

from typing import Any

from kapi.components.controllers import rollout as ru
from kapi.components.controllers.deployment import DeploymentController
from kapi.components.controllers.objects import find_condition
from kapi.components.controllers.replicaset import ReplicaSetController

from .builders import deployment, namespace, replica_set
from .fakes import FakeApi, drain, make_context

Obj = dict[str, Any]


async def make_ready(api: FakeApi) -> None:
    """A kubelet in one line: every pod runs and is ready."""
    for i, pod in enumerate(api.objects("pods")):
        if pod["status"].get("phase") != "Running" and not pod["metadata"].get("deletionTimestamp"):
            status = {"phase": "Running", "podIP": f"10.0.0.{i + 1}",
                      "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": "2024-01-01T00:00:00Z"}]}
            await api.update(f"/api/v1/namespaces/{pod['metadata']['namespace']}/pods/{pod['metadata']['name']}/status",
                             {**pod, "status": status})


async def settle(api: FakeApi, *controllers: Any, kubelet: bool = True, rounds: int = 40) -> None:
    for _ in range(rounds):
        for controller in controllers:
            await drain(controller)
        if kubelet:
            await make_ready(api)
        if all(len(c.queue) == 0 for c in controllers):
            return


def setup(api: FakeApi) -> tuple[DeploymentController, ReplicaSetController, Any]:
    ctx, events = make_context(api)
    dc, rsc = DeploymentController(ctx), ReplicaSetController(ctx)
    ctx.informers.start()
    return dc, rsc, events


def rss(api: FakeApi) -> list[Obj]:
    return sorted(api.objects("replicasets", "apps"), key=lambda r: int(ru.revision_of(r)))


def live_pods(api: FakeApi) -> list[Obj]:
    return [p for p in api.objects("pods") if not p["metadata"].get("deletionTimestamp")]


def stored_deployment(api: FakeApi) -> Obj:
    return api.objects("deployments", "apps")[0]


# ---------------------------------------------------------------------------------------------
# arithmetic


def test_fenceposts_and_surge() -> None:
    d = deployment("web", 10)
    assert ru.fenceposts(d) == (3, 2)
    d["spec"]["strategy"]["rollingUpdate"] = {"maxSurge": 0, "maxUnavailable": 0}
    assert ru.fenceposts(d) == (0, 1)
    d["spec"]["strategy"] = {"type": "Recreate"}
    assert ru.max_surge(d) == 0 and ru.max_unavailable(d) == 0


def test_template_hash_is_stable_and_safe() -> None:
    template = deployment("web", 1)["spec"]["template"]
    value = ru.template_hash(template)
    assert value == ru.template_hash(dict(reversed(list(template.items()))))
    assert set(value) <= set(ru.SAFE_ALPHABET) and 1 <= len(value) <= 10
    assert ru.template_hash(template, 1) != value
    other = deployment("web", 1, image="nginx:2")["spec"]["template"]
    assert ru.template_hash(other) != value
    with_hash = {**template, "metadata": {"labels": {**template["metadata"]["labels"], ru.HASH_LABEL: value}}}
    assert ru.equal_ignore_hash(with_hash, template)


def test_rollback_keeps_revision_history() -> None:
    d = deployment("web", 2)
    d["metadata"]["annotations"] = {"team": "a", ru.LAST_APPLIED: "{}"}
    rs = replica_set("web-1", 2)
    rs["metadata"]["annotations"] = {ru.REVISION: "1"}
    assert ru.set_new_rs_annotations(d, rs, 3, exists=True)
    annotations = rs["metadata"]["annotations"]
    assert annotations[ru.REVISION] == "3" and annotations[ru.REVISION_HISTORY] == "1" and annotations["team"] == "a"
    assert ru.LAST_APPLIED not in annotations
    assert not ru.set_new_rs_annotations(d, rs, 2, exists=True)


def test_new_rs_replicas_respects_surge() -> None:
    d = deployment("web", 4)  # surge 1
    old, new = replica_set("old", 4), replica_set("new", 0)
    assert ru.new_rs_replicas(d, [old, new], new) == 1
    old["spec"]["replicas"] = 3
    new["spec"]["replicas"] = 1
    assert ru.new_rs_replicas(d, [old, new], new) == 2


# ---------------------------------------------------------------------------------------------
# rollouts


async def test_new_deployment_creates_replica_set_and_completes() -> None:
    api = FakeApi()
    api.seed(namespace("default"))
    api.seed(deployment("web", 3))
    dc, rsc, events = setup(api)
    await settle(api, dc, rsc)
    rs, = rss(api)
    value = rs["metadata"]["labels"][ru.HASH_LABEL]
    assert rs["metadata"]["name"] == f"web-{value}"
    assert rs["spec"]["selector"]["matchLabels"] == {"app": "web", ru.HASH_LABEL: value}
    assert rs["spec"]["template"]["metadata"]["labels"] == {"app": "web", ru.HASH_LABEL: value}
    assert rs["metadata"]["annotations"][ru.REVISION] == "1"
    assert rs["metadata"]["annotations"][ru.DESIRED_REPLICAS] == "3"
    assert rs["metadata"]["annotations"][ru.MAX_REPLICAS] == "4"
    assert rs["metadata"]["ownerReferences"][0]["kind"] == "Deployment"
    assert len(live_pods(api)) == 3
    d = stored_deployment(api)
    assert d["metadata"]["annotations"][ru.REVISION] == "1"
    status = d["status"]
    assert status["replicas"] == status["updatedReplicas"] == status["readyReplicas"] == 3
    assert status["availableReplicas"] == 3 and status["observedGeneration"] == 1
    progressing = find_condition(status["conditions"], "Progressing")
    available = find_condition(status["conditions"], "Available")
    assert progressing is not None and progressing["reason"] == "NewReplicaSetAvailable"
    assert progressing["message"] == f'ReplicaSet "web-{value}" has successfully progressed.'
    assert available is not None and available["status"] == "True"
    assert ("deployment-controller", "Normal", "ScalingReplicaSet",
            f"Scaled up replica set web-{value} from 0 to 3") in events.events


async def test_rolling_update_replaces_pods_and_keeps_history() -> None:
    api = FakeApi()
    api.seed(namespace("default"))
    api.seed(deployment("web", 4, revisionHistoryLimit=1))
    dc, rsc, _ = setup(api)
    await settle(api, dc, rsc)
    for image in ("nginx:2", "nginx:3"):
        d = stored_deployment(api)
        d["spec"]["template"]["spec"]["containers"][0]["image"] = image
        await api.update("/apis/apps/v1/namespaces/default/deployments/web", d)
        await settle(api, dc, rsc)
    sets = rss(api)
    assert [ru.revision_of(r) for r in sets] == [2, 3]  # revision 1 cleaned up (limit 1)
    assert [r["spec"]["replicas"] for r in sets] == [0, 4]
    assert {p["spec"]["containers"][0]["image"] for p in live_pods(api)} == {"nginx:3"}
    d = stored_deployment(api)
    assert d["metadata"]["annotations"][ru.REVISION] == "3"
    assert d["status"]["updatedReplicas"] == 4 and d["status"]["observedGeneration"] == 3
    assert find_condition(d["status"]["conditions"], "Progressing")["reason"] == "NewReplicaSetAvailable"  # type: ignore[index]


async def test_rolling_update_never_exceeds_surge_or_unavailability() -> None:
    api = FakeApi()
    api.seed(namespace("default"))
    api.seed(deployment("web", 4))
    dc, rsc, _ = setup(api)
    await settle(api, dc, rsc)
    d = stored_deployment(api)
    d["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:2"
    await api.update("/apis/apps/v1/namespaces/default/deployments/web", d)
    await settle(api, dc, rsc, kubelet=False)  # pods of the new ReplicaSet never become ready
    sets = rss(api)
    assert [r["spec"]["replicas"] for r in sets] == [3, 2]  # 4 + surge 1 = 5 total, 3 available >= 4 - 1
    d = stored_deployment(api)
    assert find_condition(d["status"]["conditions"], "Progressing")["reason"] == "ReplicaSetUpdated"  # type: ignore[index]


async def test_scale_up_and_down_touches_only_the_active_replica_set() -> None:
    api = FakeApi()
    api.seed(namespace("default"))
    api.seed(deployment("web", 3))
    dc, rsc, _ = setup(api)
    await settle(api, dc, rsc)
    for replicas in (5, 2):
        d = stored_deployment(api)
        d["spec"]["replicas"] = replicas
        await api.update("/apis/apps/v1/namespaces/default/deployments/web", d)
        await settle(api, dc, rsc)
        rs, = rss(api)
        assert rs["spec"]["replicas"] == replicas
        assert rs["metadata"]["annotations"][ru.DESIRED_REPLICAS] == str(replicas)
        assert len(live_pods(api)) == replicas
    assert stored_deployment(api)["status"]["replicas"] == 2


async def test_recreate_waits_for_old_pods() -> None:
    api = FakeApi()
    api.seed(namespace("default"))
    api.seed(deployment("web", 2, strategy={"type": "Recreate"}))
    dc, rsc, _ = setup(api)
    await settle(api, dc, rsc)
    d = stored_deployment(api)
    d["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:2"
    await api.update("/apis/apps/v1/namespaces/default/deployments/web", d)
    await drain(dc)
    sets = rss(api)
    assert len(sets) == 1 and sets[0]["spec"]["replicas"] == 0  # old scaled down, new not created yet
    await settle(api, dc, rsc)
    sets = rss(api)
    assert [r["spec"]["replicas"] for r in sets] == [0, 2]
    assert {p["spec"]["containers"][0]["image"] for p in live_pods(api)} == {"nginx:2"}


async def test_progress_deadline_exceeded() -> None:
    api = FakeApi()
    api.seed(namespace("default"))
    api.seed(deployment("web", 1, progressDeadlineSeconds=10))
    dc, rsc, _ = setup(api)
    await settle(api, dc, rsc, kubelet=False)
    api.clock.advance(11)
    await dc.sync("default/web")
    d = stored_deployment(api)
    condition = find_condition(d["status"]["conditions"], "Progressing")
    assert condition is not None and condition["status"] == "False"
    assert condition["reason"] == "ProgressDeadlineExceeded"


async def test_paused_deployment_does_not_roll_out() -> None:
    api = FakeApi()
    api.seed(namespace("default"))
    api.seed(deployment("web", 2))
    dc, rsc, _ = setup(api)
    await settle(api, dc, rsc)
    d = stored_deployment(api)
    d["spec"]["paused"] = True
    d["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:2"
    await api.update("/apis/apps/v1/namespaces/default/deployments/web", d)
    await settle(api, dc, rsc)
    assert len(rss(api)) == 1
    condition = find_condition(stored_deployment(api)["status"]["conditions"], "Progressing")
    assert condition is not None and condition["reason"] == "DeploymentPaused"


async def test_adopts_matching_orphan_replica_set() -> None:
    api = FakeApi()
    api.seed(namespace("default"))
    api.seed(replica_set("orphan", 1, {"app": "web"}))
    d, = api.seed(deployment("web", 1))
    dc, _, _ = setup(api)
    await drain(dc)
    orphan = next(r for r in rss(api) if r["metadata"]["name"] == "orphan")
    assert orphan["metadata"]["ownerReferences"][0]["uid"] == d["metadata"]["uid"]
