"""PriorityClasses (scheduling.k8s.io/v1): named pod priorities, read by the Priority admission plugin.

Names starting with ``system-`` are reserved for the two built-in classes, which carry fixed
values (``SYSTEM_PRIORITY_CLASSES``; the Priority plugin creates them at startup); user classes may
not go above one billion. ``value`` and ``preemptionPolicy`` are immutable.
"""

from __future__ import annotations

from typing import Any

from kapi.errors import Cause
from kapi.kinds import fielderrors as fe
from kapi.kinds.access import as_dict
from kapi.kinds.printing import AGE, age
from kapi.resources import Column, ResourceType, Strategy

Obj = dict[str, Any]

GROUP = "scheduling.k8s.io"
HIGHEST_USER_DEFINABLE_PRIORITY = 1_000_000_000
#: name -> (value, description) of the classes every cluster has
SYSTEM_PRIORITY_CLASSES: dict[str, tuple[int, str]] = {
    "system-node-critical": (2_000_001_000, "Used for system critical pods that must not be moved from their "
                                            "current node."),
    "system-cluster-critical": (2_000_000_000, "Used for system critical pods that must run in the cluster, but "
                                               "can be moved to another node if necessary."),
}
PREEMPTION_POLICIES = ("Never", "PreemptLowerPriority")


def system_priority_class(name: str) -> Obj:
    """The built-in PriorityClass ``name`` (without server-set metadata)."""
    value, description = SYSTEM_PRIORITY_CLASSES[name]
    return {"apiVersion": f"{GROUP}/v1", "kind": "PriorityClass", "metadata": {"name": name}, "value": value,
            "globalDefault": False, "description": description, "preemptionPolicy": "PreemptLowerPriority"}


class PriorityClassStrategy(Strategy):
    """PriorityClasses (``priorityClassStrategy`` + ``ValidatePriorityClass``)."""

    def default(self, obj: Obj) -> None:
        if not obj.get("preemptionPolicy"):
            obj["preemptionPolicy"] = "PreemptLowerPriority"

    def validate(self, obj: Obj) -> list[Cause]:
        errs: list[Cause] = []
        name = str(as_dict(obj.get("metadata")).get("name") or "")
        value = obj.get("value")
        if name.startswith("system-"):
            fixed = SYSTEM_PRIORITY_CLASSES.get(name)
            if fixed is None:
                errs.append(fe.forbidden("metadata.name", "priority class names with 'system-' prefix are reserved"))
            elif value != fixed[0]:
                errs.append(fe.forbidden("value", f"value of {name} must be {fixed[0]}"))
        elif isinstance(value, int) and value > HIGHEST_USER_DEFINABLE_PRIORITY:
            errs.append(fe.forbidden("value", f"maximum allowed value of a user defined priority is "
                                              f"{HIGHEST_USER_DEFINABLE_PRIORITY}"))
        policy = obj.get("preemptionPolicy")
        if policy is not None and policy not in PREEMPTION_POLICIES:
            errs.append(fe.not_supported("preemptionPolicy", policy, PREEMPTION_POLICIES))
        return errs

    def validate_update(self, obj: Obj, old: Obj) -> list[Cause]:
        errs = self.validate(obj)
        if obj.get("value") != old.get("value"):
            errs.append(fe.forbidden("value", "may not be changed in an update."))
        if obj.get("preemptionPolicy") != old.get("preemptionPolicy"):
            errs.append(fe.immutable("preemptionPolicy", obj.get("preemptionPolicy")))
        return errs

    def columns(self) -> list[Column]:
        return [Column("Value", "integer", description="value represents the integer value of this priority class."),
                Column("Global-Default", "boolean", description="globalDefault specifies whether this "
                                                                "PriorityClass should be considered as the default "
                                                                "priority for pods that do not have any priority "
                                                                "class."),
                AGE,
                Column("PreemptionPolicy", description="preemptionPolicy is the Policy for preempting pods with "
                                                       "lower priority.")]

    def cells(self, obj: Obj) -> list[Any]:
        return [obj.get("value"), bool(obj.get("globalDefault")), age(obj), str(obj.get("preemptionPolicy") or "")]


def resources() -> list[ResourceType]:
    return [ResourceType(GROUP, "v1", "PriorityClass", "priorityclasses", "priorityclass", False,
                         short_names=("pc",), strategy=PriorityClassStrategy())]
