"""Resource arithmetic for scheduling: pod requests, node allocatable, and the per-node cache.

Quantities become integers once: cpu in millicores, everything else in units (bytes, pods,
devices). ``pod_requests`` follows ``resourcehelper.PodRequests``: the sum over containers (and
restartable init containers, i.e. sidecars), at least the largest ordinary init container, plus
``spec.overhead``. ``non_zero_requests`` is what scoring uses: a container with no cpu/memory
request counts as 100m / 200Mi, so best-effort pods spread instead of piling on one node.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from kapi.kinds.quantity import parse_quantity

Obj = dict[str, Any]
Resources = dict[str, int]

CPU = "cpu"
MEMORY = "memory"
PODS = "pods"
DEFAULT_MILLI_CPU = 100
DEFAULT_MEMORY = 200 * 1024 * 1024


def to_units(name: str, value: object) -> int:
    """One quantity as an integer (cpu in millicores, rounded up); 0 when unparsable."""
    try:
        quantity = parse_quantity(value)
    except ValueError:
        return 0
    return math.ceil(quantity * 1000) if name == CPU else math.ceil(quantity)


def parse_resources(values: Mapping[str, Any] | None) -> Resources:
    """A ResourceList (``{"cpu": "500m", "memory": "1Gi"}``) in integer units."""
    return {name: to_units(name, value) for name, value in (values or {}).items()}


def _add(total: Resources, more: Mapping[str, int]) -> None:
    for name, value in more.items():
        total[name] = total.get(name, 0) + value


def _max(total: Resources, other: Mapping[str, int]) -> None:
    for name, value in other.items():
        if value > total.get(name, 0):
            total[name] = value


def _container_requests(container: Mapping[str, Any]) -> Resources:
    return parse_resources((container.get("resources") or {}).get("requests"))


def pod_requests(pod: Mapping[str, Any]) -> Resources:
    """Everything the pod requests (without ``pods``: the scheduler counts pods itself)."""
    spec = pod.get("spec") or {}
    total: Resources = {}
    for container in spec.get("containers") or []:
        _add(total, _container_requests(container))
    sidecars: Resources = {}
    init_max: Resources = {}
    for container in spec.get("initContainers") or []:
        requests = _container_requests(container)
        if container.get("restartPolicy") == "Always":
            _add(sidecars, requests)
            _add(total, requests)
        else:
            running = dict(sidecars)
            _add(running, requests)
            _max(init_max, running)
    _max(total, init_max)
    _add(total, parse_resources(spec.get("overhead")))
    return total


def non_zero_requests(pod: Mapping[str, Any]) -> tuple[int, int]:
    """``(milli cpu, memory bytes)`` for scoring, with the defaults for containers that request none."""
    cpu = memory = 0
    for container in (pod.get("spec") or {}).get("containers") or []:
        requests = _container_requests(container)
        cpu += requests.get(CPU) or DEFAULT_MILLI_CPU
        memory += requests.get(MEMORY) or DEFAULT_MEMORY
    return cpu, memory


def node_allocatable(node: Mapping[str, Any]) -> Resources:
    """``status.allocatable``, or ``status.capacity`` when the node reports no allocatable."""
    status = node.get("status") or {}
    return parse_resources(status.get("allocatable") or status.get("capacity"))


@dataclass
class PodInfo:
    """A pod as the cache keeps it: the object and its precomputed requests."""

    pod: Obj
    requests: Resources
    non_zero: tuple[int, int]

    @classmethod
    def of(cls, pod: Obj) -> PodInfo:
        return cls(pod, pod_requests(pod), non_zero_requests(pod))

    @property
    def key(self) -> str:
        meta = self.pod.get("metadata") or {}
        return f"{meta.get('namespace', '')}/{meta.get('name', '')}"

    @property
    def labels(self) -> Mapping[str, str]:
        return (self.pod.get("metadata") or {}).get("labels") or {}

    @property
    def namespace(self) -> str:
        return str((self.pod.get("metadata") or {}).get("namespace") or "")


@dataclass
class NodeInfo:
    """One node and the pods bound (or assumed bound) to it, with their summed requests."""

    name: str
    node: Obj | None = None
    allocatable: Resources = field(default_factory=dict)
    requested: Resources = field(default_factory=dict)
    non_zero: list[int] = field(default_factory=lambda: [0, 0])
    pods: dict[str, PodInfo] = field(default_factory=dict)
    used_ports: set[tuple[str, str, int]] = field(default_factory=set)

    def set_node(self, node: Obj) -> None:
        self.node = node
        self.allocatable = node_allocatable(node)

    @property
    def labels(self) -> Mapping[str, str]:
        return ((self.node or {}).get("metadata") or {}).get("labels") or {}

    def add_pod(self, info: PodInfo) -> None:
        """Count ``info`` on this node (replacing an earlier version of the same pod)."""
        self.remove_pod(info.key)
        self.pods[info.key] = info
        _add(self.requested, info.requests)
        self.non_zero[0] += info.non_zero[0]
        self.non_zero[1] += info.non_zero[1]
        self.used_ports.update(host_ports(info.pod))

    def remove_pod(self, key: str) -> PodInfo | None:
        """Stop counting the pod ``namespace/name``; the removed info, or None."""
        info = self.pods.pop(key, None)
        if info is None:
            return None
        for name, value in info.requests.items():
            self.requested[name] = self.requested.get(name, 0) - value
        self.non_zero[0] -= info.non_zero[0]
        self.non_zero[1] -= info.non_zero[1]
        self.used_ports = {port for other in self.pods.values() for port in host_ports(other.pod)}
        return info


def host_ports(pod: Mapping[str, Any]) -> Iterable[tuple[str, str, int]]:
    """``(hostIP, protocol, hostPort)`` of every container port with a host port."""
    for container in (pod.get("spec") or {}).get("containers") or []:
        for port in container.get("ports") or []:
            if port.get("hostPort"):
                yield str(port.get("hostIP") or "0.0.0.0"), str(port.get("protocol") or "TCP"), int(port["hostPort"])
