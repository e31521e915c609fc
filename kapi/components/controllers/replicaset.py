"""The ReplicaSet controller: keep ``spec.replicas`` pods running for every ReplicaSet.

What ``pkg/controller/replicaset`` does:

* The pods of a ReplicaSet are the active pods of its namespace it controls (controller owner
  reference) and still selects; orphans it selects are adopted, controlled pods it no longer
  selects are released (``claims``).
* Too few: pods are created from ``spec.template`` (``generateName: RS-NAME-``, a controller
  owner reference with ``blockOwnerDeletion``), at most 500 per sync, in slow-start batches of
  1, 2, 4, ... that stop at the first failure. Too many: the pods least worth keeping are deleted
  (unscheduled before scheduled, pending before running, not ready before ready, recently ready
  before long ready, more restarts first, newer before older).
* Expectations stop it from acting twice before its informer saw its own creations/deletions.
* Status: ``replicas``, ``fullyLabeledReplicas``, ``readyReplicas``, ``availableReplicas``
  (ready for ``minReadySeconds``), ``observedGeneration`` and a ``ReplicaFailure`` condition while
  creating or deleting fails. Events: SuccessfulCreate, FailedCreate, SuccessfulDelete, FailedDelete.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from kapi.client import ApiError
from kapi.components.controllers.claims import Claimer
from kapi.components.controllers.expectations import Expectations
from kapi.components.controllers.framework import Controller
from kapi.components.controllers.gvr import PODS, REPLICA_SETS
from kapi.components.controllers.objects import (
    available_after,
    conditions_of,
    controller_of,
    find_condition,
    is_deleting,
    is_pod_active,
    is_pod_ready,
    key_of,
    labels_of,
    meta,
    name_of,
    namespace_of,
    owner_key,
    owner_reference,
    parse_time,
    pod_from_template,
    pod_phase,
    remove_condition,
    rfc3339,
    selector_matches,
    set_condition,
    spec_of,
    status_of,
)
from kapi.components.controllers.writes import is_namespace_terminating, put_status

log = logging.getLogger("kapi.controllers.replicaset")

Obj = dict[str, Any]

BURST_REPLICAS = 500
PHASE_ORDER = {"Pending": 0, "Unknown": 1, "Running": 2}


def _time(value: Any) -> float:
    parsed = parse_time(str(value or ""))
    return parsed.timestamp() if parsed is not None else 0.0


def deletion_rank(pod: Obj) -> tuple[int, int, int, float, int, float]:
    """``controller.ActivePods`` order: pods sorting first are deleted first."""
    ready = is_pod_ready(pod)
    ready_since = 0.0
    if ready:
        condition = find_condition(conditions_of(pod), "Ready") or {}
        ready_since = _time(condition.get("lastTransitionTime"))
    restarts = sum(int(c.get("restartCount") or 0) for c in status_of(pod).get("containerStatuses") or []
                   if isinstance(c, dict))
    return (1 if spec_of(pod).get("nodeName") else 0, PHASE_ORDER.get(pod_phase(pod), 0), 1 if ready else 0,
            -ready_since, -restarts, -_time(meta(pod).get("creationTimestamp")))


def pods_to_delete(pods: list[Obj], count: int) -> list[Obj]:
    """The ``count`` pods to delete first."""
    return sorted(pods, key=deletion_rank)[:count]


def replica_set_status(rs: Obj, pods: list[Obj], now: Any, failure: tuple[str, str] | None) -> tuple[Obj, float | None]:
    """``calculateStatus``: the new status, and seconds until a ready pod becomes available (or None).

    :param failure: ``(reason, message)`` of a failed create/delete, for the ReplicaFailure condition.
    """
    spec = spec_of(rs)
    min_ready = int(spec.get("minReadySeconds") or 0)
    template_labels = labels_of(spec.get("template") or {})
    fully = ready = available = 0
    wait: float | None = None
    for pod in pods:
        labels = labels_of(pod)
        if all(labels.get(k) == v for k, v in template_labels.items()):
            fully += 1
        left = available_after(pod, min_ready, now)
        if left is None:
            continue
        ready += 1
        if left == 0:
            available += 1
        else:
            wait = left if wait is None else min(wait, left)
    status: Obj = {"replicas": len(pods), "fullyLabeledReplicas": fully, "readyReplicas": ready,
                   "availableReplicas": available, "observedGeneration": meta(rs).get("generation") or 0}
    status = {k: v for k, v in status.items() if v or k == "replicas"}
    conditions = [dict(c) for c in conditions_of(rs)]
    if failure is not None:
        set_condition(conditions, {"type": "ReplicaFailure", "status": "True", "lastTransitionTime": rfc3339(now),
                                   "reason": failure[0], "message": failure[1]})
    else:
        remove_condition(conditions, "ReplicaFailure")
    if conditions:
        status["conditions"] = conditions
    return status, wait


def _status_equal(a: Obj, b: Obj) -> bool:
    keys = ("replicas", "fullyLabeledReplicas", "readyReplicas", "availableReplicas", "observedGeneration",
            "conditions")
    return all((a.get(k) or 0) == (b.get(k) or 0) for k in keys)


class ReplicaSetController(Controller):
    """``replicaset``: see the module docstring."""

    name = "replicaset"
    component = "replicaset-controller"
    service_account = "replicaset-controller"

    def setup(self) -> None:
        self.expectations = Expectations(self.ctx.clock.monotonic)
        self.replica_sets = self.cache(REPLICA_SETS)
        self.pods = self.cache(PODS)
        self.replica_sets.add_handler(self.enqueue, lambda old, new: self.enqueue(new), self._rs_deleted)
        self.pods.add_handler(self._pod_added, self._pod_updated, self._pod_deleted)

    # -- event handlers ------------------------------------------------------------------------

    def _rs_deleted(self, rs: Obj) -> None:
        self.expectations.forget(key_of(rs))
        self.enqueue(rs)

    def _owner_key(self, pod: Obj, ref: Obj | None) -> str | None:
        """The key of the ReplicaSet ``ref`` names, when it is one this cache knows (same uid)."""
        return owner_key(pod, ref, "ReplicaSet", self.replica_sets.get)

    def _enqueue_selecting(self, pod: Obj) -> None:
        """Queue every ReplicaSet of the pod's namespace that selects it (adoption candidates)."""
        labels = labels_of(pod)
        for rs in self.replica_sets.by_index("namespace", namespace_of(pod)):
            if selector_matches(spec_of(rs).get("selector"), labels):
                self.enqueue(rs)

    def _pod_added(self, pod: Obj) -> None:
        if is_deleting(pod):
            self._pod_deleted(pod)
            return
        ref = controller_of(pod)
        if ref is not None:
            key = self._owner_key(pod, ref)
            if key is not None:
                self.expectations.creation_observed(key)
                self.enqueue(key)
            return
        self._enqueue_selecting(pod)

    def _pod_updated(self, old: Obj, new: Obj) -> None:
        if meta(old).get("resourceVersion") == meta(new).get("resourceVersion"):
            return
        labels_changed = labels_of(old) != labels_of(new)
        if is_deleting(new):
            self._pod_deleted(new)
            if labels_changed:
                self._pod_deleted(old)
            return
        old_ref, new_ref = controller_of(old), controller_of(new)
        if old_ref != new_ref and old_ref is not None:
            old_key = self._owner_key(old, old_ref)
            if old_key is not None:
                self.enqueue(old_key)
        if new_ref is not None:
            key = self._owner_key(new, new_ref)
            if key is not None:
                self.enqueue(key)
                rs = self.replica_sets.get(key) or {}
                min_ready = int(spec_of(rs).get("minReadySeconds") or 0)
                if min_ready > 0 and not is_pod_ready(old) and is_pod_ready(new):
                    self.enqueue(key, after=min_ready + 1)
            return
        if labels_changed or old_ref != new_ref:
            self._enqueue_selecting(new)

    def _pod_deleted(self, pod: Obj) -> None:
        key = self._owner_key(pod, controller_of(pod))
        if key is not None:
            self.expectations.deletion_observed(key, key_of(pod))
            self.enqueue(key)

    # -- reconcile -----------------------------------------------------------------------------

    async def sync(self, key: str) -> float | None:
        rs = self.replica_sets.get(key)
        if rs is None:
            self.expectations.forget(key)
            return None
        needs_sync = self.expectations.satisfied(key)
        selector = spec_of(rs).get("selector")
        candidates = [p for p in self.pods.by_index("namespace", namespace_of(rs)) if is_pod_active(p)]
        claimer = Claimer(self.client, PODS, rs, REPLICA_SETS.path_of(rs),
                          owner_reference(rs, REPLICA_SETS.api_version, "ReplicaSet"),
                          lambda pod: selector_matches(selector, labels_of(pod)))
        pods = await claimer.claim(candidates)
        failure: tuple[str, str] | None = None
        error: ApiError | None = None
        if needs_sync and not is_deleting(rs):
            try:
                await self.manage_replicas(key, rs, pods)
            except ApiError as exc:
                error = exc
                desired = int(spec_of(rs).get("replicas") or 0)
                failure = ("FailedCreate" if len(pods) < desired else "FailedDelete", exc.message)
        status, wait = replica_set_status(rs, pods, self.now(), failure)
        if not _status_equal(status, status_of(rs)):
            await put_status(self.client, REPLICA_SETS, rs, status)
        if error is not None:
            raise error
        return wait + 0.5 if wait is not None else None

    async def manage_replicas(self, key: str, rs: Obj, pods: list[Obj]) -> None:
        """Create or delete pods so that ``len(pods)`` becomes ``spec.replicas``."""
        diff = len(pods) - int(spec_of(rs).get("replicas") or 0)
        if diff < 0:
            await self._create_pods(key, rs, min(-diff, BURST_REPLICAS))
        elif diff > 0:
            await self._delete_pods(key, rs, pods_to_delete(pods, min(diff, BURST_REPLICAS)))

    async def _create_pods(self, key: str, rs: Obj, count: int) -> None:
        self.expectations.expect_creations(key, count)
        template = spec_of(rs).get("template") or {}
        ref = owner_reference(rs, REPLICA_SETS.api_version, "ReplicaSet")
        pod = pod_from_template(template, rs, ref, f"{name_of(rs)}-")
        path = PODS.path(namespace_of(rs))
        errors: list[ApiError] = []

        async def create_one() -> None:
            try:
                created = await self.client.create(path, pod)
            except ApiError as exc:
                self.expectations.creation_observed(key)
                if is_namespace_terminating(exc):
                    return
                self.recorder.record(rs, "Warning", "FailedCreate", f"Error creating: {exc.message}")
                errors.append(exc)
                return
            self.recorder.record(rs, "Normal", "SuccessfulCreate", f"Created pod: {name_of(created)}")

        remaining, batch = count, 1
        while remaining > 0:
            size = min(batch, remaining)
            await asyncio.gather(*(create_one() for _ in range(size)))
            remaining -= size
            if errors:
                self.expectations.creation_observed(key, remaining)
                raise errors[0]
            batch *= 2

    async def _delete_pods(self, key: str, rs: Obj, victims: list[Obj]) -> None:
        self.expectations.expect_deletions(key, [key_of(p) for p in victims])
        errors: list[ApiError] = []

        async def delete_one(pod: Obj) -> None:
            try:
                await self.client.delete(PODS.path_of(pod))
            except ApiError as exc:
                self.expectations.deletion_observed(key, key_of(pod))
                if not exc.not_found:
                    self.recorder.record(rs, "Warning", "FailedDelete", f"Error deleting: {exc.message}")
                    errors.append(exc)
                return
            self.recorder.record(rs, "Normal", "SuccessfulDelete", f"Deleted pod: {name_of(pod)}")

        await asyncio.gather(*(delete_one(p) for p in victims))
        if errors:
            raise errors[0]

