"""Pod status from the kubelet's container records (pure; kubelet's ``generateAPIPodStatus``).

``ContainerRecord`` is what the kubelet knows about one container. ``pod_status`` turns the
records into ``status``: ``phase`` (kubelet's ``getPhase``), the conditions
PodReadyToStartContainers, Initialized, ContainersReady, Ready and PodScheduled (a condition keeps
its ``lastTransitionTime`` while its status does not change), ``containerStatuses`` and
``initContainerStatuses``, ``hostIP(s)``, ``podIP(s)`` and ``startTime``. Without probes a
container is ready while it runs; an init container when it completed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kapi.timestamps import now_rfc3339

Obj = dict[str, Any]

WAITING = "waiting"
RUNNING = "running"
TERMINATED = "terminated"




@dataclass
class ContainerRecord:
    """One container as the kubelet tracks it (no runtime handle here: pure data)."""

    name: str
    image: str
    init: bool = False
    sidecar: bool = False
    state: str = WAITING
    reason: str = "ContainerCreating"
    message: str = ""
    exit_code: int = 0
    started_at: str = ""
    finished_at: str = ""
    container_id: str = ""
    image_id: str = ""
    restart_count: int = 0
    last_terminated: Obj | None = None

    def terminated_dict(self) -> Obj:
        out: Obj = {"exitCode": self.exit_code, "reason": self.reason, "startedAt": self.started_at or None,
                    "finishedAt": self.finished_at or None}
        if self.message:
            out["message"] = self.message
        if self.container_id:
            out["containerID"] = self.container_id
        return out

    def state_dict(self) -> Obj:
        if self.state == RUNNING:
            return {"running": {"startedAt": self.started_at}}
        if self.state == TERMINATED:
            return {"terminated": self.terminated_dict()}
        waiting: Obj = {"reason": self.reason}
        if self.message:
            waiting["message"] = self.message
        return {"waiting": waiting}

    @property
    def succeeded(self) -> bool:
        return self.state == TERMINATED and self.exit_code == 0

    @property
    def ready(self) -> bool:
        if self.init and not self.sidecar:
            return self.succeeded
        return self.state == RUNNING

    def status(self) -> Obj:
        out: Obj = {"name": self.name, "image": self.image, "imageID": self.image_id, "ready": self.ready,
                    "restartCount": self.restart_count, "started": self.state == RUNNING,
                    "state": self.state_dict(),
                    "lastState": {"terminated": self.last_terminated} if self.last_terminated else {}}
        if self.container_id:
            out["containerID"] = self.container_id
        return out


def phase(restart_policy: str, init: Sequence[ContainerRecord], regular: Sequence[ContainerRecord]) -> str:
    """kubelet's ``getPhase``."""
    for record in init:
        if record.sidecar or record.succeeded:
            continue
        if record.state == TERMINATED and restart_policy == "Never":
            return "Failed"
        return "Pending"
    running = waiting = succeeded = failed = 0
    for record in regular:
        if record.state == RUNNING:
            running += 1
        elif record.state == TERMINATED:
            succeeded, failed = (succeeded + 1, failed) if record.exit_code == 0 else (succeeded, failed + 1)
        elif record.last_terminated is not None:  # waiting to restart: counts as stopped
            code = int(record.last_terminated.get("exitCode") or 0)
            succeeded, failed = (succeeded + 1, failed) if code == 0 else (succeeded, failed + 1)
        else:
            waiting += 1
    if waiting:
        return "Pending"
    if running:
        return "Running"
    if not regular:
        return "Pending"
    if restart_policy == "Always" or (restart_policy == "OnFailure" and failed):
        return "Running"
    return "Failed" if failed else "Succeeded"


def _condition(kind: str, ok: bool, reason: str = "", message: str = "") -> Obj:
    cond: Obj = {"type": kind, "status": "True" if ok else "False", "lastProbeTime": None}
    if not ok and reason:
        cond["reason"] = reason
    if not ok and message:
        cond["message"] = message
    return cond


def _names(records: Sequence[ContainerRecord]) -> str:
    return "[" + " ".join(r.name for r in records) + "]"


def conditions(pod_phase: str, sandbox_ready: bool, init: Sequence[ContainerRecord],
               regular: Sequence[ContainerRecord]) -> list[Obj]:
    """The five pod conditions, without transition times."""
    incomplete = [r for r in init if not r.sidecar and not r.succeeded]
    initialized = _condition("Initialized", not incomplete, "ContainersNotInitialized",
                             f"containers with incomplete status: {_names(incomplete)}")
    if pod_phase in ("Succeeded", "Failed"):
        initialized = _condition("Initialized", True)
        ready = _condition("ContainersReady", False, "PodCompleted")
    else:
        unready = [r for r in regular if not r.ready]
        ready = _condition("ContainersReady", not unready and bool(regular), "ContainersNotReady",
                           f"containers with unready status: {_names(unready)}")
    return [_condition("PodReadyToStartContainers", sandbox_ready), initialized,
            {**ready, "type": "Ready"}, ready, _condition("PodScheduled", True)]


def _with_transitions(new: list[Obj], old: Sequence[Mapping[str, Any]], now: str) -> list[Obj]:
    before = {c.get("type"): c for c in old}
    for cond in new:
        previous = before.get(cond["type"])
        same = previous is not None and previous.get("status") == cond["status"]
        cond["lastTransitionTime"] = previous.get("lastTransitionTime") if same and previous else now
    return new


def pod_status(pod: Mapping[str, Any], records: Sequence[ContainerRecord], *, pod_ip: str, host_ip: str,
               start_time: str, sandbox_ready: bool = True, now: str = "") -> Obj:
    """The ``status`` the kubelet reports for ``pod`` (see the module docstring)."""
    spec = pod.get("spec") or {}
    old = pod.get("status") or {}
    init = [r for r in records if r.init]
    regular = [r for r in records if not r.init]
    pod_phase = phase(str(spec.get("restartPolicy") or "Always"), init, regular)
    status: Obj = {
        "phase": pod_phase,
        "conditions": _with_transitions(conditions(pod_phase, sandbox_ready, init, regular),
                                        old.get("conditions") or [], now or now_rfc3339()),
        "hostIP": host_ip, "hostIPs": [{"ip": host_ip}] if host_ip else [],
        "startTime": start_time,
        "containerStatuses": [r.status() for r in regular],
    }
    if pod_ip:
        status["podIP"] = pod_ip
        status["podIPs"] = [{"ip": pod_ip}]
    if init:
        status["initContainerStatuses"] = [r.status() for r in init]
    if old.get("qosClass"):
        status["qosClass"] = old["qosClass"]
    return status


@dataclass
class Records:
    """The ordered records of one pod, built from its spec (init containers first)."""

    items: list[ContainerRecord] = field(default_factory=list)

    @classmethod
    def of(cls, pod: Mapping[str, Any]) -> Records:
        spec = pod.get("spec") or {}
        previous = {s.get("name"): s for s in [*((pod.get("status") or {}).get("containerStatuses") or []),
                                               *((pod.get("status") or {}).get("initContainerStatuses") or [])]}
        items = []
        for init, containers in ((True, spec.get("initContainers") or []), (False, spec.get("containers") or [])):
            for container in containers:
                record = ContainerRecord(name=str(container.get("name")), image=str(container.get("image") or ""),
                                         init=init, sidecar=init and container.get("restartPolicy") == "Always")
                before = previous.get(record.name) or {}
                record.restart_count = int(before.get("restartCount") or 0) + (1 if before.get("containerID") else 0)
                items.append(record)
        return cls(items)

    def get(self, name: str) -> ContainerRecord | None:
        return next((r for r in self.items if r.name == name), None)

    @property
    def init(self) -> list[ContainerRecord]:
        return [r for r in self.items if r.init]

    @property
    def regular(self) -> list[ContainerRecord]:
        return [r for r in self.items if not r.init]
