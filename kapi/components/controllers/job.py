"""The Job controller: run pods until enough succeed, or give up.

What ``pkg/controller/job`` does, for batch/v1 Jobs:

* Pods are created from the template (``generateName: JOB-NAME-``, a controller owner reference,
  the ``batch.kubernetes.io/job-tracking`` finalizer) so that at most ``parallelism`` run and no
  more than the remaining completions; with ``completionMode: Indexed`` each pod gets its index
  (``batch.kubernetes.io/job-completion-index`` annotation and label, ``JOB_COMPLETION_INDEX``,
  hostname ``JOB-INDEX``) and every index must succeed once.
* Finished pods are counted exactly once through the tracking finalizer: their uids first go to
  ``status.uncountedTerminatedPods``, then the finalizer is removed, then they move into
  ``succeeded`` / ``failed``. A pod deleted before it finished counts as failed.
* After a failure new pods wait an exponential backoff (``job_backoff_base`` doubling up to
  ``job_backoff_max``); more than ``backoffLimit`` failures, or ``activeDeadlineSeconds`` passed,
  fail the Job (``FailureTarget`` then ``Failed``: BackoffLimitExceeded / DeadlineExceeded) and
  its running pods are deleted. Enough successes complete it (``SuccessCriteriaMet`` then
  ``Complete``, ``completionTime``). ``suspend: true`` deletes the active pods (``Suspended``).
* Status: active, ready, terminating, succeeded, failed, startTime, completedIndexes.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
from dataclasses import dataclass, field
from typing import Any

from kapi.client import ApiError
from kapi.components.controllers.claims import Claimer
from kapi.components.controllers.expectations import Expectations
from kapi.components.controllers.framework import Controller
from kapi.components.controllers.gvr import JOBS, PODS
from kapi.components.controllers.objects import (
    annotations_of,
    conditions_of,
    controller_of,
    copy,
    finalizers_of,
    find_condition,
    is_deleting,
    is_pod_ready,
    is_pod_terminal,
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
    rfc3339,
    selector_matches,
    set_condition,
    spec_of,
    split_key,
    status_of,
    uid_of,
)
from kapi.components.controllers.writes import is_namespace_terminating, put_status

log = logging.getLogger("kapi.controllers.job")

Obj = dict[str, Any]

TRACKING_FINALIZER = "batch.kubernetes.io/job-tracking"
COMPLETION_INDEX = "batch.kubernetes.io/job-completion-index"
BURST = 500
ORPHAN_PREFIX = "pod:"


# ---------------------------------------------------------------------------------------------
# pure helpers


def finished_condition(job: Obj) -> str | None:
    """"Complete" or "Failed" when the Job finished, else None."""
    for kind in ("Complete", "Failed"):
        condition = find_condition(conditions_of(job), kind)
        if condition is not None and condition.get("status") == "True":
            return kind
    return None


def pod_index(pod: Obj) -> int | None:
    value = annotations_of(pod).get(COMPLETION_INDEX, labels_of(pod).get(COMPLETION_INDEX))
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def parse_indexes(text: str) -> set[int]:
    """``"0-2,5"`` -> {0, 1, 2, 5}."""
    result: set[int] = set()
    for part in (text or "").split(","):
        if not part:
            continue
        low, _, high = part.partition("-")
        try:
            result.update(range(int(low), int(high or low) + 1))
        except ValueError:
            continue
    return result


def format_indexes(indexes: set[int]) -> str:
    """{0, 1, 2, 5} -> ``"0-2,5"`` (the ``completedIndexes`` form)."""
    parts: list[str] = []
    ordered = sorted(indexes)
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        parts.append(str(ordered[i]) if i == j else f"{ordered[i]}-{ordered[j]}")
        i = j + 1
    return ",".join(parts)


def counts_as_failed(pod: Obj) -> bool:
    """A pod that failed, or was deleted before it finished."""
    return pod_phase(pod) == "Failed" or (is_deleting(pod) and not is_pod_terminal(pod))


def job_condition(kind: str, reason: str, message: str, now: datetime.datetime, status: str = "True") -> Obj:
    stamp = rfc3339(now)
    return {"type": kind, "status": status, "lastProbeTime": stamp, "lastTransitionTime": stamp, "reason": reason,
            "message": message}


@dataclass
class _Backoff:
    failures: int = 0
    last_failure: float = 0.0


@dataclass
class _Tally:
    """Counts of one sync."""

    succeeded: int = 0
    failed: int = 0
    indexes: set[int] = field(default_factory=set)


class JobController(Controller):
    """``job``: see the module docstring."""

    name = "job"
    component = "job-controller"
    service_account = "job-controller"

    def setup(self) -> None:
        self.expectations = Expectations(self.ctx.clock.monotonic)
        self.backoff: dict[str, _Backoff] = {}
        self.jobs = self.cache(JOBS)
        self.pods = self.cache(PODS)
        self.jobs.add_handler(self.enqueue, lambda old, new: self.enqueue(new), self._job_deleted)
        self.pods.add_handler(self._pod_added, self._pod_updated, self._pod_deleted)

    # -- handlers ------------------------------------------------------------------------------

    def _job_deleted(self, job: Obj) -> None:
        key = key_of(job)
        self.expectations.forget(key)
        self.backoff.pop(key, None)

    def _owner_key(self, pod: Obj) -> str | None:
        return owner_key(pod, controller_of(pod), "Job", self.jobs.get)

    def _pod_added(self, pod: Obj) -> None:
        key = self._owner_key(pod)
        if key is None:
            self._orphan(pod)
            return
        self.expectations.creation_observed(key)
        if is_deleting(pod):
            self.expectations.deletion_observed(key, key_of(pod))
        self.enqueue(key)

    def _pod_updated(self, old: Obj, new: Obj) -> None:
        key = self._owner_key(new)
        if key is None:
            self._orphan(new)
            return
        if is_deleting(new):
            self.expectations.deletion_observed(key, key_of(new))
        self.enqueue(key)

    def _pod_deleted(self, pod: Obj) -> None:
        key = self._owner_key(pod)
        if key is not None:
            self.expectations.deletion_observed(key, key_of(pod))
            self.enqueue(key)

    def _orphan(self, pod: Obj) -> None:
        """A tracked pod whose Job is gone must lose its finalizer, or it would stay forever."""
        ref = controller_of(pod)
        if TRACKING_FINALIZER in finalizers_of(pod) and ref is not None and ref.get("kind") == "Job":
            self.enqueue(ORPHAN_PREFIX + key_of(pod))

    # -- sync ----------------------------------------------------------------------------------

    async def sync(self, key: str) -> float | None:
        if key.startswith(ORPHAN_PREFIX):
            await self._release_orphan(key[len(ORPHAN_PREFIX):])
            return None
        stored = self.jobs.get(key)
        if stored is None:
            self.expectations.forget(key)
            return None
        job = copy(stored)
        pods = await self._claim(job)
        if finished_condition(job) is not None:
            await self._remove_finalizers([p for p in pods if TRACKING_FINALIZER in finalizers_of(p)])
            return None
        status = copy(status_of(job))
        tally = await self._track(key, job, pods, status)
        return await self._reconcile(key, job, pods, status, tally)

    async def _claim(self, job: Obj) -> list[Obj]:
        selector = spec_of(job).get("selector")
        claimer = Claimer(self.client, PODS, job, JOBS.path_of(job), owner_reference(job, JOBS.api_version, "Job"),
                          lambda pod: selector_matches(selector, labels_of(pod)))
        return await claimer.claim(self.pods.by_index("namespace", namespace_of(job)))

    async def _track(self, key: str, job: Obj, pods: list[Obj], status: Obj) -> _Tally:
        """Count finished pods once: uncounted uids, finalizers off, then into the counters."""
        uncounted = status.get("uncountedTerminatedPods") or {}
        pending_ok, pending_bad = set(uncounted.get("succeeded") or []), set(uncounted.get("failed") or [])
        fresh = [p for p in pods if TRACKING_FINALIZER in finalizers_of(p)
                 and (pod_phase(p) == "Succeeded" or counts_as_failed(p))
                 and uid_of(p) not in pending_ok | pending_bad]
        for pod in fresh:
            (pending_ok if pod_phase(pod) == "Succeeded" else pending_bad).add(uid_of(pod))
        record = self.backoff.setdefault(key, _Backoff())
        if any(pod_phase(p) != "Succeeded" for p in fresh):
            record.failures += sum(1 for p in fresh if pod_phase(p) != "Succeeded")
            record.last_failure = self.ctx.clock.monotonic()
        elif fresh:
            record.failures = 0
        if fresh:
            status["uncountedTerminatedPods"] = {"succeeded": sorted(pending_ok), "failed": sorted(pending_bad)}
            written = await self._write_status(job, status)
            status.clear()
            status.update(written)
        by_uid = {uid_of(p): p for p in pods}
        await self._remove_finalizers([by_uid[u] for u in pending_ok | pending_bad
                                       if u in by_uid and TRACKING_FINALIZER in finalizers_of(by_uid[u])])
        tally = _Tally(int(status.get("succeeded") or 0) + len(pending_ok),
                       int(status.get("failed") or 0) + len(pending_bad),
                       parse_indexes(str(status.get("completedIndexes") or "")))
        for uid in pending_ok:
            index = pod_index(by_uid[uid]) if uid in by_uid else None
            if index is not None:
                tally.indexes.add(index)
        status["succeeded"], status["failed"] = tally.succeeded, tally.failed
        status["uncountedTerminatedPods"] = {}
        return tally

    async def _reconcile(self, key: str, job: Obj, pods: list[Obj], status: Obj, tally: _Tally) -> float | None:
        spec = spec_of(job)
        now = self.now()
        active = [p for p in pods if not is_pod_terminal(p) and not is_deleting(p)]
        suspended = bool(spec.get("suspend"))
        conditions = [dict(c) for c in conditions_of(job)]
        indexed = spec.get("completionMode") == "Indexed"
        completions = spec.get("completions")
        if indexed:
            status["completedIndexes"] = format_indexes(tally.indexes)
        if not suspended and not status.get("startTime"):
            status["startTime"] = rfc3339(now)
        failure = self._failure(spec, status, tally, now)
        done = (len(tally.indexes) >= int(completions) if indexed else tally.succeeded >= int(completions)) \
            if completions is not None else (tally.succeeded > 0 and not active)
        requeue: float | None = None
        stopping = failure is not None or done or suspended
        active_uids = {uid_of(p) for p in active}
        lingering = [p for p in pods if TRACKING_FINALIZER in finalizers_of(p) and not is_pod_terminal(p)
                     and (is_deleting(p) or (stopping and uid_of(p) in active_uids))]
        if failure is not None:
            set_condition(conditions, job_condition("FailureTarget", *failure, now))
            await self._delete_pods(key, job, active)
            active = []
        elif done:
            set_condition(conditions, job_condition("SuccessCriteriaMet", "CompletionsReached",
                                                    "Reached expected number of succeeded pods", now))
            await self._delete_pods(key, job, active)
            active = []
        elif suspended:
            set_condition(conditions, job_condition("Suspended", "JobSuspended", "Job suspended", now))
            await self._delete_pods(key, job, active)
            active = []
            status.pop("startTime", None)
        else:
            suspended_before = find_condition(conditions, "Suspended")
            if suspended_before is not None and suspended_before.get("status") == "True":
                set_condition(conditions, job_condition("Suspended", "JobResumed", "Job resumed", now, "False"))
            if self.expectations.satisfied(key):
                requeue = await self._manage(key, job, active, tally)
        if failure is not None and not lingering:
            set_condition(conditions, job_condition("Failed", *failure, now))
        if done and failure is None and not lingering:
            set_condition(conditions, job_condition("Complete", "CompletionsReached",
                                                    "Reached expected number of succeeded pods", now))
            status.setdefault("completionTime", rfc3339(now))
        status["active"] = len(active) if failure is None and not done and not suspended else 0
        status["ready"] = sum(1 for p in active if is_pod_ready(p))
        status["terminating"] = sum(1 for p in pods if is_deleting(p) and not is_pod_terminal(p))
        status["conditions"] = conditions
        status = {k: v for k, v in status.items()
                  if v not in (None, [], "") and not (k in ("active", "succeeded", "failed") and v == 0)}
        if status != status_of(job):
            await self._write_status(job, status)
        deadline = self._deadline_left(spec, status, now)
        if deadline is not None and failure is None and not done:
            requeue = deadline if requeue is None else min(requeue, deadline)
        return requeue

    def _failure(self, spec: Obj, status: Obj, tally: _Tally, now: datetime.datetime) -> tuple[str, str] | None:
        limit = spec.get("backoffLimit")
        if tally.failed > (int(limit) if limit is not None else 6):
            return "BackoffLimitExceeded", "Job has reached the specified backoff limit"
        left = self._deadline_left(spec, status, now)
        if left is not None and left <= 0:
            return "DeadlineExceeded", "Job was active longer than specified deadline"
        return None

    @staticmethod
    def _deadline_left(spec: Obj, status: Obj, now: datetime.datetime) -> float | None:
        deadline = spec.get("activeDeadlineSeconds")
        start = parse_time(str(status.get("startTime") or ""))
        if deadline is None or start is None:
            return None
        return (start + datetime.timedelta(seconds=int(deadline)) - now).total_seconds()

    async def _manage(self, key: str, job: Obj, active: list[Obj], tally: _Tally) -> float | None:
        """Create or delete pods toward the wanted number of active ones."""
        spec = spec_of(job)
        parallelism = int(spec.get("parallelism") or 0)
        completions = spec.get("completions")
        indexed = spec.get("completionMode") == "Indexed"
        if completions is None:
            want = len(active) if tally.succeeded > 0 else parallelism
        else:
            remaining = int(completions) - (len(tally.indexes) if indexed else tally.succeeded)
            want = max(0, min(parallelism, remaining))
        if len(active) > want:
            extra = sorted(active, key=lambda p: (bool(spec_of(p).get("nodeName")), is_pod_ready(p)))
            await self._delete_pods(key, job, extra[:len(active) - want])
            return None
        if len(active) == want:
            return None
        record = self.backoff.get(key)
        if record is not None and record.failures > 0:
            delay = min(self.options.job_backoff_base * 2 ** (record.failures - 1), self.options.job_backoff_max)
            left = record.last_failure + delay - self.ctx.clock.monotonic()
            if left > 0:
                return left
        todo: list[int | None]
        if indexed:
            busy = {pod_index(p) for p in active} | tally.indexes
            todo = [i for i in range(int(completions or 0)) if i not in busy]
            del todo[want - len(active):]
        else:
            todo = [None] * (want - len(active))
        await self._create_pods(key, job, todo[:BURST])
        return None

    def _pod_for(self, job: Obj, index: int | None) -> Obj:
        template = copy(spec_of(job).get("template") or {})
        prefix = f"{name_of(job)}-" if index is None else f"{name_of(job)}-{index}-"
        pod = pod_from_template(template, job, owner_reference(job, JOBS.api_version, "Job"), prefix)
        pod["metadata"]["finalizers"] = [*pod["metadata"].get("finalizers", []), TRACKING_FINALIZER]
        if index is not None:
            pod["metadata"].setdefault("annotations", {})[COMPLETION_INDEX] = str(index)
            pod["metadata"].setdefault("labels", {})[COMPLETION_INDEX] = str(index)
            pod["spec"]["hostname"] = f"{name_of(job)}-{index}"
            env = {"name": "JOB_COMPLETION_INDEX", "valueFrom": {"fieldRef": {
                "fieldPath": f"metadata.annotations['{COMPLETION_INDEX}']"}}}
            for container in pod["spec"].get("containers") or []:
                container["env"] = [*(container.get("env") or []), env]
        return pod

    async def _create_pods(self, key: str, job: Obj, indexes: list[int | None]) -> None:
        self.expectations.expect_creations(key, len(indexes))
        path = PODS.path(namespace_of(job))
        errors: list[ApiError] = []

        async def create(index: int | None) -> None:
            try:
                created = await self.client.create(path, self._pod_for(job, index))
            except ApiError as exc:
                self.expectations.creation_observed(key)
                if not is_namespace_terminating(exc):
                    self.recorder.record(job, "Warning", "FailedCreate", f"Error creating: {exc.message}")
                    errors.append(exc)
                return
            self.recorder.record(job, "Normal", "SuccessfulCreate", f"Created pod: {name_of(created)}")

        await asyncio.gather(*(create(i) for i in indexes))
        if errors:
            raise errors[0]

    async def _delete_pods(self, key: str, job: Obj, pods: list[Obj]) -> None:
        if not pods:
            return
        self.expectations.expect_deletions(key, [key_of(p) for p in pods])

        async def delete(pod: Obj) -> None:
            try:
                await self.client.delete(PODS.path_of(pod))
            except ApiError as exc:
                self.expectations.deletion_observed(key, key_of(pod))
                if not exc.not_found:
                    raise
                return
            self.recorder.record(job, "Normal", "SuccessfulDelete", f"Deleted pod: {name_of(pod)}")

        await asyncio.gather(*(delete(p) for p in pods))

    async def _remove_finalizers(self, pods: list[Obj]) -> None:
        async def remove(pod: Obj) -> None:
            remaining = [f for f in finalizers_of(pod) if f != TRACKING_FINALIZER]
            patch = {"metadata": {"finalizers": remaining or None, "resourceVersion": meta(pod).get("resourceVersion")}}
            try:
                await self.client.patch(PODS.path_of(pod), patch)
            except ApiError as exc:
                if not exc.not_found:
                    raise

        await asyncio.gather(*(remove(p) for p in pods))

    async def _write_status(self, job: Obj, status: Obj) -> Obj:
        stored = await put_status(self.client, JOBS, job, status)
        job["metadata"] = stored["metadata"]
        job["status"] = stored.get("status") or {}
        return copy(job["status"])

    async def _release_orphan(self, pod_key: str) -> None:
        pod = self.pods.get(pod_key)
        if pod is None or TRACKING_FINALIZER not in finalizers_of(pod) or self._owner_key(pod) is not None:
            return
        ref = controller_of(pod) or {}
        namespace, _ = split_key(pod_key)
        try:
            owner = await self.client.get(JOBS.path(namespace, str(ref.get("name"))))
        except ApiError as exc:
            if not exc.not_found:
                raise
            owner = None
        if owner is None or uid_of(owner) != ref.get("uid") or finished_condition(owner) is not None:
            await self._remove_finalizers([pod])
