"""``x-kubernetes-validations`` CEL rules of CRD schemas, evaluated with cel-python.

``rule_errors(schema, path)`` reports rules that do not compile (at
``PATH.x-kubernetes-validations[i].rule``). ``CelRules(schema)`` compiles every rule of a schema
once; ``rules.validate(obj)`` evaluates them against an object, walking the object and schema
together, with ``self`` bound to the value at each node that declares rules. A failed rule is a
cause at that node's field path (or at ``fieldPath`` below it) with the rule's ``messageExpression``
(when it evaluates to a non-blank single-line string), else its ``message``, else ``failed rule:
RULE``; ``reason`` gives the cause type.

Transition rules (those using ``oldSelf``) run on updates only, with ``oldSelf`` bound to the old
value at the same place, where kube can correlate old and new: through object properties, map
keys, and ``x-kubernetes-list-type: map`` lists (by their ``x-kubernetes-list-map-keys``); not
through other lists, and not where the old object had no value (``optionalOldSelf`` is not
supported: such rules are skipped there too).
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping
from typing import Any

from kapi.errors import Cause
from kapi.kinds import fielderrors as fe

Schema = Mapping[str, Any]
RULES = "x-kubernetes-validations"
_ABSENT: Any = object()  # no old value at this place (a create, or nothing to correlate with)
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
            expression = rule.get("messageExpression")
            if isinstance(expression, str) and expression.strip():
                _program, error = _compile(expression)
                if error:
                    errs.append(fe.invalid(f"{node_path}.{RULES}[{i}].messageExpression", expression,
                                           f"messageExpression compilation failed: {error}"))
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

    def validate(self, obj: Any, old: Any = _ABSENT) -> list[Cause]:
        """Causes for ``obj``; pass the stored object as ``old`` on updates (transition rules)."""
        errs: list[Cause] = []
        self._walk(self.schema, obj, old, "", errs)
        return errs

    def _walk(self, schema: Schema, value: Any, old: Any, path: str, errs: list[Cause]) -> None:
        if value is None:
            return
        for rule in schema.get(RULES) or ():
            self._check(rule, value, old, path, errs)
        if isinstance(value, dict):
            props = schema.get("properties") or {}
            extra = schema.get("additionalProperties")
            olds = old if isinstance(old, dict) else {}
            for name, item in value.items():
                sub = props.get(name)
                if sub is not None:
                    self._walk(sub, item, olds.get(name, _ABSENT), f"{path}.{name}" if path else name, errs)
                elif isinstance(extra, Mapping):
                    self._walk(extra, item, olds.get(name, _ABSENT), f"{path}[{name}]", errs)
        elif isinstance(value, list):
            items = schema.get("items")
            if isinstance(items, Mapping):
                olds_by_key = _list_map(schema, old)
                keys = schema.get("x-kubernetes-list-map-keys") or ()
                for i, item in enumerate(value):
                    before = olds_by_key.get(_map_key(item, keys), _ABSENT) if olds_by_key else _ABSENT
                    self._walk(items, item, before, f"{path}[{i}]", errs)

    def _check(self, rule: Mapping[str, Any], value: Any, old: Any, path: str, errs: list[Cause]) -> None:
        source = str(rule.get("rule") or "")
        transition = "oldSelf" in source
        if transition and (old is _ABSENT or old is None):
            return
        program = self._program(source)
        if program is None:
            return
        import celpy

        field = path + str(rule.get("fieldPath") or "")
        bindings = {"self": celpy.json_to_cel(value)}
        if old is not _ABSENT and old is not None:
            bindings["oldSelf"] = celpy.json_to_cel(old)
        try:
            ok = program.evaluate(bindings)
        except Exception as exc:  # evaluation errors are reported as invalid, as kube does
            ok = exc
        if isinstance(ok, Exception):
            errs.append(fe.invalid(field, _shown(value), f"rule evaluation failed: {ok}"))
            return
        if bool(ok):
            return
        message = self._message(rule, bindings) or str(rule.get("message") or f"failed rule: {source}")
        reason = _REASONS.get(str(rule.get("reason") or ""), fe.INVALID)
        errs.append(Cause(field, f"Invalid value: {fe.go_value(_shown(value))}: {message}", reason))

    def _message(self, rule: Mapping[str, Any], bindings: Mapping[str, Any]) -> str:
        """The rule's ``messageExpression`` result, or "" when it has none, fails, or gives no
        usable message (not a string, blank, or several lines), as kube falls back then."""
        expression = rule.get("messageExpression")
        if not isinstance(expression, str) or not expression.strip():
            return ""
        program = self._program(expression)
        if program is None:
            return ""
        try:
            result = program.evaluate(dict(bindings))
        except Exception:
            return ""
        if not isinstance(result, str) or not result.strip() or "\n" in result:
            return ""
        return str(result)


def _list_map(schema: Schema, old: Any) -> dict[tuple[Any, ...], Any]:
    """The old items of an ``x-kubernetes-list-type: map`` list by their keys ({} otherwise)."""
    keys = schema.get("x-kubernetes-list-map-keys") or ()
    if schema.get("x-kubernetes-list-type") != "map" or not keys or not isinstance(old, list):
        return {}
    return {_map_key(item, keys): item for item in old if isinstance(item, dict)}


def _map_key(item: Any, keys: Any) -> tuple[Any, ...]:
    return tuple(item.get(k) for k in keys) if isinstance(item, dict) else (id(item),)


def _shown(value: Any) -> Any:
    """How kube shows the value of a failed rule: composite values as "object"."""
    return "object" if isinstance(value, (dict, list)) else value
