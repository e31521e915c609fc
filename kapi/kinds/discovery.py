"""EndpointSlices (discovery.k8s.io/v1): defaults, validation and the printer.

``addressType`` (IPv4, IPv6 or FQDN) is required and immutable; each endpoint has 1 to 100
addresses of that type; ports default to protocol TCP. The EndpointSlice controller lives in
``kapi.components.controllers.endpoints``.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from kapi.errors import Cause
from kapi.kinds import fielderrors as fe
from kapi.kinds.access import as_list, dicts
from kapi.kinds.formats import is_dns1123_label, is_dns1123_subdomain, is_valid_port_num
from kapi.kinds.podspec import PROTOCOLS
from kapi.kinds.printing import AGE, age
from kapi.resources import ALL_VERBS, Column, ResourceType, Strategy

Obj = dict[str, Any]

ADDRESS_TYPES = ("IPv4", "IPv6", "FQDN")
MAX_ADDRESSES = 100
MAX_ENDPOINTS = 1000
MAX_PORTS = 20000
UNSET = "<unset>"


def _address_errors(address: Any, address_type: str) -> list[str]:
    text = str(address)
    if address_type == "FQDN":
        return is_dns1123_subdomain(text)
    try:
        parsed = ipaddress.ip_address(text)
    except ValueError:
        return ["must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"]
    if (address_type == "IPv4") != (parsed.version == 4):
        return [f"must be an {address_type} address"]
    return []


def _validate_endpoints(endpoints: list[Obj], address_type: str) -> list[Cause]:
    errs: list[Cause] = []
    if len(endpoints) > MAX_ENDPOINTS:
        errs.append(fe.Cause("endpoints", f"Too many: {len(endpoints)}: must have at most {MAX_ENDPOINTS} items",
                             "FieldValueTooMany"))
    for i, endpoint in enumerate(endpoints):
        path = fe.index("endpoints", i)
        addresses = as_list(endpoint.get("addresses"))
        if not addresses:
            errs.append(fe.required(fe.child(path, "addresses"), "must contain at least 1 address"))
        elif len(addresses) > MAX_ADDRESSES:
            errs.append(fe.Cause(fe.child(path, "addresses"), f"Too many: {len(addresses)}: must have at most "
                                 f"{MAX_ADDRESSES} items", "FieldValueTooMany"))
        for j, address in enumerate(addresses):
            errs.extend(fe.each_invalid(fe.index(fe.child(path, "addresses"), j), address,
                                        _address_errors(address, address_type)))
        for name in ("nodeName", "hostname"):
            value = endpoint.get(name)
            if value:
                check = is_dns1123_subdomain if name == "nodeName" else is_dns1123_label
                errs.extend(fe.each_invalid(fe.child(path, name), value, check(str(value))))
    return errs


def _validate_ports(ports: list[Obj]) -> list[Cause]:
    errs: list[Cause] = []
    if len(ports) > MAX_PORTS:
        errs.append(fe.Cause("ports", f"Too many: {len(ports)}: must have at most {MAX_PORTS} items",
                             "FieldValueTooMany"))
    names: set[str] = set()
    for i, port in enumerate(ports):
        path = fe.index("ports", i)
        name = str(port.get("name") or "")
        if name:
            errs.extend(fe.each_invalid(fe.child(path, "name"), name, is_dns1123_label(name)))
        if name in names:
            errs.append(fe.duplicate(fe.child(path, "name"), name))
        names.add(name)
        if port.get("port") is not None:
            errs.extend(fe.each_invalid(fe.child(path, "port"), port["port"], is_valid_port_num(port["port"])))
        protocol = port.get("protocol")
        if protocol not in PROTOCOLS:
            errs.append(fe.not_supported(fe.child(path, "protocol"), protocol or "", PROTOCOLS))
    return errs


def _more(items: list[str], count: int, limit: int = 3) -> str:
    """``listWithMoreString``: the first ``limit`` items, ``+ N more...`` after them."""
    text = ",".join(items[:limit])
    if count > limit:
        return f"{text} + {count - limit} more..."
    return text or UNSET


def format_ports(ports: Any) -> str:
    """``formatDiscoveryPorts``: port numbers (``*`` or the name when the number is unset)."""
    cells = [str(p["port"]) if p.get("port") is not None else str(p.get("name") or "*") for p in dicts(ports)]
    return _more(cells, len(cells))


def format_endpoints(endpoints: Any) -> str:
    """``formatDiscoveryEndpoints``: every endpoint's addresses, three shown."""
    addresses = [str(a) for e in dicts(endpoints) for a in as_list(e.get("addresses"))]
    return _more(addresses, len(addresses))


class EndpointSliceStrategy(Strategy):
    """EndpointSlices (``endpointSliceStrategy``)."""

    def default(self, obj: Obj) -> None:
        for port in dicts(obj.get("ports")):
            if not port.get("protocol"):
                port["protocol"] = "TCP"
            if port.get("name") is None:
                port["name"] = ""

    def validate(self, obj: Obj) -> list[Cause]:
        address_type = obj.get("addressType")
        if address_type not in ADDRESS_TYPES:
            if not address_type:
                return [fe.required("addressType")]
            return [fe.not_supported("addressType", address_type, ADDRESS_TYPES)]
        return [*_validate_endpoints(dicts(obj.get("endpoints")), str(address_type)),
                *_validate_ports(dicts(obj.get("ports")))]

    def validate_update(self, obj: Obj, old: Obj) -> list[Cause]:
        errs = self.validate(obj)
        if obj.get("addressType") != old.get("addressType"):
            errs.append(fe.immutable("addressType", obj.get("addressType")))
        return errs

    def columns(self) -> list[Column]:
        return [Column("AddressType", description="Type of address carried by this EndpointSlice."),
                Column("Ports", description="Ports allowed in this EndpointSlice."),
                Column("Endpoints", description="Addresses of the endpoints in this EndpointSlice."), AGE]

    def cells(self, obj: Obj) -> list[Any]:
        return [str(obj.get("addressType") or ""), format_ports(obj.get("ports")),
                format_endpoints(obj.get("endpoints")), age(obj)]


def resources() -> list[ResourceType]:
    return [ResourceType("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices", "endpointslice", True,
                         verbs=ALL_VERBS, storage_resource="endpointslices", strategy=EndpointSliceStrategy())]

