"""admissionregistration.k8s.io/v1: webhook configurations and ValidatingAdmissionPolicies (+Bindings).

Defaults follow kube's v1 defaulters (failurePolicy Fail, matchPolicy Equivalent, empty
selectors, timeoutSeconds 10, reinvocationPolicy Never, rule scope ``*``, service port 443);
validation covers what a user gets wrong in practice (webhook names, sideEffects,
admissionReviewVersions, clientConfig, timeouts, rules; policy validations and binding actions).
The admission plugins that act on these objects are ``admission_mutating_webhook``,
``admission_validating_webhook`` and ``admission_validating_admission_policy``.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from kapi.errors import Cause
from kapi.kinds import fielderrors as fe
from kapi.kinds.access import as_dict, as_list, child_dict, dicts
from kapi.kinds.formats import is_dns1123_subdomain
from kapi.kinds.printing import AGE, age
from kapi.resources import Column, ResourceType, Strategy

Obj = dict[str, Any]

GROUP = "admissionregistration.k8s.io"
CATEGORIES = ("api-extensions",)
FAILURE_POLICIES = ("Fail", "Ignore")
MATCH_POLICIES = ("Exact", "Equivalent")
SIDE_EFFECTS = ("None", "NoneOnDryRun")
REINVOCATION_POLICIES = ("Never", "IfNeeded")
OPERATIONS = ("*", "CREATE", "UPDATE", "DELETE", "CONNECT")
SCOPES = ("*", "Cluster", "Namespaced")
REVIEW_VERSIONS = ("v1", "v1beta1")
VALIDATION_ACTIONS = ("Deny", "Warn", "Audit")


def default_rule(rule: Obj) -> None:
    if not rule.get("scope"):
        rule["scope"] = "*"


def default_match_resources(match: Obj) -> None:
    """Defaults of ``MatchResources`` (policies and bindings) and of a webhook's selectors."""
    if not match.get("matchPolicy"):
        match["matchPolicy"] = "Equivalent"
    child_dict(match, "namespaceSelector")
    child_dict(match, "objectSelector")
    for name in ("resourceRules", "excludeResourceRules"):
        for rule in dicts(match.get(name)):
            default_rule(rule)


def default_webhook(hook: Obj, mutating: bool) -> None:
    if not hook.get("failurePolicy"):
        hook["failurePolicy"] = "Fail"
    default_match_resources(hook)
    if hook.get("timeoutSeconds") is None:
        hook["timeoutSeconds"] = 10
    if mutating and not hook.get("reinvocationPolicy"):
        hook["reinvocationPolicy"] = "Never"
    for rule in dicts(hook.get("rules")):
        default_rule(rule)
    service = as_dict(as_dict(hook.get("clientConfig")).get("service"))
    if service and service.get("port") is None:
        service["port"] = 443


def _enum(value: Any, path: str, allowed: tuple[str, ...], required: bool = False) -> list[Cause]:
    if value in (None, ""):
        return [fe.required(path)] if required else []
    return [] if value in allowed else [fe.not_supported(path, value, allowed)]


def validate_rule(rule: Obj, path: str, with_operations: bool = True) -> list[Cause]:
    """``validateRuleWithOperations``: operations, apiGroups, apiVersions, resources, scope."""
    errs: list[Cause] = []
    names = (("operations",) if with_operations else ()) + ("apiGroups", "apiVersions", "resources")
    for name in names:
        if not as_list(rule.get(name)):
            errs.append(fe.required(fe.child(path, name)))
    for i, op in enumerate(as_list(rule.get("operations")) if with_operations else []):
        if op not in OPERATIONS:
            errs.append(fe.not_supported(fe.index(fe.child(path, "operations"), i), op, OPERATIONS))
    errs.extend(_enum(rule.get("scope"), fe.child(path, "scope"), SCOPES))
    return errs


def validate_client_config(config: Obj, path: str) -> list[Cause]:
    """``ValidateWebhookClientConfig``: exactly one of an https ``url`` or a ``service``."""
    url, service = config.get("url"), config.get("service")
    if bool(url) == bool(service):
        return [fe.required(path, "exactly one of url or service is required")]
    if url:
        parts = urlsplit(str(url))
        if parts.scheme != "https":
            return [fe.invalid(fe.child(path, "url"), url, "'https' is the only allowed URL scheme")]
        if not parts.hostname:
            return [fe.invalid(fe.child(path, "url"), url, "host must be specified")]
        if parts.fragment or parts.query:
            return [fe.invalid(fe.child(path, "url"), url, "fragments and query parameters are not permitted")]
        return []
    service = as_dict(service)
    errs: list[Cause] = []
    for name in ("name", "namespace"):
        if not service.get(name):
            errs.append(fe.required(fe.child(fe.child(path, "service"), name), f"service {name} is required"))
    svc_path = service.get("path")
    if svc_path and not str(svc_path).startswith("/"):
        errs.append(fe.invalid(fe.child(fe.child(path, "service"), "path"), svc_path, "must start with a '/'"))
    port = service.get("port")
    if isinstance(port, int) and not 1 <= port <= 65535:
        errs.append(fe.invalid(fe.child(fe.child(path, "service"), "port"), port,
                               "port is not valid: must be between 1 and 65535, inclusive"))
    return errs


def validate_webhook(hook: Obj, path: str, mutating: bool) -> list[Cause]:
    errs: list[Cause] = []
    name = str(hook.get("name") or "")
    if not name:
        errs.append(fe.required(fe.child(path, "name")))
    else:
        errs.extend(fe.each_invalid(fe.child(path, "name"), name, is_dns1123_subdomain(name)))
        if name.count(".") < 2:
            errs.append(fe.invalid(fe.child(path, "name"), name,
                                   "should be a domain with at least three segments separated by dots"))
    versions = as_list(hook.get("admissionReviewVersions"))
    if not versions:
        errs.append(fe.required(fe.child(path, "admissionReviewVersions"),
                                f"must specify one of {', '.join(REVIEW_VERSIONS)}"))
    elif not any(v in REVIEW_VERSIONS for v in versions):
        errs.append(fe.invalid(fe.child(path, "admissionReviewVersions"), versions,
                               f"must include at least one of {', '.join(REVIEW_VERSIONS)}"))
    errs.extend(_enum(hook.get("sideEffects"), fe.child(path, "sideEffects"), SIDE_EFFECTS, required=True))
    errs.extend(_enum(hook.get("failurePolicy"), fe.child(path, "failurePolicy"), FAILURE_POLICIES))
    errs.extend(_enum(hook.get("matchPolicy"), fe.child(path, "matchPolicy"), MATCH_POLICIES))
    if mutating:
        errs.extend(_enum(hook.get("reinvocationPolicy"), fe.child(path, "reinvocationPolicy"),
                          REINVOCATION_POLICIES))
    timeout = hook.get("timeoutSeconds")
    if isinstance(timeout, int) and not 1 <= timeout <= 30:
        errs.append(fe.invalid(fe.child(path, "timeoutSeconds"), timeout,
                               "the timeout value must be between 1 and 30 seconds"))
    for i, rule in enumerate(dicts(hook.get("rules"))):
        errs.extend(validate_rule(rule, fe.index(fe.child(path, "rules"), i)))
    errs.extend(validate_client_config(as_dict(hook.get("clientConfig")), fe.child(path, "clientConfig")))
    return errs


class WebhookConfigurationStrategy(Strategy):
    """Mutating/ValidatingWebhookConfigurations: defaults, unique names, per-webhook checks."""

    def __init__(self, mutating: bool) -> None:
        self.mutating = mutating

    def default(self, obj: Obj) -> None:
        for hook in dicts(obj.get("webhooks")):
            default_webhook(hook, self.mutating)

    def validate(self, obj: Obj) -> list[Cause]:
        errs: list[Cause] = []
        seen: set[str] = set()
        for i, hook in enumerate(dicts(obj.get("webhooks"))):
            path = fe.index("webhooks", i)
            errs.extend(validate_webhook(hook, path, self.mutating))
            name = str(hook.get("name") or "")
            if name and name in seen:
                errs.append(fe.duplicate(fe.child(path, "name"), name))
            seen.add(name)
        return errs

    def columns(self) -> list[Column]:
        return [Column("Webhooks", "integer", description="Webhooks is a list of webhooks and the affected resources "
                                                          "and operations."), AGE]

    def cells(self, obj: Obj) -> list[Any]:
        return [len(as_list(obj.get("webhooks"))), age(obj)]


def _validate_match_resources(match: Obj, path: str, required: bool) -> list[Cause]:
    errs: list[Cause] = []
    if required and not dicts(match.get("resourceRules")):
        errs.append(fe.required(fe.child(path, "resourceRules")))
    for name in ("resourceRules", "excludeResourceRules"):
        for i, rule in enumerate(dicts(match.get(name))):
            errs.extend(validate_rule(rule, fe.index(fe.child(path, name), i)))
    errs.extend(_enum(match.get("matchPolicy"), fe.child(path, "matchPolicy"), MATCH_POLICIES))
    return errs


class ValidatingAdmissionPolicyStrategy(Strategy):
    """ValidatingAdmissionPolicies: the CEL rules themselves are compiled by the admission plugin."""

    has_status = True

    def prepare_for_create(self, obj: Obj) -> None:
        obj.pop("status", None)

    def default(self, obj: Obj) -> None:
        spec = child_dict(obj, "spec")
        if not spec.get("failurePolicy"):
            spec["failurePolicy"] = "Fail"
        if isinstance(spec.get("matchConstraints"), dict):
            default_match_resources(spec["matchConstraints"])

    def validate(self, obj: Obj) -> list[Cause]:
        spec = as_dict(obj.get("spec"))
        errs: list[Cause] = []
        if not dicts(spec.get("validations")) and not dicts(spec.get("auditAnnotations")):
            errs.append(fe.required("spec.validations", "validations or auditAnnotations must contain at least "
                                                        "one item"))
        for i, rule in enumerate(dicts(spec.get("validations"))):
            if not str(rule.get("expression") or "").strip():
                errs.append(fe.required(fe.child(fe.index("spec.validations", i), "expression")))
        if spec.get("matchConstraints") is None:
            errs.append(fe.required("spec.matchConstraints"))
        else:
            errs.extend(_validate_match_resources(as_dict(spec.get("matchConstraints")), "spec.matchConstraints",
                                                  required=True))
        errs.extend(_enum(spec.get("failurePolicy"), "spec.failurePolicy", FAILURE_POLICIES))
        param_kind = spec.get("paramKind")
        if param_kind is not None:
            for name in ("apiVersion", "kind"):
                if not as_dict(param_kind).get(name):
                    errs.append(fe.required(fe.child("spec.paramKind", name)))
        return errs

    def columns(self) -> list[Column]:
        return [Column("Validations", "integer", description="Validations contain CEL expressions which is used to "
                                                             "apply the validation."),
                Column("ParamKind", description="ParamKind specifies the kind of resources used to parameterize "
                                                "this policy"), AGE]

    def cells(self, obj: Obj) -> list[Any]:
        spec = as_dict(obj.get("spec"))
        kind = as_dict(spec.get("paramKind"))
        param = f"{kind.get('apiVersion') or ''}/{kind.get('kind') or ''}" if spec.get("paramKind") else "<unset>"
        return [len(as_list(spec.get("validations"))), param, age(obj)]


def param_ref_cell(spec: Obj) -> str:
    """The PARAMREF cell: ``namespace/name``, ``*/name``, the selector, or ``<unset>``."""
    ref = as_dict(spec.get("paramRef"))
    if ref.get("name"):
        return f"{ref.get('namespace') or '*'}/{ref['name']}"
    if ref.get("selector") is not None:
        selector = as_dict(ref.get("selector"))
        terms = [f"{k}={v}" for k, v in sorted(as_dict(selector.get("matchLabels")).items())]
        return ",".join(terms)
    return "<unset>"


class ValidatingAdmissionPolicyBindingStrategy(Strategy):
    """ValidatingAdmissionPolicyBindings: a policy name and at least one validation action."""

    def default(self, obj: Obj) -> None:
        spec = child_dict(obj, "spec")
        if isinstance(spec.get("matchResources"), dict):
            default_match_resources(spec["matchResources"])

    def validate(self, obj: Obj) -> list[Cause]:
        spec = as_dict(obj.get("spec"))
        errs: list[Cause] = []
        if not spec.get("policyName"):
            errs.append(fe.required("spec.policyName"))
        actions = as_list(spec.get("validationActions"))
        if not actions:
            errs.append(fe.required("spec.validationActions"))
        seen: set[str] = set()
        for i, action in enumerate(actions):
            path = fe.index("spec.validationActions", i)
            if action in seen:
                errs.append(fe.duplicate(path, action))
            elif action not in VALIDATION_ACTIONS:
                errs.append(fe.not_supported(path, action, VALIDATION_ACTIONS))
            seen.add(action)
        if {"Deny", "Warn"} <= seen:
            errs.append(fe.invalid("spec.validationActions", actions, "must not contain both Deny and Warn "
                                                                      "(repeating the same validation failure "
                                                                      "information in the API response and headers "
                                                                      "serves no purpose)"))
        if isinstance(spec.get("matchResources"), dict):
            errs.extend(_validate_match_resources(spec["matchResources"], "spec.matchResources", required=False))
        return errs

    def columns(self) -> list[Column]:
        return [Column("PolicyName", description="PolicyName references a ValidatingAdmissionPolicy name which the "
                                                 "ValidatingAdmissionPolicyBinding binds to."),
                Column("ParamRef", description="paramRef specifies the parameter resource used to configure the "
                                               "admission control policy."), AGE]

    def cells(self, obj: Obj) -> list[Any]:
        spec = as_dict(obj.get("spec"))
        return [str(spec.get("policyName") or ""), param_ref_cell(spec), age(obj)]


def resources() -> list[ResourceType]:
    return [
        ResourceType(GROUP, "v1", "MutatingWebhookConfiguration", "mutatingwebhookconfigurations",
                     "mutatingwebhookconfiguration", False, categories=CATEGORIES,
                     strategy=WebhookConfigurationStrategy(True)),
        ResourceType(GROUP, "v1", "ValidatingWebhookConfiguration", "validatingwebhookconfigurations",
                     "validatingwebhookconfiguration", False, categories=CATEGORIES,
                     strategy=WebhookConfigurationStrategy(False)),
        ResourceType(GROUP, "v1", "ValidatingAdmissionPolicy", "validatingadmissionpolicies",
                     "validatingadmissionpolicy", False, categories=CATEGORIES, subresources=("status",),
                     strategy=ValidatingAdmissionPolicyStrategy()),
        ResourceType(GROUP, "v1", "ValidatingAdmissionPolicyBinding", "validatingadmissionpolicybindings",
                     "validatingadmissionpolicybinding", False, categories=CATEGORIES,
                     strategy=ValidatingAdmissionPolicyBindingStrategy()),
    ]
