"""Priority admission (``--enable-admission-plugins=Priority``, on by default).

Pods: a new pod's ``spec.priorityClassName`` is resolved to ``spec.priority`` and
``spec.preemptionPolicy``. Without a class name the pod gets the global default class (the one
with ``globalDefault: true``; the lowest value if several), else priority 0. An unknown class is a
403 ``no PriorityClass with name NAME was found``; a pod that states a priority other than its
class's is a 403 too. The built-in ``system-cluster-critical`` (2000000000) and
``system-node-critical`` (2000001000) classes are created at startup when this plugin is enabled.

PriorityClasses: only one may be the global default (403 ``PriorityClass NAME is already marked as
default. Only one default can exist``), and the built-in classes may not be deleted.

kapi's pod defaulting already writes ``preemptionPolicy: PreemptLowerPriority`` (and ``priority:
0`` for pods without a class), so servers without this plugin store what kube would; the plugin
therefore treats exactly those values as unset, where kube would refuse an explicit ``priority:
0`` that differs from a global default or a ``PreemptLowerPriority`` that differs from the class.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kapi import AdmissionRequest, Operation, admissionkit, hookimpl

if TYPE_CHECKING:
    from kapi import App

ALIASES = ("Priority",)
PLUGIN_NAME = "admission_priority"
GROUP = "scheduling.k8s.io"
DEFAULT_POLICY = "PreemptLowerPriority"

Obj = dict[str, Any]


def global_default(classes: list[Obj]) -> Obj | None:
    """The global default class (lowest value among several), or None."""
    defaults = [pc for pc in classes if pc.get("globalDefault")]
    return min(defaults, key=lambda pc: int(pc.get("value") or 0)) if defaults else None


async def _lookup(app: App, name: str) -> Obj | None:
    found = await admissionkit.objects.fetch(app, GROUP, "v1", "priorityclasses", "", name)
    if found is None and name in admissionkit.SYSTEM_PRIORITY_CLASSES:
        return admissionkit.system_priority_class(name)
    return found


async def admit_pod(request: AdmissionRequest, app: App) -> Obj | None:
    pod = dict(request.obj or {})
    spec = dict(pod.get("spec") or {})
    name = str(spec.get("priorityClassName") or "")
    given_priority, given_policy = spec.get("priority"), spec.get("preemptionPolicy")
    # kapi's pod defaulting fills these in: they cannot be told apart from the client's
    if given_policy == DEFAULT_POLICY:
        given_policy = None
    if not name:
        pc = global_default(admissionkit.objects.cached_list(app, GROUP, "v1", "priorityclasses"))
        if given_priority == 0:
            given_priority = None
    else:
        pc = await _lookup(app, name)
        if pc is None:
            raise admissionkit.forbidden(request, f"no PriorityClass with name {name} was found")
    priority = int(pc.get("value") or 0) if pc is not None else 0
    policy = str(pc.get("preemptionPolicy") or DEFAULT_POLICY) if pc is not None else DEFAULT_POLICY
    if given_priority is not None and given_priority != priority:
        raise admissionkit.forbidden(request, f"the integer value of priority ({given_priority}) must not be "
                                              f"provided in pod spec; priority admission controller computed "
                                              f"{priority} from the given PriorityClass name")
    if given_policy is not None and given_policy != policy:
        raise admissionkit.forbidden(request, f"the string value of PreemptionPolicy ({given_policy}) must not be "
                                              f"provided in pod spec; priority admission controller computed "
                                              f"{policy} from the given PriorityClass name")
    if pc is not None:
        spec["priorityClassName"] = pc["metadata"]["name"]
    spec["priority"], spec["preemptionPolicy"] = priority, policy
    pod["spec"] = spec
    return pod


@hookimpl
async def kapi_startup(app: App) -> None:
    """Create the built-in PriorityClasses (create-if-absent) when the plugin is enabled."""
    if PLUGIN_NAME not in app.chains.admission_names:
        return
    for name in admissionkit.SYSTEM_PRIORITY_CLASSES:
        await admissionkit.objects.create_if_absent(app, GROUP, "v1", "priorityclasses",
                                                    admissionkit.system_priority_class(name))


@hookimpl
async def kapi_mutate_admission(request: AdmissionRequest, app: App) -> Obj | None:
    """Resolve a new pod's priority class."""
    if request.operation is Operation.CREATE and request.resource == "pods" and not request.api_group \
            and not request.subresource and request.obj is not None:
        return await admit_pod(request, app)
    return None


@hookimpl
async def kapi_validate_admission(request: AdmissionRequest, app: App) -> None:
    """One global default; the built-in classes stay."""
    if request.api_group != GROUP or request.resource != "priorityclasses" or request.subresource:
        return
    if request.operation is Operation.DELETE:
        if request.name in admissionkit.SYSTEM_PRIORITY_CLASSES:
            raise admissionkit.forbidden(request, "this is a system priority class and cannot be deleted")
        return
    obj = request.obj or {}
    if request.operation not in (Operation.CREATE, Operation.UPDATE) or not obj.get("globalDefault"):
        return
    for other in await admissionkit.objects.consistent_list(app, GROUP, "v1", "priorityclasses"):
        other_name = other.get("metadata", {}).get("name")
        if other.get("globalDefault") and other_name != request.name:
            raise admissionkit.forbidden(request, f"PriorityClass {other_name} is already marked as default. Only "
                                                  f"one default can exist")
