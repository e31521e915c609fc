"""Small pure helpers over API objects shared by the controllers.

Metadata access, owner references (``metav1.GetControllerOf`` & co.), conditions with
kube's "keep lastTransitionTime while the status holds" rule, pod readiness and availability
(``podutil.IsPodReady`` / ``IsPodAvailable``), label selectors (parsed once per distinct
selector), timestamps, and the pod a controller creates from its template.
"""

from __future__ import annotations

import datetime
import functools
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import orjson

from kapi.patch import deep_copy
from kapi.selectors import LabelSelector, from_label_selector_dict
from kapi.timestamps import rfc3339 as rfc3339  # re-exported for the controllers

Obj = dict[str, Any]

# ---------------------------------------------------------------------------------------------
# metadata


def meta(obj: Mapping[str, Any]) -> Obj:
    """``obj["metadata"]`` (an empty dict when missing; read only)."""
    value = obj.get("metadata")
    return value if isinstance(value, dict) else {}


def name_of(obj: Mapping[str, Any]) -> str:
    return str(meta(obj).get("name") or "")


def namespace_of(obj: Mapping[str, Any]) -> str:
    return str(meta(obj).get("namespace") or "")


def uid_of(obj: Mapping[str, Any]) -> str:
    return str(meta(obj).get("uid") or "")


def key_of(obj: Mapping[str, Any]) -> str:
    """The store key: ``namespace/name`` or ``name``."""
    namespace = namespace_of(obj)
    return f"{namespace}/{name_of(obj)}" if namespace else name_of(obj)


def split_key(key: str) -> tuple[str, str]:
    """``namespace/name`` -> (namespace, name); ``name`` -> ("", name)."""
    namespace, sep, name = key.partition("/")
    return (namespace, name) if sep else ("", key)


def labels_of(obj: Mapping[str, Any]) -> dict[str, str]:
    value = meta(obj).get("labels")
    return value if isinstance(value, dict) else {}


def annotations_of(obj: Mapping[str, Any]) -> dict[str, str]:
    value = meta(obj).get("annotations")
    return value if isinstance(value, dict) else {}


def is_deleting(obj: Mapping[str, Any]) -> bool:
    """True once ``metadata.deletionTimestamp`` is set."""
    return bool(meta(obj).get("deletionTimestamp"))


def finalizers_of(obj: Mapping[str, Any]) -> list[str]:
    value = meta(obj).get("finalizers")
    return [str(f) for f in value] if isinstance(value, list) else []


def spec_of(obj: Mapping[str, Any]) -> Obj:
    value = obj.get("spec")
    return value if isinstance(value, dict) else {}


def status_of(obj: Mapping[str, Any]) -> Obj:
    value = obj.get("status")
    return value if isinstance(value, dict) else {}


def copy(obj: Obj) -> Obj:
    """A deep copy (objects from an informer store are shared: never change them in place)."""
    result: Obj = deep_copy(obj)
    return result


# ---------------------------------------------------------------------------------------------
# owner references


def owner_references(obj: Mapping[str, Any]) -> list[Obj]:
    value = meta(obj).get("ownerReferences")
    return [r for r in value if isinstance(r, dict)] if isinstance(value, list) else []


def controller_of(obj: Mapping[str, Any]) -> Obj | None:
    """The owner reference with ``controller: true`` (``metav1.GetControllerOf``), or None."""
    for ref in owner_references(obj):
        if ref.get("controller") is True:
            return ref
    return None


def owner_key(obj: Mapping[str, Any], ref: Mapping[str, Any] | None, kind: str,
              lookup: Callable[[str], Obj | None]) -> str | None:
    """``namespace/name`` of the owner ``ref`` names when it is a ``kind`` that ``lookup`` (a cache's
    ``get``) finds with the same uid - an owner recreated under the same name is not the owner - else None."""
    if ref is None or ref.get("kind") != kind:
        return None
    key = f"{namespace_of(obj)}/{ref.get('name')}"
    owner = lookup(key)
    return key if owner is not None and uid_of(owner) == ref.get("uid") else None


def controller_uid(obj: Mapping[str, Any]) -> str:
    ref = controller_of(obj)
    return str(ref.get("uid") or "") if ref is not None else ""


def owner_reference(owner: Mapping[str, Any], api_version: str, kind: str, *, controller: bool = True,
                    block_owner_deletion: bool = True) -> Obj:
    """``metav1.NewControllerRef``: a reference to ``owner``."""
    return {"apiVersion": api_version, "kind": kind, "name": name_of(owner), "uid": uid_of(owner),
            "controller": controller, "blockOwnerDeletion": block_owner_deletion}


# ---------------------------------------------------------------------------------------------
# time


def utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)




@functools.lru_cache(maxsize=4096)
def parse_time(value: str) -> datetime.datetime | None:
    """An RFC 3339 timestamp as an aware datetime; None when empty or unparsable."""
    if not value:
        return None
    try:
        parsed = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=datetime.UTC)


# ---------------------------------------------------------------------------------------------
# conditions


def conditions_of(obj: Mapping[str, Any]) -> list[Obj]:
    value = status_of(obj).get("conditions")
    return [c for c in value if isinstance(c, dict)] if isinstance(value, list) else []


def find_condition(conditions: Iterable[Mapping[str, Any]], kind: str) -> Obj | None:
    for condition in conditions:
        if condition.get("type") == kind:
            return dict(condition)
    return None


def set_condition(conditions: list[Obj], condition: Obj, *, update_unchanged: bool = False) -> bool:
    """Put ``condition`` into ``conditions`` (in place), keeping ``lastTransitionTime`` when the
    status did not change. An existing condition with the same status and reason is left alone
    unless ``update_unchanged`` (then its message/lastUpdateTime are refreshed). True when the list
    changed."""
    for i, current in enumerate(conditions):
        if current.get("type") != condition.get("type"):
            continue
        same_status = current.get("status") == condition.get("status")
        if same_status and current.get("reason") == condition.get("reason") and not update_unchanged:
            return False
        new = dict(condition)
        if same_status and current.get("lastTransitionTime"):
            new["lastTransitionTime"] = current["lastTransitionTime"]
        if new == current:
            return False
        conditions[i] = new
        return True
    conditions.append(dict(condition))
    return True


def remove_condition(conditions: list[Obj], kind: str) -> bool:
    """Drop conditions of type ``kind`` (in place); True when one was there."""
    before = len(conditions)
    conditions[:] = [c for c in conditions if c.get("type") != kind]
    return len(conditions) != before


# ---------------------------------------------------------------------------------------------
# pods


def pod_phase(pod: Mapping[str, Any]) -> str:
    return str(status_of(pod).get("phase") or "")


def is_pod_terminal(pod: Mapping[str, Any]) -> bool:
    return pod_phase(pod) in ("Succeeded", "Failed")


def is_pod_active(pod: Mapping[str, Any]) -> bool:
    """``controller.IsPodActive``: not finished and not being deleted."""
    return not is_pod_terminal(pod) and not is_deleting(pod)


def pod_ready_condition(pod: Mapping[str, Any]) -> Obj | None:
    return find_condition(conditions_of(pod), "Ready")


def is_pod_ready(pod: Mapping[str, Any]) -> bool:
    condition = pod_ready_condition(pod)
    return condition is not None and condition.get("status") == "True"


def available_after(pod: Mapping[str, Any], min_ready_seconds: int, now: datetime.datetime) -> float | None:
    """Seconds until a ready pod counts as available (0: it is available), None when not ready."""
    condition = pod_ready_condition(pod)
    if condition is None or condition.get("status") != "True":
        return None
    if min_ready_seconds <= 0:
        return 0.0
    since = parse_time(str(condition.get("lastTransitionTime") or ""))
    if since is None:
        return 0.0
    left = (since + datetime.timedelta(seconds=min_ready_seconds) - now).total_seconds()
    return max(0.0, left)


def is_pod_available(pod: Mapping[str, Any], min_ready_seconds: int, now: datetime.datetime) -> bool:
    """``podutil.IsPodAvailable``: ready for at least ``min_ready_seconds``."""
    return available_after(pod, min_ready_seconds, now) == 0.0


def pod_from_template(template: Mapping[str, Any], owner: Mapping[str, Any], owner_ref: Obj,
                      generate_name: str) -> Obj:
    """``controller.GetPodFromTemplate``: a new pod from a pod template, owned by ``owner``."""
    template_meta = meta(template)
    pod_meta: Obj = {"generateName": generate_name, "namespace": namespace_of(owner), "ownerReferences": [owner_ref]}
    for field in ("labels", "annotations", "finalizers"):
        value = template_meta.get(field)
        if value:
            pod_meta[field] = deep_copy(value)
    spec = template.get("spec")
    return {"apiVersion": "v1", "kind": "Pod", "metadata": pod_meta,
            "spec": deep_copy(spec) if isinstance(spec, dict) else {}}


# ---------------------------------------------------------------------------------------------
# selectors


@functools.lru_cache(maxsize=4096)
def _parsed_selector(raw: bytes) -> LabelSelector | None:
    try:
        return from_label_selector_dict(orjson.loads(raw))
    except ValueError:
        return None


def label_selector(selector: Any) -> LabelSelector | None:
    """The parsed ``metav1.LabelSelector`` (cached per distinct selector); None when invalid.
    A missing selector parses as the empty selector (matches everything): callers that must
    treat "no selector" as "nothing" check for that first."""
    raw = orjson.dumps(selector if isinstance(selector, dict) else {}, option=orjson.OPT_SORT_KEYS)
    return _parsed_selector(raw)


def selector_matches(selector: Any, labels: Mapping[str, str]) -> bool:
    """True when the (non-empty, valid) selector matches ``labels``."""
    parsed = label_selector(selector)
    return parsed is not None and not parsed.empty and parsed.matches(labels)


def map_selector_matches(selector: Mapping[str, str] | None, labels: Mapping[str, str]) -> bool:
    """A Service-style ``map[string]string`` selector: every pair present (empty matches nothing)."""
    if not selector:
        return False
    return all(labels.get(k) == v for k, v in selector.items())


def int_or_percent(value: Any, total: int, *, round_up: bool) -> int:
    """``intstr.GetScaledValueFromIntOrPercent``: an int, or ``N%`` of ``total`` rounded up or down."""
    if isinstance(value, bool) or value is None:
        return 0
    if isinstance(value, int):
        return value
    text = str(value).strip()
    if text.endswith("%"):
        try:
            percent = int(text[:-1])
        except ValueError:
            return 0
        scaled = percent * total
        return -(-scaled // 100) if round_up else scaled // 100
    try:
        return int(text)
    except ValueError:
        return 0


def is_namespace_active(namespace: Mapping[str, Any] | None) -> bool:
    """A namespace that exists and is not terminating (new content may be created in it)."""
    return namespace is not None and not is_deleting(namespace) and status_of(namespace).get("phase") != "Terminating"
