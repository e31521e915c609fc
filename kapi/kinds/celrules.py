"""``x-kubernetes-validations`` CEL rules of CRD schemas, evaluated with cel-python.

``rule_errors(schema, path)`` reports rules that do not compile (at
``PATH.x-kubernetes-validations[i].rule``). ``CelRules(schema)`` compiles every rule of a schema
once; ``rules.validate(obj)`` evaluates them against an object, walking the object and schema
together, with ``self`` bound to the value at each node that declares rules. A failed rule is a
cause at that node's field path (or at ``fieldPath`` below it) with the rule's ``message`` (or
``failed rule: RULE``); ``reason`` gives the cause type. Transition rules (those using ``oldSelf``)
are not evaluated, and neither are ``messageExpression``s (the plain message is used).
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping
from typing import Any

from kapi.errors import Cause
from kapi.kinds import fielderrors as fe

Schema = Mapping[str, Any]
RULES = "x-kubernetes-validations"
_REASONS = {"FieldValueInvalid": fe.INVALID, "FieldValueForbidden": fe.FORBIDDEN,
            "FieldValueRequired": fe.REQUIRED, "FieldValueDuplicate": fe.DUPLICATE}


@functools.cache
def _env() -> Any:
    import celpy

    return celpy.Environment()


def _compile(rule: str) -> tuple[Any, str]:
    """(program, "") or (None, the compile error)."""
    env = _env()
    try:
        return env.program(env.compile(rule)), ""
    except Exception as exc:  # CELParseError / CELSyntaxError
        return None, str(exc).strip().splitlines()[0] if str(exc).strip() else "invalid expression"


def _nodes(schema: Schema, path: str) -> Iterator[tuple[Schema, str]]:
    yield schema, path
    for name, sub in (schema.get("properties") or {}).items():
        if isinstance(sub, Mapping):
            yield from _nodes(sub, f"{path}.properties[{name}]")
    for key in ("items", "additionalProperties"):
        sub = schema.get(key)
        if isinstance(sub, Mapping):
            yield from _nodes(sub, f"{path}.{key}")


def rule_errors(schema: Any, path: str) -> list[Cause]:
    """Rules of ``schema`` that are malformed or do not compile, at their schema path."""
    if not isinstance(schema, Mapping):
        return []
    errs: list[Cause] = []
    for node, node_path in _nodes(schema, path):
        for i, rule in enumerate(node.get(RULES) or ()):
            rule_path = f"{node_path}.{RULES}[{i}].rule"
            source = rule.get("rule") if isinstance(rule, Mapping) else None
            if not isinstance(source, str) or not source.strip():
                errs.append(fe.required(rule_path, ""))
                continue
            _program, error = _compile(source)
            if error:
                errs.append(fe.invalid(rule_path, source, f"compilation failed: {error}"))
    return errs


def has_rules(schema: Schema) -> bool:
    return any(node.get(RULES) for node, _ in _nodes(schema, ""))


class CelRules:
    """The compiled rules of one schema (see the module docstring)."""

    def __init__(self, schema: Schema) -> None:
        self.schema = schema
        self._programs: dict[str, Any] = {}

    def _program(self, source: str) -> Any:
        if source not in self._programs:
            self._programs[source] = _compile(source)[0]
        return self._programs[source]

    def validate(self, obj: Any) -> list[Cause]:
        errs: list[Cause] = []
        self._walk(self.schema, obj, "", errs)
        return errs

    def _walk(self, schema: Schema, value: Any, path: str, errs: list[Cause]) -> None:
        if value is None:
            return
        for rule in schema.get(RULES) or ():
            self._check(rule, value, path, errs)
        if isinstance(value, dict):
            props = schema.get("properties") or {}
            extra = schema.get("additionalProperties")
            for name, item in value.items():
                sub = props.get(name)
                if sub is not None:
                    self._walk(sub, item, f"{path}.{name}" if path else name, errs)
                elif isinstance(extra, Mapping):
                    self._walk(extra, item, f"{path}[{name}]", errs)
        elif isinstance(value, list):
            items = schema.get("items")
            if isinstance(items, Mapping):
                for i, item in enumerate(value):
                    self._walk(items, item, f"{path}[{i}]", errs)

    def _check(self, rule: Mapping[str, Any], value: Any, path: str, errs: list[Cause]) -> None:
        source = str(rule.get("rule") or "")
        if "oldSelf" in source:
            return
        program = self._program(source)
        if program is None:
            return
        import celpy

        field = path + str(rule.get("fieldPath") or "")
        try:
            ok = program.evaluate({"self": celpy.json_to_cel(value)})
        except Exception as exc:  # evaluation errors are reported as invalid, as kube does
            ok = exc
        if isinstance(ok, Exception):
            errs.append(fe.invalid(field, _shown(value), f"rule evaluation failed: {ok}"))
            return
        if bool(ok):
            return
        message = str(rule.get("message") or f"failed rule: {source}")
        reason = _REASONS.get(str(rule.get("reason") or ""), fe.INVALID)
        errs.append(Cause(field, f"Invalid value: {fe.go_value(_shown(value))}: {message}", reason))


def _shown(value: Any) -> Any:
    """How kube shows the value of a failed rule: composite values as "object"."""
    return "object" if isinstance(value, (dict, list)) else value
