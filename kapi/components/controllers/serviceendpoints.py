"""What the Endpoints and EndpointSlice controllers share: which pods back a Service, on which
ports, and a base class that turns Service and Pod changes into Service keys.

* A Service is managed when it has a non-empty ``spec.selector`` and is not ``ExternalName``.
* A selected pod is included once it has an IP and, by its restart policy, can still run
  (``ShouldPodBeInEndpoints``); terminating pods only where the caller includes them.
* A service port's ``targetPort`` is a number, or a container port name looked up in the pod
  with the same protocol (a pod without it is left out of that port, as ``FindPort`` does).
* An address names its pod (``targetRef``), node, and hostname when the pod's ``subdomain`` is
  the Service's name.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kapi.components.controllers.framework import Controller
from kapi.components.controllers.gvr import PODS, SERVICES
from kapi.components.controllers.objects import (
    is_deleting,
    is_pod_ready,
    labels_of,
    map_selector_matches,
    meta,
    name_of,
    namespace_of,
    pod_phase,
    spec_of,
    status_of,
    uid_of,
)

Obj = dict[str, Any]

HEADLESS_LABEL = "service.kubernetes.io/headless"


def managed(service: Mapping[str, Any]) -> bool:
    spec = spec_of(service)
    return bool(spec.get("selector")) and spec.get("type") != "ExternalName"


def is_headless(service: Mapping[str, Any]) -> bool:
    return spec_of(service).get("clusterIP") == "None"


def pod_ips(pod: Mapping[str, Any]) -> list[str]:
    status = status_of(pod)
    ips = [str(i.get("ip")) for i in status.get("podIPs") or [] if isinstance(i, dict) and i.get("ip")]
    if not ips and status.get("podIP"):
        ips = [str(status["podIP"])]
    return ips


def should_include(pod: Mapping[str, Any], *, include_terminating: bool) -> bool:
    """``ShouldPodBeInEndpoints``."""
    if not pod_ips(pod):
        return False
    if not include_terminating and is_deleting(pod):
        return False
    policy = spec_of(pod).get("restartPolicy") or "Always"
    phase = pod_phase(pod)
    if policy == "Never":
        return phase not in ("Failed", "Succeeded")
    if policy == "OnFailure":
        return phase != "Succeeded"
    return True


def resolve_port(pod: Mapping[str, Any], port: Mapping[str, Any]) -> int | None:
    """``podutil.FindPort``: the pod's port number for a service port, None when it has none."""
    target = port.get("targetPort", port.get("port"))
    if isinstance(target, int) and not isinstance(target, bool):
        return target
    text = str(target or "")
    if text.isdigit():
        return int(text)
    protocol = port.get("protocol") or "TCP"
    for container in spec_of(pod).get("containers") or []:
        for candidate in container.get("ports") or []:
            if candidate.get("name") == text and (candidate.get("protocol") or "TCP") == protocol:
                return int(candidate.get("containerPort") or 0) or None
    return None


def endpoint_ports(service: Mapping[str, Any], pod: Mapping[str, Any]) -> tuple[Obj, ...] | None:
    """The pod's resolved ports for the service (sorted), None when no port resolves. A service
    without ports gives ``()`` when headless, else None."""
    ports = [p for p in spec_of(service).get("ports") or [] if isinstance(p, dict)]
    if not ports:
        return () if is_headless(service) else None
    resolved = []
    for port in ports:
        number = resolve_port(pod, port)
        if number is None:
            continue
        entry: Obj = {"name": str(port.get("name") or ""), "port": number, "protocol": port.get("protocol") or "TCP"}
        if port.get("appProtocol"):
            entry["appProtocol"] = port["appProtocol"]
        resolved.append(entry)
    if not resolved:
        return None
    return tuple(sorted(resolved, key=lambda p: (p["name"], p["port"], p["protocol"])))


def target_ref(pod: Mapping[str, Any]) -> Obj:
    return {"kind": "Pod", "namespace": namespace_of(pod), "name": name_of(pod), "uid": uid_of(pod)}


def hostname_for(service: Mapping[str, Any], pod: Mapping[str, Any]) -> str:
    spec = spec_of(pod)
    if spec.get("hostname") and spec.get("subdomain") == name_of(service) and \
            namespace_of(pod) == namespace_of(service):
        return str(spec["hostname"])
    return ""


def pod_ready_for(service: Mapping[str, Any], pod: Mapping[str, Any]) -> bool:
    return bool(spec_of(service).get("publishNotReadyAddresses")) or is_pod_ready(pod)


def service_labels(service: Mapping[str, Any], extra: Mapping[str, str]) -> dict[str, str]:
    """The labels of a Service's Endpoints/EndpointSlices: its own, the headless marker, ``extra``."""
    labels = dict(labels_of(service))
    labels.pop(HEADLESS_LABEL, None)
    if is_headless(service):
        labels[HEADLESS_LABEL] = ""
    labels.update(extra)
    return labels


def _endpoint_relevant(pod: Mapping[str, Any]) -> tuple[Any, ...]:
    spec = spec_of(pod)
    return (labels_of(pod), pod_ips(pod), is_pod_ready(pod), is_deleting(pod), spec.get("nodeName"),
            pod_phase(pod), spec.get("hostname"), spec.get("subdomain"))


class ServicePodController(Controller):
    """Base: caches of Services and Pods; a Service is queued when it or a pod it selects changed.
    Subclasses call ``super().setup()`` and implement ``sync(service_key)``."""

    def setup(self) -> None:
        self.services = self.cache(SERVICES)
        self.pods = self.cache(PODS)
        self.services.add_handler(self.enqueue, lambda old, new: self.enqueue(new), self.enqueue)
        self.pods.add_handler(self._pod_changed, self._pod_updated, self._pod_changed)

    def selected_pods(self, service: Mapping[str, Any]) -> list[Obj]:
        selector = spec_of(service).get("selector")
        return [p for p in self.pods.by_index("namespace", namespace_of(service))
                if map_selector_matches(selector, labels_of(p))]

    def _enqueue_services(self, pod: Obj) -> None:
        labels = labels_of(pod)
        for service in self.services.by_index("namespace", namespace_of(pod)):
            if managed(service) and map_selector_matches(spec_of(service).get("selector"), labels):
                self.enqueue(service)

    def _pod_changed(self, pod: Obj) -> None:
        self._enqueue_services(pod)

    def _pod_updated(self, old: Obj, new: Obj) -> None:
        if meta(old).get("resourceVersion") == meta(new).get("resourceVersion"):
            return
        if _endpoint_relevant(old) == _endpoint_relevant(new):
            return
        self._enqueue_services(new)
        if labels_of(old) != labels_of(new):
            self._enqueue_services(old)
