"""The EndpointSlice controller: discovery.k8s.io/v1 EndpointSlices for selecting Services.

Like ``pkg/controller/endpointslice``: each selected pod with an IP is an endpoint with
``conditions`` ``ready`` (ready and not terminating, or ``publishNotReadyAddresses``),
``serving`` (ready regardless of termination) and ``terminating``, plus ``nodeName``,
``targetRef`` and ``hostname``. Endpoints are grouped by address type and resolved ports, at most
100 per slice. Slices are named ``SERVICE-xxxxx`` (generateName), labelled
``kubernetes.io/service-name`` and ``endpointslice.kubernetes.io/managed-by:
endpointslice-controller.k8s.io`` (plus the Service's labels) and owned by the Service (the
garbage collector removes them with it). Existing slices are updated in place, missing ones
created, extra ones deleted; creations are tracked as expectations so an informer lag never
creates a slice twice.
"""

from __future__ import annotations

import ipaddress
from typing import Any

import orjson

from kapi.components.controllers.expectations import Expectations
from kapi.components.controllers.gvr import ENDPOINT_SLICES, SERVICES
from kapi.components.controllers.objects import (
    copy,
    is_deleting,
    labels_of,
    name_of,
    namespace_of,
    owner_reference,
    spec_of,
    uid_of,
)
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
from kapi.components.controllers.writes import delete_if_present

Obj = dict[str, Any]

SERVICE_NAME_LABEL = "kubernetes.io/service-name"
MANAGED_BY_LABEL = "endpointslice.kubernetes.io/managed-by"
MANAGED_BY = "endpointslice-controller.k8s.io"
MAX_ENDPOINTS_PER_SLICE = 100

Group = tuple[str, bytes]  # (address type, ports as JSON)


def address_type(ip: str) -> str:
    try:
        return "IPv6" if ipaddress.ip_address(ip).version == 6 else "IPv4"
    except ValueError:
        return "IPv4"


def desired_slices(service: Obj, pods: list[Obj]) -> dict[Group, tuple[list[Obj], list[Obj]]]:
    """Group -> (ports, endpoints sorted by address) for ``service`` over its ``pods``."""
    groups: dict[Group, tuple[list[Obj], list[Obj]]] = {}
    for pod in pods:
        if not should_include(pod, include_terminating=True):
            continue
        ports = endpoint_ports(service, pod)
        if ports is None:
            continue
        ip = pod_ips(pod)[0]
        terminating = is_deleting(pod)
        serving = pod_ready_for(service, pod)
        endpoint: Obj = {"addresses": [ip],
                         "conditions": {"ready": serving and not terminating, "serving": serving,
                                        "terminating": terminating},
                         "targetRef": target_ref(pod)}
        node = spec_of(pod).get("nodeName")
        if node:
            endpoint["nodeName"] = node
        hostname = hostname_for(service, pod)
        if hostname:
            endpoint["hostname"] = hostname
        key = (address_type(ip), orjson.dumps(ports, option=orjson.OPT_SORT_KEYS))
        groups.setdefault(key, ([dict(p) for p in ports], []))[1].append(endpoint)
    for _, endpoints in groups.values():
        endpoints.sort(key=lambda e: (e["addresses"][0], e["targetRef"]["name"]))
    return groups


def _chunks(endpoints: list[Obj]) -> list[list[Obj]]:
    return [endpoints[i:i + MAX_ENDPOINTS_PER_SLICE] for i in range(0, len(endpoints), MAX_ENDPOINTS_PER_SLICE)] \
        or [[]]


def _group_of(slice_: Obj) -> Group:
    ports = sorted((dict(p) for p in slice_.get("ports") or []),
                   key=lambda p: (p.get("name") or "", p.get("port"), p.get("protocol")))
    return str(slice_.get("addressType") or ""), orjson.dumps(tuple(ports), option=orjson.OPT_SORT_KEYS)


class EndpointSliceController(ServicePodController):
    """``endpointslice``: see the module docstring."""

    name = "endpointslice"
    component = "endpoint-slice-controller"
    service_account = "endpointslice-controller"

    def setup(self) -> None:
        super().setup()
        self.expectations = Expectations(self.ctx.clock.monotonic)
        self.slices = self.cache(ENDPOINT_SLICES, label_selector=f"{MANAGED_BY_LABEL}={MANAGED_BY}")
        self.slices.add_index("service", lambda s: [f"{namespace_of(s)}/{labels_of(s).get(SERVICE_NAME_LABEL, '')}"])
        self.slices.add_handler(self._slice_added, self._slice_changed, self._slice_deleted)

    def _service_key(self, slice_: Obj) -> str:
        return f"{namespace_of(slice_)}/{labels_of(slice_).get(SERVICE_NAME_LABEL, '')}"

    def _slice_added(self, slice_: Obj) -> None:
        key = self._service_key(slice_)
        self.expectations.creation_observed(key)
        self.enqueue(key)

    def _slice_changed(self, old: Obj, new: Obj) -> None:
        self.enqueue(self._service_key(new))

    def _slice_deleted(self, slice_: Obj) -> None:
        self.enqueue(self._service_key(slice_))

    async def sync(self, key: str) -> float | None:
        if not self.expectations.satisfied(key):
            return None  # a slice we created is not in the cache yet; its add event queues the key again
        service = self.services.get(key)
        existing = [s for s in self.slices.by_index("service", key) if not is_deleting(s)]
        if service is None or not managed(service):
            for slice_ in existing:
                await delete_if_present(self.client, ENDPOINT_SLICES.path_of(slice_))
            return None
        existing = [s for s in existing if any(r.get("uid") == uid_of(service)
                                               for r in (s.get("metadata") or {}).get("ownerReferences") or [])]
        labels = service_labels(service, {SERVICE_NAME_LABEL: name_of(service), MANAGED_BY_LABEL: MANAGED_BY})
        wanted = desired_slices(service, self.selected_pods(service))
        if not wanted:
            wanted = {("IPv4", b"[]"): ([], [])}  # kube keeps one empty slice per Service
        available: dict[Group, list[Obj]] = {}
        for slice_ in sorted(existing, key=name_of):
            available.setdefault(_group_of(slice_), []).append(slice_)
        creates: list[Obj] = []
        for group, (ports, endpoints) in wanted.items():
            for chunk in _chunks(endpoints):
                reuse = available.get(group)
                if reuse:
                    await self._update(reuse.pop(0), labels, ports, chunk)
                else:
                    creates.append(self._new_slice(service, group[0], labels, ports, chunk))
        if creates:
            self.expectations.expect_creations(key, len(creates))
        for index, body in enumerate(creates):
            try:
                await self.client.create(ENDPOINT_SLICES.path(namespace_of(service)), body)
            except Exception:
                self.expectations.creation_observed(key, len(creates) - index)
                raise
        for leftover in (s for group in available.values() for s in group):
            await delete_if_present(self.client, ENDPOINT_SLICES.path_of(leftover))
        return None

    @staticmethod
    def _new_slice(service: Obj, kind: str, labels: dict[str, str], ports: list[Obj], endpoints: list[Obj]) -> Obj:
        return {"apiVersion": ENDPOINT_SLICES.api_version, "kind": "EndpointSlice",
                "metadata": {"generateName": f"{name_of(service)}-", "namespace": namespace_of(service),
                             "labels": labels,
                             "ownerReferences": [owner_reference(service, SERVICES.api_version, "Service")]},
                "addressType": kind, "ports": ports, "endpoints": endpoints}

    async def _update(self, current: Obj, labels: dict[str, str], ports: list[Obj], endpoints: list[Obj]) -> None:
        if labels_of(current) == labels and (current.get("endpoints") or []) == endpoints and \
                (current.get("ports") or []) == ports:
            return
        updated = copy(current)
        updated["metadata"]["labels"] = labels
        updated["ports"] = ports
        updated["endpoints"] = endpoints
        await self.client.update(ENDPOINT_SLICES.path_of(updated), updated)
