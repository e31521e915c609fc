"""Deployments and ReplicaSets (apps/v1): defaults, selector rules, printers.

Both require a non-empty selector that matches the template labels and is immutable after
create; templates get the shared PodSpec defaults and validation and must restart ``Always``.
Create clears status (a ReplicaSet's status reads ``{replicas: 0}``, a Deployment's ``{}``).
"""

from __future__ import annotations

from typing import Any

from kapi.errors import Cause
from kapi.kinds import fielderrors as fe
from kapi.kinds import podspec
from kapi.kinds.access import as_dict, as_list, child_dict, dicts
from kapi.kinds.formats import PERCENT_FMT, is_label_value, is_percent, is_qualified_name, regex_error
from kapi.kinds.printing import AGE, CONTAINERS, IMAGES, NONE, age, container_cells
from kapi.resources import ALL_VERBS, Column, ResourceType, Strategy
from kapi.selectors import from_label_selector_dict

Obj = dict[str, Any]

SELECTOR_OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")
STRATEGY_TYPES = ("Recreate", "RollingUpdate")


# ---------------------------------------------------------------------------------------------
# selectors


def go_label_selector(selector: Any) -> fe.GoRepr:
    """A ``metav1.LabelSelector`` rendered like Go's ``%#v`` (for ``Invalid value:`` messages)."""
    if not isinstance(selector, dict):
        return fe.GoRepr("(*v1.LabelSelector)(nil)")
    labels = as_dict(selector.get("matchLabels"))
    labels_repr = fe.go_value(labels) if labels else "map[string]string(nil)"
    exprs = dicts(selector.get("matchExpressions"))
    if exprs:
        items = ", ".join(
            f"v1.LabelSelectorRequirement{{Key:{fe.go_quote(str(e.get('key', '')))}, "
            f"Operator:{fe.go_quote(str(e.get('operator', '')))}, "
            f"Values:{fe.go_value(as_list(e.get('values'))) if e.get('values') else '[]string(nil)'}}}"
            for e in exprs)
        exprs_repr = f"[]v1.LabelSelectorRequirement{{{items}}}"
    else:
        exprs_repr = "[]v1.LabelSelectorRequirement(nil)"
    return fe.GoRepr(f"&v1.LabelSelector{{MatchLabels:{labels_repr}, MatchExpressions:{exprs_repr}}}")


def validate_label_selector(selector: Any, path: str) -> list[Cause]:
    """``ValidateLabelSelector`` (label values must be valid)."""
    selector = as_dict(selector)
    errs = podspec.validate_labels(selector.get("matchLabels"), fe.child(path, "matchLabels"))
    for i, expr in enumerate(dicts(selector.get("matchExpressions"))):
        p = fe.index(fe.child(path, "matchExpressions"), i)
        op, values = expr.get("operator"), as_list(expr.get("values"))
        if op in ("In", "NotIn"):
            if not values:
                errs.append(fe.required(fe.child(p, "values"), "must be specified when `operator` is 'In' or 'NotIn'"))
        elif op in ("Exists", "DoesNotExist"):
            if values:
                errs.append(fe.forbidden(fe.child(p, "values"),
                                         "may not be specified when `operator` is 'Exists' or 'DoesNotExist'"))
        else:
            errs.append(fe.invalid(fe.child(p, "operator"), op or "", "not a valid selector operator"))
        key = str(expr.get("key") or "")
        errs.extend(fe.each_invalid(fe.child(p, "key"), key, is_qualified_name(key)))
        for j, value in enumerate(values):
            errs.extend(fe.each_invalid(fe.index(fe.child(p, "values"), j), value, is_label_value(str(value))))
    return errs


def selector_string(selector: Any) -> str | None:
    """The selector's string form, "" for none/empty, None when it cannot be converted."""
    try:
        return str(from_label_selector_dict(selector if isinstance(selector, dict) else None))
    except ValueError:
        return None


def _validate_replicated_spec(obj: Obj) -> list[Cause]:
    """The spec rules shared by Deployments and ReplicaSets (``ValidateReplicaSetSpec`` and
    ``ValidateDeploymentSpec``): replicas, selector, and the template against the selector."""
    spec = as_dict(obj.get("spec"))
    errs = fe.nonnegative("spec.replicas", spec.get("replicas"))
    errs.extend(fe.nonnegative("spec.minReadySeconds", spec.get("minReadySeconds")))
    selector = spec.get("selector")
    if not isinstance(selector, dict):
        errs.append(fe.required("spec.selector"))
        label_selector = None
    else:
        errs.extend(validate_label_selector(selector, "spec.selector"))
        if not as_dict(selector.get("matchLabels")) and not as_list(selector.get("matchExpressions")):
            errs.append(fe.invalid("spec.selector", go_label_selector(selector),
                                   "empty selector is invalid for deployment"))
        try:
            label_selector = from_label_selector_dict(selector)
        except ValueError:
            label_selector = None
            errs.append(fe.invalid("spec.selector", go_label_selector(selector), "invalid label selector"))
    template = spec.get("template")
    if not isinstance(template, dict):
        return [*errs, fe.required("spec.template")]
    labels = as_dict(as_dict(template.get("metadata")).get("labels"))
    if label_selector is not None and not label_selector.empty and not label_selector.matches(labels):
        errs.append(fe.invalid("spec.template.metadata.labels", labels, "`selector` does not match template `labels`"))
    errs.extend(podspec.validate_pod_template(template, "spec.template"))
    restart = as_dict(template.get("spec")).get("restartPolicy")
    if restart and restart != "Always":
        errs.append(fe.not_supported("spec.template.spec.restartPolicy", restart, ("Always",)))
    if as_dict(template.get("spec")).get("activeDeadlineSeconds") is not None:
        errs.append(fe.forbidden("spec.template.spec.activeDeadlineSeconds",
                                 "activeDeadlineSeconds in ReplicaSet is not Supported"))
    return errs


def _selector_immutable(obj: Obj, old: Obj) -> list[Cause]:
    new_sel, old_sel = as_dict(obj.get("spec")).get("selector"), as_dict(old.get("spec")).get("selector")
    if _normalize_selector(new_sel) != _normalize_selector(old_sel):
        return [fe.immutable("spec.selector", go_label_selector(new_sel))]
    return []


def _normalize_selector(selector: Any) -> Any:
    if not isinstance(selector, dict):
        return None
    return (tuple(sorted(as_dict(selector.get("matchLabels")).items())),
            tuple((e.get("key"), e.get("operator"), tuple(as_list(e.get("values"))))
                  for e in dicts(selector.get("matchExpressions"))))


# ---------------------------------------------------------------------------------------------
# deployments


def _validate_int_or_percent(value: Any, path: str) -> tuple[list[Cause], int | None]:
    """``ValidatePositiveIntOrPercent`` + ``IsNotMoreThan100Percent``; also the value when it is 0."""
    if isinstance(value, bool):
        return [fe.invalid(path, value, "must be an integer or percentage (e.g '5%')")], None
    if isinstance(value, int):
        return fe.nonnegative(path, value), value
    if isinstance(value, str):
        if not is_percent(value):
            return [fe.invalid(path, value, regex_error("a valid percent string must be a numeric string followed "
                                                         "by an ending '%'", PERCENT_FMT, "1%", "93%"))], None
        percent = int(value[:-1])
        if percent > 100:
            return [fe.invalid(path, value, "must not be greater than 100%")], percent
        return [], percent
    return [], None


def _validate_strategy(spec: Obj) -> list[Cause]:
    strategy = as_dict(spec.get("strategy"))
    kind = strategy.get("type")
    errs: list[Cause] = []
    rolling = strategy.get("rollingUpdate")
    if kind == "Recreate":
        if rolling is not None:
            errs.append(fe.forbidden("spec.strategy.rollingUpdate",
                                     "may not be specified when strategy `type` is 'Recreate'"))
    elif kind == "RollingUpdate":
        rolling = as_dict(rolling)
        surge_errs, surge = _validate_int_or_percent(rolling.get("maxSurge"), "spec.strategy.rollingUpdate.maxSurge")
        unavail_errs, unavailable = _validate_int_or_percent(rolling.get("maxUnavailable"),
                                                             "spec.strategy.rollingUpdate.maxUnavailable")
        errs.extend([*surge_errs, *unavail_errs])
        if surge == 0 and unavailable == 0:
            errs.append(fe.invalid("spec.strategy.rollingUpdate.maxUnavailable", rolling.get("maxUnavailable"),
                                   "may not be 0 when `maxSurge` is 0"))
    elif kind:
        errs.append(fe.not_supported("spec.strategy.type", kind, STRATEGY_TYPES))
    else:
        errs.append(fe.required("spec.strategy.type"))
    return errs


def default_deployment(obj: Obj) -> None:
    """``SetDefaults_Deployment`` and the template's PodSpec defaults."""
    spec = child_dict(obj, "spec")
    if spec.get("replicas") is None:
        spec["replicas"] = 1
    strategy = child_dict(spec, "strategy")
    if not strategy.get("type"):
        strategy["type"] = "RollingUpdate"
    if strategy["type"] == "RollingUpdate":
        rolling = child_dict(strategy, "rollingUpdate")
        for name in ("maxUnavailable", "maxSurge"):
            if rolling.get(name) is None:
                rolling[name] = "25%"
    if spec.get("revisionHistoryLimit") is None:
        spec["revisionHistoryLimit"] = 10
    if spec.get("progressDeadlineSeconds") is None:
        spec["progressDeadlineSeconds"] = 600
    podspec.default_pod_template(child_dict(spec, "template"))


class DeploymentStrategy(Strategy):
    """Deployments (``deploymentStrategy``)."""

    has_status = True

    def prepare_for_create(self, obj: Obj) -> None:
        obj["status"] = {}

    def default(self, obj: Obj) -> None:
        default_deployment(obj)

    def validate(self, obj: Obj) -> list[Cause]:
        spec = as_dict(obj.get("spec"))
        errs = _validate_replicated_spec(obj)
        errs.extend(_validate_strategy(spec))
        errs.extend(fe.nonnegative("spec.revisionHistoryLimit", spec.get("revisionHistoryLimit")))
        deadline = spec.get("progressDeadlineSeconds")
        if deadline is not None:
            errs.extend(fe.nonnegative("spec.progressDeadlineSeconds", deadline))
            if isinstance(deadline, int) and deadline <= (spec.get("minReadySeconds") or 0):
                errs.append(fe.invalid("spec.progressDeadlineSeconds", deadline,
                                       "must be greater than minReadySeconds"))
        return errs

    def validate_update(self, obj: Obj, old: Obj) -> list[Cause]:
        return [*self.validate(obj), *_selector_immutable(obj, old)]

    def columns(self) -> list[Column]:
        return list(DEPLOYMENT_COLUMNS)

    def cells(self, obj: Obj) -> list[Any]:
        spec, status = as_dict(obj.get("spec")), as_dict(obj.get("status"))
        names, images = container_cells(podspec.template_containers(obj))
        selector = selector_string(spec.get("selector"))
        return [f"{status.get('readyReplicas') or 0}/{spec.get('replicas') or 0}", status.get("updatedReplicas") or 0,
                status.get("availableReplicas") or 0, age(obj), names, images,
                "<invalid>" if selector is None else selector]


DEPLOYMENT_COLUMNS = (
    Column("Ready", description="Number of the pod with ready state"),
    Column("Up-to-date", description="Total number of non-terminated pods targeted by this deployment that have the "
                                     "desired template spec."),
    Column("Available", description="Total number of available pods (ready for at least minReadySeconds) targeted "
                                    "by this deployment."),
    AGE, CONTAINERS, IMAGES,
    Column("Selector", priority=1, description="Label selector for pods. Existing ReplicaSets whose pods are selected "
                                               "by this will be the ones affected by this deployment."),
)


# ---------------------------------------------------------------------------------------------
# replicasets


class ReplicaSetStrategy(Strategy):
    """ReplicaSets (``rsStrategy``)."""

    has_status = True

    def prepare_for_create(self, obj: Obj) -> None:
        obj["status"] = {"replicas": 0}

    def default(self, obj: Obj) -> None:
        spec = child_dict(obj, "spec")
        if spec.get("replicas") is None:
            spec["replicas"] = 1
        podspec.default_pod_template(child_dict(spec, "template"))

    def validate(self, obj: Obj) -> list[Cause]:
        return _validate_replicated_spec(obj)

    def validate_update(self, obj: Obj, old: Obj) -> list[Cause]:
        return [*self.validate(obj), *_selector_immutable(obj, old)]

    def field_values(self, obj: Obj) -> dict[str, str]:
        return {"status.replicas": str(as_dict(obj.get("status")).get("replicas") or 0)}

    def columns(self) -> list[Column]:
        return list(REPLICASET_COLUMNS)

    def cells(self, obj: Obj) -> list[Any]:
        spec, status = as_dict(obj.get("spec")), as_dict(obj.get("status"))
        names, images = container_cells(podspec.template_containers(obj))
        selector = selector_string(spec.get("selector"))
        return [spec.get("replicas") or 0, status.get("replicas") or 0, status.get("readyReplicas") or 0, age(obj),
                names, images, "<error>" if selector is None else (selector or NONE)]


REPLICASET_COLUMNS = (
    Column("Desired", "integer", description="Replicas is the number of desired pods."),
    Column("Current", "integer", description="Replicas is the most recently observed number of replicas."),
    Column("Ready", "integer", description="The number of ready replicas for this replica set."),
    AGE, CONTAINERS, IMAGES,
    Column("Selector", priority=1, description="Selector is a label query over pods that should match the replica "
                                               "count."),
)


def resources() -> list[ResourceType]:
    return [
        ResourceType("apps", "v1", "Deployment", "deployments", "deployment", True, short_names=("deploy",),
                     categories=("all",), subresources=("scale", "status"), verbs=ALL_VERBS,
                     storage_resource="deployments", strategy=DeploymentStrategy()),
        ResourceType("apps", "v1", "ReplicaSet", "replicasets", "replicaset", True, short_names=("rs",),
                     categories=("all",), subresources=("scale", "status"), verbs=ALL_VERBS,
                     storage_resource="replicasets", strategy=ReplicaSetStrategy()),
    ]
