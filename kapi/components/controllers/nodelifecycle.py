"""The node lifecycle controller: nodes that stop reporting become Unknown, and their pods go.

Like ``pkg/controller/nodelifecycle`` with its NoExecute taint manager:

* **Health.** A node is healthy while its kubelet renews its Lease (``kube-node-lease/NODE``) or
  posts a new Ready heartbeat. The controller measures silence on its own clock, from the last
  change it observed (so clock skew does not matter); every ``node_monitor_period`` it checks all
  nodes. Silent for more than ``node_monitor_grace_period`` (``node_startup_grace_period`` for a
  node that never posted Ready), every node condition becomes ``Unknown`` (reason
  ``NodeStatusUnknown``, "Kubelet stopped posting node status.") and the pods on the node are
  marked not Ready.
* **Taints.** Ready=False gives ``node.kubernetes.io/not-ready``, Ready=Unknown
  ``node.kubernetes.io/unreachable``, each with effects ``NoExecute`` (``timeAdded``) and
  ``NoSchedule``; Ready=True removes them. Other taints are kept.
* **Eviction.** A pod on a node with ``NoExecute`` taints is deleted at once if some taint is not
  tolerated, never if the tolerations have no ``tolerationSeconds``, else after the smallest
  ``tolerationSeconds`` counted from the taint's ``timeAdded``. A pod without any toleration for
  the not-ready/unreachable taints gets ``default_toleration_seconds`` (300, the
  DefaultTolerationSeconds admission plugin's value). Evicted pods get a ``DisruptionTarget``
  condition and a ``TaintManagerEviction`` event; their controllers replace them.
"""

from __future__ import annotations

import datetime
import logging
from dataclasses import dataclass
from typing import Any

from kapi.client import ApiError
from kapi.components.controllers.framework import Controller
from kapi.components.controllers.gvr import LEASES, NODES, PODS
from kapi.components.controllers.objects import (
    conditions_of,
    copy,
    find_condition,
    is_deleting,
    is_pod_terminal,
    key_of,
    meta,
    name_of,
    parse_time,
    rfc3339,
    set_condition,
    spec_of,
    status_of,
)
from kapi.components.controllers.writes import put_status

log = logging.getLogger("kapi.controllers.nodelifecycle")

Obj = dict[str, Any]

NOT_READY = "node.kubernetes.io/not-ready"
UNREACHABLE = "node.kubernetes.io/unreachable"
MANAGED_TAINTS = frozenset({NOT_READY, UNREACHABLE})
LEASE_NAMESPACE = "kube-node-lease"
NODE_CONDITIONS = ("Ready", "MemoryPressure", "DiskPressure", "PIDPressure")
FOREVER = float("inf")


# ---------------------------------------------------------------------------------------------
# pure helpers


def tolerates(toleration: Obj, taint: Obj) -> bool:
    """``Toleration.ToleratesTaint``."""
    if toleration.get("effect") and toleration.get("effect") != taint.get("effect"):
        return False
    if toleration.get("key") and toleration.get("key") != taint.get("key"):
        return False
    operator = toleration.get("operator") or "Equal"
    if operator == "Exists":
        return True
    return operator == "Equal" and (toleration.get("value") or "") == (taint.get("value") or "")


def eviction_delay(pod: Obj, taints: list[Obj], default_seconds: float) -> float:
    """Seconds a pod may stay on a node with these NoExecute taints: 0 (evict now), a delay, or
    ``FOREVER``. A not-ready/unreachable taint the pod does not tolerate counts as tolerated for
    ``default_seconds``."""
    tolerations = [t for t in spec_of(pod).get("tolerations") or [] if isinstance(t, dict)]
    used: list[float | None] = []
    for taint in taints:
        match = next((t for t in tolerations if tolerates(t, taint)), None)
        if match is not None:
            seconds = match.get("tolerationSeconds")
            used.append(None if seconds is None else float(seconds))
        elif taint.get("key") in MANAGED_TAINTS:
            used.append(default_seconds)
        else:
            return 0.0
    bounded = [s for s in used if s is not None]
    if not bounded:
        return FOREVER if used else 0.0
    return max(0.0, min(bounded))


def ready_status(node: Obj) -> str | None:
    condition = find_condition(conditions_of(node), "Ready")
    return str(condition.get("status")) if condition is not None else None


def desired_taints(node: Obj, now: datetime.datetime) -> list[Obj]:
    """The node's taints with the not-ready/unreachable ones matching its Ready condition."""
    current = [t for t in spec_of(node).get("taints") or [] if isinstance(t, dict)]
    status = ready_status(node)
    key = {"False": NOT_READY, "Unknown": UNREACHABLE}.get(status or "")
    kept = [t for t in current if t.get("key") not in MANAGED_TAINTS or t.get("key") == key]
    if key is None:
        return kept
    for effect in ("NoExecute", "NoSchedule"):
        if not any(t.get("key") == key and t.get("effect") == effect for t in kept):
            taint: Obj = {"key": key, "effect": effect}
            if effect == "NoExecute":
                taint["timeAdded"] = rfc3339(now)
            kept.append(taint)
    return kept


def mark_unknown(node: Obj, now: datetime.datetime) -> list[Obj] | None:
    """The node's conditions all ``Unknown`` (None when they already are)."""
    stamp = rfc3339(now)
    conditions = [dict(c) for c in conditions_of(node)]
    changed = False
    for condition in conditions:
        if condition.get("status") != "Unknown":
            condition.update(status="Unknown", reason="NodeStatusUnknown",
                             message="Kubelet stopped posting node status.", lastTransitionTime=stamp)
            changed = True
    for kind in NODE_CONDITIONS:
        if find_condition(conditions, kind) is None:
            conditions.append({"type": kind, "status": "Unknown", "reason": "NodeStatusNeverUpdated",
                               "message": "Kubelet never posted node status.",
                               "lastHeartbeatTime": meta(node).get("creationTimestamp"),
                               "lastTransitionTime": stamp})
            changed = True
    return conditions if changed else None


@dataclass
class _Health:
    """What the controller last saw of a node's heartbeats, and when (its monotonic clock)."""

    lease_renew: str = ""
    heartbeat: str = ""
    observed: float = 0.0


class NodeLifecycleController(Controller):
    """``nodelifecycle``: see the module docstring."""

    name = "nodelifecycle"
    component = "node-controller"
    service_account = "node-controller"

    def setup(self) -> None:
        self.health: dict[str, _Health] = {}
        self.nodes = self.cache(NODES)
        self.leases = self.cache(LEASES, namespace=LEASE_NAMESPACE)
        self.pods = self.cache(PODS)
        self.pods.add_index("node", lambda p: [str(spec_of(p).get("nodeName") or "")])
        self.nodes.add_handler(self._node_seen, lambda old, new: self._node_seen(new), self._node_gone)
        self.leases.add_handler(self._lease_seen, lambda old, new: self._lease_seen(new))
        self.pods.add_handler(self._pod_seen, lambda old, new: self._pod_seen(new))

    def resync_period(self) -> float | None:
        return self.options.node_monitor_period

    def resync_keys(self) -> list[str]:
        return self.nodes.keys()

    # -- observations --------------------------------------------------------------------------

    def _record(self, name: str) -> _Health:
        record = self.health.get(name)
        if record is None:
            record = self.health[name] = _Health(observed=self.ctx.clock.monotonic())
        return record

    def _node_seen(self, node: Obj) -> None:
        record = self._record(name_of(node))
        condition = find_condition(conditions_of(node), "Ready") or {}
        heartbeat = str(condition.get("lastHeartbeatTime") or "")
        if heartbeat and heartbeat != record.heartbeat and condition.get("status") != "Unknown":
            record.heartbeat = heartbeat
            record.observed = self.ctx.clock.monotonic()
        self.enqueue(node)

    def _node_gone(self, node: Obj) -> None:
        self.health.pop(name_of(node), None)

    def _lease_seen(self, lease: Obj) -> None:
        record = self._record(name_of(lease))
        renewed = str(spec_of(lease).get("renewTime") or "")
        if renewed and renewed != record.lease_renew:
            record.lease_renew = renewed
            record.observed = self.ctx.clock.monotonic()

    def _pod_seen(self, pod: Obj) -> None:
        node = self.nodes.get(str(spec_of(pod).get("nodeName") or ""))
        if node is not None and any(t.get("effect") == "NoExecute" for t in spec_of(node).get("taints") or []):
            self.enqueue(node)

    # -- sync ----------------------------------------------------------------------------------

    async def sync(self, key: str) -> float | None:
        cached = self.nodes.get(key)
        if cached is None:
            self.health.pop(key, None)
            return None
        node = copy(cached)
        now = self.now()
        record = self._record(key)
        grace = self.options.node_monitor_grace_period if ready_status(node) is not None \
            else self.options.node_startup_grace_period
        if self.ctx.clock.monotonic() - record.observed > grace:
            conditions = mark_unknown(node, now)
            if conditions is not None:
                log.info("node %s: no heartbeat for %.0fs, marking it unknown", key, grace)
                node = await put_status(self.client, NODES, node, {**status_of(node), "conditions": conditions})
                self.recorder.record(node, "Normal", "NodeNotReady", f"Node {key} status is now: NodeNotReady")
        taints = desired_taints(node, now)
        if taints != (spec_of(node).get("taints") or []):
            updated = copy(node)
            spec = updated.setdefault("spec", {})
            if taints:
                spec["taints"] = taints
            else:
                spec.pop("taints", None)
            node = await self.client.update(NODES.path_of(updated), updated)
        if ready_status(node) not in ("True", None):
            await self._mark_pods_not_ready(key, now)
        return await self._evict(node, now)

    async def _mark_pods_not_ready(self, node_name: str, now: datetime.datetime) -> None:
        """``MarkPodsNotReady``: pods of an unhealthy node stop being Ready."""
        for pod in self.pods.by_index("node", node_name):
            condition = find_condition(conditions_of(pod), "Ready")
            if condition is None or condition.get("status") != "True" or is_pod_terminal(pod):
                continue
            conditions = [dict(c) for c in conditions_of(pod)]
            set_condition(conditions, {**condition, "status": "False", "lastTransitionTime": rfc3339(now),
                                       "reason": "NodeNotReady", "message": ""})
            try:
                await put_status(self.client, PODS, pod, {**status_of(pod), "conditions": conditions})
            except ApiError as exc:
                if not exc.not_found:
                    raise

    async def _evict(self, node: Obj, now: datetime.datetime) -> float | None:
        """Delete pods whose toleration ran out; seconds until the next one is due (or None)."""
        taints = [t for t in spec_of(node).get("taints") or [] if t.get("effect") == "NoExecute"]
        if not taints:
            return None
        added = min((parse_time(str(t.get("timeAdded") or "")) or now for t in taints), default=now)
        next_due: float | None = None
        for pod in self.pods.by_index("node", name_of(node)):
            if is_pod_terminal(pod) or is_deleting(pod):
                continue
            delay = eviction_delay(pod, taints, self.options.default_toleration_seconds)
            if delay == FOREVER:
                continue
            left = (added + datetime.timedelta(seconds=delay) - now).total_seconds()
            if left > 0:
                next_due = left if next_due is None else min(next_due, left)
                continue
            await self._evict_pod(pod, now)
        return next_due + 0.1 if next_due is not None else None

    async def _evict_pod(self, pod: Obj, now: datetime.datetime) -> None:
        conditions = [dict(c) for c in conditions_of(pod)]
        set_condition(conditions, {"type": "DisruptionTarget", "status": "True", "lastTransitionTime": rfc3339(now),
                                   "reason": "DeletionByTaintManager",
                                   "message": "Taint manager: deleting due to NoExecute taint"})
        self.recorder.record(pod, "Normal", "TaintManagerEviction", f"Marking for deletion Pod {key_of(pod)}")
        try:
            await put_status(self.client, PODS, pod, {**status_of(pod), "conditions": conditions})
            await self.client.delete(PODS.path_of(pod))
        except ApiError as exc:
            if not exc.not_found:
                raise
