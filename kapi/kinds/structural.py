"""Structural OpenAPI v3 schemas of CustomResourceDefinitions: checking them, and applying them.

``schema_errors(schema, path)`` checks that a CRD version's ``openAPIV3Schema`` is structural
(kube's ``ValidateStructural`` subset): every node names a ``type`` unless it is
``x-kubernetes-int-or-string`` or ``x-kubernetes-preserve-unknown-fields``, the root is an
object, no ``$ref``, ``items`` for arrays, ``properties`` only on objects, and defaults only where
they are allowed. Each problem is a ``Cause`` at the offending path, e.g.
``spec.versions[0].schema.openAPIV3Schema.properties[spec].type``.

``validate(schema, obj)`` checks a custom object (types, required, enum, pattern, min/max,
lengths, item counts, int-or-string, embedded resources); ``prune(schema, obj)`` drops fields the
schema does not declare (unless preserved); ``apply_defaults(schema, obj)`` fills ``default``
values. All three are pure functions of a JSON schema dict; ``prune``/``apply_defaults`` change
``obj`` in place.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator, Mapping
from typing import Any

from kapi.errors import Cause
from kapi.kinds import fielderrors as fe
from kapi.validation import json_type

Schema = Mapping[str, Any]

TYPES = ("object", "array", "string", "integer", "number", "boolean")
PRESERVE = "x-kubernetes-preserve-unknown-fields"
INT_OR_STRING = "x-kubernetes-int-or-string"
EMBEDDED = "x-kubernetes-embedded-resource"
_FORBIDDEN_KEYS = ("$ref", "definitions", "dependencies", "patternProperties", "additionalItems", "id")
_ALLOWED_META = ("name", "generateName")


def _children(schema: Schema, path: str) -> Iterator[tuple[Schema, str, bool]]:
    """(child schema, its path, True when it is inside a logical junctor: allOf/anyOf/oneOf/not)."""
    for name, sub in (schema.get("properties") or {}).items():
        yield sub, f"{path}.properties[{name}]", False
    items = schema.get("items")
    if isinstance(items, Mapping):
        yield items, f"{path}.items", False
    extra = schema.get("additionalProperties")
    if isinstance(extra, Mapping):
        yield extra, f"{path}.additionalProperties", False
    for key in ("allOf", "anyOf", "oneOf"):
        for i, sub in enumerate(schema.get(key) or ()):
            yield sub, f"{path}.{key}[{i}]", True
    if isinstance(schema.get("not"), Mapping):
        yield schema["not"], f"{path}.not", True


def schema_errors(schema: Any, path: str) -> list[Cause]:
    """The reasons ``schema`` (a CRD version's ``openAPIV3Schema``) is not structural; [] if it is."""
    if not isinstance(schema, Mapping):
        return [fe.required(path, "")]
    errs: list[Cause] = []
    if schema.get("type") != "object":
        errs.append(fe.invalid(f"{path}.type", schema.get("type"), "must be object at the root"))
    meta = (schema.get("properties") or {}).get("metadata")
    if isinstance(meta, Mapping):
        for name in meta.get("properties") or {}:
            if name not in _ALLOWED_META:
                errs.append(fe.forbidden(f"{path}.properties[metadata].properties[{name}]",
                                         "must not be specified: only name and generateName may be restricted"))
    errs.extend(_node_errors(schema, path, in_logic=False))
    return errs


def _node_errors(schema: Schema, path: str, *, in_logic: bool) -> list[Cause]:
    if not isinstance(schema, Mapping):
        return [fe.invalid(path, schema, "must be an object")]
    errs: list[Cause] = []
    for key in _FORBIDDEN_KEYS:
        if key in schema:
            errs.append(fe.forbidden(f"{path}.{key}", f"{key} is not supported in structural schemas"))
    kind = schema.get("type")
    if kind is not None and kind not in TYPES:
        errs.append(fe.not_supported(f"{path}.type", kind, TYPES))
    special = schema.get(INT_OR_STRING) or schema.get(PRESERVE)
    if not in_logic and not kind and not special:
        errs.append(fe.required(f"{path}.type", "must not be empty for specified object fields"))
    if schema.get(INT_OR_STRING) and kind:
        errs.append(fe.forbidden(f"{path}.type", "must be empty if x-kubernetes-int-or-string is true"))
    if kind == "array" and not in_logic and not isinstance(schema.get("items"), Mapping):
        errs.append(fe.required(f"{path}.items", "must be specified for arrays"))
    if kind not in (None, "object") and schema.get("properties"):
        errs.append(fe.forbidden(f"{path}.properties", "must not be specified unless type is object"))
    if schema.get("properties") and isinstance(schema.get("additionalProperties"), Mapping):
        errs.append(fe.forbidden(f"{path}.additionalProperties",
                                 "additionalProperties and properties are mutual exclusive"))
    if schema.get(EMBEDDED) and kind != "object":
        errs.append(fe.invalid(f"{path}.type", kind, "must be object if x-kubernetes-embedded-resource is true"))
    pattern = schema.get("pattern")
    if isinstance(pattern, str) and _compile(pattern) is None:
        errs.append(fe.invalid(f"{path}.pattern", pattern, "must be a valid regular expression"))
    for sub, sub_path, logic in _children(schema, path):
        errs.extend(_node_errors(sub, sub_path, in_logic=in_logic or logic))
    return errs


@functools.lru_cache(maxsize=1024)
def _compile(pattern: str) -> re.Pattern[str] | None:
    try:
        return re.compile(pattern)
    except re.error:
        return None


# ---------------------------------------------------------------------------------------------
# objects


def _type_ok(kind: str, value: Any) -> bool:
    if kind == "object":
        return isinstance(value, dict)
    if kind == "array":
        return isinstance(value, list)
    if kind == "string":
        return isinstance(value, str)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "integer":
        return (isinstance(value, int) and not isinstance(value, bool)) or (isinstance(value, float)
                                                                          and value.is_integer())
    if kind == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return True


def _child(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def validate(schema: Schema, obj: Any, path: str = "") -> list[Cause]:
    """Every violation of ``schema`` in ``obj`` as a cause with kube's field path (``spec.replicas``)."""
    errs: list[Cause] = []
    _check(schema, obj, path, errs, root=not path)
    return errs


def _check(schema: Schema, value: Any, path: str, errs: list[Cause], *, root: bool = False) -> None:
    if value is None:
        if not schema.get("nullable"):
            errs.append(fe.invalid(path, value, f'must be of type {schema.get("type") or "object"}'
                                   if not schema.get(INT_OR_STRING) else "must be an integer or a string"))
        return
    kind = schema.get("type")
    if schema.get(INT_OR_STRING):
        if not isinstance(value, (int, str)) or isinstance(value, bool):
            errs.append(fe.invalid(path, value, "must be an integer or a string"))
            return
    elif kind and not _type_ok(kind, value):
        errs.append(Cause(path, f'Invalid value: "{json_type(value)}": {path or "body"} in body must be of type '
                                f'{kind}: "{json_type(value)}"', fe.INVALID))
        return
    enum = schema.get("enum")
    if enum is not None and value not in enum:
        errs.append(fe.not_supported(path, value, [str(e) for e in enum]))
    if isinstance(value, str):
        _check_string(schema, value, path, errs)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        _check_number(schema, value, path, errs)
    elif isinstance(value, list):
        _check_array(schema, value, path, errs)
    elif isinstance(value, dict):
        _check_object(schema, value, path, errs, root=root)
    for sub in schema.get("allOf") or ():
        _check(sub, value, path, errs)


def _check_string(schema: Schema, value: str, path: str, errs: list[Cause]) -> None:
    low, high = schema.get("minLength"), schema.get("maxLength")
    if isinstance(low, int) and len(value) < low:
        errs.append(fe.invalid(path, value, f"{path} in body should be at least {low} chars long"))
    if isinstance(high, int) and len(value) > high:
        errs.append(Cause(path, f"Too long: may not be more than {high} bytes", fe.TOO_LONG))
    pattern = schema.get("pattern")
    compiled = _compile(pattern) if isinstance(pattern, str) else None
    if compiled is not None and not compiled.search(value):
        errs.append(fe.invalid(path, value, f"{path} in body should match '{pattern}'"))


def _check_number(schema: Schema, value: float, path: str, errs: list[Cause]) -> None:
    low, high = schema.get("minimum"), schema.get("maximum")
    if isinstance(low, (int, float)) and (value < low or (schema.get("exclusiveMinimum") and value == low)):
        op = "greater than" if schema.get("exclusiveMinimum") else "greater than or equal to"
        errs.append(fe.invalid(path, value, f"{path} in body should be {op} {low}"))
    if isinstance(high, (int, float)) and (value > high or (schema.get("exclusiveMaximum") and value == high)):
        op = "less than" if schema.get("exclusiveMaximum") else "less than or equal to"
        errs.append(fe.invalid(path, value, f"{path} in body should be {op} {high}"))


def _check_array(schema: Schema, value: list[Any], path: str, errs: list[Cause]) -> None:
    low, high = schema.get("minItems"), schema.get("maxItems")
    if isinstance(low, int) and len(value) < low:
        errs.append(fe.invalid(path, value, f"{path} in body should have at least {low} items"))
    if isinstance(high, int) and len(value) > high:
        errs.append(Cause(path, f"Too many: {len(value)}: must have at most {high} items", "FieldValueTooMany"))
    items = schema.get("items")
    if isinstance(items, Mapping):
        for i, item in enumerate(value):
            _check(items, item, f"{path}[{i}]", errs)


def _check_object(schema: Schema, value: dict[str, Any], path: str, errs: list[Cause], *, root: bool) -> None:
    props = schema.get("properties") or {}
    for name in schema.get("required") or ():
        if name not in value:
            errs.append(fe.required(_child(path, name), ""))
    low, high = schema.get("minProperties"), schema.get("maxProperties")
    if isinstance(low, int) and len(value) < low:
        errs.append(fe.invalid(path, value, f"{path} in body should have at least {low} properties"))
    if isinstance(high, int) and len(value) > high:
        errs.append(fe.invalid(path, value, f"{path} in body should have at most {high} properties"))
    if schema.get(EMBEDDED):
        for name in ("apiVersion", "kind"):
            if not value.get(name):
                errs.append(fe.required(_child(path, name), ""))
    extra = schema.get("additionalProperties")
    for name, item in value.items():
        if root and name in ("apiVersion", "kind", "metadata"):
            continue
        sub = props.get(name)
        if sub is None and isinstance(extra, Mapping):
            sub = extra
        if sub is not None:
            _check(sub, item, _child(path, name) if sub is not extra else f"{path}[{name}]", errs)


# ---------------------------------------------------------------------------------------------
# pruning and defaulting


def prune(schema: Schema, obj: Any, *, root: bool = True, path: str = "",
          removed: list[str] | None = None) -> None:
    """Drop the fields of ``obj`` that ``schema`` does not declare (kube's pruning), in place. The
    root's apiVersion/kind/metadata and embedded resources' ones are kept. The paths of the dropped
    fields (``spec.foo``) are appended to ``removed`` when given (for ``fieldValidation``)."""
    if isinstance(obj, dict):
        if schema.get(PRESERVE) and not schema.get("properties") and not isinstance(
                schema.get("additionalProperties"), Mapping):
            return
        props = schema.get("properties") or {}
        extra = schema.get("additionalProperties")
        keep_meta = root or bool(schema.get(EMBEDDED))
        for name in list(obj):
            if keep_meta and name in ("apiVersion", "kind", "metadata"):
                continue
            sub = props.get(name)
            if sub is None and isinstance(extra, Mapping):
                sub = extra
            child = f"{path}.{name}" if path else str(name)
            if sub is None:
                if not schema.get(PRESERVE) and extra is not True:
                    del obj[name]
                    if removed is not None:
                        removed.append(child)
                continue
            prune(sub, obj[name], root=False, path=child, removed=removed)
    elif isinstance(obj, list):
        items = schema.get("items")
        if isinstance(items, Mapping):
            for index, item in enumerate(obj):
                prune(items, item, root=False, path=f"{path}[{index}]", removed=removed)


def apply_defaults(schema: Schema, obj: Any) -> None:
    """Fill the ``default`` of every absent property of ``obj`` (recursively), in place."""
    if isinstance(obj, dict):
        props = schema.get("properties") or {}
        for name, sub in props.items():
            if name not in obj and "default" in sub:
                obj[name] = _copy(sub["default"])
            if name in obj:
                apply_defaults(sub, obj[name])
        extra = schema.get("additionalProperties")
        if isinstance(extra, Mapping):
            for name, item in obj.items():
                if name not in props:
                    apply_defaults(extra, item)
    elif isinstance(obj, list):
        items = schema.get("items")
        if isinstance(items, Mapping):
            for item in obj:
                apply_defaults(items, item)


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value
