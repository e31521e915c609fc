"""TaintNodesByCondition admission (``--enable-admission-plugins=TaintNodesByCondition``, on by default).

A Node is created with the ``node.kubernetes.io/not-ready:NoSchedule`` taint, so nothing is
scheduled on it before its kubelet reports Ready; the node lifecycle controller removes the taint
once the Ready condition is True (kube's controller-manager does the same). Nodes that already
carry the taint are left alone; updates are never changed.
"""

from __future__ import annotations

from typing import Any

from kapi import AdmissionRequest, Operation, hookimpl

ALIASES = ("TaintNodesByCondition",)
NOT_READY_TAINT = {"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"}


def with_not_ready_taint(node: dict[str, Any]) -> dict[str, Any] | None:
    """The node with the not-ready NoSchedule taint added, or None if it has it."""
    spec = node.get("spec") or {}
    taints = list(spec.get("taints") or [])
    if any(isinstance(t, dict) and t.get("key") == NOT_READY_TAINT["key"] and t.get("effect") == "NoSchedule"
           for t in taints):
        return None
    return {**node, "spec": {**spec, "taints": [*taints, dict(NOT_READY_TAINT)]}}


@hookimpl
def kapi_mutate_admission(request: AdmissionRequest) -> dict[str, Any] | None:
    """Taint new nodes not-ready."""
    if request.operation is not Operation.CREATE or request.resource != "nodes" or request.api_group \
            or request.subresource or request.obj is None:
        return None
    return with_not_ready_taint(dict(request.obj))
