"""Object builders for the controllers' tests (not a test module)."""

from __future__ import annotations

from typing import Any

Obj = dict[str, Any]


def template(labels: dict[str, str], image: str = "nginx:1", **spec: Any) -> Obj:
    return {"metadata": {"labels": dict(labels)},
            "spec": {"containers": [{"name": "c", "image": image}], **spec}}


def namespace(name: str) -> Obj:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}, "spec": {"finalizers": ["kubernetes"]},
            "status": {"phase": "Active"}}


def replica_set(name: str, replicas: int, labels: dict[str, str] | None = None, *, ns: str = "default",
                **spec: Any) -> Obj:
    labels = labels or {"app": name}
    return {"apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": name, "namespace": ns, "labels": dict(labels)},
            "spec": {"replicas": replicas, "selector": {"matchLabels": dict(labels)}, "template": template(labels),
                     **spec},
            "status": {"replicas": 0}}


def deployment(name: str, replicas: int, labels: dict[str, str] | None = None, *, ns: str = "default",
               image: str = "nginx:1", strategy: Obj | None = None, **spec: Any) -> Obj:
    labels = labels or {"app": name}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": ns},
            "spec": {"replicas": replicas, "selector": {"matchLabels": dict(labels)},
                     "template": template(labels, image),
                     "strategy": strategy or {"type": "RollingUpdate",
                                              "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
                     "revisionHistoryLimit": 10, "progressDeadlineSeconds": 600, **spec},
            "status": {}}


def pod(name: str, labels: dict[str, str] | None = None, *, ns: str = "default", owner: Obj | None = None,
        phase: str = "Pending", ready: bool = False, node: str = "", ip: str = "", ready_since: str = "",
        **spec: Any) -> Obj:
    meta: Obj = {"name": name, "namespace": ns, "labels": dict(labels or {})}
    if owner is not None:
        meta["ownerReferences"] = [{"apiVersion": owner["apiVersion"], "kind": owner["kind"],
                                    "name": owner["metadata"]["name"], "uid": owner["metadata"]["uid"],
                                    "controller": True, "blockOwnerDeletion": True}]
    body: Obj = {"containers": [{"name": "c", "image": "nginx:1"}], **spec}
    if node:
        body["nodeName"] = node
    status: Obj = {"phase": phase}
    if ready:
        status["conditions"] = [{"type": "Ready", "status": "True",
                                 "lastTransitionTime": ready_since or "2024-01-01T00:00:00Z"}]
    if ip:
        status["podIP"] = ip
        status["podIPs"] = [{"ip": ip}]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": body, "status": status}
