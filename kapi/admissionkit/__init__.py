"""The admission toolkit: what kapi's admission plugins share, public for third-party ones too.

* ``forbidden(request, reason)`` - the 403 ``AdmissionDenied`` kube's ``admission.NewForbidden``
  builds: ``pods "web" is forbidden: <reason>``;
* ``objects`` - cached/live reads, create-if-absent and guarded (revision-checked) updates;
* ``informer`` - list-then-watch loops for small in-server controllers, and their tasks;
* ``matching`` - webhook/policy rules, namespace and object selectors;
* ``quantities`` / ``format_quantity`` / ``is_binary`` / ``pod_totals`` - exact resource quantities;
* ``SYSTEM_PRIORITY_CLASSES`` / ``system_priority_class`` - the built-in PriorityClasses;
* ``podsecurity`` - the Pod Security Standards checks; ``webhooks`` - AdmissionReview calls.

Plugins import it as ``from kapi import admissionkit`` (a public module of the ``kapi`` package).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kapi.admissionkit import informer, matching, objects, podsecurity, webhooks
from kapi.errors import AdmissionDenied
from kapi.kinds.quantity import parse_quantity
from kapi.kinds.quota import format_quantity, is_binary, pod_totals, quantities
from kapi.kinds.scheduling import SYSTEM_PRIORITY_CLASSES, system_priority_class
from kapi.types import AdmissionRequest

__all__ = ["SYSTEM_PRIORITY_CLASSES", "forbidden", "format_quantity", "informer", "is_binary", "matching",
           "object_name", "objects", "parse_quantity", "pod_totals", "podsecurity", "qualified_resource", "quantities",
           "system_priority_class", "webhooks"]


def qualified_resource(request: AdmissionRequest) -> str:
    """``pods``, or ``deployments.apps`` for a named group (kube's ``GroupResource.String()``)."""
    return f"{request.resource}.{request.api_group}" if request.api_group else request.resource


def object_name(request: AdmissionRequest) -> str:
    """The request's object name, else the object's ``metadata.name`` or ``generateName``."""
    if request.name:
        return request.name
    source: Mapping[str, Any] = request.obj or request.old_obj or {}
    meta = source.get("metadata") or {}
    return str(meta.get("name") or meta.get("generateName") or "")


def forbidden(request: AdmissionRequest, reason: str) -> AdmissionDenied:
    """A 403 worded as kube's ``admission.NewForbidden``: ``<resource> "<name>" is forbidden: <reason>``."""
    name = object_name(request)
    subject = f'{qualified_resource(request)} "{name}"' if name else qualified_resource(request)
    denied = AdmissionDenied(f"{subject} is forbidden: {reason}")
    denied.group, denied.kind, denied.name = request.api_group, request.resource, name
    return denied
