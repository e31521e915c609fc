"""Deployment rollout arithmetic (``pkg/controller/deployment/util``), pure functions.

* ``template_hash``: the ``pod-template-hash`` of a pod template (FNV-32a of its canonical JSON,
  plus the collision count, encoded with kube's ``SafeEncodeString`` alphabet).
* ``equal_ignore_hash``: whether a ReplicaSet's template is a Deployment's template.
* ``fenceposts``: maxSurge (rounded up) and maxUnavailable (rounded down), never both 0.
* ``new_rs_replicas``, counts over ReplicaSets, ``scale_fraction`` (proportional scaling).
* revision annotations (``deployment.kubernetes.io/revision`` and ``revision-history``) and the
  ``desired-replicas`` / ``max-replicas`` annotations.
* ``deployment_status`` with the ``Available`` condition; ``complete``, ``progressing`` and
  ``timed_out`` — what ``syncRolloutStatus`` decides from.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping
from typing import Any

import orjson

from kapi.components.controllers.objects import (
    annotations_of,
    conditions_of,
    copy,
    find_condition,
    int_or_percent,
    meta,
    parse_time,
    rfc3339,
    set_condition,
    spec_of,
    status_of,
)

Obj = dict[str, Any]

HASH_LABEL = "pod-template-hash"
REVISION = "deployment.kubernetes.io/revision"
REVISION_HISTORY = "deployment.kubernetes.io/revision-history"
DESIRED_REPLICAS = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"
ROLLBACK_TO = "deprecated.deployment.rollback.to"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
SKIPPED_ANNOTATIONS = frozenset({LAST_APPLIED, REVISION, REVISION_HISTORY, DESIRED_REPLICAS, MAX_REPLICAS,
                                 ROLLBACK_TO})
MAX_REVISION_HISTORY_CHARS = 2000
NO_PROGRESS_DEADLINE = 2147483647

# condition reasons (deploymentutil)
NEW_RS_CREATED = "NewReplicaSetCreated"
FOUND_NEW_RS = "FoundNewReplicaSet"
RS_UPDATED = "ReplicaSetUpdated"
NEW_RS_AVAILABLE = "NewReplicaSetAvailable"
TIMED_OUT = "ProgressDeadlineExceeded"
PAUSED = "DeploymentPaused"
RESUMED = "DeploymentResumed"
MIN_AVAILABLE = "MinimumReplicasAvailable"
MIN_UNAVAILABLE = "MinimumReplicasUnavailable"

SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"

# ---------------------------------------------------------------------------------------------
# hashing and templates


def _fnv32a(data: bytes, value: int = 0x811C9DC5) -> int:
    for byte in data:
        value = ((value ^ byte) * 0x01000193) & 0xFFFFFFFF
    return value


def safe_encode(text: str) -> str:
    """``rand.SafeEncodeString``: each character mapped into an alphabet without vowels."""
    return "".join(SAFE_ALPHABET[ord(c) % len(SAFE_ALPHABET)] for c in text)


def template_hash(template: Mapping[str, Any], collision_count: int | None = None) -> str:
    """``controller.ComputeHash``: the ``pod-template-hash`` label value of ``template``."""
    value = _fnv32a(orjson.dumps(template, option=orjson.OPT_SORT_KEYS))
    if collision_count is not None:
        value = _fnv32a((collision_count & 0xFFFFFFFF).to_bytes(8, "little"), value)
    return safe_encode(str(value))


def _without_hash(template: Any) -> Obj:
    result = copy(template) if isinstance(template, dict) else {}
    labels = (result.get("metadata") or {}).get("labels")
    if isinstance(labels, dict):
        labels.pop(HASH_LABEL, None)
        if not labels:
            result["metadata"].pop("labels")
    return result


def equal_ignore_hash(a: Any, b: Any) -> bool:
    """``EqualIgnoreHash``: the templates are equal once the hash label is dropped."""
    return _without_hash(a) == _without_hash(b)


# ---------------------------------------------------------------------------------------------
# replica arithmetic


def replicas(obj: Mapping[str, Any]) -> int:
    """``spec.replicas`` (0 when unset)."""
    return int(spec_of(obj).get("replicas") or 0)


def is_rolling(deployment: Mapping[str, Any]) -> bool:
    return (spec_of(deployment).get("strategy") or {}).get("type", "RollingUpdate") != "Recreate"


def fenceposts(deployment: Mapping[str, Any]) -> tuple[int, int]:
    """``ResolveFenceposts``: (maxSurge, maxUnavailable); both 0 becomes unavailable 1."""
    rolling = (spec_of(deployment).get("strategy") or {}).get("rollingUpdate") or {}
    desired = replicas(deployment)
    surge = int_or_percent(rolling.get("maxSurge", "25%"), desired, round_up=True)
    unavailable = int_or_percent(rolling.get("maxUnavailable", "25%"), desired, round_up=False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, unavailable


def max_surge(deployment: Mapping[str, Any]) -> int:
    return fenceposts(deployment)[0] if is_rolling(deployment) else 0


def max_unavailable(deployment: Mapping[str, Any]) -> int:
    """``MaxUnavailable``: 0 for Recreate or no replicas, never more than the replicas."""
    desired = replicas(deployment)
    if not is_rolling(deployment) or desired == 0:
        return 0
    return min(fenceposts(deployment)[1], desired)


def total_replicas(rss: Iterable[Mapping[str, Any]]) -> int:
    """``GetReplicaCountForReplicaSets``: sum of ``spec.replicas``."""
    return sum(replicas(rs) for rs in rss)


def _status_sum(rss: Iterable[Mapping[str, Any]], field: str) -> int:
    return sum(int(status_of(rs).get(field) or 0) for rs in rss)


def actual_replicas(rss: Iterable[Mapping[str, Any]]) -> int:
    return _status_sum(rss, "replicas")


def available_replicas(rss: Iterable[Mapping[str, Any]]) -> int:
    return _status_sum(rss, "availableReplicas")


def new_rs_replicas(deployment: Mapping[str, Any], all_rss: list[Obj], new_rs: Mapping[str, Any]) -> int:
    """``NewRSNewReplicas``: how far the new ReplicaSet may scale up now."""
    desired = replicas(deployment)
    if not is_rolling(deployment):
        return desired
    current = total_replicas(all_rss)
    max_total = desired + fenceposts(deployment)[0]
    if current >= max_total:
        return replicas(new_rs)
    return replicas(new_rs) + min(max_total - current, desired - replicas(new_rs))


def _round_half_away(value: float) -> int:
    return int(value + 0.5) if value >= 0 else -int(-value + 0.5)


def scale_fraction(rs: Mapping[str, Any], deployment: Mapping[str, Any]) -> int:
    """``getReplicaSetFraction``: the change of ``rs`` in a proportional scale of the deployment."""
    desired = replicas(deployment)
    if desired == 0:
        return -replicas(rs)
    target = desired + max_surge(deployment)
    annotated = annotations_of(rs).get(MAX_REPLICAS)
    try:
        previous = int(annotated) if annotated is not None else int(status_of(deployment).get("replicas") or 0)
    except ValueError:
        previous = int(status_of(deployment).get("replicas") or 0)
    if previous <= 0:
        return 0
    return _round_half_away(replicas(rs) * target / previous) - replicas(rs)


def proportion(rs: Mapping[str, Any], deployment: Mapping[str, Any], to_add: int, added: int) -> int:
    """``GetProportion``: the share of ``to_add`` that goes to ``rs``."""
    if replicas(rs) == 0 or to_add == 0 or to_add == added:
        return 0
    fraction = scale_fraction(rs, deployment)
    allowed = to_add - added
    return min(fraction, allowed) if to_add > 0 else max(fraction, allowed)


def is_saturated(deployment: Mapping[str, Any], rs: Mapping[str, Any] | None) -> bool:
    """``IsSaturated``: the new ReplicaSet runs every replica and all are available."""
    if rs is None:
        return False
    desired = replicas(deployment)
    annotated = annotations_of(rs).get(DESIRED_REPLICAS)
    return (annotated == str(desired) and int(status_of(rs).get("availableReplicas") or 0) == desired
            and replicas(rs) == desired)


# ---------------------------------------------------------------------------------------------
# annotations


def revision_of(obj: Mapping[str, Any]) -> int:
    try:
        return int(annotations_of(obj).get(REVISION) or 0)
    except ValueError:
        return 0


def set_replicas_annotations(rs: Obj, desired: int, maximum: int) -> bool:
    """``SetReplicasAnnotations`` in place; True when they changed."""
    annotations = rs.setdefault("metadata", {}).setdefault("annotations", {})
    changed = False
    for key, value in ((DESIRED_REPLICAS, str(desired)), (MAX_REPLICAS, str(maximum))):
        if annotations.get(key) != value:
            annotations[key] = value
            changed = True
    return changed


def copy_deployment_annotations(deployment: Mapping[str, Any], rs: Obj) -> bool:
    """``copyDeploymentAnnotationsToReplicaSet`` in place; True when something changed."""
    annotations = rs.setdefault("metadata", {}).setdefault("annotations", {})
    changed = False
    for key, value in annotations_of(deployment).items():
        if key in SKIPPED_ANNOTATIONS or annotations.get(key) == value:
            continue
        annotations[key] = value
        changed = True
    return changed


def set_new_rs_annotations(deployment: Mapping[str, Any], rs: Obj, new_revision: int, exists: bool) -> bool:
    """``SetNewReplicaSetAnnotations`` in place: copied annotations, the revision (only raised),
    the revision history on a rollback, and the replica annotations of a new ReplicaSet."""
    changed = copy_deployment_annotations(deployment, rs)
    annotations = rs["metadata"].setdefault("annotations", {})
    old_text = annotations.get(REVISION)
    old = revision_of(rs)
    if old < new_revision:
        annotations[REVISION] = str(new_revision)
        changed = True
        if old_text:
            history = [h for h in str(annotations.get(REVISION_HISTORY) or "").split(",") if h]
            history.append(old_text)
            while len(",".join(history)) > MAX_REVISION_HISTORY_CHARS and len(history) > 1:
                history.pop(0)
            annotations[REVISION_HISTORY] = ",".join(history)
    if not exists:
        changed = set_replicas_annotations(rs, replicas(deployment), replicas(deployment) + max_surge(deployment)) \
            or changed
    return changed


# ---------------------------------------------------------------------------------------------
# status and conditions


def condition(kind: str, status: str, reason: str, message: str, now: datetime.datetime) -> Obj:
    """``NewDeploymentCondition``."""
    stamp = rfc3339(now)
    return {"type": kind, "status": status, "lastUpdateTime": stamp, "lastTransitionTime": stamp, "reason": reason,
            "message": message}


def deployment_status(deployment: Mapping[str, Any], all_rss: list[Obj], new_rs: Mapping[str, Any] | None,
                      now: datetime.datetime) -> Obj:
    """``calculateStatus``: counts over the ReplicaSets and the Available condition (zero counts
    are omitted, as Go's omitempty does)."""
    available = available_replicas(all_rss)
    status: Obj = {
        "observedGeneration": int(meta(deployment).get("generation") or 0),
        "replicas": actual_replicas(all_rss),
        "updatedReplicas": actual_replicas([new_rs] if new_rs is not None else []),
        "readyReplicas": _status_sum(all_rss, "readyReplicas"),
        "availableReplicas": available,
        "unavailableReplicas": max(0, total_replicas(all_rss) - available),
    }
    status = {k: v for k, v in status.items() if v}
    collisions = status_of(deployment).get("collisionCount")
    if collisions is not None:
        status["collisionCount"] = collisions
    conditions = [dict(c) for c in conditions_of(deployment)]
    if available >= replicas(deployment) - max_unavailable(deployment):
        set_condition(conditions, condition("Available", "True", MIN_AVAILABLE, "Deployment has minimum "
                                            "availability.", now))
    else:
        set_condition(conditions, condition("Available", "False", MIN_UNAVAILABLE, "Deployment does not have "
                                            "minimum availability.", now))
    status["conditions"] = conditions
    return status


def has_progress_deadline(deployment: Mapping[str, Any]) -> bool:
    deadline = spec_of(deployment).get("progressDeadlineSeconds")
    return deadline is not None and int(deadline) != NO_PROGRESS_DEADLINE


def complete(deployment: Mapping[str, Any], status: Mapping[str, Any]) -> bool:
    """``DeploymentComplete``: every replica updated and available, and the spec observed."""
    desired = replicas(deployment)
    return (int(status.get("updatedReplicas") or 0) == desired and int(status.get("replicas") or 0) == desired
            and int(status.get("availableReplicas") or 0) == desired
            and int(status.get("observedGeneration") or 0) >= int(meta(deployment).get("generation") or 0))


def progressing(deployment: Mapping[str, Any], status: Mapping[str, Any]) -> bool:
    """``DeploymentProgressing``: more updated/ready/available pods, or fewer old ones."""
    old = status_of(deployment)

    def count(source: Mapping[str, Any], key: str) -> int:
        return int(source.get(key) or 0)

    old_old = count(old, "replicas") - count(old, "updatedReplicas")
    new_old = count(status, "replicas") - count(status, "updatedReplicas")
    return (count(status, "updatedReplicas") > count(old, "updatedReplicas") or new_old < old_old
            or count(status, "readyReplicas") > count(old, "readyReplicas")
            or count(status, "availableReplicas") > count(old, "availableReplicas"))


def deadline_left(deployment: Mapping[str, Any], status: Mapping[str, Any], now: datetime.datetime) -> float | None:
    """Seconds until the progress deadline passes (<= 0: timed out); None when not applicable."""
    if not has_progress_deadline(deployment):
        return None
    current = find_condition(status.get("conditions") or [], "Progressing")
    if current is None or current.get("reason") == NEW_RS_AVAILABLE:
        return None
    if current.get("reason") == TIMED_OUT:
        return 0.0
    since = parse_time(str(current.get("lastUpdateTime") or ""))
    if since is None:
        return None
    deadline = int(spec_of(deployment).get("progressDeadlineSeconds") or 0)
    return (since + datetime.timedelta(seconds=deadline) - now).total_seconds()


def labels_with_hash(labels: Mapping[str, str], value: str) -> dict[str, str]:
    return {**labels, HASH_LABEL: value}

