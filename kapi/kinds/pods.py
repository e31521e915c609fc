"""Pods: ``pkg/registry/core/pod/strategy.go`` and the pod printer of printers.go.

Defaults are the PodSpec ones (``kapi.kinds.podspec``) plus the pod-only ones (requests copied
from limits, ``enableServiceLinks``, the priority the Priority admission plugin sets). Create
resets status to ``Pending`` with the computed QoS class; an update may only change images,
``activeDeadlineSeconds`` (down), tolerations (additions) and a negative grace period to 1.
``bind_pod`` applies a ``Binding`` (the ``pods/binding`` subresource).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from datetime import datetime
from fractions import Fraction
from typing import Any

import orjson

from kapi.errors import APIError, Cause, conflict
from kapi.kinds import fielderrors as fe
from kapi.kinds import podspec
from kapi.kinds.access import as_dict, as_list, child_dict, dicts
from kapi.kinds.printing import AGE, NONE, human_age, parse_time, utcnow
from kapi.kinds.quantity import parse_quantity
from kapi.resources import ALL_VERBS, Column, ResourceType, Strategy
from kapi.timestamps import rfc3339

Obj = dict[str, Any]

UPDATE_FORBIDDEN = ("pod updates may not change fields other than `spec.containers[*].image`,"
                    "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions "
                    "to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was "
                    "previously negative)")
SCHEDULING_GATED = "SchedulingGated"
QOS_RESOURCES = ("cpu", "memory")


# ---------------------------------------------------------------------------------------------
# defaults and QoS


def _effective_requests(container: Obj) -> dict[str, Any]:
    """Requests with limits filling the gaps, as ``SetDefaults_Pod`` stores them."""
    resources = as_dict(container.get("resources"))
    return {**as_dict(resources.get("limits")), **as_dict(resources.get("requests"))}


def default_pod(pod: Obj) -> None:
    """All pod defaults, in place (``SetDefaults_Pod`` + ``SetDefaults_PodSpec`` + Priority admission)."""
    spec = child_dict(pod, "spec")
    for container in [*dicts(spec.get("containers")), *dicts(spec.get("initContainers"))]:
        resources = child_dict(container, "resources")
        if isinstance(resources.get("limits"), dict) and resources["limits"]:
            resources["requests"] = _effective_requests(container)
    if spec.get("enableServiceLinks") is None:
        spec["enableServiceLinks"] = True
    podspec.default_host_network_ports(spec)
    podspec.default_pod_spec(spec)
    if spec.get("priority") is None and not spec.get("priorityClassName"):
        spec["priority"] = 0
    if not spec.get("preemptionPolicy"):
        spec["preemptionPolicy"] = "PreemptLowerPriority"


def _sum_positive(total: dict[str, Fraction], values: Mapping[str, Any]) -> set[str]:
    found = set()
    for name in QOS_RESOURCES:
        if name not in values:
            continue
        try:
            quantity = parse_quantity(values[name])
        except ValueError:
            continue
        if quantity > 0:
            total[name] = total.get(name, Fraction(0)) + quantity
            found.add(name)
    return found


def qos_class(pod: Mapping[str, Any]) -> str:
    """``ComputePodQOS``: ``Guaranteed``, ``Burstable`` or ``BestEffort`` from cpu/memory."""
    spec = as_dict(pod.get("spec"))
    requests: dict[str, Fraction] = {}
    limits: dict[str, Fraction] = {}
    guaranteed = True
    for container in [*dicts(spec.get("containers")), *dicts(spec.get("initContainers"))]:
        _sum_positive(requests, _effective_requests(container))
        found = _sum_positive(limits, as_dict(as_dict(container.get("resources")).get("limits")))
        if found != set(QOS_RESOURCES):
            guaranteed = False
    if not requests and not limits:
        return "BestEffort"
    if guaranteed and all(limits.get(name) == value for name, value in requests.items()) \
            and len(requests) == len(limits):
        return "Guaranteed"
    return "Burstable"


# ---------------------------------------------------------------------------------------------
# update validation


def _normalized(value: Any) -> Any:
    """Drop nulls and empty lists/maps: Go's semantic equality treats them as unset."""
    if isinstance(value, dict):
        out = {k: _normalized(v) for k, v in value.items()}
        return {k: v for k, v in out.items() if v is not None and v != [] and v != {}}
    if isinstance(value, list):
        return [_normalized(v) for v in value]
    return value


def _spec_diff(old: Obj, new: Obj) -> str:
    lines = ["  core.PodSpec{"]
    for key in sorted(set(old) | set(new)):
        if old.get(key) != new.get(key):
            if key in old:
                lines.append(f"- \t{key}: {orjson.dumps(old[key]).decode()},")
            if key in new:
                lines.append(f"+ \t{key}: {orjson.dumps(new[key]).decode()},")
    lines.append("  }")
    return "\n".join(lines)


def _only_added_tolerations(new: list[Any], old: list[Any], path: str) -> list[Cause]:
    for toleration in dicts(old):
        base = {k: v for k, v in toleration.items() if k != "tolerationSeconds"}
        if not any(base == {k: v for k, v in t.items() if k != "tolerationSeconds"} for t in dicts(new)):
            return [fe.forbidden(path, "existing toleration can not be modified except its tolerationSeconds")]
    return []


def validate_pod_update(new: Obj, old: Obj) -> list[Cause]:
    """``ValidatePodUpdate``'s spec rules (the metadata ones are generic)."""
    new_spec, old_spec = as_dict(new.get("spec")), as_dict(old.get("spec"))
    errs: list[Cause] = []
    for field in ("containers", "initContainers"):
        new_list, old_list = dicts(new_spec.get(field)), dicts(old_spec.get(field))
        if len(new_list) != len(old_list):
            return [fe.forbidden(f"spec.{field}", "pod updates may not add or remove containers")]
        errs.extend(fe.required(f"spec.{field}[{i}].image") for i, c in enumerate(new_list) if not c.get("image"))
    new_deadline, old_deadline = new_spec.get("activeDeadlineSeconds"), old_spec.get("activeDeadlineSeconds")
    if new_deadline is not None:
        if not isinstance(new_deadline, int) or not 0 <= new_deadline <= podspec.MAX_INT32:
            return [*errs, fe.invalid("spec.activeDeadlineSeconds", new_deadline,
                                      f"must be between 0 and {podspec.MAX_INT32}, inclusive")]
        if isinstance(old_deadline, int) and old_deadline < new_deadline:
            return [*errs, fe.invalid("spec.activeDeadlineSeconds", new_deadline,
                                      "must be less than or equal to previous value")]
    elif old_deadline is not None:
        errs.append(fe.invalid("spec.activeDeadlineSeconds", None, "must not update from a positive integer to nil "
                                                                   "value"))
    munged = copy.deepcopy(new_spec)
    for field in ("containers", "initContainers"):
        for container, before in zip(dicts(munged.get(field)), dicts(old_spec.get(field)), strict=False):
            container["image"] = before.get("image")
    munged["activeDeadlineSeconds"] = old_deadline
    munged["tolerations"] = old_spec.get("tolerations")
    old_grace = old_spec.get("terminationGracePeriodSeconds")
    if isinstance(old_grace, int) and old_grace < 0 and munged.get("terminationGracePeriodSeconds") == 1:
        munged["terminationGracePeriodSeconds"] = old_grace
    old_gates = as_list(old_spec.get("schedulingGates"))
    if old_gates and all(g in old_gates for g in as_list(munged.get("schedulingGates"))):
        munged["schedulingGates"] = old_gates
    normalized_old, normalized_new = _normalized(old_spec), _normalized(munged)
    if normalized_old != normalized_new:
        errs.append(fe.forbidden("spec", f"{UPDATE_FORBIDDEN}\n{_spec_diff(normalized_old, normalized_new)}"))
    errs.extend(_only_added_tolerations(as_list(new_spec.get("tolerations")), as_list(old_spec.get("tolerations")),
                                        "spec.tolerations"))
    errs.extend(podspec.validate_tolerations(new_spec.get("tolerations"), "spec.tolerations"))
    return errs


# ---------------------------------------------------------------------------------------------
# binding


def bind_pod(pod: Obj, binding: Mapping[str, Any]) -> None:
    """Apply a ``Binding`` to ``pod`` in place (``assignPod``): set ``spec.nodeName``, copy the
    binding's annotations and mark ``PodScheduled``. Raises 409 Conflict if the pod is already
    bound or being deleted, 422 if the target is not a node name."""
    meta = as_dict(pod.get("metadata"))
    name = meta.get("name", "")
    target = as_dict(binding.get("target"))
    node = target.get("name") or ""
    if not node:
        raise APIError(422, "Invalid", f'Binding.core "{name}" is invalid: target.name: Required value',
                       kind="Binding", name=name, causes=(fe.required("target.name"),))
    if target.get("kind") not in (None, "", "Node"):
        cause = fe.not_supported("target.kind", target.get("kind"), ("Node", "<empty>"))
        raise APIError(422, "Invalid", f'Binding.core "{name}" is invalid: {cause.to_dict()["message"]}',
                       kind="Binding", name=name, causes=(cause,))
    if meta.get("deletionTimestamp"):
        raise conflict("", "pods", name, f"pod {name} is being deleted, cannot be assigned to a host")
    spec = child_dict(pod, "spec")
    if spec.get("nodeName"):
        raise conflict("", "pods", name, f'pod {name} is already assigned to node "{spec["nodeName"]}"')
    spec["nodeName"] = node
    annotations = as_dict(as_dict(binding.get("metadata")).get("annotations"))
    if annotations:
        child_dict(pod["metadata"], "annotations").update(annotations)
    status = child_dict(pod, "status")
    conditions = [c for c in dicts(status.get("conditions")) if c.get("type") != "PodScheduled"]
    conditions.append({"type": "PodScheduled", "status": "True", "lastProbeTime": None,
                       "lastTransitionTime": rfc3339(utcnow())})
    status["conditions"] = conditions


# ---------------------------------------------------------------------------------------------
# printing


def _later(current: str | None, candidate: str | None) -> str | None:
    if not candidate:
        return current
    if current is None:
        return candidate
    a, b = parse_time(current), parse_time(candidate)
    return candidate if a is not None and b is not None and b > a else current


def _terminated_reason(term: Mapping[str, Any], prefix: str) -> str:
    if term.get("reason"):
        return f"{prefix}{term['reason']}"
    if term.get("signal"):
        return f"{prefix}Signal:{term['signal']}"
    return f"{prefix}ExitCode:{term.get('exitCode', 0)}"


def _has_condition(status: Mapping[str, Any], kind: str) -> bool:
    return any(c.get("type") == kind and c.get("status") == "True" for c in dicts(status.get("conditions")))


def pod_status_cells(pod: Mapping[str, Any], now: datetime) -> tuple[str, str, str]:
    """The READY, STATUS and RESTARTS cells of ``printPod``."""
    spec, status = as_dict(pod.get("spec")), as_dict(pod.get("status"))
    init_specs = dicts(spec.get("initContainers"))
    sidecars = {c.get("name") for c in init_specs if c.get("restartPolicy") == "Always"}
    total = len(dicts(spec.get("containers"))) + len(sidecars)
    ready = restarts = sidecar_restarts = 0
    last_restart: str | None = None
    last_sidecar_restart: str | None = None
    phase = status.get("phase") or ""
    reason = status.get("reason") or phase
    for cond in dicts(status.get("conditions")):
        if cond.get("type") == "PodScheduled" and cond.get("reason") == SCHEDULING_GATED:
            reason = SCHEDULING_GATED
    initializing = False
    for i, cs in enumerate(dicts(status.get("initContainerStatuses"))):
        count = cs.get("restartCount") or 0
        restarts += count
        finished = as_dict(as_dict(cs.get("lastState")).get("terminated")).get("finishedAt")
        last_restart = _later(last_restart, finished)
        sidecar = cs.get("name") in sidecars
        if sidecar:
            sidecar_restarts += count
            last_sidecar_restart = _later(last_sidecar_restart, finished)
        state = as_dict(cs.get("state"))
        terminated, waiting = state.get("terminated"), state.get("waiting")
        if isinstance(terminated, dict) and (terminated.get("exitCode") or 0) == 0:
            continue
        if sidecar and cs.get("started"):
            ready += 1 if cs.get("ready") else 0
            continue
        if isinstance(terminated, dict):
            reason = _terminated_reason(terminated, "Init:")
        elif isinstance(waiting, dict) and waiting.get("reason") and waiting["reason"] != "PodInitializing":
            reason = f"Init:{waiting['reason']}"
        else:
            reason = f"Init:{i}/{len(init_specs)}"
        initializing = True
        break
    if not initializing or _has_condition(status, "Initialized"):
        restarts, last_restart = sidecar_restarts, last_sidecar_restart
        has_running = False
        for cs in reversed(dicts(status.get("containerStatuses"))):
            restarts += cs.get("restartCount") or 0
            last_restart = _later(last_restart,
                                  as_dict(as_dict(cs.get("lastState")).get("terminated")).get("finishedAt"))
            state = as_dict(cs.get("state"))
            waiting, terminated = as_dict(state.get("waiting")), state.get("terminated")
            if waiting.get("reason"):
                reason = waiting["reason"]
            elif isinstance(terminated, dict):
                reason = _terminated_reason(terminated, "")
            elif cs.get("ready") and isinstance(state.get("running"), dict):
                has_running = True
                ready += 1
        if reason == "Completed" and has_running:
            reason = "Running" if _has_condition(status, "Ready") else "NotReady"
    if as_dict(pod.get("metadata")).get("deletionTimestamp"):
        if status.get("reason") == "NodeLost":
            reason = "Unknown"
        elif phase not in ("Succeeded", "Failed"):
            reason = "Terminating"
    restart_cell = str(restarts)
    if restarts and last_restart:
        restart_cell = f"{restarts} ({human_age(last_restart, now)} ago)"
    return f"{ready}/{total}", reason, restart_cell


def _readiness_gates(spec: Mapping[str, Any], status: Mapping[str, Any]) -> str:
    gates = dicts(spec.get("readinessGates"))
    if not gates:
        return NONE
    conditions = {c.get("type"): c.get("status") for c in reversed(dicts(status.get("conditions")))}
    true = sum(1 for g in gates if conditions.get(g.get("conditionType")) == "True")
    return f"{true}/{len(gates)}"


def pod_ip(status: Mapping[str, Any]) -> str:
    """The first pod IP (``status.podIPs[0].ip``, or the legacy ``status.podIP``), "" if none."""
    ips = dicts(status.get("podIPs"))
    if ips and ips[0].get("ip"):
        return str(ips[0]["ip"])
    return str(status.get("podIP") or "")


# ---------------------------------------------------------------------------------------------
# strategy


class PodStrategy(Strategy):
    """Pods (``podStrategy``)."""

    has_status = True

    def prepare_for_create(self, obj: Obj) -> None:
        status: Obj = {"phase": "Pending", "qosClass": qos_class(obj)}
        if as_list(as_dict(obj.get("spec")).get("schedulingGates")):
            status["conditions"] = [{"type": "PodScheduled", "status": "False", "lastProbeTime": None,
                                     "lastTransitionTime": None, "reason": SCHEDULING_GATED,
                                     "message": "Scheduling is blocked due to non-empty scheduling gates"}]
        obj["status"] = status

    def default(self, obj: Obj) -> None:
        default_pod(obj)

    def validate(self, obj: Obj) -> list[Cause]:
        return podspec.validate_pod_spec(obj.get("spec"), "spec")

    def validate_update(self, obj: Obj, old: Obj) -> list[Cause]:
        return [*self.validate(obj), *validate_pod_update(obj, old)]

    def field_values(self, obj: Obj) -> dict[str, str]:
        spec, status = as_dict(obj.get("spec")), as_dict(obj.get("status"))
        return {
            "spec.nodeName": str(spec.get("nodeName") or ""),
            "spec.restartPolicy": str(spec.get("restartPolicy") or ""),
            "spec.schedulerName": str(spec.get("schedulerName") or ""),
            "spec.serviceAccountName": str(spec.get("serviceAccountName") or ""),
            "spec.hostNetwork": "true" if spec.get("hostNetwork") else "false",
            "status.phase": str(status.get("phase") or ""),
            "status.podIP": pod_ip(status),
            "status.nominatedNodeName": str(status.get("nominatedNodeName") or ""),
        }

    def columns(self) -> list[Column]:
        return list(POD_COLUMNS)

    def cells(self, obj: Obj) -> list[Any]:
        now = utcnow()
        spec, status = as_dict(obj.get("spec")), as_dict(obj.get("status"))
        ready, reason, restarts = pod_status_cells(obj, now)
        age = human_age(as_dict(obj.get("metadata")).get("creationTimestamp"), now)
        return [ready, reason, restarts, age, pod_ip(status) or NONE, spec.get("nodeName") or NONE,
                status.get("nominatedNodeName") or NONE, _readiness_gates(spec, status)]


POD_COLUMNS = (
    Column("Ready", description="The aggregate readiness state of this pod for accepting traffic."),
    Column("Status", description="The aggregate status of the containers in this pod."),
    Column("Restarts", description="The number of times the containers in this pod have been restarted and when "
                                   "the last container in this pod has restarted."),
    AGE,
    Column("IP", priority=1, description="podIP address allocated to the pod. Routable at least within the cluster. "
                                         "Empty if not yet allocated."),
    Column("Node", priority=1, description="NodeName indicates in which node this pod is scheduled."),
    Column("Nominated Node", priority=1, description="nominatedNodeName is set only when this pod preempts other "
                                                     "pods on the node."),
    Column("Readiness Gates", priority=1, description="If specified, all readiness gates will be evaluated for pod "
                                                      "readiness."),
)


def resources() -> list[ResourceType]:
    return [ResourceType("", "v1", "Pod", "pods", "pod", True, short_names=("po",), categories=("all",),
                         subresources=("binding", "log", "status"), verbs=ALL_VERBS, storage_resource="pods",
                         strategy=PodStrategy())]
