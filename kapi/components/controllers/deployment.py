"""The Deployment controller: ReplicaSets per pod template, rolling updates, rollout status.

What ``pkg/controller/deployment`` does, step by step for one Deployment:

1. Claim its ReplicaSets (adopt matching orphans, release mismatched ones).
2. The *new* ReplicaSet is the oldest one whose template equals the Deployment's (ignoring the
   ``pod-template-hash`` label); it is created when a rollout needs it, named
   ``DEPLOYMENT-HASH`` with that label on itself, its selector and its template. Its
   ``deployment.kubernetes.io/revision`` is one more than every old one's (a rollback to an old
   template re-numbers it and keeps ``revision-history``), and the Deployment carries the same
   revision annotation. Deployment annotations are copied (except kubectl's and the controller's).
3. A paused Deployment, or one whose replica count changed, is *scaled*: the active ReplicaSet,
   or proportionally across active ReplicaSets (``desired-replicas`` / ``max-replicas``
   annotations) during a rolling update.
4. Otherwise it rolls out: ``RollingUpdate`` scales the new ReplicaSet up to replicas + maxSurge
   in total and old ones down keeping replicas - maxUnavailable available (unhealthy old pods go
   first); ``Recreate`` scales old ones to 0, waits until their pods are gone, then scales the new one up.
5. Status: replicas, updatedReplicas, readyReplicas, availableReplicas, unavailableReplicas,
   observedGeneration, the ``Available`` condition and the ``Progressing`` condition
   (NewReplicaSetCreated, FoundNewReplicaSet, ReplicaSetUpdated, NewReplicaSetAvailable,
   ProgressDeadlineExceeded, DeploymentPaused/Resumed), so ``kubectl rollout status`` completes.
6. Once complete, old ReplicaSets scaled to 0 beyond ``revisionHistoryLimit`` are deleted.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from kapi.client import ApiError
from kapi.components.controllers import rollout as ru
from kapi.components.controllers.claims import Claimer
from kapi.components.controllers.framework import Controller
from kapi.components.controllers.gvr import DEPLOYMENTS, PODS, REPLICA_SETS
from kapi.components.controllers.objects import (
    annotations_of,
    conditions_of,
    controller_of,
    copy,
    find_condition,
    is_deleting,
    label_selector,
    labels_of,
    meta,
    name_of,
    namespace_of,
    owner_key,
    owner_reference,
    pod_phase,
    remove_condition,
    selector_matches,
    set_condition,
    spec_of,
    status_of,
    uid_of,
)
from kapi.components.controllers.writes import delete_if_present, put_status

log = logging.getLogger("kapi.controllers.deployment")

Obj = dict[str, Any]


def _created(rs: Obj) -> tuple[str, str]:
    return (str(meta(rs).get("creationTimestamp") or ""), name_of(rs))


@dataclass
class Rollout:
    """The working state of one sync: the Deployment and its ReplicaSets as last written."""

    d: Obj
    rss: dict[str, Obj] = field(default_factory=dict)
    new_name: str = ""

    @property
    def new(self) -> Obj | None:
        return self.rss.get(self.new_name) if self.new_name else None

    @property
    def old(self) -> list[Obj]:
        return sorted((rs for n, rs in self.rss.items() if n != self.new_name), key=_created)

    @property
    def all(self) -> list[Obj]:
        return sorted(self.rss.values(), key=_created)

    def active_old(self) -> list[Obj]:
        """``FilterActiveReplicaSets`` over the old ones: spec.replicas > 0."""
        return [rs for rs in self.old if ru.replicas(rs) > 0]

    def put(self, rs: Obj) -> None:
        self.rss[name_of(rs)] = rs


class DeploymentController(Controller):
    """``deployment``: see the module docstring."""

    name = "deployment"
    component = "deployment-controller"
    service_account = "deployment-controller"

    def setup(self) -> None:
        self.deployments = self.cache(DEPLOYMENTS)
        self.replica_sets = self.cache(REPLICA_SETS)
        self.pods = self.cache(PODS)
        self.deployments.add_handler(self.enqueue, lambda old, new: self.enqueue(new), self.enqueue)
        self.replica_sets.add_handler(self._rs_added, self._rs_updated, self._rs_deleted)
        self.pods.add_handler(on_delete=self._pod_deleted)

    # -- event handlers ------------------------------------------------------------------------

    def _owner_key(self, obj: Obj, ref: Obj | None) -> str | None:
        return owner_key(obj, ref, "Deployment", self.deployments.get)

    def _enqueue_selecting(self, rs: Obj) -> None:
        labels = labels_of(rs)
        for d in self.deployments.by_index("namespace", namespace_of(rs)):
            if selector_matches(spec_of(d).get("selector"), labels):
                self.enqueue(d)

    def _rs_added(self, rs: Obj) -> None:
        if is_deleting(rs):
            self._rs_deleted(rs)
            return
        key = self._owner_key(rs, controller_of(rs))
        if key is not None:
            self.enqueue(key)
        elif controller_of(rs) is None:
            self._enqueue_selecting(rs)

    def _rs_updated(self, old: Obj, new: Obj) -> None:
        if meta(old).get("resourceVersion") == meta(new).get("resourceVersion"):
            return
        old_ref, new_ref = controller_of(old), controller_of(new)
        if old_ref != new_ref:
            old_key = self._owner_key(old, old_ref)
            if old_key is not None:
                self.enqueue(old_key)
        key = self._owner_key(new, new_ref)
        if key is not None:
            self.enqueue(key)
        elif new_ref is None and (labels_of(old) != labels_of(new) or old_ref != new_ref):
            self._enqueue_selecting(new)

    def _rs_deleted(self, rs: Obj) -> None:
        key = self._owner_key(rs, controller_of(rs))
        if key is not None:
            self.enqueue(key)

    def _pod_deleted(self, pod: Obj) -> None:
        """A Recreate rollout waits for the old pods to go."""
        ref = controller_of(pod)
        if ref is None or ref.get("kind") != "ReplicaSet":
            return
        rs = self.replica_sets.get(f"{namespace_of(pod)}/{ref.get('name')}")
        if rs is None:
            return
        key = self._owner_key(rs, controller_of(rs))
        d = self.deployments.get(key) if key is not None else None
        if d is not None and not ru.is_rolling(d):
            self.enqueue(d)

    # -- sync ----------------------------------------------------------------------------------

    async def sync(self, key: str) -> float | None:
        stored = self.deployments.get(key)
        if stored is None:
            return None
        d = copy(stored)
        selector = label_selector(spec_of(d).get("selector"))
        if selector is None or selector.empty:
            self.recorder.record(d, "Warning", "SelectingAll", "This deployment is selecting all pods. A non-empty "
                                 "selector is required.")
            if int(status_of(d).get("observedGeneration") or 0) < int(meta(d).get("generation") or 0):
                d.setdefault("status", {})["observedGeneration"] = meta(d).get("generation")
                await put_status(self.client, DEPLOYMENTS, d, d["status"])
            return None
        state = Rollout(d, {name_of(rs): copy(rs) for rs in await self._claim_replica_sets(d)})
        if is_deleting(d):
            await self._get_all(state, create=False)
            return await self._sync_status(state)
        await self._check_paused_conditions(state)
        if spec_of(d).get("paused") or await self._is_scaling_event(state):
            return await self._sync_scale(state)
        if not ru.is_rolling(d):
            return await self._rollout_recreate(state)
        return await self._rollout_rolling(state)

    async def _claim_replica_sets(self, d: Obj) -> list[Obj]:
        selector = spec_of(d).get("selector")
        claimer = Claimer(self.client, REPLICA_SETS, d, DEPLOYMENTS.path_of(d),
                          owner_reference(d, DEPLOYMENTS.api_version, "Deployment"),
                          lambda rs: selector_matches(selector, labels_of(rs)))
        return await claimer.claim(self.replica_sets.by_index("namespace", namespace_of(d)))

    # -- writes --------------------------------------------------------------------------------

    async def _save(self, state: Rollout, *, annotations: bool = False, status: bool = True) -> None:
        """Write the Deployment's revision annotation (main resource) and/or its status."""
        d = state.d
        if annotations:
            updated = await self.client.update(DEPLOYMENTS.path_of(d), d)
            d["metadata"] = updated["metadata"]
        if status:
            updated = await put_status(self.client, DEPLOYMENTS, d, d.get("status") or {})
            d["metadata"] = updated["metadata"]

    async def _scale(self, state: Rollout, rs: Obj, count: int) -> bool:
        """``scaleReplicaSetAndRecordEvent``: set ``spec.replicas`` (and the replica annotations);
        True when the size changed."""
        current = ru.replicas(rs)
        if current == count:
            return False
        d = state.d
        new = copy(rs)
        ru.set_replicas_annotations(new, ru.replicas(d), ru.replicas(d) + ru.max_surge(d))
        new.setdefault("spec", {})["replicas"] = count
        updated = await self.client.update(REPLICA_SETS.path_of(new), new)
        state.put(updated)
        direction = "up" if count > current else "down"
        self.recorder.record(d, "Normal", "ScalingReplicaSet",
                             f"Scaled {direction} replica set {name_of(rs)} from {current} to {count}")
        return True

    # -- new and old ReplicaSets ---------------------------------------------------------------

    async def _get_all(self, state: Rollout, *, create: bool) -> None:
        """``getAllReplicaSetsAndSyncRevision``: find (or create) the new ReplicaSet, sync its
        revision, and set ``state.new_name``."""
        d = state.d
        template = spec_of(d).get("template")
        state.new_name = ""
        for rs in state.all:
            if ru.equal_ignore_hash(spec_of(rs).get("template"), template):
                state.new_name = name_of(rs)
                break
        new_revision = max((ru.revision_of(rs) for rs in state.old), default=0) + 1
        existing = state.new
        if existing is not None:
            await self._sync_existing_new(state, existing, new_revision)
        elif create:
            await self._create_new(state, new_revision)

    async def _sync_existing_new(self, state: Rollout, rs: Obj, new_revision: int) -> None:
        d = state.d
        updated = copy(rs)
        min_ready = spec_of(d).get("minReadySeconds") or 0
        changed = ru.set_new_rs_annotations(d, updated, new_revision, exists=True)
        if (spec_of(updated).get("minReadySeconds") or 0) != min_ready:
            updated["spec"]["minReadySeconds"] = min_ready
            changed = True
        if changed:
            rs = await self.client.update(REPLICA_SETS.path_of(updated), updated)
            state.put(rs)
        annotated = self._set_revision(d, str(ru.revision_of(rs)))
        status_changed = False
        if ru.has_progress_deadline(d) and find_condition(conditions_of(d), "Progressing") is None:
            conditions = [dict(c) for c in conditions_of(d)]
            set_condition(conditions, ru.condition("Progressing", "True", ru.FOUND_NEW_RS,
                                                   f'Found new replica set "{name_of(rs)}"', self.now()))
            d.setdefault("status", {})["conditions"] = conditions
            status_changed = True
        if annotated or status_changed:
            await self._save(state, annotations=annotated, status=status_changed)

    @staticmethod
    def _set_revision(d: Obj, revision: str) -> bool:
        """``SetDeploymentRevision`` in place; True when it changed."""
        annotations = d.setdefault("metadata", {}).setdefault("annotations", {})
        if annotations.get(ru.REVISION) == revision:
            return False
        annotations[ru.REVISION] = revision
        return True

    def _new_replica_set(self, d: Obj, new_revision: int) -> Obj:
        collisions = status_of(d).get("collisionCount")
        template = copy(spec_of(d).get("template") or {})
        value = ru.template_hash(spec_of(d).get("template") or {}, collisions)
        template.setdefault("metadata", {})["labels"] = ru.labels_with_hash(labels_of(template), value)
        selector = copy(spec_of(d).get("selector") or {})
        selector["matchLabels"] = ru.labels_with_hash(selector.get("matchLabels") or {}, value)
        rs: Obj = {"apiVersion": REPLICA_SETS.api_version, "kind": "ReplicaSet",
                   "metadata": {"name": f"{name_of(d)}-{value}", "namespace": namespace_of(d),
                                "labels": dict(template["metadata"]["labels"]),
                                "ownerReferences": [owner_reference(d, DEPLOYMENTS.api_version, "Deployment")]},
                   "spec": {"replicas": 0, "selector": selector, "template": template}}
        if spec_of(d).get("minReadySeconds"):
            rs["spec"]["minReadySeconds"] = spec_of(d)["minReadySeconds"]
        ru.set_new_rs_annotations(d, rs, new_revision, exists=False)
        return rs

    async def _create_new(self, state: Rollout, new_revision: int) -> None:
        d = state.d
        rs = self._new_replica_set(d, new_revision)
        rs["spec"]["replicas"] = ru.new_rs_replicas(d, [*state.all, rs], rs)
        created: Obj | None = None
        already_exists = False
        try:
            created = await self.client.create(REPLICA_SETS.path(namespace_of(d)), rs)
        except ApiError as exc:
            if exc.reason != "AlreadyExists":
                raise
            current = await self.client.get(REPLICA_SETS.path_of(rs))
            ref = controller_of(current)
            if ref is not None and ref.get("uid") == uid_of(d) and \
                    ru.equal_ignore_hash(spec_of(current).get("template"), spec_of(d).get("template")):
                created, already_exists = current, True
            else:
                status = d.setdefault("status", {})
                status["collisionCount"] = int(status.get("collisionCount") or 0) + 1
                await self._save(state)
                raise
        assert created is not None
        state.put(created)
        state.new_name = name_of(created)
        if not already_exists and ru.replicas(created) > 0:
            self.recorder.record(d, "Normal", "ScalingReplicaSet",
                                 f"Scaled up replica set {name_of(created)} from 0 to {ru.replicas(created)}")
        annotated = self._set_revision(d, str(new_revision))
        status_changed = False
        if not already_exists and ru.has_progress_deadline(d):
            conditions = [dict(c) for c in conditions_of(d)]
            set_condition(conditions, ru.condition("Progressing", "True", ru.NEW_RS_CREATED,
                                                   f'Created new replica set "{name_of(created)}"', self.now()))
            d.setdefault("status", {})["conditions"] = conditions
            status_changed = True
        if annotated or status_changed:
            await self._save(state, annotations=annotated, status=status_changed)

    # -- paused and scaling --------------------------------------------------------------------

    async def _check_paused_conditions(self, state: Rollout) -> None:
        d = state.d
        if not ru.has_progress_deadline(d):
            return
        current = find_condition(conditions_of(d), "Progressing")
        if current is not None and current.get("reason") == ru.TIMED_OUT:
            return
        paused_reported = current is not None and current.get("reason") == ru.PAUSED
        paused = bool(spec_of(d).get("paused"))
        if paused == paused_reported:
            return
        reason, message = (ru.PAUSED, "Deployment is paused") if paused else (ru.RESUMED, "Deployment is resumed")
        conditions = [dict(c) for c in conditions_of(d)]
        set_condition(conditions, ru.condition("Progressing", "Unknown", reason, message, self.now()))
        d.setdefault("status", {})["conditions"] = conditions
        await self._save(state)

    async def _is_scaling_event(self, state: Rollout) -> bool:
        await self._get_all(state, create=False)
        desired = str(ru.replicas(state.d))
        for rs in state.all:
            annotated = annotations_of(rs).get(ru.DESIRED_REPLICAS)
            if ru.replicas(rs) > 0 and annotated is not None and annotated != desired:
                return True
        return False

    async def _sync_scale(self, state: Rollout) -> float | None:
        """``sync``: scale, clean up a paused Deployment's history, update status."""
        await self._get_all(state, create=False)
        await self._scale_deployment(state)
        if spec_of(state.d).get("paused"):
            await self._cleanup(state)
        return await self._sync_status(state)

    async def _scale_deployment(self, state: Rollout) -> None:
        d = state.d
        desired = ru.replicas(d)
        new = state.new
        active = [rs for rs in state.all if ru.replicas(rs) > 0]
        only: Obj | None = None
        if not active:
            only = new if new is not None else (state.old[-1] if state.old else None)
        elif len(active) == 1:
            only = active[0]
        if only is not None:
            await self._scale(state, only, desired)
            return
        if ru.is_saturated(d, new):
            for rs in state.active_old():
                await self._scale(state, rs, 0)
            return
        if not ru.is_rolling(d):
            return
        allowed = desired + ru.max_surge(d) if desired > 0 else 0
        to_add = allowed - ru.total_replicas(active)
        if to_add:  # bigger first; among equals newer first when adding, older first when removing
            active.sort(key=_created, reverse=to_add > 0)
            active.sort(key=lambda rs: -ru.replicas(rs))
        sizes: dict[str, int] = {}
        added = 0
        for rs in active:
            share = ru.proportion(rs, d, to_add, added) if to_add else 0
            sizes[name_of(rs)] = ru.replicas(rs) + share
            added += share
        leftover = to_add - added
        if active and leftover:
            first = name_of(active[0])
            sizes[first] = max(0, sizes[first] + leftover)
        for rs in active:
            await self._scale_with_annotations(state, rs, sizes[name_of(rs)])

    async def _scale_with_annotations(self, state: Rollout, rs: Obj, count: int) -> None:
        """``scaleReplicaSet``: also rewrites the replica annotations when only they changed."""
        d = state.d
        if ru.replicas(rs) != count:
            await self._scale(state, rs, count)
            return
        updated = copy(rs)
        if ru.set_replicas_annotations(updated, ru.replicas(d), ru.replicas(d) + ru.max_surge(d)):
            state.put(await self.client.update(REPLICA_SETS.path_of(updated), updated))

    # -- rollouts ------------------------------------------------------------------------------

    async def _rollout_rolling(self, state: Rollout) -> float | None:
        await self._get_all(state, create=True)
        if await self._reconcile_new(state):
            return await self._sync_rollout_status(state)
        if await self._reconcile_old(state):
            return await self._sync_rollout_status(state)
        if ru.complete(state.d, status_of(state.d)):
            await self._cleanup(state)
        return await self._sync_rollout_status(state)

    async def _reconcile_new(self, state: Rollout) -> bool:
        new = state.new
        assert new is not None
        desired = ru.replicas(state.d)
        if ru.replicas(new) == desired:
            return False
        if ru.replicas(new) > desired:
            return await self._scale(state, new, desired)
        return await self._scale(state, new, ru.new_rs_replicas(state.d, state.all, new))

    async def _reconcile_old(self, state: Rollout) -> bool:
        d, new = state.d, state.new
        assert new is not None
        if ru.total_replicas(state.active_old()) == 0:
            return False
        min_available = ru.replicas(d) - ru.max_unavailable(d)
        new_unavailable = ru.replicas(new) - int(status_of(new).get("availableReplicas") or 0)
        max_scaled_down = ru.total_replicas(state.all) - min_available - new_unavailable
        if max_scaled_down <= 0:
            return False
        cleaned = await self._cleanup_unhealthy(state, max_scaled_down)
        scaled = await self._scale_down_old(state)
        return cleaned + scaled > 0

    async def _cleanup_unhealthy(self, state: Rollout, limit: int) -> int:
        total = 0
        for rs in state.active_old():
            if total >= limit:
                break
            available = int(status_of(rs).get("availableReplicas") or 0)
            if ru.replicas(rs) == available:
                continue
            down = min(limit - total, ru.replicas(rs) - available)
            await self._scale(state, rs, ru.replicas(rs) - down)
            total += down
        return total

    async def _scale_down_old(self, state: Rollout) -> int:
        d, new = state.d, state.new
        min_available = ru.replicas(d) - ru.max_unavailable(d)
        old = state.active_old()
        available = ru.available_replicas([*old, *([new] if new is not None else [])])
        if available <= min_available:
            return 0
        wanted = available - min_available
        total = 0
        for rs in old:
            if total >= wanted:
                break
            down = min(ru.replicas(rs), wanted - total)
            await self._scale(state, rs, ru.replicas(rs) - down)
            total += down
        return total

    async def _rollout_recreate(self, state: Rollout) -> float | None:
        await self._get_all(state, create=False)
        scaled = False
        for rs in state.active_old():
            scaled = await self._scale(state, rs, 0) or scaled
        if scaled or self._old_pods_running(state):
            return await self._sync_rollout_status(state)
        if state.new is None:
            await self._get_all(state, create=True)
        new = state.new
        if new is not None:
            await self._scale(state, new, ru.replicas(state.d))
        if ru.complete(state.d, status_of(state.d)):
            await self._cleanup(state)
        return await self._sync_rollout_status(state)

    def _old_pods_running(self, state: Rollout) -> bool:
        old = state.old
        if ru.actual_replicas(old) > 0:
            return True
        for rs in old:
            for pod in self.pods.by_index("controller", uid_of(rs)):
                if pod_phase(pod) not in ("Failed", "Succeeded"):
                    return True
        return False

    async def _cleanup(self, state: Rollout) -> None:
        """``cleanupDeployment``: delete old, empty ReplicaSets beyond ``revisionHistoryLimit``."""
        limit = spec_of(state.d).get("revisionHistoryLimit")
        if limit is None:
            return
        cleanable = [rs for rs in state.old if not is_deleting(rs)]
        extra = len(cleanable) - int(limit)
        if extra <= 0:
            return
        cleanable.sort(key=lambda rs: (ru.revision_of(rs), _created(rs)))
        for rs in cleanable[:extra]:
            if int(status_of(rs).get("replicas") or 0) or ru.replicas(rs) or is_deleting(rs) or \
                    int(meta(rs).get("generation") or 0) > int(status_of(rs).get("observedGeneration") or 0):
                continue
            await delete_if_present(self.client, REPLICA_SETS.path_of(rs))
            state.rss.pop(name_of(rs), None)

    # -- status --------------------------------------------------------------------------------

    async def _sync_status(self, state: Rollout) -> float | None:
        """``syncDeploymentStatus``: counts and the Available condition only."""
        status = ru.deployment_status(state.d, state.all, state.new, self.now())
        if status != status_of(state.d):
            state.d["status"] = status
            await self._save(state)
        return None

    async def _sync_rollout_status(self, state: Rollout) -> float | None:
        """``syncRolloutStatus``: the Progressing condition from what changed, then the status."""
        d, new = state.d, state.new
        now = self.now()
        status = ru.deployment_status(d, state.all, new, now)
        conditions: list[Obj] = status["conditions"]
        if not ru.has_progress_deadline(d):
            remove_condition(conditions, "Progressing")
        current = find_condition(conditions, "Progressing")
        done = (int(status.get("replicas") or 0) == int(status.get("updatedReplicas") or 0) and current is not None
                and current.get("reason") == ru.NEW_RS_AVAILABLE)
        subject = f'ReplicaSet "{name_of(new)}"' if new is not None else f'Deployment "{name_of(d)}"'
        if ru.has_progress_deadline(d) and not done:
            if ru.complete(d, status):
                set_condition(conditions, ru.condition("Progressing", "True", ru.NEW_RS_AVAILABLE,
                                                       f"{subject} has successfully progressed.", now))
            elif ru.progressing(d, status):
                updated = ru.condition("Progressing", "True", ru.RS_UPDATED, f"{subject} is progressing.", now)
                if current is not None and current.get("status") == "True":
                    updated["lastTransitionTime"] = current.get("lastTransitionTime")
                remove_condition(conditions, "Progressing")
                conditions.append(updated)
            else:
                left = ru.deadline_left(d, status, now)
                if left is not None and left <= 0:
                    set_condition(conditions, ru.condition("Progressing", "False", ru.TIMED_OUT,
                                                           f"{subject} has timed out progressing.", now))
        self._replica_failures(state, conditions)
        if status != status_of(d):
            d["status"] = status
            await self._save(state)
        return self._stuck_requeue(d, status)

    @staticmethod
    def _replica_failures(state: Rollout, conditions: list[Obj]) -> None:
        failures = [c for rs in state.all for c in conditions_of(rs) if c.get("type") == "ReplicaFailure"]
        if not failures:
            remove_condition(conditions, "ReplicaFailure")
            return
        first = failures[0]
        stamp = first.get("lastTransitionTime")
        set_condition(conditions, {"type": "ReplicaFailure", "status": first.get("status"), "lastUpdateTime": stamp,
                                   "lastTransitionTime": stamp, "reason": first.get("reason"),
                                   "message": first.get("message")})

    def _stuck_requeue(self, d: Obj, status: Obj) -> float | None:
        """``requeueStuckDeployment``: when to look again for a progress deadline."""
        if ru.complete(d, status):
            return None
        left = ru.deadline_left(d, status, self.now())
        if left is None or left <= 0:
            return None
        return max(1.0, left + 1.0)

