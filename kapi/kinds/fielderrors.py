"""Field errors as k8s.io/apimachinery's ``field.Error`` renders them.

Each constructor returns a ``kapi.errors.Cause`` whose ``message`` is Go's ``ErrorBody()``
(``Required value``, ``Invalid value: "x": detail``, ``Unsupported value: "x": supported values:
"a", "b"``...) and whose ``reason`` is the ``FieldValue*`` type, so ``Cause.to_dict`` yields the
``field: body`` text kube-apiserver puts in ``details.causes``. Paths are plain strings built with
``child``/``index``/``key`` (``spec.containers[0].name``, ``data[bad key]``).

``go_value`` renders a bad value the way Go's ``%q``/``%v``/``%#v`` would, closely enough for
people to recognise kube's messages.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import orjson

from kapi.errors import Cause

REQUIRED = "FieldValueRequired"
INVALID = "FieldValueInvalid"
NOT_SUPPORTED = "FieldValueNotSupported"
FORBIDDEN = "FieldValueForbidden"
DUPLICATE = "FieldValueDuplicate"
NOT_FOUND = "FieldValueNotFound"
TOO_LONG = "FieldValueTooLong"

IMMUTABLE = "field is immutable"


class GoRepr(str):
    """A value already rendered in Go syntax (``v1.LabelSelector{...}``); shown as is."""

    __slots__ = ()


def child(path: str, name: str) -> str:
    """``path.name`` (or ``name`` at the root)."""
    return f"{path}.{name}" if path else name


def index(path: str, i: int) -> str:
    return f"{path}[{i}]"


def key(path: str, k: str) -> str:
    return f"{path}[{k}]"


def go_quote(s: str) -> str:
    """Go's ``strconv.Quote`` for the strings met in practice (JSON escaping, UTF-8 kept)."""
    return orjson.dumps(s).decode()


def go_value(value: Any) -> str:
    """Render ``value`` as ``field.Error.ErrorBody`` does (``%q`` for strings, ``%v`` for numbers and
    booleans, ``null`` for nil, ``%#v`` for maps and string slices)."""
    if isinstance(value, GoRepr):
        return str(value)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        return go_quote(value)
    if isinstance(value, Mapping):
        if all(isinstance(v, str) for v in value.values()):
            inner = ", ".join(f"{go_quote(str(k))}:{go_quote(v)}" for k, v in sorted(value.items()))
            return f"map[string]string{{{inner}}}"
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
    if isinstance(value, list | tuple):
        if all(isinstance(v, str) for v in value):
            return "[]string{" + ", ".join(go_quote(v) for v in value) + "}"
        return orjson.dumps(list(value)).decode()
    return str(value)


def _with_detail(body: str, detail: str) -> str:
    return f"{body}: {detail}" if detail else body


def required(path: str, detail: str = "") -> Cause:
    return Cause(path, _with_detail("Required value", detail), REQUIRED)


def invalid(path: str, value: Any, detail: str) -> Cause:
    return Cause(path, _with_detail(f"Invalid value: {go_value(value)}", detail), INVALID)


def not_supported(path: str, value: Any, supported: Iterable[str]) -> Cause:
    values = ", ".join(go_quote(s) for s in supported)
    return Cause(path, _with_detail(f"Unsupported value: {go_value(value)}",
                                    f"supported values: {values}" if values else ""), NOT_SUPPORTED)


def forbidden(path: str, detail: str) -> Cause:
    return Cause(path, _with_detail("Forbidden", detail), FORBIDDEN)


def duplicate(path: str, value: Any, detail: str = "") -> Cause:
    return Cause(path, _with_detail(f"Duplicate value: {go_value(value)}", detail), DUPLICATE)


def not_found(path: str, value: Any) -> Cause:
    return Cause(path, f"Not found: {go_value(value)}", NOT_FOUND)


def too_long(path: str, max_bytes: int) -> Cause:
    return Cause(path, f"Too long: may not be more than {max_bytes} bytes", TOO_LONG)


def immutable(path: str, value: Any) -> Cause:
    """``ValidateImmutableField``: ``Invalid value: ...: field is immutable``."""
    return invalid(path, value, IMMUTABLE)


def each_invalid(path: str, value: Any, messages: Iterable[str]) -> list[Cause]:
    """One Invalid cause per message of a format check (``IsDNS1123Label`` and friends)."""
    return [invalid(path, value, msg) for msg in messages]


def nonnegative(path: str, value: Any) -> list[Cause]:
    """``ValidateNonnegativeField``."""
    if isinstance(value, int | float) and not isinstance(value, bool) and value < 0:
        return [invalid(path, value, "must be greater than or equal to 0")]
    return []
