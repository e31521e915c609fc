"""Which requests a webhook or an admission policy applies to (k8s.io/apiserver's ``rules.Matcher``
and ``namespace``/``object`` matchers).

A rule matches on operation, API group, version, resource (``pods``, ``pods/status``, ``*``,
``*/status``, ``pods/*``) and scope (``Cluster``, ``Namespaced``, ``*``). A namespace selector
applies to namespaced requests (and to namespaces themselves, by their own labels); an object
selector matches the new or the old object's labels. Requests on the admission configuration
objects themselves are exempt, as in kube (a broken webhook must not lock itself in).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import orjson

from kapi import errors
from kapi.admissionkit.objects import fetch
from kapi.selectors import EVERYTHING, LabelSelector, from_label_selector_dict
from kapi.types import AdmissionRequest, Operation

if TYPE_CHECKING:
    from kapi.app import App

EXEMPT_RESOURCES = frozenset({
    ("admissionregistration.k8s.io", "mutatingwebhookconfigurations"),
    ("admissionregistration.k8s.io", "validatingwebhookconfigurations"),
    ("admissionregistration.k8s.io", "validatingadmissionpolicies"),
    ("admissionregistration.k8s.io", "validatingadmissionpolicybindings"),
})


def is_exempt(request: AdmissionRequest) -> bool:
    """True for requests on the admission configuration objects (never sent to webhooks/policies)."""
    return (request.api_group, request.resource) in EXEMPT_RESOURCES


def _has(values: Any, wanted: str) -> bool:
    return isinstance(values, list) and ("*" in values or wanted in values)


def _resource_matches(resources: Any, resource: str, subresource: str) -> bool:
    for entry in resources if isinstance(resources, list) else ():
        res, _, sub = str(entry).partition("/")
        if (res in ("*", resource)) and (sub in ("*", subresource)):
            return True
    return False


def _scope_matches(scope: Any, request: AdmissionRequest) -> bool:
    if scope in (None, "", "*"):
        return True
    if scope == "Cluster":
        return not request.namespace
    if scope == "Namespaced":
        return request.resource != "namespaces" and bool(request.namespace)
    return False


def rule_matches(rule: Mapping[str, Any], request: AdmissionRequest, *, check_operation: bool = True) -> bool:
    """One ``RuleWithOperations`` against a request."""
    return ((not check_operation or _has(rule.get("operations"), request.operation.value))
            and _has(rule.get("apiGroups"), request.api_group)
            and _has(rule.get("apiVersions"), request.api_version)
            and _resource_matches(rule.get("resources"), request.resource, request.subresource)
            and _scope_matches(rule.get("scope"), request))


def any_rule_matches(rules: Iterable[Mapping[str, Any]], request: AdmissionRequest) -> bool:
    return any(rule_matches(rule, request) for rule in rules if isinstance(rule, Mapping))


@functools.lru_cache(maxsize=1024)
def _parse_selector(text: bytes) -> LabelSelector:
    return from_label_selector_dict(orjson.loads(text))


def label_selector(selector: Mapping[str, Any] | None) -> LabelSelector:
    """A parsed ``metav1.LabelSelector`` (None and ``{}`` select everything here, as the defaulted
    selectors of webhooks and policies do). A bad selector is a 500: the configuration is broken."""
    if not selector:
        return EVERYTHING
    try:
        return _parse_selector(orjson.dumps(selector, option=orjson.OPT_SORT_KEYS))
    except ValueError as exc:
        raise errors.internal(f"invalid label selector {dict(selector)}: {exc}") from None


def _labels(obj: Mapping[str, Any] | None) -> Mapping[str, str] | None:
    if not isinstance(obj, Mapping):
        return None
    labels = (obj.get("metadata") or {}).get("labels")
    return labels if isinstance(labels, Mapping) else {}


async def namespace_labels(app: App, request: AdmissionRequest) -> Mapping[str, str] | None:
    """The labels a namespace selector is matched against, or None when it does not apply
    (cluster-scoped requests other than namespaces)."""
    if request.resource == "namespaces" and not request.subresource:
        source = request.obj if request.operation in (Operation.CREATE, Operation.UPDATE) else request.old_obj
        if source is not None:
            return _labels(source)
    name = request.namespace or (request.name if request.resource == "namespaces" else "")
    if not name:
        return None
    namespace = await fetch(app, "", "v1", "namespaces", "", name)
    return _labels(namespace) or {}


async def selectors_match(app: App, request: AdmissionRequest, namespace_selector: Mapping[str, Any] | None,
                          object_selector: Mapping[str, Any] | None) -> bool:
    """``namespaceSelector`` and ``objectSelector`` of a webhook or of policy match resources."""
    objects = label_selector(object_selector)
    if not objects.empty and not (objects.matches(_labels(request.obj)) if request.obj is not None else False) \
            and not (objects.matches(_labels(request.old_obj)) if request.old_obj is not None else False):
        return False
    namespaces = label_selector(namespace_selector)
    if namespaces.empty:
        return True
    labels = await namespace_labels(app, request)
    return labels is None or namespaces.matches(labels)
