"""LimitRanger admission (``--enable-admission-plugins=LimitRanger``, on by default).

Applies the LimitRange objects of the pod's namespace:

* defaults (mutating, new pods): a container (or init container) without a request or limit for
  a resource gets the LimitRange's ``defaultRequest`` / ``default`` (LimitRange defaulting fills
  those from ``max`` and ``min`` when unset). The pod is annotated
  ``kubernetes.io/limit-ranger: "LimitRanger plugin set: cpu, memory request for container web;
  cpu limit for container web"``, as kube does;
* bounds (validating, new pods and persistent volume claims): per ``Container`` and per ``Pod``
  (the sum of its containers, at least its largest init container): ``min`` requests, ``max``
  limits and ``maxLimitRequestRatio``; per ``PersistentVolumeClaim``: min/max storage request.
  Violations are one 403 listing them all: ``pods "web" is forbidden: maximum cpu usage per
  Container is 1, but limit is 2``.

Pod updates are not checked (containers' resources cannot change that way). LimitRanges are read
from the watch cache: a new one applies from the next request the cache has seen it for
(milliseconds), as kube's informer-fed plugin does.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from fractions import Fraction
from typing import TYPE_CHECKING, Any

from kapi import AdmissionRequest, Operation, admissionkit, hookimpl

if TYPE_CHECKING:
    from kapi import App

ALIASES = ("LimitRanger",)
ANNOTATION = "kubernetes.io/limit-ranger"

Obj = dict[str, Any]


def _items(ranges: list[Obj], kind: str) -> list[Obj]:
    return [item for lr in ranges for item in (lr.get("spec") or {}).get("limits") or []
            if isinstance(item, dict) and item.get("type") == kind]


def _merge(container: Obj, limits: Mapping[str, Any], requests: Mapping[str, Any], label: str) -> tuple[Obj, list[str]]:
    """``mergeContainerResources``: the container with missing defaults set, and the annotation parts."""
    resources = dict(container.get("resources") or {})
    have_limits, have_requests = dict(resources.get("limits") or {}), dict(resources.get("requests") or {})
    set_limits = sorted(k for k in limits if k not in have_limits)
    set_requests = sorted(k for k in requests if k not in have_requests)
    notes = []
    if set_requests:
        have_requests.update({k: requests[k] for k in set_requests})
        resources["requests"] = have_requests
        notes.append(f"{', '.join(set_requests)} request for {label} {container.get('name', '')}")
    if set_limits:
        have_limits.update({k: limits[k] for k in set_limits})
        resources["limits"] = have_limits
        notes.append(f"{', '.join(set_limits)} limit for {label} {container.get('name', '')}")
    return ({**container, "resources": resources} if notes else container), notes


def apply_defaults(pod: Obj, ranges: list[Obj]) -> Obj | None:
    """The pod with the LimitRanges' container defaults merged in, or None if nothing was missing."""
    items = _items(ranges, "Container")
    if not items:
        return None
    spec = dict(pod.get("spec") or {})
    notes: list[str] = []
    for item in items:
        limits, requests = item.get("default") or {}, item.get("defaultRequest") or {}
        for field, label in (("containers", "container"), ("initContainers", "init container")):
            merged = []
            for container in spec.get(field) or []:
                if isinstance(container, dict):
                    container, added = _merge(container, limits, requests, label)
                    notes.extend(added)
                merged.append(container)
            if field in spec:
                spec[field] = merged
    if not notes:
        return None
    meta = dict(pod.get("metadata") or {})
    meta["annotations"] = {**(meta.get("annotations") or {}), ANNOTATION: "LimitRanger plugin set: " + "; ".join(notes)}
    return {**pod, "metadata": meta, "spec": spec}


def _quantity(values: Mapping[str, Any], name: str) -> Fraction | None:
    try:
        return admissionkit.parse_quantity(values[name]) if name in values else None
    except ValueError:
        return None


def _min(kind: str, name: str, bound: Any, requests: Mapping[str, Any], limits: Mapping[str, Any]) -> str | None:
    enforced, request, limit = admissionkit.parse_quantity(bound), _quantity(requests, name), _quantity(limits, name)
    if request is None:
        return f"minimum {name} usage per {kind} is {bound}.  No request is specified"
    if request < enforced:
        return f"minimum {name} usage per {kind} is {bound}, but request is {requests[name]}"
    if limit is not None and limit < enforced:
        return f"minimum {name} usage per {kind} is {bound}, but limit is {limits[name]}"
    return None


def _max(kind: str, name: str, bound: Any, requests: Mapping[str, Any], limits: Mapping[str, Any]) -> str | None:
    enforced, request, limit = admissionkit.parse_quantity(bound), _quantity(requests, name), _quantity(limits, name)
    if limit is None:
        return f"maximum {name} usage per {kind} is {bound}.  No limit is specified"
    if limit > enforced:
        return f"maximum {name} usage per {kind} is {bound}, but limit is {limits[name]}"
    if request is not None and request > enforced:
        return f"maximum {name} usage per {kind} is {bound}, but request is {requests[name]}"
    return None


def _ratio(kind: str, name: str, bound: Any, requests: Mapping[str, Any], limits: Mapping[str, Any]) -> str | None:
    request, limit = _quantity(requests, name), _quantity(limits, name)
    if not request:
        return f"{name} max limit to request ratio per {kind} is {bound}, but no request is specified or request is 0"
    if not limit:
        return f"{name} max limit to request ratio per {kind} is {bound}, but no limit is specified or limit is 0"
    observed = limit / request
    if observed > admissionkit.parse_quantity(bound):
        return f"{name} max limit to request ratio per {kind} is {bound}, but provided ratio is {float(observed):f}"
    return None


def _check(item: Obj, kind: str, requests: Mapping[str, Any], limits: Mapping[str, Any]) -> list[str]:
    errors = []
    for field, check in (("min", _min), ("max", _max), ("maxLimitRequestRatio", _ratio)):
        for name, bound in sorted((item.get(field) or {}).items()):
            message = check(kind, name, bound, requests, limits)
            if message:
                errors.append(message)
    return errors


def _pod_totals(spec: Obj, which: str) -> dict[str, str]:
    total, binary = admissionkit.pod_totals(spec, which)
    return {name: admissionkit.format_quantity(value, name in binary) for name, value in total.items()}


def pod_violations(pod: Obj, ranges: list[Obj]) -> list[str]:
    """Every bound the pod breaks, in kube's words."""
    spec = pod.get("spec") or {}
    errors = []
    for item in _items(ranges, "Container"):
        for container in [*(spec.get("containers") or []), *(spec.get("initContainers") or [])]:
            resources = container.get("resources") or {}
            errors.extend(_check(item, "Container", resources.get("requests") or {}, resources.get("limits") or {}))
    for item in _items(ranges, "Pod"):
        errors.extend(_check(item, "Pod", _pod_totals(spec, "requests"), _pod_totals(spec, "limits")))
    return errors


def claim_violations(claim: Obj, ranges: list[Obj]) -> list[str]:
    """Min/max storage requests of a PersistentVolumeClaim."""
    requests = ((claim.get("spec") or {}).get("resources") or {}).get("requests") or {}
    errors = []
    for item in _items(ranges, "PersistentVolumeClaim"):
        for name, bound in sorted((item.get("min") or {}).items()):
            message = _min("PersistentVolumeClaim", name, bound, requests, {})
            if message:
                errors.append(message)
        for name, bound in sorted((item.get("max") or {}).items()):
            request = _quantity(requests, name)
            if request is None:
                errors.append(f"maximum {name} usage per PersistentVolumeClaim is {bound}.  No request is specified")
            elif request > admissionkit.parse_quantity(bound):
                errors.append(f"maximum {name} usage per PersistentVolumeClaim is {bound}, but request is "
                              f"{requests[name]}")
    return errors


def _ranges(app: App, namespace: str) -> list[Obj]:
    return admissionkit.objects.cached_list(app, "", "v1", "limitranges", namespace)


def _is(request: AdmissionRequest, resource: str) -> bool:
    return request.resource == resource and not request.api_group and not request.subresource \
        and request.obj is not None


@hookimpl
def kapi_mutate_admission(request: AdmissionRequest, app: App) -> Obj | None:
    """Fill in container defaults on new pods."""
    if request.operation is not Operation.CREATE or not _is(request, "pods"):
        return None
    ranges = _ranges(app, request.namespace)
    return apply_defaults(dict(request.obj or {}), ranges) if ranges else None


@hookimpl
def kapi_validate_admission(request: AdmissionRequest, app: App) -> None:
    """Enforce min, max and ratios on new pods and on claims."""
    check: Callable[[Obj, list[Obj]], list[str]]
    if _is(request, "pods") and request.operation is Operation.CREATE:
        check = pod_violations
    elif _is(request, "persistentvolumeclaims") and request.operation in (Operation.CREATE, Operation.UPDATE):
        check = claim_violations
    else:
        return
    ranges = _ranges(app, request.namespace)
    errors = check(dict(request.obj or {}), ranges) if ranges else []
    if errors:
        raise admissionkit.forbidden(request, errors[0] if len(errors) == 1 else f"[{', '.join(errors)}]")
