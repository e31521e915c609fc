"""The kubelet's Node: registration, the node Lease heartbeat and the status report.

* ``node_object`` builds the Node a kubelet registers: labels ``kubernetes.io/hostname``,
  ``kubernetes.io/os``, ``kubernetes.io/arch`` (and the beta ones) plus ``--node-labels``,
  ``--register-with-taints``, capacity = allocatable (cpu, memory, pods, ephemeral-storage),
  addresses (InternalIP, Hostname), ``daemonEndpoints.kubeletEndpoint.Port`` and ``nodeInfo``.
* ``NodeAgent.register()`` creates the Node, or (it exists, e.g. after a restart) patches its
  labels and status.
* ``NodeAgent.heartbeat()`` renews ``kube-node-lease/NODE`` every ``lease_interval`` (10 s; the
  Lease lasts 40 s) and reports the status (conditions with ``lastHeartbeatTime``) when it
  changed or every ``report_interval`` (5 minutes, kubelet's nodeStatusReportFrequency).
"""

from __future__ import annotations

import asyncio
import logging
import platform
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kapi.client import ApiError, Client, path_for
from kapi.leaderelection import micro_time
from kapi.timestamps import now_rfc3339

log = logging.getLogger("kapi.kubelet")

Obj = dict[str, Any]
KUBELET_VERSION = "v1.37.0-kapi"
LEASE_DURATION = 40
CONDITIONS = (
    ("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
    ("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
    ("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
    ("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
)


def machine_arch() -> str:
    """GOARCH-style architecture name of this machine."""
    machine = platform.machine().lower()
    return {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm"}.get(machine, machine or "amd64")


@dataclass(frozen=True)
class NodeConfig:
    """Everything a Node is registered with."""

    name: str
    address: str = "127.0.0.1"
    port: int = 10250
    capacity: Mapping[str, str] = field(default_factory=lambda: {"cpu": "4", "memory": "8Gi", "pods": "110",
                                                                 "ephemeral-storage": "100Gi"})
    labels: Mapping[str, str] = field(default_factory=dict)
    taints: Sequence[Obj] = ()
    runtime_version: str = "fake://0.1.0"
    pod_cidr: str = ""


def node_labels(config: NodeConfig) -> dict[str, str]:
    arch = machine_arch()
    return {"beta.kubernetes.io/arch": arch, "beta.kubernetes.io/os": "linux", "kubernetes.io/arch": arch,
            "kubernetes.io/hostname": config.name, "kubernetes.io/os": "linux", **config.labels}


def node_status(config: NodeConfig, *, previous: Mapping[str, Any] | None = None, now: str = "") -> Obj:
    """The Node status (conditions keep their transition time while unchanged)."""
    stamp = now or now_rfc3339()
    before = {c.get("type"): c for c in (previous or {}).get("conditions") or []}
    conditions = []
    for kind, status, reason, message in CONDITIONS:
        old = before.get(kind) or {}
        since = old.get("lastTransitionTime") if old.get("status") == status else stamp
        conditions.append({"type": kind, "status": status, "reason": reason, "message": message,
                           "lastHeartbeatTime": stamp, "lastTransitionTime": since or stamp})
    return {
        "capacity": dict(config.capacity), "allocatable": dict(config.capacity), "conditions": conditions,
        "addresses": [{"type": "InternalIP", "address": config.address}, {"type": "Hostname", "address": config.name}],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": config.port}},
        "nodeInfo": {"machineID": "", "systemUUID": "", "bootID": "", "kernelVersion": platform.release(),
                     "osImage": "kapi", "containerRuntimeVersion": config.runtime_version,
                     "kubeletVersion": KUBELET_VERSION, "kubeProxyVersion": "", "operatingSystem": "linux",
                     "architecture": machine_arch()},
    }


def node_object(config: NodeConfig) -> Obj:
    """The Node to create."""
    spec: Obj = {}
    if config.taints:
        spec["taints"] = [dict(t) for t in config.taints]
    if config.pod_cidr:
        spec["podCIDR"] = config.pod_cidr
        spec["podCIDRs"] = [config.pod_cidr]
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": config.name, "labels": node_labels(config)},
            "spec": spec, "status": node_status(config)}


def _comparable(status: Mapping[str, Any]) -> Any:
    """The status without heartbeat times (what 'changed' means)."""
    conditions = [{k: v for k, v in c.items() if k != "lastHeartbeatTime"} for c in status.get("conditions") or []]
    return {**status, "conditions": conditions}


class NodeAgent:
    """Registers and heartbeats one Node through ``client``."""

    def __init__(self, client: Client, config: NodeConfig, *, lease_interval: float = 10.0,
                 report_interval: float = 300.0) -> None:
        self.client = client
        self.config = config
        self.lease_interval = lease_interval
        self.report_interval = report_interval
        self.node: Obj = {}
        self._lease: Obj | None = None
        self._reported_at = 0.0
        self._reported: Any = None

    @property
    def path(self) -> str:
        return path_for("", "v1", "nodes", "", self.config.name)

    async def register(self) -> Obj:
        """Create the Node (or update the existing one) and report its status."""
        try:
            self.node = await self.client.create(path_for("", "v1", "nodes"), node_object(self.config))
        except ApiError as exc:
            if exc.code != 409:
                raise
            self.node = await self.client.patch(self.path, {"metadata": {"labels": node_labels(self.config)}})
        await self.report_status(force=True)
        return self.node

    async def report_status(self, *, force: bool = False) -> None:
        """Patch the Node status when it changed, when ``force``, or every ``report_interval``."""
        loop = asyncio.get_running_loop()
        status = node_status(self.config, previous=self.node.get("status"))
        due = loop.time() - self._reported_at >= self.report_interval
        if not force and not due and _comparable(status) == self._reported:
            return
        self.node = await self.client.patch(f"{self.path}/status", {"status": status})
        self._reported, self._reported_at = _comparable(status), loop.time()

    async def renew_lease(self) -> None:
        """Create or renew ``kube-node-lease/NODE`` (owned by the Node, so it goes with it)."""
        path = path_for("coordination.k8s.io", "v1", "leases", "kube-node-lease", self.config.name)
        spec = {"holderIdentity": self.config.name, "leaseDurationSeconds": LEASE_DURATION, "renewTime": micro_time()}
        if self._lease is not None:
            try:
                self._lease = await self.client.update(path, {**self._lease, "spec": {**self._lease["spec"], **spec}})
                return
            except ApiError as exc:
                if exc.code not in (404, 409):
                    raise
                self._lease = None
        try:
            current = await self.client.get(path)
            self._lease = await self.client.update(path, {**current, "spec": {**(current.get("spec") or {}), **spec}})
        except ApiError as exc:
            if not exc.not_found:
                raise
            owner = {"apiVersion": "v1", "kind": "Node", "name": self.config.name,
                     "uid": (self.node.get("metadata") or {}).get("uid", "")}
            lease = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                     "metadata": {"name": self.config.name, "namespace": "kube-node-lease",
                                  "ownerReferences": [owner] if owner["uid"] else []}, "spec": spec}
            self._lease = await self.client.create(path_for("coordination.k8s.io", "v1", "leases", "kube-node-lease"),
                                                   lease)

    async def heartbeat(self) -> None:
        """Renew the Lease and report the status forever (errors are logged and retried)."""
        while True:
            try:
                await self.renew_lease()
                await self.report_status()
            except ApiError as exc:
                log.warning("node %s heartbeat failed: %s", self.config.name, exc)
            await asyncio.sleep(self.lease_interval)
