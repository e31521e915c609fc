"""Kubelet pure parts: pod phase and conditions, env resolution, log tails, node objects."""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path
from typing import Any

import pytest

from kapi.components.kubelet import logs
from kapi.components.kubelet.env import ConfigError, expand, expanded_container, resolve_env
from kapi.components.kubelet.node import NodeConfig, node_object, node_status
from kapi.components.kubelet.podstatus import RUNNING, TERMINATED, WAITING, ContainerRecord, Records, phase, pod_status

Obj = dict[str, Any]


def rec(state: str, code: int = 0, *, init: bool = False, last: int | None = None) -> ContainerRecord:
    record = ContainerRecord(name="c", image="i", init=init, state=state, exit_code=code)
    if last is not None:
        record.last_terminated = {"exitCode": last}
    return record


PHASES = [
    ("nothing started", "Always", [], [rec(WAITING)], "Pending"),
    ("running", "Always", [], [rec(RUNNING)], "Running"),
    ("one running one waiting", "Always", [], [rec(RUNNING), rec(WAITING)], "Pending"),
    ("init running", "Always", [rec(RUNNING, init=True)], [rec(WAITING)], "Pending"),
    ("init failed never", "Never", [rec(TERMINATED, 1, init=True)], [rec(WAITING)], "Failed"),
    ("init failed onfailure", "OnFailure", [rec(TERMINATED, 1, init=True)], [rec(WAITING)], "Pending"),
    ("succeeded", "Never", [rec(TERMINATED, 0, init=True)], [rec(TERMINATED, 0)], "Succeeded"),
    ("failed", "Never", [], [rec(TERMINATED, 0), rec(TERMINATED, 2)], "Failed"),
    ("onfailure restarting", "OnFailure", [], [rec(TERMINATED, 2)], "Running"),
    ("onfailure done", "OnFailure", [], [rec(TERMINATED, 0)], "Succeeded"),
    ("always restarting", "Always", [], [rec(TERMINATED, 0)], "Running"),
    ("crash loop counts as stopped", "Always", [], [rec(WAITING, last=1)], "Running"),
    ("crash loop never", "Never", [], [rec(WAITING, last=1)], "Failed"),
]


@pytest.mark.parametrize(("policy", "init", "regular", "expected"), [p[1:] for p in PHASES],
                         ids=[p[0] for p in PHASES])
def test_phase(policy: str, init: list[ContainerRecord], regular: list[ContainerRecord], expected: str) -> None:
    assert phase(policy, init, regular) == expected


def pod_with(**spec: Any) -> Obj:
    return {"metadata": {"name": "p", "namespace": "ns", "uid": "u1", "labels": {"app": "web"}},
            "spec": {"nodeName": "n1", "containers": [{"name": "app", "image": "busybox"}], **spec},
            "status": {"qosClass": "BestEffort", "conditions": [
                {"type": "Ready", "status": "False", "lastTransitionTime": "2020-01-01T00:00:00Z"},
                {"type": "PodScheduled", "status": "True", "lastTransitionTime": "2020-01-01T00:00:00Z"}]}}


def test_pod_status_running_and_ready() -> None:
    pod = pod_with(initContainers=[{"name": "setup", "image": "busybox"}])
    records = Records.of(pod)
    setup, app = records.init[0], records.regular[0]
    status = pod_status(pod, records.items, pod_ip="10.0.0.1", host_ip="127.0.0.1", start_time="T", now="NOW")
    assert status["phase"] == "Pending"
    conditions = {c["type"]: c for c in status["conditions"]}
    assert conditions["Initialized"]["message"] == "containers with incomplete status: [setup]"
    assert conditions["PodScheduled"]["lastTransitionTime"] == "2020-01-01T00:00:00Z"
    assert conditions["Ready"]["lastTransitionTime"] == "2020-01-01T00:00:00Z"  # still False
    setup.state, setup.exit_code, setup.reason = TERMINATED, 0, "Completed"
    app.state, app.started_at, app.container_id, app.image_id = RUNNING, "S", "fake://1", "busybox@sha256:x"
    status = pod_status(pod, records.items, pod_ip="10.0.0.1", host_ip="127.0.0.1", start_time="T", now="NOW")
    conditions = {c["type"]: c for c in status["conditions"]}
    assert status["phase"] == "Running"
    assert {k: c["status"] for k, c in conditions.items()} == {
        "PodReadyToStartContainers": "True", "Initialized": "True", "Ready": "True", "ContainersReady": "True",
        "PodScheduled": "True"}
    assert conditions["Ready"]["lastTransitionTime"] == "NOW"
    assert status["podIP"] == "10.0.0.1" and status["podIPs"] == [{"ip": "10.0.0.1"}]
    assert status["hostIP"] == "127.0.0.1" and status["startTime"] == "T" and status["qosClass"] == "BestEffort"
    [app_status] = status["containerStatuses"]
    assert app_status == {"name": "app", "image": "busybox", "imageID": "busybox@sha256:x", "ready": True,
                          "restartCount": 0, "started": True, "state": {"running": {"startedAt": "S"}},
                          "lastState": {}, "containerID": "fake://1"}
    assert status["initContainerStatuses"][0]["state"]["terminated"]["reason"] == "Completed"


def test_completed_pod_is_not_ready() -> None:
    pod = pod_with(restartPolicy="Never")
    records = Records.of(pod)
    records.regular[0].state, records.regular[0].exit_code = TERMINATED, 0
    status = pod_status(pod, records.items, pod_ip="", host_ip="h", start_time="T", now="NOW")
    conditions = {c["type"]: c for c in status["conditions"]}
    assert status["phase"] == "Succeeded" and "podIP" not in status
    assert conditions["Ready"]["reason"] == "PodCompleted" and conditions["Ready"]["status"] == "False"


def test_records_carry_restart_counts() -> None:
    pod = pod_with()
    pod["status"]["containerStatuses"] = [{"name": "app", "restartCount": 2, "containerID": "process://9"}]
    assert Records.of(pod).regular[0].restart_count == 3


@pytest.mark.parametrize(("text", "expected"), [
    ("$(A)-$(B)", "1-$(B)"), ("$$(A)", "$(A)"), ("plain", "plain"), ("$(A)$(A)", "11"),
])
def test_expand(text: str, expected: str) -> None:
    assert expand(text, {"A": "1"}) == expected


async def test_resolve_env() -> None:
    objects = {("configmaps", "cfg"): {"data": {"color": "blue", "size": "L"}},
               ("secrets", "sec"): {"data": {"token": base64.b64encode(b"s3cret").decode()}}}

    async def fetch(kind: str, name: str) -> Obj | None:
        return objects.get((kind, name))

    container = {"name": "c", "envFrom": [{"configMapRef": {"name": "cfg"}, "prefix": "CFG_"}],
                 "env": [{"name": "A", "value": "x"}, {"name": "B", "value": "$(A)-y"},
                         {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                         {"name": "APP", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
                         {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                         {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "sec", "key": "token"}}},
                         {"name": "OPT", "valueFrom": {"configMapKeyRef": {"name": "none", "key": "k",
                                                                           "optional": True}}},
                         {"name": "MEM", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory",
                                                                            "divisor": "1Mi"}}}],
                 "resources": {"limits": {"memory": "64Mi"}},
                 "command": ["echo", "$(B)"], "args": ["$(POD)", "$(UNKNOWN)"]}
    env = await resolve_env(pod_with(), container, pod_ip="10.1.1.1", host_ip="h", fetch=fetch)
    assert env == {"CFG_color": "blue", "CFG_size": "L", "A": "x", "B": "x-y", "POD": "p", "APP": "web",
                   "IP": "10.1.1.1", "TOKEN": "s3cret", "MEM": "64", "HOSTNAME": "p"}
    assert expanded_container(container, env)["command"] == ["echo", "x-y"]
    assert expanded_container(container, env)["args"] == ["p", "$(UNKNOWN)"]
    missing = {"name": "c", "env": [{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "none", "key": "k"}}}]}
    with pytest.raises(ConfigError, match='configmap "none" not found'):
        await resolve_env(pod_with(), missing, pod_ip="", host_ip="", fetch=fetch)


@pytest.mark.parametrize(("content", "tail", "expected"), [
    (b"a\nb\nc\n", 2, b"b\nc\n"), (b"a\nb\nc", 2, b"b\nc"), (b"a\nb\n", 5, b"a\nb\n"), (b"a\nb\n", 0, b""),
    (b"a\nb\n", None, b"a\nb\n"), (b"", 3, b""),
])
def test_read_log_tail(tmp_path: Path, content: bytes, tail: int | None, expected: bytes) -> None:
    path = tmp_path / "0.log"
    path.write_bytes(content)
    assert logs.read_log(str(path), tail_lines=tail) == expected


def test_read_log_tail_across_chunks(tmp_path: Path) -> None:
    path = tmp_path / "0.log"
    lines = [f"line {i}\n".encode() for i in range(30000)]
    path.write_bytes(b"".join(lines))
    assert logs.read_log(str(path), tail_lines=3) == b"".join(lines[-3:])
    assert logs.read_log(str(path), limit_bytes=7) == b"line 0\n"


async def test_follow_log(tmp_path: Path) -> None:
    path = tmp_path / "0.log"
    path.write_bytes(b"one\n")
    alive = {"v": True}
    chunks: list[bytes] = []

    async def reader() -> None:
        async for chunk in logs.follow_log(str(path), lambda: alive["v"], poll=0.01):
            chunks.append(chunk)

    task = asyncio.create_task(reader())
    await asyncio.sleep(0.05)
    with path.open("ab") as fh:
        fh.write(b"two\n")
    await asyncio.sleep(0.05)
    alive["v"] = False
    await asyncio.wait_for(task, 1)
    assert b"".join(chunks) == b"one\ntwo\n"


def test_node_object_and_status() -> None:
    config = NodeConfig(name="n1", port=10555, labels={"role": "x"},
                        taints=({"key": "k", "effect": "NoSchedule"},))
    node = node_object(config)
    labels = node["metadata"]["labels"]
    assert labels["kubernetes.io/hostname"] == "n1" and labels["kubernetes.io/os"] == "linux" and labels["role"] == "x"
    assert node["spec"]["taints"] == [{"key": "k", "effect": "NoSchedule"}]
    status = node["status"]
    assert status["daemonEndpoints"]["kubeletEndpoint"]["Port"] == 10555
    assert status["addresses"][0] == {"type": "InternalIP", "address": "127.0.0.1"}
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "True" and ready["reason"] == "KubeletReady"
    later = node_status(config, previous=status, now="2099-01-01T00:00:00Z")
    ready_later = next(c for c in later["conditions"] if c["type"] == "Ready")
    assert ready_later["lastTransitionTime"] == ready["lastTransitionTime"]
    assert ready_later["lastHeartbeatTime"] == "2099-01-01T00:00:00Z"
