"""Job controller: completions, parallelism, backoff limit, indexes, suspension, tracking finalizers."""

from __future__ import annotations

from typing import Any

from kapi.components.controllers.job import (
    COMPLETION_INDEX,
    TRACKING_FINALIZER,
    JobController,
    format_indexes,
    parse_indexes,
)
from kapi.components.controllers.objects import find_condition

from .builders import namespace, template
from .fakes import FakeApi, drain, make_context

Obj = dict[str, Any]


def job(name: str = "pi", **spec: Any) -> Obj:
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name, "namespace": "default"},
            "spec": {"template": template({}, restartPolicy="Never"), **spec}}


async def start(api: FakeApi, obj: Obj) -> JobController:
    api.seed(namespace("default"))
    await api.create("/apis/batch/v1/namespaces/default/jobs", obj)  # the selector is generated
    ctx, _ = make_context(api, job_backoff_base=0.0)
    controller = JobController(ctx)
    ctx.informers.start()
    await drain(controller)
    return controller


def live(api: FakeApi) -> list[Obj]:
    return [p for p in api.objects("pods") if not p["metadata"].get("deletionTimestamp")]


async def finish(api: FakeApi, pod: Obj, phase: str) -> None:
    meta = pod["metadata"]
    await api.update(f"/api/v1/namespaces/default/pods/{meta['name']}/status", {**pod, "status": {"phase": phase}})


def stored(api: FakeApi) -> Obj:
    return api.objects("jobs", "batch")[0]


def test_index_sets_round_trip() -> None:
    assert format_indexes({0, 1, 2, 5, 7, 8}) == "0-2,5,7-8"
    assert parse_indexes("0-2,5,7-8") == {0, 1, 2, 5, 7, 8}
    assert format_indexes(set()) == ""


async def test_completions_run_one_at_a_time_and_complete() -> None:
    api = FakeApi()
    controller = await start(api, job(completions=2, parallelism=1))
    pod, = live(api)
    assert pod["metadata"]["generateName"] == "pi-" and TRACKING_FINALIZER in pod["metadata"]["finalizers"]
    assert pod["metadata"]["labels"]["batch.kubernetes.io/job-name"] == "pi"
    assert stored(api)["status"]["active"] == 1 and stored(api)["status"]["startTime"]
    await finish(api, pod, "Succeeded")
    await drain(controller)
    assert stored(api)["status"]["succeeded"] == 1
    done = [p for p in api.objects("pods") if p["status"]["phase"] == "Succeeded"]
    assert done and not done[0]["metadata"].get("finalizers")  # counted, finalizer off
    second = next(p for p in live(api) if p["status"]["phase"] != "Succeeded")
    await finish(api, second, "Succeeded")
    await drain(controller)
    status = stored(api)["status"]
    assert status["succeeded"] == 2 and "active" not in status and status["completionTime"]
    complete = find_condition(status["conditions"], "Complete")
    assert complete is not None and complete["status"] == "True"
    assert find_condition(status["conditions"], "SuccessCriteriaMet") is not None
    assert status["uncountedTerminatedPods"] == {}


async def test_backoff_limit_fails_the_job() -> None:
    api = FakeApi()
    controller = await start(api, job(backoffLimit=1))
    for _ in range(2):
        pod = next(p for p in live(api) if p["status"]["phase"] == "Pending")
        await finish(api, pod, "Failed")
        await drain(controller)
    status = stored(api)["status"]
    assert status["failed"] == 2
    failed = find_condition(status["conditions"], "Failed")
    assert failed is not None and failed["reason"] == "BackoffLimitExceeded"
    assert [p for p in live(api) if p["status"]["phase"] == "Pending"] == []


async def test_indexed_job_runs_every_index() -> None:
    api = FakeApi()
    controller = await start(api, job(completions=3, parallelism=3, completionMode="Indexed"))
    pods = sorted(live(api), key=lambda p: int(p["metadata"]["annotations"][COMPLETION_INDEX]))
    assert [p["metadata"]["annotations"][COMPLETION_INDEX] for p in pods] == ["0", "1", "2"]
    assert pods[1]["spec"]["hostname"] == "pi-1" and pods[1]["metadata"]["generateName"] == "pi-1-"
    env = pods[1]["spec"]["containers"][0]["env"][-1]
    assert env["name"] == "JOB_COMPLETION_INDEX"
    await finish(api, pods[1], "Succeeded")
    await drain(controller)
    assert stored(api)["status"]["completedIndexes"] == "1"
    await finish(api, pods[0], "Failed")
    await drain(controller)
    indexes = sorted(p["metadata"]["annotations"][COMPLETION_INDEX] for p in live(api)
                     if p["status"]["phase"] == "Pending")
    assert indexes == ["0", "2"]  # index 0 is retried


async def test_suspend_deletes_active_pods() -> None:
    api = FakeApi()
    controller = await start(api, job(parallelism=2, completions=4))
    assert len(live(api)) == 2
    current = stored(api)
    current["spec"]["suspend"] = True
    await api.update("/apis/batch/v1/namespaces/default/jobs/pi", current)
    await drain(controller)
    assert live(api) == []
    status = stored(api)["status"]
    suspended = find_condition(status["conditions"], "Suspended")
    assert suspended is not None and suspended["status"] == "True" and "startTime" not in status


async def test_orphaned_tracked_pod_loses_its_finalizer() -> None:
    api = FakeApi()
    controller = await start(api, job())
    await api.delete("/apis/batch/v1/namespaces/default/jobs/pi")
    pod, = api.objects("pods")
    await api.delete(f"/api/v1/namespaces/default/pods/{pod['metadata']['name']}")
    await drain(controller)
    assert api.objects("pods") == []
