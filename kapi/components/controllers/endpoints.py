"""The Endpoints controller: an Endpoints object per selecting Service, listing its pods.

Like ``pkg/controller/endpoint``: for a Service with a selector, the Endpoints of the same name
holds the selected pods' IPs, ready ones in ``addresses`` and the others in
``notReadyAddresses`` (all in ``addresses`` with ``publishNotReadyAddresses``), terminating pods
left out; addresses sharing the same resolved ports form one subset (``RepackSubsets``), in a
stable order so an unchanged set is never rewritten. Labels: the Service's, plus
``service.kubernetes.io/headless`` for headless Services and
``endpoints.kubernetes.io/managed-by: endpoint-controller``. When the Service goes, so do its
Endpoints.
"""

from __future__ import annotations

from typing import Any

import orjson

from kapi.components.controllers.gvr import ENDPOINTS
from kapi.components.controllers.objects import copy, labels_of, name_of, namespace_of, spec_of, split_key
from kapi.components.controllers.serviceendpoints import (
    ServicePodController,
    endpoint_ports,
    hostname_for,
    managed,
    pod_ips,
    pod_ready_for,
    service_labels,
    should_include,
    target_ref,
)
from kapi.components.controllers.writes import create_if_absent, delete_if_present

Obj = dict[str, Any]

MANAGED_BY_LABEL = "endpoints.kubernetes.io/managed-by"
MANAGED_BY = "endpoint-controller"


def endpoint_subsets(service: Obj, pods: list[Obj]) -> list[Obj]:
    """The repacked subsets of ``service`` over its selected ``pods``."""
    groups: dict[bytes, tuple[tuple[Obj, ...], list[Obj], list[Obj]]] = {}
    for pod in pods:
        if not should_include(pod, include_terminating=False):
            continue
        ports = endpoint_ports(service, pod)
        if ports is None:
            continue
        address: Obj = {"ip": pod_ips(pod)[0], "targetRef": target_ref(pod)}
        node = spec_of(pod).get("nodeName")
        if node:
            address["nodeName"] = node
        hostname = hostname_for(service, pod)
        if hostname:
            address["hostname"] = hostname
        key = orjson.dumps(ports)
        _, ready, not_ready = groups.setdefault(key, (ports, [], []))
        (ready if pod_ready_for(service, pod) else not_ready).append(address)
    subsets = []
    for ports, ready, not_ready in groups.values():
        subset: Obj = {}
        if ready:
            subset["addresses"] = sorted(ready, key=lambda a: (a["ip"], a["targetRef"]["name"]))
        if not_ready:
            subset["notReadyAddresses"] = sorted(not_ready, key=lambda a: (a["ip"], a["targetRef"]["name"]))
        if ports:
            subset["ports"] = [{k: v for k, v in p.items() if v != ""} for p in ports]
        subsets.append(subset)
    subsets.sort(key=lambda s: orjson.dumps(s, option=orjson.OPT_SORT_KEYS))
    return subsets


class EndpointsController(ServicePodController):
    """``endpoint``: see the module docstring."""

    name = "endpoint"
    component = "endpoint-controller"
    service_account = "endpoint-controller"

    def setup(self) -> None:
        super().setup()
        self.endpoints = self.cache(ENDPOINTS)
        self.endpoints.add_handler(on_delete=self.enqueue)

    async def sync(self, key: str) -> float | None:
        service = self.services.get(key)
        if service is None:
            namespace, name = split_key(key)
            await delete_if_present(self.client, ENDPOINTS.path(namespace, name))
            return None
        if not managed(service):
            return None
        subsets = endpoint_subsets(service, self.selected_pods(service))
        labels = service_labels(service, {MANAGED_BY_LABEL: MANAGED_BY})
        current = self.endpoints.get(key)
        if current is not None and (current.get("subsets") or []) == subsets and labels_of(current) == labels:
            return None
        if current is None:
            body: Obj = {"apiVersion": "v1", "kind": "Endpoints",
                         "metadata": {"name": name_of(service), "namespace": namespace_of(service), "labels": labels}}
            if subsets:
                body["subsets"] = subsets
            if await create_if_absent(self.client, ENDPOINTS, body) is None:
                return 1.0  # made by someone else a moment ago: look again once the cache has it
            return None
        updated = copy(current)
        updated["metadata"]["labels"] = labels
        updated["subsets"] = subsets
        await self.client.update(ENDPOINTS.path_of(updated), updated)
        return None
