"""The scheduler's view of the cluster: nodes and the pods bound or assumed on them.

Fed by the node and pod informers; ``assume`` counts a pod on its chosen node the moment the
scheduler decides (before the binding round trip), so the next decision already sees it; the
informer's update with ``spec.nodeName`` later confirms it, and ``forget`` undoes it when the
binding fails. Pods that finished (Succeeded/Failed) or are gone free their resources.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from kapi.components.scheduler import podaffinity
from kapi.components.scheduler.resources import NodeInfo, PodInfo

Obj = dict[str, Any]
TERMINAL_PHASES = frozenset({"Succeeded", "Failed"})


def pod_key(pod: Obj) -> str:
    meta = pod.get("metadata") or {}
    return f"{meta.get('namespace', '')}/{meta.get('name', '')}"


class SchedulerCache:
    """Node infos by name, with pod placement bookkeeping."""

    def __init__(self) -> None:
        self.nodes: dict[str, NodeInfo] = {}
        self._placement: dict[str, str] = {}  # pod key -> node name
        self._anti_affine: set[str] = set()  # keys of placed pods with required anti-affinity
        self.assumed: set[str] = set()
        self.next_start = 0  # where the next filtering pass starts (see algorithm.find_node)

    # -- nodes -----------------------------------------------------------------------------------

    def set_node(self, node: Obj) -> NodeInfo:
        name = str((node.get("metadata") or {}).get("name") or "")
        info = self.nodes.get(name)
        if info is None:
            info = self.nodes[name] = NodeInfo(name)
        info.set_node(node)
        return info

    def remove_node(self, name: str) -> None:
        info = self.nodes.get(name)
        if info is None:
            return
        if info.pods:
            info.node = None  # keep the pods' accounting until they are deleted too
        else:
            del self.nodes[name]

    def ready_nodes(self) -> list[NodeInfo]:
        """Nodes that exist (have a Node object), in a stable order."""
        return [info for info in self.nodes.values() if info.node is not None]

    # -- pods ------------------------------------------------------------------------------------

    def _place(self, info: PodInfo, node_name: str) -> None:
        previous = self._placement.get(info.key)
        if previous is not None and previous != node_name:
            self._unplace(info.key)
        node = self.nodes.get(node_name)
        if node is None:
            node = self.nodes[node_name] = NodeInfo(node_name)
        node.add_pod(info)
        self._placement[info.key] = node_name
        if podaffinity.has_required_anti_affinity(info.pod):
            self._anti_affine.add(info.key)

    def _unplace(self, key: str) -> None:
        node_name = self._placement.pop(key, None)
        self._anti_affine.discard(key)
        self.assumed.discard(key)
        if node_name is None:
            return
        node = self.nodes.get(node_name)
        if node is not None:
            node.remove_pod(key)
            if node.node is None and not node.pods:
                del self.nodes[node_name]

    def update_pod(self, pod: Obj) -> None:
        """Account a pod seen by the informer: bound and running pods count, others do not."""
        key = pod_key(pod)
        node_name = str((pod.get("spec") or {}).get("nodeName") or "")
        phase = (pod.get("status") or {}).get("phase")
        if phase in TERMINAL_PHASES:
            self._unplace(key)
            return
        if not node_name:
            if key not in self.assumed:  # an assumed pod's binding may not have reached us yet
                self._unplace(key)
            return
        self.assumed.discard(key)
        self._place(PodInfo.of(pod), node_name)

    def remove_pod(self, key: str) -> None:
        self._unplace(key)

    def assume(self, info: PodInfo, node_name: str) -> None:
        """Count ``info`` on ``node_name`` before the binding is confirmed."""
        self._place(info, node_name)
        self.assumed.add(info.key)

    def forget(self, key: str) -> None:
        """Undo ``assume`` (the binding failed)."""
        if key in self.assumed:
            self._unplace(key)

    def node_of(self, key: str) -> str | None:
        return self._placement.get(key)

    def anti_affine_pods(self) -> Iterator[tuple[PodInfo, NodeInfo]]:
        """Placed pods with required anti-affinity, with their nodes."""
        for key in self._anti_affine:
            node = self.nodes.get(self._placement.get(key, ""))
            if node is not None and node.node is not None and key in node.pods:
                yield node.pods[key], node
