"""The resources the controllers read and write, as (group, version, plural) plus kind and scope.

``Resource.path(...)`` is ``kapi.client.path_for`` for that resource; ``path_of(obj)`` the path of
one object. Constants name every built-in resource a controller touches.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kapi.client import path_for


@dataclass(frozen=True)
class Resource:
    """One API resource (``apps/v1 deployments``)."""

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool = True

    @property
    def api_version(self) -> str:
        """``apps/v1``, or ``v1`` for the core group."""
        return f"{self.group}/{self.version}" if self.group else self.version

    def path(self, namespace: str = "", name: str = "", subresource: str = "") -> str:
        """The collection (all namespaces when ``namespace`` is empty) or object path."""
        return path_for(self.group, self.version, self.plural, namespace if self.namespaced else "", name,
                        subresource)

    def path_of(self, obj: Mapping[str, Any], subresource: str = "") -> str:
        """The path of ``obj`` (its namespace and name), optionally of a subresource."""
        meta = obj.get("metadata") or {}
        return self.path(str(meta.get("namespace") or ""), str(meta.get("name") or ""), subresource)

    def __str__(self) -> str:
        return f"{self.plural}.{self.group}" if self.group else self.plural


PODS = Resource("", "v1", "pods", "Pod")
NAMESPACES = Resource("", "v1", "namespaces", "Namespace", namespaced=False)
NODES = Resource("", "v1", "nodes", "Node", namespaced=False)
SERVICES = Resource("", "v1", "services", "Service")
ENDPOINTS = Resource("", "v1", "endpoints", "Endpoints")
SERVICE_ACCOUNTS = Resource("", "v1", "serviceaccounts", "ServiceAccount")
CONFIG_MAPS = Resource("", "v1", "configmaps", "ConfigMap")
EVENTS = Resource("", "v1", "events", "Event")
DEPLOYMENTS = Resource("apps", "v1", "deployments", "Deployment")
REPLICA_SETS = Resource("apps", "v1", "replicasets", "ReplicaSet")
JOBS = Resource("batch", "v1", "jobs", "Job")
LEASES = Resource("coordination.k8s.io", "v1", "leases", "Lease")
ENDPOINT_SLICES = Resource("discovery.k8s.io", "v1", "endpointslices", "EndpointSlice")
