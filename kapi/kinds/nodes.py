"""Nodes: ``pkg/registry/core/node/strategy.go`` and the node printer.

The kubelet creates its Node with status, so create keeps it; updates of the main resource keep
the stored status. ``allocatable`` defaults to ``capacity`` and ``podCIDRs`` to ``[podCIDR]``.
``podCIDRs`` and ``providerID`` may only be set once.
"""

from __future__ import annotations

from typing import Any

from kapi.errors import Cause
from kapi.kinds import fielderrors as fe
from kapi.kinds.access import as_dict, as_list, child_dict, dicts
from kapi.kinds.formats import is_label_value, is_qualified_name
from kapi.kinds.podspec import validate_taint_effect
from kapi.kinds.printing import AGE, NONE, UNKNOWN, age
from kapi.resources import ALL_VERBS, Column, ResourceType, Strategy

Obj = dict[str, Any]

ROLE_PREFIX = "node-role.kubernetes.io/"
ROLE_LABEL = "kubernetes.io/role"
CIDR_FORBIDDEN = 'node updates may not change podCIDR except from "" to valid'
PROVIDER_FORBIDDEN = 'node updates may not change providerID except from "" to valid'


def node_roles(node: Obj) -> str:
    """``findNodeRoles``: roles from ``node-role.kubernetes.io/ROLE`` and ``kubernetes.io/role``."""
    roles = set()
    for key, value in as_dict(as_dict(node.get("metadata")).get("labels")).items():
        if key.startswith(ROLE_PREFIX) and len(key) > len(ROLE_PREFIX):
            roles.add(key[len(ROLE_PREFIX):])
        elif key == ROLE_LABEL and value:
            roles.add(value)
    return ",".join(sorted(roles)) or NONE


def node_status(node: Obj) -> str:
    """``Ready``, ``NotReady`` or ``Unknown``, plus ``,SchedulingDisabled`` when cordoned."""
    ready = next((c for c in dicts(as_dict(node.get("status")).get("conditions")) if c.get("type") == "Ready"), None)
    state = "NotReady" if ready is not None else "Unknown"
    if ready is not None and ready.get("status") == "True":
        state = "Ready"
    parts = [state]
    if as_dict(node.get("spec")).get("unschedulable"):
        parts.append("SchedulingDisabled")
    return ",".join(parts)


def _address(node: Obj, kind: str) -> str:
    for address in dicts(as_dict(node.get("status")).get("addresses")):
        if address.get("type") == kind:
            return str(address.get("address", ""))
    return NONE


def validate_taints(taints: Any, path: str) -> list[Cause]:
    """``validateNodeTaints``: key, value, effect, unique by key and effect."""
    errs: list[Cause] = []
    seen: set[tuple[str, str]] = set()
    for i, taint in enumerate(dicts(taints)):
        p = fe.index(path, i)
        key, value, effect = str(taint.get("key") or ""), str(taint.get("value") or ""), taint.get("effect")
        errs.extend(fe.each_invalid(fe.child(p, "key"), key, is_qualified_name(key)))
        msgs = is_label_value(value)
        if msgs:
            errs.append(fe.invalid(fe.child(p, "value"), value, ";".join(msgs)))
        errs.extend(validate_taint_effect(effect, fe.child(p, "effect"), False))
        if (key, str(effect)) in seen:
            rendered = fe.GoRepr(f"core.Taint{{Key:{fe.go_quote(key)}, Value:{fe.go_quote(value)}, "
                                 f"Effect:{fe.go_quote(str(effect or ''))}, TimeAdded:<nil>}}")
            errs.append(fe.duplicate(p, rendered, "taints must be unique by key and effect pair"))
            continue
        seen.add((key, str(effect)))
    return errs


class NodeStrategy(Strategy):
    """Nodes (``nodeStrategy``)."""

    has_status = True

    def default(self, obj: Obj) -> None:
        spec = child_dict(obj, "spec")
        if spec.get("podCIDR") and not spec.get("podCIDRs"):
            spec["podCIDRs"] = [spec["podCIDR"]]
        status = obj.get("status")
        if isinstance(status, dict) and status.get("allocatable") is None and isinstance(status.get("capacity"),
                                                                                         dict):
            status["allocatable"] = dict(status["capacity"])

    def validate(self, obj: Obj) -> list[Cause]:
        return validate_taints(as_dict(obj.get("spec")).get("taints"), "spec.taints")

    def validate_update(self, obj: Obj, old: Obj) -> list[Cause]:
        errs = self.validate(obj)
        spec, old_spec = as_dict(obj.get("spec")), as_dict(old.get("spec"))
        old_cidrs = as_list(old_spec.get("podCIDRs"))
        if old_cidrs and old_cidrs != as_list(spec.get("podCIDRs")):
            errs.append(fe.forbidden("spec.podCIDRs", CIDR_FORBIDDEN))
        if old_spec.get("providerID") and old_spec.get("providerID") != spec.get("providerID"):
            errs.append(fe.forbidden("spec.providerID", PROVIDER_FORBIDDEN))
        return errs

    def field_values(self, obj: Obj) -> dict[str, str]:
        return {"spec.unschedulable": "true" if as_dict(obj.get("spec")).get("unschedulable") else "false"}

    def columns(self) -> list[Column]:
        return list(NODE_COLUMNS)

    def cells(self, obj: Obj) -> list[Any]:
        info = as_dict(as_dict(obj.get("status")).get("nodeInfo"))
        return [node_status(obj), node_roles(obj), age(obj), str(info.get("kubeletVersion") or ""),
                _address(obj, "InternalIP"), _address(obj, "ExternalIP"), info.get("osImage") or UNKNOWN,
                info.get("kernelVersion") or UNKNOWN, info.get("containerRuntimeVersion") or UNKNOWN]


_ADDRESSES = "List of addresses reachable to the node."
NODE_COLUMNS = (
    Column("Status", description="The status of the node"),
    Column("Roles", description="The roles of the node"),
    AGE,
    Column("Version", description="Kubelet Version reported by the node."),
    Column("Internal-IP", priority=1, description=_ADDRESSES),
    Column("External-IP", priority=1, description=_ADDRESSES),
    Column("OS-Image", priority=1, description="OS Image reported by the node from /etc/os-release (e.g. Debian "
                                               "GNU/Linux 7 (wheezy))."),
    Column("Kernel-Version", priority=1, description="Kernel Version reported by the node from 'uname -r' (e.g. "
                                                     "3.16.0-0.bpo.4-amd64)."),
    Column("Container-Runtime", priority=1, description="ContainerRuntime Version reported by the node through "
                                                        "runtime remote API (e.g. containerd://1.4.2)."),
)


def resources() -> list[ResourceType]:
    return [ResourceType("", "v1", "Node", "nodes", "node", False, short_names=("no",), subresources=("status",),
                         verbs=ALL_VERBS, storage_resource="minions", strategy=NodeStrategy())]
