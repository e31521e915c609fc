"""Services: ``pkg/registry/core/service/strategy.go``, the v1 defaults and the service printer.

ClusterIP and NodePort allocation need storage and live in the REST layer; this module only
leaves ``clusterIP`` alone on create, keeps allocated values across updates that omit them
(``patchAllocatedValues``), forbids changing them (``may not change once set``) and renders them.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from kapi.errors import Cause
from kapi.kinds import fielderrors as fe
from kapi.kinds.access import as_dict, as_list, child_dict, dicts
from kapi.kinds.formats import (
    NAME_DNS1035_LABEL,
    is_dns1123_label,
    is_dns1123_subdomain,
    is_valid_port_name,
    is_valid_port_num,
)
from kapi.kinds.podspec import PROTOCOLS, validate_labels
from kapi.kinds.printing import AGE, NONE, UNKNOWN, age, format_labels
from kapi.resources import ALL_VERBS, Column, ResourceType, Strategy

Obj = dict[str, Any]

SERVICE_TYPES = ("ClusterIP", "ExternalName", "LoadBalancer", "NodePort")
AFFINITIES = ("ClientIP", "None")
TRAFFIC_POLICIES = ("Cluster", "Local")
IP_FAMILY_POLICIES = ("SingleStack", "PreferDualStack", "RequireDualStack")
IP_ERROR = "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"
DEFAULT_AFFINITY_SECONDS = 10800


def service_type(svc: Obj) -> str:
    return str(as_dict(svc.get("spec")).get("type") or "ClusterIP")


def _needs_cluster_ip(svc: Obj) -> bool:
    return service_type(svc) != "ExternalName"


def _needs_node_port(svc: Obj) -> bool:
    return service_type(svc) in ("NodePort", "LoadBalancer")


def _needs_health_check_port(svc: Obj) -> bool:
    spec = as_dict(svc.get("spec"))
    return service_type(svc) == "LoadBalancer" and spec.get("externalTrafficPolicy") == "Local"


def externally_accessible(svc: Obj) -> bool:
    """``service.ExternallyAccessible``: NodePort, LoadBalancer, or ClusterIP with externalIPs."""
    kind = service_type(svc)
    return kind in ("NodePort", "LoadBalancer") or (kind == "ClusterIP" and bool(as_list(
        as_dict(svc.get("spec")).get("externalIPs"))))


def patch_allocated_values(new: Obj, old: Obj) -> None:
    """``patchAllocatedValues``: an update that omits clusterIP(s), nodePorts or the health-check
    port keeps the allocated ones (kubectl replace/apply of a manifest without them)."""
    spec, old_spec = child_dict(new, "spec"), as_dict(old.get("spec"))
    if _needs_cluster_ip(old) and _needs_cluster_ip(new):
        if not spec.get("clusterIP") and old_spec.get("clusterIP"):
            spec["clusterIP"] = old_spec["clusterIP"]
        if not as_list(spec.get("clusterIPs")) and as_list(old_spec.get("clusterIPs")):
            spec["clusterIPs"] = list(old_spec["clusterIPs"])
    if _needs_node_port(old) and _needs_node_port(new):
        old_ports = dicts(old_spec.get("ports"))
        used = ({p.get("nodePort") for p in old_ports if p.get("nodePort")}
                & {p.get("nodePort") for p in dicts(spec.get("ports")) if p.get("nodePort")})
        by_name = {p.get("name") or "": p.get("nodePort") for p in old_ports}
        for port in dicts(spec.get("ports")):
            previous = by_name.get(port.get("name") or "")
            if not port.get("nodePort") and previous and previous not in used:
                port["nodePort"] = previous
    keep_health_port = _needs_health_check_port(old) and _needs_health_check_port(new)
    if keep_health_port and not spec.get("healthCheckNodePort") and old_spec.get("healthCheckNodePort"):
        spec["healthCheckNodePort"] = old_spec["healthCheckNodePort"]


def default_service(svc: Obj) -> None:
    """``SetDefaults_Service`` plus the IP-family fields the REST layer fills for single-stack."""
    spec = child_dict(svc, "spec")
    if not spec.get("sessionAffinity"):
        spec["sessionAffinity"] = "None"
    if spec["sessionAffinity"] == "None":
        spec.pop("sessionAffinityConfig", None)
    elif spec["sessionAffinity"] == "ClientIP":
        client_ip = as_dict(as_dict(spec.get("sessionAffinityConfig")).get("clientIP"))
        if client_ip.get("timeoutSeconds") is None:
            spec["sessionAffinityConfig"] = {"clientIP": {"timeoutSeconds": DEFAULT_AFFINITY_SECONDS}}
    if not spec.get("type"):
        spec["type"] = "ClusterIP"
    for port in dicts(spec.get("ports")):
        if not port.get("protocol"):
            port["protocol"] = "TCP"
        if port.get("targetPort") in (None, 0, ""):
            port["targetPort"] = port.get("port")
    if externally_accessible(svc) and not spec.get("externalTrafficPolicy"):
        spec["externalTrafficPolicy"] = "Cluster"
    kind = spec["type"]
    if spec.get("internalTrafficPolicy") is None and kind in ("ClusterIP", "NodePort", "LoadBalancer"):
        spec["internalTrafficPolicy"] = "Cluster"
    if kind == "LoadBalancer" and spec.get("allocateLoadBalancerNodePorts") is None:
        spec["allocateLoadBalancerNodePorts"] = True
    if spec.get("clusterIP") and not as_list(spec.get("clusterIPs")):
        spec["clusterIPs"] = [spec["clusterIP"]]
    elif as_list(spec.get("clusterIPs")) and not spec.get("clusterIP"):
        spec["clusterIP"] = spec["clusterIPs"][0]
    if kind != "ExternalName":
        if not spec.get("ipFamilyPolicy"):
            spec["ipFamilyPolicy"] = "SingleStack"
        if not as_list(spec.get("ipFamilies")):
            spec["ipFamilies"] = [_family(spec.get("clusterIP"))]


def _family(ip: Any) -> str:
    try:
        return "IPv6" if ipaddress.ip_address(str(ip)).version == 6 else "IPv4"
    except ValueError:
        return "IPv4"


def _valid_ip(value: Any) -> bool:
    try:
        ipaddress.ip_address(str(value))
    except ValueError:
        return False
    return True


def _validate_port_num_or_name(value: Any, path: str) -> list[Cause]:
    if isinstance(value, int) and not isinstance(value, bool):
        return fe.each_invalid(path, value, is_valid_port_num(value))
    if isinstance(value, str) and value:
        return fe.each_invalid(path, value, is_valid_port_name(value))
    return [fe.required(path)]


def _validate_ports(spec: Obj, kind: str) -> list[Cause]:
    errs: list[Cause] = []
    ports = dicts(spec.get("ports"))
    names: set[str] = set()
    seen: set[tuple[Any, Any]] = set()
    for i, port in enumerate(ports):
        p = fe.index("spec.ports", i)
        name = port.get("name")
        if len(ports) > 1 and not name:
            errs.append(fe.required(fe.child(p, "name")))
        elif name:
            errs.extend(fe.each_invalid(fe.child(p, "name"), name, is_dns1123_label(str(name))))
            if name in names:
                errs.append(fe.duplicate(fe.child(p, "name"), name))
            names.add(name)
        errs.extend(fe.each_invalid(fe.child(p, "port"), port.get("port"), is_valid_port_num(port.get("port"))))
        protocol = port.get("protocol")
        if not protocol:
            errs.append(fe.required(fe.child(p, "protocol")))
        elif protocol not in PROTOCOLS:
            errs.append(fe.not_supported(fe.child(p, "protocol"), protocol, PROTOCOLS))
        errs.extend(_validate_port_num_or_name(port.get("targetPort"), fe.child(p, "targetPort")))
        node_port = port.get("nodePort")
        if node_port:
            if kind == "ClusterIP":
                errs.append(fe.forbidden(fe.child(p, "nodePort"), "may not be used when `type` is 'ClusterIP'"))
            else:
                errs.extend(fe.each_invalid(fe.child(p, "nodePort"), node_port, is_valid_port_num(node_port)))
        key = (protocol, port.get("port"))
        if key in seen:
            rendered = f"core.ServicePort{{Name:\"\", Protocol:{fe.go_quote(str(protocol))}, Port:{port.get('port')}}}"
            errs.append(fe.duplicate(p, fe.GoRepr(rendered)))
        seen.add(key)
    return errs


def validate_service(svc: Obj) -> list[Cause]:
    """``ValidateService`` (the commonly hit rules)."""
    spec = as_dict(svc.get("spec"))
    kind = spec.get("type") or "ClusterIP"
    errs: list[Cause] = []
    if kind not in SERVICE_TYPES:
        errs.append(fe.not_supported("spec.type", kind, SERVICE_TYPES))
    cluster_ip = spec.get("clusterIP") or ""
    if kind == "ExternalName":
        if cluster_ip:
            errs.append(fe.forbidden("spec.clusterIPs", "may not be set for ExternalName services"))
        external = str(spec.get("externalName") or "")
        if not external:
            errs.append(fe.required("spec.externalName"))
        else:
            errs.extend(fe.each_invalid("spec.externalName", external, is_dns1123_subdomain(external.rstrip("."))))
    elif not dicts(spec.get("ports")) and cluster_ip != "None":
        errs.append(fe.required("spec.ports"))
    cluster_ips = as_list(spec.get("clusterIPs"))
    for i, ip in enumerate(cluster_ips):
        if ip != "None" and not _valid_ip(ip):
            errs.append(fe.invalid(fe.index("spec.clusterIPs", i), ip, IP_ERROR))
    if cluster_ip and cluster_ips and cluster_ips[0] != cluster_ip:
        errs.append(fe.invalid("spec.clusterIPs", cluster_ips, "first value must match `clusterIP`"))
    errs.extend(_validate_ports(spec, kind))
    affinity = spec.get("sessionAffinity")
    if affinity and affinity not in AFFINITIES:
        errs.append(fe.not_supported("spec.sessionAffinity", affinity, AFFINITIES))
    etp = spec.get("externalTrafficPolicy")
    if etp:
        if not externally_accessible(svc):
            errs.append(fe.invalid("spec.externalTrafficPolicy", etp,
                                   "may only be set when `type` is 'NodePort' or 'LoadBalancer'"))
        elif etp not in TRAFFIC_POLICIES:
            errs.append(fe.not_supported("spec.externalTrafficPolicy", etp, TRAFFIC_POLICIES))
    itp = spec.get("internalTrafficPolicy")
    if itp and itp not in TRAFFIC_POLICIES:
        errs.append(fe.not_supported("spec.internalTrafficPolicy", itp, TRAFFIC_POLICIES))
    policy = spec.get("ipFamilyPolicy")
    if policy and policy not in IP_FAMILY_POLICIES:
        errs.append(fe.not_supported("spec.ipFamilyPolicy", policy, IP_FAMILY_POLICIES))
    errs.extend(validate_labels(spec.get("selector"), "spec.selector"))
    return errs


def validate_cluster_ip_update(new: Obj, old: Obj) -> list[Cause]:
    """``validateUpgradeDowngradeClusterIPs``: allocated cluster IPs may not change."""
    if "ExternalName" in (service_type(new), service_type(old)):
        return []
    new_ips = as_list(as_dict(new.get("spec")).get("clusterIPs"))
    old_ips = as_list(as_dict(old.get("spec")).get("clusterIPs"))
    if new_ips[:1] == ["None"] and old_ips[:1] == ["None"]:
        return []
    if len(old_ips) == len(new_ips):
        return [fe.invalid(fe.index("spec.clusterIPs", i), new_ips, "may not change once set")
                for i, ip in enumerate(old_ips) if ip != new_ips[i]]
    if len(old_ips) > len(new_ips):
        if not new_ips:
            return [fe.invalid("spec.clusterIPs[0]", new_ips, "primary clusterIP can not be unset")]
        if new_ips[0] != old_ips[0]:
            return [fe.invalid("spec.clusterIPs[0]", new_ips, "may not change once set")]
        return []
    if old_ips and new_ips[0] != old_ips[0]:
        return [fe.invalid("spec.clusterIPs[0]", new_ips, "may not change once set")]
    return []


def external_ip(svc: Obj) -> str:
    """``getServiceExternalIP`` (wide: load-balancer addresses are not clipped)."""
    spec, status = as_dict(svc.get("spec")), as_dict(svc.get("status"))
    kind = spec.get("type") or ""
    external = [str(ip) for ip in as_list(spec.get("externalIPs"))]
    if kind in ("ClusterIP", "NodePort"):
        return ",".join(external) if external else NONE
    if kind == "LoadBalancer":
        ingress = {str(i.get("ip") or i.get("hostname") or "")
                   for i in dicts(as_dict(status.get("loadBalancer")).get("ingress"))} - {""}
        lb = sorted(ingress)
        if external:
            return ",".join([*lb, *external])
        return ",".join(lb) if lb else "<pending>"
    if kind == "ExternalName":
        return str(spec.get("externalName") or "")
    return UNKNOWN


def port_string(ports: Any) -> str:
    """``makePortString``: ``80/TCP``, ``80:30080/TCP``, comma-joined."""
    pieces = []
    for port in dicts(ports):
        protocol = port.get("protocol") or ""
        if port.get("nodePort"):
            pieces.append(f"{port.get('port', 0)}:{port['nodePort']}/{protocol}")
        else:
            pieces.append(f"{port.get('port', 0)}/{protocol}")
    return ",".join(pieces)


class ServiceStrategy(Strategy):
    """Services (``svcStrategy``). Names are DNS-1035 labels (``name_format``)."""

    has_status = True
    name_format = NAME_DNS1035_LABEL

    def prepare_for_create(self, obj: Obj) -> None:
        obj["status"] = {"loadBalancer": {}}

    def prepare_for_update(self, obj: Obj, old: Obj) -> None:
        super().prepare_for_update(obj, old)
        patch_allocated_values(obj, old)

    def default(self, obj: Obj) -> None:
        default_service(obj)

    def validate(self, obj: Obj) -> list[Cause]:
        return validate_service(obj)

    def validate_update(self, obj: Obj, old: Obj) -> list[Cause]:
        return [*validate_service(obj), *validate_cluster_ip_update(obj, old)]

    def field_values(self, obj: Obj) -> dict[str, str]:
        spec = as_dict(obj.get("spec"))
        return {"spec.clusterIP": str(spec.get("clusterIP") or ""), "spec.type": str(spec.get("type") or "")}

    def columns(self) -> list[Column]:
        return list(SERVICE_COLUMNS)

    def cells(self, obj: Obj) -> list[Any]:
        spec = as_dict(obj.get("spec"))
        cluster_ips = as_list(spec.get("clusterIPs"))
        return [str(spec.get("type") or ""), str(cluster_ips[0]) if cluster_ips else NONE, external_ip(obj),
                port_string(spec.get("ports")) or NONE, age(obj), format_labels(as_dict(spec.get("selector")))]


SERVICE_COLUMNS = (
    Column("Type", description="type determines how the Service is exposed."),
    Column("Cluster-IP", description="clusterIP is the IP address of the service."),
    Column("External-IP", description="externalIPs is a list of IP addresses for which nodes in the cluster will "
                                      "also accept traffic for this service."),
    Column("Port(s)", description="The list of ports that are exposed by this service."),
    AGE,
    Column("Selector", priority=1, description="Route service traffic to pods with label keys and values matching "
                                               "this selector."),
)


def resources() -> list[ResourceType]:
    return [ResourceType("", "v1", "Service", "services", "service", True, short_names=("svc",), categories=("all",),
                         subresources=("status",), verbs=ALL_VERBS, storage_resource="services/specs",
                         strategy=ServiceStrategy())]
