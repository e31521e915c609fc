"""Filter plugins: can this pod run on this node? Each returns the reasons it cannot (empty: fits).

They run in kube-scheduler's order and a node's reasons are those of the first filter that
rejects it (the reasons are the strings kube-scheduler prints, so ``0/3 nodes are available:
2 Insufficient cpu, 1 node(s) had untolerated taint {k: v}.`` reads the same):

NodeUnschedulable, NodeName, TaintToleration, NodeAffinity (nodeSelector + required node
affinity), NodePorts, NodeResourcesFit, InterPodAffinity.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kapi.components.scheduler import podaffinity
from kapi.components.scheduler.matching import describe_taint, node_selector_matches, untolerated_taint
from kapi.components.scheduler.resources import PODS, NodeInfo, PodInfo, host_ports

Obj = dict[str, Any]

UNSCHEDULABLE_REASON = "node(s) were unschedulable"
NODE_NAME_REASON = "node(s) didn't match the requested node name"
NODE_AFFINITY_REASON = "node(s) didn't match Pod's node affinity/selector"
NODE_PORTS_REASON = "node(s) didn't have free ports for the requested pod ports"
TOO_MANY_PODS = "Too many pods"
NOT_READY_REASON = "node(s) had no node object"
UNSCHEDULABLE_TAINT = {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}
FILTER_EFFECTS = frozenset({"NoSchedule", "NoExecute"})


@dataclass
class Cycle:
    """What one scheduling attempt knows about its pod, computed once (PreFilter)."""

    pod: PodInfo
    node_name: str = ""
    node_selector: dict[str, str] = field(default_factory=dict)
    required_affinity: Obj | None = None
    preferred_affinity: list[Obj] = field(default_factory=list)
    tolerations: list[Obj] = field(default_factory=list)
    ports: list[tuple[str, str, int]] = field(default_factory=list)
    affinity: podaffinity.AffinityState | None = None
    shares: dict[str, tuple[float, float]] = field(default_factory=dict)  # scoring's cache, per node

    @classmethod
    def of(cls, pod: PodInfo, affinity: podaffinity.AffinityState | None = None) -> Cycle:
        spec = pod.pod.get("spec") or {}
        node_affinity = (spec.get("affinity") or {}).get("nodeAffinity") or {}
        return cls(pod=pod, node_name=str(spec.get("nodeName") or ""),
                   node_selector={str(k): str(v) for k, v in (spec.get("nodeSelector") or {}).items()},
                   required_affinity=node_affinity.get("requiredDuringSchedulingIgnoredDuringExecution"),
                   preferred_affinity=list(node_affinity.get("preferredDuringSchedulingIgnoredDuringExecution") or []),
                   tolerations=list(spec.get("tolerations") or []), ports=list(host_ports(pod.pod)),
                   affinity=affinity)


Filter = Callable[[Cycle, NodeInfo], tuple[str, ...]]


def node_unschedulable(cycle: Cycle, node: NodeInfo) -> tuple[str, ...]:
    """``spec.unschedulable`` nodes take only pods tolerating the unschedulable taint."""
    if not ((node.node or {}).get("spec") or {}).get("unschedulable"):
        return ()
    if untolerated_taint([UNSCHEDULABLE_TAINT], cycle.tolerations, FILTER_EFFECTS) is None:
        return ()
    return (UNSCHEDULABLE_REASON,)


def node_name(cycle: Cycle, node: NodeInfo) -> tuple[str, ...]:
    """A pod naming a node in ``spec.nodeName`` fits only there."""
    return (NODE_NAME_REASON,) if cycle.node_name and cycle.node_name != node.name else ()


def taint_toleration(cycle: Cycle, node: NodeInfo) -> tuple[str, ...]:
    """Every NoSchedule/NoExecute taint must be tolerated."""
    taints = ((node.node or {}).get("spec") or {}).get("taints") or []
    taint = untolerated_taint(taints, cycle.tolerations, FILTER_EFFECTS)
    return () if taint is None else (f"node(s) had untolerated taint {describe_taint(taint)}",)


def node_affinity(cycle: Cycle, node: NodeInfo) -> tuple[str, ...]:
    """``nodeSelector`` labels all present, and (if any) a required node affinity term matches."""
    labels = node.labels
    for key, value in cycle.node_selector.items():
        if labels.get(key) != value:
            return (NODE_AFFINITY_REASON,)
    if cycle.required_affinity is not None and not node_selector_matches(cycle.required_affinity, labels, node.name):
        return (NODE_AFFINITY_REASON,)
    return ()


def _port_conflict(wanted: tuple[str, str, int], used: tuple[str, str, int]) -> bool:
    ip, protocol, port = wanted
    other_ip, other_protocol, other_port = used
    if port != other_port or protocol != other_protocol:
        return False
    return ip == other_ip or "0.0.0.0" in (ip, other_ip)


def node_ports(cycle: Cycle, node: NodeInfo) -> tuple[str, ...]:
    """No host port of the pod is already taken on the node (0.0.0.0 overlaps every address)."""
    for wanted in cycle.ports:
        if any(_port_conflict(wanted, used) for used in node.used_ports):
            return (NODE_PORTS_REASON,)
    return ()


def node_resources_fit(cycle: Cycle, node: NodeInfo) -> tuple[str, ...]:
    """Requests fit into allocatable minus what the node's pods already request; one reason per
    short resource (``Insufficient cpu``), and ``Too many pods`` past the pod capacity."""
    reasons: list[str] = []
    if len(node.pods) + 1 > node.allocatable.get(PODS, 0):
        reasons.append(TOO_MANY_PODS)
    for name, wanted in cycle.pod.requests.items():
        if wanted <= 0 or name == PODS:
            continue
        if node.allocatable.get(name, 0) - node.requested.get(name, 0) < wanted:
            reasons.append(f"Insufficient {name}")
    return tuple(reasons)


def inter_pod_affinity(cycle: Cycle, node: NodeInfo) -> tuple[str, ...]:
    """Required pod affinity / anti-affinity, both ways (see ``podaffinity``)."""
    if cycle.affinity is None:
        return ()
    reason = podaffinity.fits(cycle.affinity, node)
    return (reason,) if reason else ()


FILTERS: tuple[tuple[str, Filter], ...] = (
    ("NodeUnschedulable", node_unschedulable),
    ("NodeName", node_name),
    ("TaintToleration", taint_toleration),
    ("NodeAffinity", node_affinity),
    ("NodePorts", node_ports),
    ("NodeResourcesFit", node_resources_fit),
    ("InterPodAffinity", inter_pod_affinity),
)


def run_filters(cycle: Cycle, node: NodeInfo) -> tuple[str, ...]:
    """The reasons of the first filter that rejects ``node``; empty when the pod fits."""
    if node.node is None:
        return (NOT_READY_REASON,)
    for _name, check in FILTERS:
        reasons = check(cycle, node)
        if reasons:
            return reasons
    return ()
