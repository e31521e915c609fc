"""ValidatingAdmissionPolicy (``--enable-admission-plugins=ValidatingAdmissionPolicy``, on by default):
in-process validation rules written in CEL (needs the ``cel-python`` package).

A ValidatingAdmissionPolicy (admissionregistration.k8s.io/v1) says what to check; a
ValidatingAdmissionPolicyBinding says where (``policyName``, optional ``matchResources`` and
``paramRef``) and what a failure does (``validationActions``). What kapi covers:

* ``matchConstraints`` (``resourceRules``, ``excludeResourceRules``, ``namespaceSelector``,
  ``objectSelector``) and the binding's ``matchResources``; requests on the admission
  configuration kinds are exempt;
* ``matchConditions``, ``variables`` (``variables.NAME``, evaluated in order), ``validations``
  with ``expression``, ``message``, ``messageExpression`` and ``reason`` (Invalid -> 422, Forbidden
  -> 403, Unauthorized -> 401, RequestEntityTooLarge -> 413);
* CEL variables ``object``, ``oldObject``, ``request`` (kind, resource, subResource, name,
  namespace, operation, userInfo, dryRun, options), ``params``, ``namespaceObject`` and
  ``variables``; the standard CEL library of cel-python (``has``, ``size``, ``exists``, ``all``,
  ``matches``, ``startsWith``... - not Kubernetes' extension libraries such as ``quantity`` or
  ``authorizer``);
* ``paramKind`` + ``paramRef`` (by ``name``, or ``selector`` - every matching object is a
  separate evaluation; ``parameterNotFoundAction`` Allow or Deny);
* ``failurePolicy`` (Fail: an expression that errors counts as a failure; Ignore: skipped);
* ``validationActions``: ``Deny`` (``ValidatingAdmissionPolicy 'P' with binding 'B' denied
  request: MESSAGE``), ``Warn`` (a ``Warning`` header ``Validation failed for
  ValidatingAdmissionPolicy 'P' with binding 'B': MESSAGE``), ``Audit`` (logged, logger
  ``kapi.admissionpolicy``).

Not covered: ``auditAnnotations``, status type checking. Expressions are compiled once per
policy version and kept per app; policies and bindings take effect once the watch cache has them.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kapi import AdmissionDenied, AdmissionRequest, admissionkit, hookimpl

if TYPE_CHECKING:
    from kapi import App

ALIASES = ("ValidatingAdmissionPolicy",)
PLUGIN_NAME = "admission_validating_admission_policy"
GROUP = "admissionregistration.k8s.io"
REASON_CODES = {"Unauthorized": 401, "Forbidden": 403, "Invalid": 422, "RequestEntityTooLarge": 413}

log = logging.getLogger("kapi.admissionpolicy")

Obj = Mapping[str, Any]


class ExpressionError(Exception):
    """A CEL expression that does not compile or fails to evaluate."""


@dataclass(frozen=True)
class Expression:
    """One compiled CEL expression."""

    source: str
    program: Any

    def __call__(self, activation: Mapping[str, Any]) -> Any:
        try:
            return self.program.evaluate(activation)
        except Exception as exc:  # cel-python raises its own error types (and Python ones) here
            raise ExpressionError(f"expression '{self.source}' resulted in error: {exc}") from None


@dataclass(frozen=True)
class Compiled:
    """A policy's expressions, compiled (``error`` set when one does not compile)."""

    conditions: tuple[tuple[str, Expression], ...]
    variables: tuple[tuple[str, Expression], ...]
    validations: tuple[tuple[Expression, Obj, Expression | None], ...]
    error: str = ""


def _cel() -> Any:
    try:
        import celpy
    except ImportError:  # pragma: no cover - a packaging problem, reported per request
        raise ExpressionError("ValidatingAdmissionPolicy needs the cel-python package (pip install cel-python)") \
            from None
    return celpy


def compile_policy(policy: Obj) -> Compiled:
    """Compile every expression of a policy (a compile error is kept, and fails the policy)."""
    celpy = _cel()
    env = celpy.Environment()

    def build(source: str) -> Expression:
        try:
            return Expression(source, env.program(env.compile(source)))
        except Exception as exc:  # a CELParseError or CELSyntaxError
            raise ExpressionError(f"compilation failed for '{source}': {str(exc).strip()}") from None

    spec = policy.get("spec") or {}
    try:
        return Compiled(
            conditions=tuple((str(c.get("name", "")), build(str(c.get("expression", ""))))
                             for c in spec.get("matchConditions") or []),
            variables=tuple((str(v.get("name", "")), build(str(v.get("expression", ""))))
                            for v in spec.get("variables") or []),
            validations=tuple((build(str(v.get("expression", ""))), v,
                               build(str(v["messageExpression"])) if v.get("messageExpression") else None)
                              for v in spec.get("validations") or []))
    except ExpressionError as exc:
        return Compiled((), (), (), error=str(exc))


def _compiled(app: App, policy: Obj) -> Compiled:
    cache: dict[tuple[str, str], Compiled] = app.plugin_state(PLUGIN_NAME).setdefault("compiled", {})
    meta = policy.get("metadata") or {}
    key = (str(meta.get("uid", meta.get("name"))), str(meta.get("resourceVersion", "")))
    found = cache.get(key)
    if found is None:
        if len(cache) > 1000:
            cache.clear()
        found = cache[key] = compile_policy(policy)
    return found


def request_variable(request: AdmissionRequest) -> dict[str, Any]:
    """The CEL ``request`` variable (AdmissionRequest fields)."""
    kind = {"group": request.api_group, "version": request.api_version, "kind": request.kind}
    resource = {"group": request.api_group, "version": request.api_version, "resource": request.resource}
    return {"kind": kind, "resource": resource, "requestKind": kind, "requestResource": resource,
            "subResource": request.subresource, "name": request.name, "namespace": request.namespace,
            "operation": request.operation.value, "userInfo": request.user.to_dict(), "dryRun": request.dry_run}


async def _matches(app: App, match: Obj | None, request: AdmissionRequest) -> bool:
    if match is None:
        return True
    rules = [r for r in match.get("resourceRules") or [] if isinstance(r, Mapping)]
    excluded = [r for r in match.get("excludeResourceRules") or [] if isinstance(r, Mapping)]
    if rules and not admissionkit.matching.any_rule_matches(rules, request):
        return False
    if admissionkit.matching.any_rule_matches(excluded, request):
        return False
    return await admissionkit.matching.selectors_match(app, request, match.get("namespaceSelector"),
                                                       match.get("objectSelector"))


async def _params(app: App, policy: Obj, binding: Obj, request: AdmissionRequest) -> list[Any] | None:
    """The parameter objects to evaluate with ([None] without paramKind), or None for "allow"."""
    kind = (policy.get("spec") or {}).get("paramKind")
    ref = (binding.get("spec") or {}).get("paramRef")
    if not kind or not ref:
        return [None]
    group, _, version = str(kind.get("apiVersion", "")).rpartition("/")
    rt = next((r for r in app.registry if r.group == group and r.version == version and r.kind == kind.get("kind")),
              None)
    if rt is None:
        raise ExpressionError(f"paramKind {kind.get('apiVersion')}/{kind.get('kind')} is not served")
    namespace = str(ref.get("namespace") or (request.namespace if rt.namespaced else ""))
    if ref.get("name"):
        found = await admissionkit.objects.fetch(app, group, version, rt.plural, namespace, str(ref["name"]))
        params = [found] if found is not None else []
    else:
        selector = admissionkit.matching.label_selector(ref.get("selector") or {})
        params = [p for p in admissionkit.objects.cached_list(app, group, version, rt.plural, namespace)
                  if selector.matches((p.get("metadata") or {}).get("labels") or {})]
    if params:
        return params
    if ref.get("parameterNotFoundAction") == "Allow":
        return None
    raise ExpressionError("no params found for policy binding with `Deny` parameterNotFoundAction")


def _activation(request: AdmissionRequest, params: Any, namespace: Any) -> dict[str, Any]:
    celpy = _cel()
    return {"object": celpy.json_to_cel(request.obj), "oldObject": celpy.json_to_cel(request.old_obj),
            "request": celpy.json_to_cel(request_variable(request)), "params": celpy.json_to_cel(params),
            "namespaceObject": celpy.json_to_cel(namespace)}


@dataclass(frozen=True)
class Violation:
    message: str
    reason: str


def _cel_map(celpy: Any, values: Mapping[str, Any]) -> Any:
    return celpy.celtypes.MapType({celpy.celtypes.StringType(k): v for k, v in values.items()})


def evaluate(compiled: Compiled, activation: dict[str, Any], fail_closed: bool) -> list[Violation]:
    """The failed validations of one policy for one parameter (expression errors count when
    ``fail_closed``)."""
    celpy = _cel()
    if compiled.error:
        return [Violation(compiled.error, "Invalid")] if fail_closed else []
    try:
        if not all(bool(expr(activation)) for _name, expr in compiled.conditions):
            return []
        variables: dict[str, Any] = {}
        for name, expr in compiled.variables:
            activation["variables"] = _cel_map(celpy, variables)
            variables[name] = expr(activation)
        activation["variables"] = _cel_map(celpy, variables)
    except ExpressionError as exc:
        return [Violation(str(exc), "Invalid")] if fail_closed else []
    violations = []
    for expr, rule, message_expr in compiled.validations:
        try:
            ok = bool(expr(activation))
        except ExpressionError as exc:
            if fail_closed:
                violations.append(Violation(str(exc), "Invalid"))
            continue
        if ok:
            continue
        message = str(rule.get("message") or "") or f"failed expression: {expr.source}"
        if message_expr is not None:
            try:
                custom = str(message_expr(activation)).strip()
                message = custom if custom and "\n" not in custom else message
            except ExpressionError:
                pass
        violations.append(Violation(message, str(rule.get("reason") or "Invalid")))
    return violations


def _act(request: AdmissionRequest, policy: str, binding: str, actions: list[str], violation: Violation) -> None:
    if "Deny" in actions:
        code = REASON_CODES.get(violation.reason, 422)
        denied = AdmissionDenied(f"ValidatingAdmissionPolicy '{policy}' with binding '{binding}' denied request: "
                                 f"{violation.message}", code=code)
        denied.reason = violation.reason if violation.reason in REASON_CODES else "Invalid"
        raise denied
    if "Warn" in actions:
        request.warnings.append(f"Validation failed for ValidatingAdmissionPolicy '{policy}' with binding "
                                f"'{binding}': {violation.message}")
    if "Audit" in actions:
        log.info("audit: ValidatingAdmissionPolicy %s binding %s: %s %s/%s: %s", policy, binding,
                 request.operation.value, request.namespace, admissionkit.object_name(request), violation.message)


@hookimpl
async def kapi_validate_admission(request: AdmissionRequest, app: App) -> None:
    """Evaluate every bound policy that matches the request."""
    if admissionkit.matching.is_exempt(request):
        return
    bindings = admissionkit.objects.cached_list(app, GROUP, "v1", "validatingadmissionpolicybindings")
    if not bindings:
        return
    policies = {p["metadata"]["name"]: p
                for p in admissionkit.objects.cached_list(app, GROUP, "v1", "validatingadmissionpolicies")}
    namespace: Any = None
    for binding in sorted(bindings, key=lambda b: b["metadata"]["name"]):
        spec = binding.get("spec") or {}
        policy = policies.get(str(spec.get("policyName", "")))
        if policy is None:
            continue
        policy_spec = policy.get("spec") or {}
        if not await _matches(app, policy_spec.get("matchConstraints") or {}, request) \
                or not await _matches(app, spec.get("matchResources"), request):
            continue
        fail_closed = policy_spec.get("failurePolicy", "Fail") != "Ignore"
        names = (policy["metadata"]["name"], binding["metadata"]["name"])
        actions = [str(a) for a in spec.get("validationActions") or []]
        try:
            params = await _params(app, policy, binding, request)
        except ExpressionError as exc:
            if fail_closed:
                _act(request, *names, actions, Violation(str(exc), "Invalid"))
            continue
        if params is None:
            continue
        if namespace is None and request.namespace:
            namespace = await admissionkit.objects.fetch(app, "", "v1", "namespaces", "", request.namespace)
        compiled = _compiled(app, policy)
        for param in params:
            for violation in evaluate(compiled, _activation(request, param, namespace), fail_closed):
                _act(request, *names, actions, violation)
