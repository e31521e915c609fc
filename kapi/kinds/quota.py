"""LimitRanges and ResourceQuotas (core v1): the objects behind the LimitRanger and ResourceQuota
admission plugins.

A LimitRange's container items are defaulted as ``SetDefaults_LimitRangeItem`` does (a missing
default limit takes ``max``, a missing default request takes the default limit, then ``min``),
and validated for ``min <= defaultRequest <= default <= max``. A ResourceQuota starts with an empty
status (the quota reconciler fills ``status.hard`` / ``status.used``); its table shows
``used/hard`` per resource, requests and limits apart, as kube's printer does.

``format_quantity`` renders an exact quantity in Kubernetes' canonical form (``500m``, ``1``,
``2k``, ``128Mi``), for status.used and for admission messages.
"""

from __future__ import annotations

from collections.abc import Mapping
from fractions import Fraction
from typing import Any

from kapi.errors import Cause
from kapi.kinds import fielderrors as fe
from kapi.kinds.access import as_dict, as_list, child_dict, dicts
from kapi.kinds.formats import is_qualified_name
from kapi.kinds.printing import AGE, CREATED_AT, age
from kapi.kinds.quantity import parse_quantity
from kapi.resources import Column, ResourceType, Strategy

Obj = dict[str, Any]

LIMIT_TYPES = ("Pod", "Container", "PersistentVolumeClaim")
QUOTA_SCOPES = ("Terminating", "NotTerminating", "BestEffort", "NotBestEffort", "PriorityClass",
                "CrossNamespacePodAffinity", "VolumeAttributesClass")
_DECIMAL = ((Fraction(10**18), "E"), (Fraction(10**15), "P"), (Fraction(10**12), "T"), (Fraction(10**9), "G"),
            (Fraction(10**6), "M"), (Fraction(10**3), "k"), (Fraction(1), ""), (Fraction(1, 10**3), "m"),
            (Fraction(1, 10**6), "u"), (Fraction(1, 10**9), "n"))
_BINARY = ((Fraction(2**60), "Ei"), (Fraction(2**50), "Pi"), (Fraction(2**40), "Ti"), (Fraction(2**30), "Gi"),
           (Fraction(2**20), "Mi"), (Fraction(2**10), "Ki"))


def is_binary(text: object) -> bool:
    """True when a quantity string uses a binary suffix (``Ki`` ... ``Ei``): sums keep that format."""
    return isinstance(text, str) and text.endswith("i")


def format_quantity(value: Fraction, binary: bool = False) -> str:
    """``Quantity.String()`` in canonical form: the largest suffix that keeps the number whole
    (binary suffixes when ``binary`` and the value is a whole multiple of 1Ki)."""
    if value == 0:
        return "0"
    sign = "-" if value < 0 else ""
    value = abs(value)
    if binary and value.denominator == 1:
        for factor, suffix in _BINARY:
            if value % factor == 0:
                return f"{sign}{value // factor}{suffix}"
    for factor, suffix in _DECIMAL:
        scaled = value / factor
        if scaled.denominator == 1:
            return f"{sign}{scaled.numerator}{suffix}"
    # below 1n: round up to whole nanos, as kube does
    nanos = -(-value.numerator * 10**9 // value.denominator)
    return f"{sign}{nanos}n"


def quantities(values: Any) -> dict[str, Fraction]:
    """A ResourceList with every parsable quantity as an exact Fraction (bad values skipped)."""
    out: dict[str, Fraction] = {}
    for name, raw in as_dict(values).items():
        try:
            out[str(name)] = parse_quantity(raw)
        except ValueError:
            continue
    return out


def pod_totals(spec: Mapping[str, Any], which: str) -> tuple[dict[str, Fraction], frozenset[str]]:
    """``podRequests`` / ``podLimits`` (``which`` = ``requests`` or ``limits``): the containers'
    values summed, then raised to any larger init container's; with the names written in binary
    units (so sums print as ``1200Mi``, not bytes)."""
    total: dict[str, Fraction] = {}
    binary: set[str] = set()
    for field in ("containers", "initContainers"):
        for container in dicts(spec.get(field)):
            raw = as_dict(as_dict(container.get("resources")).get(which))
            binary.update(name for name, text in raw.items() if is_binary(text))
            for name, value in quantities(raw).items():
                current = total.get(name, Fraction(0))
                total[name] = current + value if field == "containers" else max(current, value)
    return total, frozenset(binary)


def _validate_resource_list(values: Any, path: str) -> list[Cause]:
    errs: list[Cause] = []
    for name, raw in as_dict(values).items():
        sub = fe.key(path, str(name))
        errs.extend(fe.each_invalid(sub, str(name), is_qualified_name(str(name))))
        try:
            value = parse_quantity(raw)
        except ValueError as exc:
            errs.append(fe.invalid(sub, raw, str(exc)))
            continue
        if value < 0:
            errs.append(fe.invalid(sub, raw, "must be greater than or equal to 0"))
    return errs


# ---------------------------------------------------------------------------------------------
# LimitRange


def default_limit_range_item(item: Obj) -> None:
    """``SetDefaults_LimitRangeItem`` (container items only), in place."""
    if item.get("type") != "Container":
        return
    default = child_dict(item, "default")
    default_request = child_dict(item, "defaultRequest")
    for name, value in as_dict(item.get("max")).items():
        default.setdefault(name, value)
    for name, value in default.items():
        default_request.setdefault(name, value)
    for name, value in as_dict(item.get("min")).items():
        default_request.setdefault(name, value)


def _validate_limit_item(item: Obj, path: str) -> list[Cause]:
    """``ValidateLimitRange`` for one item: known type, valid quantities, ordered bounds."""
    errs: list[Cause] = []
    kind = str(item.get("type") or "")
    if not kind:
        errs.append(fe.required(fe.child(path, "type")))
    elif kind not in LIMIT_TYPES and "/" not in kind:
        errs.append(fe.not_supported(fe.child(path, "type"), kind, LIMIT_TYPES))
    fields = ("max", "min", "default", "defaultRequest", "maxLimitRequestRatio")
    for name in fields:
        errs.extend(_validate_resource_list(item.get(name), fe.child(path, name)))
    if kind == "Pod" and (item.get("default") or item.get("defaultRequest")):
        which = "default" if item.get("default") else "defaultRequest"
        errs.append(fe.forbidden(fe.child(path, which), "may not be specified when `type` is 'Pod'"))
    bounds = {name: quantities(item.get(name)) for name in fields}
    for resource, minimum in bounds["min"].items():
        maximum = bounds["max"].get(resource)
        if maximum is not None and minimum > maximum:
            errs.append(fe.invalid(fe.key(fe.child(path, "min"), resource), item["min"][resource],
                                   f"min value {item['min'][resource]} is greater than max value "
                                   f"{item['max'][resource]}"))
    for name in ("defaultRequest", "default"):
        for resource, value in bounds[name].items():
            raw = item[name][resource]
            low, high = bounds["min"].get(resource), bounds["max"].get(resource)
            if low is not None and value < low:
                errs.append(fe.invalid(fe.key(fe.child(path, name), resource), raw,
                                       f"min value {item['min'][resource]} is greater than {name} value {raw}"))
            if high is not None and value > high:
                errs.append(fe.invalid(fe.key(fe.child(path, name), resource), raw,
                                       f"{name} value {raw} is greater than max value {item['max'][resource]}"))
    for resource, request in bounds["defaultRequest"].items():
        limit = bounds["default"].get(resource)
        if limit is not None and request > limit:
            errs.append(fe.invalid(fe.key(fe.child(path, "defaultRequest"), resource),
                                   item["defaultRequest"][resource],
                                   f"default request value {item['defaultRequest'][resource]} is greater than "
                                   f"default limit value {item['default'][resource]}"))
    for resource, ratio in bounds["maxLimitRequestRatio"].items():
        if ratio < 1:
            errs.append(fe.invalid(fe.key(fe.child(path, "maxLimitRequestRatio"), resource),
                                   item["maxLimitRequestRatio"][resource],
                                   "ratio must be greater than or equal to 1"))
    return errs


class LimitRangeStrategy(Strategy):
    """LimitRanges: item defaults and bound checks; printed with kube's default table."""

    def default(self, obj: Obj) -> None:
        for item in dicts(as_dict(obj.get("spec")).get("limits")):
            default_limit_range_item(item)

    def validate(self, obj: Obj) -> list[Cause]:
        errs: list[Cause] = []
        for i, item in enumerate(dicts(as_dict(obj.get("spec")).get("limits"))):
            errs.extend(_validate_limit_item(item, fe.index("spec.limits", i)))
        return errs

    def columns(self) -> list[Column]:
        return [CREATED_AT]

    def cells(self, obj: Obj) -> list[Any]:
        return [as_dict(obj.get("metadata")).get("creationTimestamp")]


# ---------------------------------------------------------------------------------------------
# ResourceQuota


def quota_usage_cells(status: Mapping[str, Any]) -> tuple[str, str]:
    """The REQUEST and LIMIT cells: ``resource: used/hard`` for each hard resource, sorted."""
    hard, used = as_dict(status.get("hard")), as_dict(status.get("used"))
    requests: list[str] = []
    limits: list[str] = []
    for name in sorted(hard):
        cell = f"{name}: {used.get(name, '0')}/{hard[name]}"
        (limits if name.startswith("limits") else requests).append(cell)
    return ", ".join(requests), ", ".join(limits)


class ResourceQuotaStrategy(Strategy):
    """ResourceQuotas: the status is the reconciler's; hard limits and scopes are validated."""

    has_status = True

    def prepare_for_create(self, obj: Obj) -> None:
        obj["status"] = {}

    def validate(self, obj: Obj) -> list[Cause]:
        spec = as_dict(obj.get("spec"))
        errs = _validate_resource_list(spec.get("hard"), "spec.hard")
        errs.extend(_validate_resource_list(as_dict(obj.get("status")).get("hard"), "status.hard"))
        errs.extend(_validate_resource_list(as_dict(obj.get("status")).get("used"), "status.used"))
        for i, scope in enumerate(as_list(spec.get("scopes"))):
            if scope not in QUOTA_SCOPES:
                errs.append(fe.not_supported(fe.index("spec.scopes", i), scope, QUOTA_SCOPES))
        for i, expr in enumerate(dicts(as_dict(spec.get("scopeSelector")).get("matchExpressions"))):
            if expr.get("scopeName") not in QUOTA_SCOPES:
                errs.append(fe.not_supported(fe.child(fe.index("spec.scopeSelector.matchExpressions", i),
                                                      "scopeName"), expr.get("scopeName"), QUOTA_SCOPES))
        return errs

    def columns(self) -> list[Column]:
        return [AGE, Column("Request", description="Request represents a minimum amount of cpu/memory that a "
                                                   "container may consume."),
                Column("Limit", description="Limits control the maximum amount of cpu/memory that a container may "
                                            "use independent of contention on the node.")]

    def cells(self, obj: Obj) -> list[Any]:
        return [age(obj), *quota_usage_cells(as_dict(obj.get("status")))]


def resources() -> list[ResourceType]:
    return [
        ResourceType("", "v1", "LimitRange", "limitranges", "limitrange", True, short_names=("limits",),
                     strategy=LimitRangeStrategy()),
        ResourceType("", "v1", "ResourceQuota", "resourcequotas", "resourcequota", True, short_names=("quota",),
                     subresources=("status",), strategy=ResourceQuotaStrategy()),
    ]
