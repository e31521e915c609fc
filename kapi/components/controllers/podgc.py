"""The pod garbage collector: pods bound to nodes that no longer exist are force-deleted.

Like ``pkg/controller/podgc``'s orphan collection: every ``pod_gc_period`` seconds, a pod whose
``spec.nodeName`` names no Node is suspected; still orphaned after ``pod_gc_quarantine`` seconds
and confirmed by reading the Node (404), it is marked ``Failed`` with a ``DisruptionTarget``
condition (reason ``DeletionByPodGC``) and deleted with grace period 0 (no kubelet will ever
confirm its stop). Unscheduled pods that are terminating are force-deleted too.
"""

from __future__ import annotations

import logging
from typing import Any

from kapi.client import ApiError
from kapi.components.controllers.framework import Controller
from kapi.components.controllers.gvr import NODES, PODS
from kapi.components.controllers.objects import (
    conditions_of,
    is_deleting,
    is_pod_terminal,
    key_of,
    rfc3339,
    set_condition,
    spec_of,
)
from kapi.components.controllers.writes import delete_if_present

log = logging.getLogger("kapi.controllers.podgc")

Obj = dict[str, Any]

SWEEP = "sweep"


class PodGCController(Controller):
    """``podgc``: see the module docstring."""

    name = "podgc"
    component = "pod-garbage-collector"
    service_account = "pod-garbage-collector"

    def setup(self) -> None:
        self.suspects: dict[str, float] = {}
        self.nodes = self.cache(NODES)
        self.pods = self.cache(PODS)

    def resync_period(self) -> float | None:
        return self.options.pod_gc_period

    def resync_keys(self) -> list[str]:
        return [SWEEP]

    async def on_start(self) -> None:
        self.enqueue(SWEEP)

    async def sync(self, key: str) -> float | None:
        now = self.ctx.clock.monotonic()
        seen: set[str] = set()
        for pod in self.pods.items():
            node = str(spec_of(pod).get("nodeName") or "")
            pod_key = key_of(pod)
            if not node:
                if is_deleting(pod):
                    await self._force_delete(pod)
                continue
            if self.nodes.get(node) is not None:
                continue
            seen.add(pod_key)
            first = self.suspects.setdefault(pod_key, now)
            if now - first >= self.options.pod_gc_quarantine and await self._node_gone(node):
                log.info("deleting pod %s: node %s is gone", pod_key, node)
                await self._collect(pod)
        self.suspects = {k: v for k, v in self.suspects.items() if k in seen}
        return None

    async def _node_gone(self, node: str) -> bool:
        try:
            await self.client.get(NODES.path(name=node))
        except ApiError as exc:
            if exc.not_found:
                return True
            raise
        return False

    async def _collect(self, pod: Obj) -> None:
        if not is_pod_terminal(pod):
            conditions = [dict(c) for c in conditions_of(pod)]
            set_condition(conditions, {"type": "DisruptionTarget", "status": "True",
                                       "lastTransitionTime": rfc3339(self.now()), "reason": "DeletionByPodGC",
                                       "message": "PodGC: node no longer exists"})
            try:  # a merge patch: the pod-garbage-collector role may patch, not update, pods/status
                await self.client.patch(PODS.path_of(pod, "status"), {"status": {"phase": "Failed",
                                                                                 "conditions": conditions}})
            except ApiError as exc:
                if not exc.not_found:
                    raise
        await self._force_delete(pod)

    async def _force_delete(self, pod: Obj) -> None:
        await delete_if_present(self.client, PODS.path_of(pod), options={"gracePeriodSeconds": 0})
