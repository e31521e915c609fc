"""Cluster-wide allocations made on create and released on delete: Service ClusterIPs and
NodePorts (``--service-cluster-ip-range``, ``--service-node-port-range``) and event TTLs.

Each allocated IP or port is a storage key (``/registry/ranges/serviceips/10.96.0.10``) created
with create-if-absent, so two API server processes can never hand out the same one.
"""

from __future__ import annotations

import ipaddress
import random
from collections.abc import Awaitable, Callable
from typing import Any

from kapi import errors
from kapi.errors import Cause
from kapi.rest.context import Ctx
from kapi.storage import KeyExistsError, KeyNotFoundError

Obj = dict[str, Any]
Release = Callable[[], Awaitable[None]]
EVENT_TTL_SECONDS = 3600


def ttl_for(ctx: Ctx) -> int | None:
    """Events expire after --event-ttl (1 h) as in kube-apiserver."""
    return EVENT_TTL_SECONDS if ctx.rt.storage_resource == "events" or ctx.rt.plural == "events" else None


def _ip_key(ctx: Ctx, ip: str) -> str:
    return f"{ctx.app.root}/ranges/serviceips/{ip}"


def _port_key(ctx: Ctx, port: int) -> str:
    return f"{ctx.app.root}/ranges/servicenodeports/{port}"


def _network(ctx: Ctx) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    return ipaddress.ip_network(ctx.app.config.service_cluster_ip_range, strict=False)


def _port_range(ctx: Ctx) -> tuple[int, int]:
    low, _, high = ctx.app.config.service_node_port_range.partition("-")
    return int(low), int(high or low)


async def _claim(ctx: Ctx, key: str) -> bool:
    try:
        await ctx.app.storage.create(key, b"{}")
        return True
    except KeyExistsError:
        return False


async def _free(ctx: Ctx, key: str) -> None:
    try:
        await ctx.app.storage.delete(key)
    except KeyNotFoundError:
        pass


async def _allocate_ip(ctx: Ctx, wanted: str | None) -> str:
    net = _network(ctx)
    if wanted:
        try:
            ip = ipaddress.ip_address(wanted)
        except ValueError:
            raise errors.invalid("", "Service", "", (Cause("spec.clusterIP", f'Invalid value: "{wanted}": must be a '
                                                           f"valid IP address"),)) from None
        if ip not in net:
            raise errors.invalid("", "Service", "", (Cause("spec.clusterIPs", f'Invalid value: "{wanted}": failed to '
                                                           f"allocate IP {wanted}: the provided IP ({wanted}) is not "
                                                           f"in the valid range"),))
        if not await _claim(ctx, _ip_key(ctx, str(ip))):
            raise errors.invalid("", "Service", "", (Cause("spec.clusterIPs", f'Invalid value: "{wanted}": failed to '
                                                           f"allocate IP {wanted}: provided IP is already "
                                                           f"allocated"),))
        return str(ip)
    size = net.num_addresses
    # .0 is the network, .1 the kubernetes service (reserved by bootstrap), the last is broadcast
    for _ in range(64):
        offset = random.randrange(2, max(3, min(size - 1, 1 << 20)))
        candidate = str(net.network_address + offset)
        if await _claim(ctx, _ip_key(ctx, candidate)):
            return candidate
    for offset in range(2, min(size - 1, 1 << 20)):
        candidate = str(net.network_address + offset)
        if await _claim(ctx, _ip_key(ctx, candidate)):
            return candidate
    raise errors.APIError(500, "InternalError", "failed to allocate a service IP: range is full")


async def _allocate_port(ctx: Ctx, wanted: int | None, index: int) -> int:
    low, high = _port_range(ctx)
    if wanted:
        if not low <= wanted <= high:
            raise errors.invalid("", "Service", "", (Cause(f"spec.ports[{index}].nodePort", f"Invalid value: {wanted}: "
                                                           f"provided port is not in the valid range. The range of "
                                                           f"valid ports is {low}-{high}"),))
        if not await _claim(ctx, _port_key(ctx, wanted)):
            raise errors.invalid("", "Service", "", (Cause(f"spec.ports[{index}].nodePort", f"Invalid value: {wanted}: "
                                                           f"provided port is already allocated"),))
        return wanted
    for _ in range(64):
        port = random.randint(low, high)
        if await _claim(ctx, _port_key(ctx, port)):
            return port
    raise errors.APIError(500, "InternalError", "failed to allocate a node port: range is full")


async def allocate(ctx: Ctx, obj: Obj) -> Release:
    """Allocate what ``obj`` needs before it is stored; the returned function undoes it."""
    if ctx.rt.plural != "services" or ctx.rt.group != "":
        return _nothing
    spec = obj.setdefault("spec", {})
    keys: list[str] = []
    stype = spec.get("type", "ClusterIP")
    try:
        if stype != "ExternalName" and spec.get("clusterIP") != "None":
            ip = await _allocate_ip(ctx, spec.get("clusterIP") or None)
            keys.append(_ip_key(ctx, ip))
            spec["clusterIP"] = ip
            spec["clusterIPs"] = [ip]
        elif spec.get("clusterIP") == "None":
            spec["clusterIPs"] = ["None"]
        if stype in ("NodePort", "LoadBalancer"):
            for index, port in enumerate(spec.get("ports") or []):
                if isinstance(port, dict):
                    port["nodePort"] = await _allocate_port(ctx, port.get("nodePort"), index)
                    keys.append(_port_key(ctx, port["nodePort"]))
    except BaseException:
        for key in keys:
            await _free(ctx, key)
        raise

    async def undo() -> None:
        for key in keys:
            await _free(ctx, key)

    return undo


async def release(ctx: Ctx, obj: Obj) -> None:
    """Free what a deleted object held."""
    if ctx.rt.plural != "services" or ctx.rt.group != "":
        return
    spec = obj.get("spec", {})
    for ip in spec.get("clusterIPs") or ([spec["clusterIP"]] if spec.get("clusterIP") else []):
        if ip and ip != "None":
            await _free(ctx, _ip_key(ctx, ip))
    for port in spec.get("ports") or []:
        if isinstance(port, dict) and port.get("nodePort"):
            await _free(ctx, _port_key(ctx, int(port["nodePort"])))


async def _nothing() -> None:
    return None
