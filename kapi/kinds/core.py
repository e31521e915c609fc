"""Core kinds without much behaviour: namespaces, serviceaccounts, endpoints.

Namespaces carry the ``kubernetes`` finalizer from creation, start ``Active`` and are labelled
``kubernetes.io/metadata.name=NAME``; their finalizers change only through ``/finalize``
(``prepare_for_finalize_update``). Endpoints default port protocols and check addresses/ports.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from kapi.errors import Cause
from kapi.kinds import fielderrors as fe
from kapi.kinds.access import as_dict, as_list, child_dict, dicts
from kapi.kinds.formats import NAME_DNS_LABEL, is_dns1123_label, is_qualified_name, is_valid_port_num
from kapi.kinds.podspec import PROTOCOLS
from kapi.kinds.printing import AGE, NONE, age
from kapi.resources import Column, ResourceType, Strategy

Obj = dict[str, Any]

NAME_LABEL = "kubernetes.io/metadata.name"
KUBERNETES_FINALIZER = "kubernetes"
STANDARD_FINALIZERS = frozenset({KUBERNETES_FINALIZER, "orphan", "foregroundDeletion"})
NAMESPACE_VERBS = ("create", "delete", "get", "list", "patch", "update", "watch")


def validate_finalizer_name(name: Any, path: str) -> list[Cause]:
    """``validateFinalizerName``: a qualified name, and a standard one when it has no ``/``."""
    text = str(name or "")
    errs = fe.each_invalid(path, text, is_qualified_name(text))
    if "/" not in text and text not in STANDARD_FINALIZERS:
        errs.append(fe.invalid(path, text, "name is neither a standard finalizer name nor is it fully qualified"))
    return errs


class NamespaceStrategy(Strategy):
    """Namespaces (``namespaceStrategy`` + ``namespaceFinalizeStrategy``). The name must be an
    RFC 1123 label: ``name_format`` tells the generic metadata validation so."""

    has_status = True
    name_format = NAME_DNS_LABEL

    def prepare_for_create(self, obj: Obj) -> None:
        obj["status"] = {"phase": "Active"}
        spec = child_dict(obj, "spec")
        finalizers = list(as_list(spec.get("finalizers")))
        if KUBERNETES_FINALIZER not in finalizers:
            finalizers.append(KUBERNETES_FINALIZER)
        spec["finalizers"] = finalizers

    def prepare_for_update(self, obj: Obj, old: Obj) -> None:
        super().prepare_for_update(obj, old)
        spec = child_dict(obj, "spec")
        old_finalizers = as_dict(old.get("spec")).get("finalizers")
        if old_finalizers is None:
            spec.pop("finalizers", None)
        else:
            spec["finalizers"] = old_finalizers

    def prepare_for_finalize_update(self, obj: Obj, old: Obj) -> None:
        """``/finalize``: only ``spec.finalizers`` may change; everything else is kept from ``old``."""
        finalizers = as_dict(obj.get("spec")).get("finalizers")
        for key in list(obj):
            if key not in ("apiVersion", "kind", "metadata"):
                del obj[key]
        for key, value in old.items():
            if key not in ("apiVersion", "kind", "metadata"):
                obj[key] = value
        obj["spec"] = {**as_dict(old.get("spec")), "finalizers": as_list(finalizers)}

    def default(self, obj: Obj) -> None:
        meta = child_dict(obj, "metadata")
        if meta.get("name"):
            child_dict(meta, "labels")[NAME_LABEL] = meta["name"]
        status = child_dict(obj, "status")
        if not status.get("phase"):
            status["phase"] = "Active"

    def validate(self, obj: Obj) -> list[Cause]:
        errs: list[Cause] = []
        for finalizer in as_list(as_dict(obj.get("spec")).get("finalizers")):
            errs.extend(validate_finalizer_name(finalizer, "spec.finalizers"))
        return errs

    def field_values(self, obj: Obj) -> dict[str, str]:
        return {"status.phase": str(as_dict(obj.get("status")).get("phase") or ""),
                "name": str(as_dict(obj.get("metadata")).get("name") or "")}

    def columns(self) -> list[Column]:
        return [Column("Status", description="The status of the namespace"), AGE]

    def cells(self, obj: Obj) -> list[Any]:
        return [str(as_dict(obj.get("status")).get("phase") or ""), age(obj)]


class ServiceAccountStrategy(Strategy):
    """ServiceAccounts: no behaviour beyond the table."""

    def columns(self) -> list[Column]:
        return [Column("Secrets", description="Secrets is a list of the secrets in the same namespace that pods "
                                              "running using this ServiceAccount are allowed to use."), AGE]

    def cells(self, obj: Obj) -> list[Any]:
        return [len(as_list(obj.get("secrets"))), age(obj)]


def format_endpoints(obj: Obj, limit: int = 3) -> str:
    """``formatEndpoints``: ``ip:port`` list (at most 3, then ``+ N more...``), ``<none>`` if empty."""
    subsets = dicts(obj.get("subsets"))
    if not subsets:
        return NONE
    shown: list[str] = []
    count = 0
    more = False
    for subset in subsets:
        addresses = [str(a.get("ip", "")) for a in dicts(subset.get("addresses"))]
        ports: list[dict[str, Any] | None] = [*dicts(subset.get("ports"))] or [None]
        for port in ports:
            count += len(addresses)
            for ip in addresses:
                if len(shown) == limit:
                    more = True
                    break
                if port is None:
                    shown.append(ip)
                else:
                    host = f"[{ip}]" if ":" in ip else ip
                    shown.append(f"{host}:{port.get('port', 0)}")
    text = ",".join(shown)
    return f"{text} + {count - limit} more..." if more else text


def _valid_ip(value: Any) -> bool:
    try:
        ipaddress.ip_address(str(value))
    except ValueError:
        return False
    return True


class EndpointsStrategy(Strategy):
    """Endpoints (``endpointsStrategy``)."""

    def default(self, obj: Obj) -> None:
        for subset in dicts(obj.get("subsets")):
            for port in dicts(subset.get("ports")):
                if not port.get("protocol"):
                    port["protocol"] = "TCP"

    def validate(self, obj: Obj) -> list[Cause]:
        errs: list[Cause] = []
        for i, subset in enumerate(dicts(obj.get("subsets"))):
            path = fe.index("subsets", i)
            for kind in ("addresses", "notReadyAddresses"):
                for j, address in enumerate(dicts(subset.get(kind))):
                    ip = address.get("ip")
                    if not _valid_ip(ip):
                        errs.append(fe.invalid(f"{path}.{kind}[{j}].ip", ip or "",
                                               "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"))
            ports = dicts(subset.get("ports"))
            for j, port in enumerate(ports):
                p = fe.index(fe.child(path, "ports"), j)
                name = port.get("name")
                if len(ports) > 1 and not name:
                    errs.append(fe.required(fe.child(p, "name")))
                elif name:
                    errs.extend(fe.each_invalid(fe.child(p, "name"), name, is_dns1123_label(str(name))))
                errs.extend(fe.each_invalid(fe.child(p, "port"), port.get("port"), is_valid_port_num(port.get("port"))))
                protocol = port.get("protocol")
                if not protocol:
                    errs.append(fe.required(fe.child(p, "protocol")))
                elif protocol not in PROTOCOLS:
                    errs.append(fe.not_supported(fe.child(p, "protocol"), protocol, PROTOCOLS))
        return errs

    def columns(self) -> list[Column]:
        return [Column("Endpoints", description="The set of all endpoints is the union of all subsets."), AGE]

    def cells(self, obj: Obj) -> list[Any]:
        return [format_endpoints(obj), age(obj)]


def resources() -> list[ResourceType]:
    return [
        ResourceType("", "v1", "Namespace", "namespaces", "namespace", False, short_names=("ns",),
                     subresources=("finalize", "status"), verbs=NAMESPACE_VERBS, storage_resource="namespaces",
                     strategy=NamespaceStrategy()),
        ResourceType("", "v1", "ServiceAccount", "serviceaccounts", "serviceaccount", True, short_names=("sa",),
                     subresources=("token",), storage_resource="serviceaccounts", strategy=ServiceAccountStrategy()),
        ResourceType("", "v1", "Endpoints", "endpoints", "endpoints", True, short_names=("ep",),
                     storage_resource="services/endpoints", strategy=EndpointsStrategy()),
    ]
