"""NodeRestriction admission (``--enable-admission-plugins=NodeRestriction``; opt-in, as in kube).

Limits what a kubelet (user ``system:node:NAME`` in group ``system:nodes``) may change, on top of
what the Node authorizer lets it read:

* its own Node only (``node "a" is not allowed to modify node "b"``); it may not set or change
  labels under ``node-restriction.kubernetes.io/`` and may not change its taints after creation;
* pods: it may create only mirror pods (``kubernetes.io/config.mirror`` annotation) bound to
  itself that reference no service account, secret, configmap or claim; it may delete and update
  the status of (and evict) only pods bound to it; other pod updates are refused;
* node Leases in ``kube-node-lease``: only the one named after it.

Requests of any other user pass untouched.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kapi import AdmissionRequest, Operation, admissionkit, hookimpl

ALIASES = ("NodeRestriction",)
NODE_PREFIX = "system:node:"
NODES_GROUP = "system:nodes"
MIRROR_ANNOTATION = "kubernetes.io/config.mirror"
RESTRICTED_LABEL_PREFIX = "node-restriction.kubernetes.io/"
LEASE_NAMESPACE = "kube-node-lease"


def node_name(request: AdmissionRequest) -> str:
    """The kubelet's node name, or "" for users who are not nodes."""
    user = request.user
    if not user.name.startswith(NODE_PREFIX) or NODES_GROUP not in user.groups:
        return ""
    return user.name[len(NODE_PREFIX):]


def _spec(obj: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return (obj or {}).get("spec") or {}


def _meta(obj: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return (obj or {}).get("metadata") or {}


def _pod_references(spec: Mapping[str, Any]) -> str:
    """What a mirror pod may not reference ("" when it references nothing of that sort)."""
    if spec.get("serviceAccountName"):
        return "service accounts"
    for volume in spec.get("volumes") or []:
        if not isinstance(volume, dict):
            continue
        for key, noun in (("secret", "secrets"), ("configMap", "configmaps"),
                          ("persistentVolumeClaim", "persistentvolumeclaims")):
            if key in volume:
                return noun
    for field in ("initContainers", "containers", "ephemeralContainers"):
        for container in spec.get(field) or []:
            for env in (container.get("env") or []) if isinstance(container, dict) else []:
                source = (env or {}).get("valueFrom") or {} if isinstance(env, dict) else {}
                if "secretKeyRef" in source:
                    return "secrets"
                if "configMapKeyRef" in source:
                    return "configmaps"
            for env_from in (container.get("envFrom") or []) if isinstance(container, dict) else []:
                if isinstance(env_from, dict) and "secretRef" in env_from:
                    return "secrets"
                if isinstance(env_from, dict) and "configMapRef" in env_from:
                    return "configmaps"
    return ""


def _check_pod(request: AdmissionRequest, node: str) -> None:
    if request.subresource in ("status", "eviction"):
        bound = _spec(request.old_obj or request.obj).get("nodeName")
        if bound != node:
            verb = "update pod status" if request.subresource == "status" else "evict pods"
            raise admissionkit.forbidden(request, f'node "{node}" can only {verb} for pods with spec.nodeName set '
                                                  f"to itself")
        return
    if request.subresource:
        return
    if request.operation is Operation.CREATE:
        if MIRROR_ANNOTATION not in (_meta(request.obj).get("annotations") or {}):
            raise admissionkit.forbidden(request, f'pod does not have "{MIRROR_ANNOTATION}" annotation, node '
                                                  f'"{node}" can only create mirror pods')
        if _spec(request.obj).get("nodeName") != node:
            raise admissionkit.forbidden(request, f'node "{node}" can only create pods with spec.nodeName set to '
                                                  f"itself")
        referenced = _pod_references(_spec(request.obj))
        if referenced:
            raise admissionkit.forbidden(request, f'node "{node}" can not create pods that reference {referenced}')
    elif request.operation is Operation.DELETE:
        if _spec(request.old_obj).get("nodeName") != node:
            raise admissionkit.forbidden(request, f'node "{node}" can only delete pods with spec.nodeName set to '
                                                  f"itself")
    else:
        raise admissionkit.forbidden(request, f'unexpected operation "{request.operation.value}", node "{node}" can '
                                              f"only create and delete mirror pods")


def _restricted_labels(obj: Mapping[str, Any] | None) -> dict[str, Any]:
    labels = _meta(obj).get("labels") or {}
    return {k: v for k, v in labels.items() if k.startswith(RESTRICTED_LABEL_PREFIX)}


def _check_node(request: AdmissionRequest, node: str) -> None:
    if request.name != node:
        raise admissionkit.forbidden(request, f'node "{node}" is not allowed to modify node "{request.name}"')
    if request.operation is Operation.CREATE:
        labels = sorted(_restricted_labels(request.obj))
        if labels:
            raise admissionkit.forbidden(request, f'node "{node}" is not allowed to set the following labels: '
                                                  f"{', '.join(labels)}")
    elif request.operation is Operation.UPDATE:
        new, old = _restricted_labels(request.obj), _restricted_labels(request.old_obj)
        changed = sorted(k for k in set(new) | set(old) if new.get(k) != old.get(k))
        if changed:
            raise admissionkit.forbidden(request, f'node "{node}" is not allowed to modify labels: '
                                                  f"{', '.join(changed)}")
        if _spec(request.obj).get("taints") != _spec(request.old_obj).get("taints"):
            raise admissionkit.forbidden(request, f'node "{node}" is not allowed to modify taints')


@hookimpl
def kapi_validate_admission(request: AdmissionRequest) -> None:
    """Refuse a kubelet's writes outside its own node, pods and lease."""
    node = node_name(request)
    if not node:
        return
    if not request.api_group and request.resource == "pods":
        _check_pod(request, node)
    elif not request.api_group and request.resource == "nodes":
        _check_node(request, node)
    elif request.api_group == "coordination.k8s.io" and request.resource == "leases" \
            and request.namespace == LEASE_NAMESPACE and request.name != node:
        raise admissionkit.forbidden(request, f'node "{node}" can only access node lease with the same name as the '
                                              f"requesting node")
