"""Schema validation and the generic ObjectMeta rules, worded as kube-apiserver words them.

``validate_against_schema`` checks an object against its kind's definition in a ``SchemaCatalog``:
JSON types (with int32/int64 ranges, base64 for ``format: byte``, RFC 3339 for ``date-time``),
enums, required fields, and unknown fields under the three ``fieldValidation`` modes. The schema of
each kind is compiled once per catalog into a tree of small checkers, so validating a 2 KB Pod costs
tens of microseconds.

How kube-apiserver reports what this finds, and so what a caller should answer:

* a value of the wrong JSON type is a *decoding* error there: 400 BadRequest ``Pod in version "v1"
  cannot be handled as a Pod: json: cannot unmarshal ...`` (``SchemaResult.decode_error``);
* unknown fields under ``Strict``: 400 BadRequest ``... cannot be handled as a Pod: strict decoding
  error: unknown field "spec.foo"`` (``SchemaResult.strict_error()``); under ``Warn`` a warning
  ``unknown field "spec.foo"`` each; under ``Ignore`` nothing;
* everything else (required, enum, format): 422 Invalid with ``details.causes``.

``validate_object_meta`` applies ``ValidateObjectMeta``'s rules (name, generateName, namespace,
labels, annotations, owner references, finalizers) with kube's messages. The DNS / label helpers are
exported in two flavours: ``is_*`` returns a bool, ``*_errors`` returns kube's messages (empty = valid).
"""

from __future__ import annotations

import binascii
import copy
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from kapi.errors import Cause
from kapi.schema import SchemaCatalog, SchemaNode

UNKNOWN_FIELD_MODES = ("Strict", "Warn", "Ignore")

REQUIRED = "FieldValueRequired"
INVALID = "FieldValueInvalid"
TYPE_INVALID = "FieldValueTypeInvalid"
NOT_SUPPORTED = "FieldValueNotSupported"
FORBIDDEN = "FieldValueForbidden"
TOO_LONG = "FieldValueTooLong"

_INT32 = (-(2**31), 2**31 - 1)
_INT64 = (-(2**63), 2**63 - 1)
_DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")
_PY_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,), "integer": (int,), "number": (int, float), "boolean": (bool,),
    "object": (dict,), "array": (list,), "null": (type(None),),
}
_BRACKETS = re.compile(r"\[[^\]]*\]")
_BOOLEAN = frozenset({"boolean"})


class _AnyType:
    """Stands in for a type set that admits every value."""

    def __contains__(self, item: object) -> bool:
        return True


_ANY = _AnyType()


# ---------------------------------------------------------------------------------------------
# value rendering, as field.Error renders BadValue
# ---------------------------------------------------------------------------------------------
def render_value(value: Any) -> str:
    """A bad value as kube prints it: strings quoted, numbers and booleans bare, null as null."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return orjson.dumps(value).decode()
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def json_type(value: Any) -> str:
    """The JSON type name of a decoded value (``string``, ``integer``, ``number``, ...)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


# ---------------------------------------------------------------------------------------------
# the result
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SchemaResult:
    """What ``validate_against_schema`` found. Unpacks as ``causes, warnings = result``.

    ``causes`` holds every problem as a ``Cause`` (type errors with reason ``FieldValueTypeInvalid``
    and, under Strict, unknown fields as ``field not declared in schema``), so a caller that only
    checks ``causes`` still rejects. ``unknown_fields`` lists the unknown field paths whatever the
    mode; ``decode_error`` is the Go-decoder wording of the first type error, if any.
    """

    causes: list[Cause] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    unknown_fields: list[str] = field(default_factory=list)
    decode_error: str | None = None
    mode: str = "Strict"

    def __iter__(self) -> Iterator[Any]:
        yield self.causes
        yield self.warnings

    @property
    def ok(self) -> bool:
        return not self.causes

    def strict_error(self) -> str | None:
        """``strict decoding error: unknown field "a", unknown field "b"`` under Strict, else None."""
        if self.mode != "Strict" or not self.unknown_fields:
            return None
        return "strict decoding error: " + ", ".join(f'unknown field "{p}"' for p in self.unknown_fields)

    def bad_request_message(self, kind: str, version: str) -> str | None:
        """The whole 400 message kube-apiserver gives for a body it cannot decode, or None:
        ``Pod in version "v1" cannot be handled as a Pod: <decode or strict error>``."""
        reason = self.decode_error or self.strict_error()
        if reason is None:
            return None
        return f'{kind} in version "{version}" cannot be handled as a {kind}: {reason}'


class _Findings:
    """Mutable collector used during one validation run."""

    __slots__ = ("causes", "decode_error", "lax", "unknown", "unknown_at")

    def __init__(self) -> None:
        self.causes: list[Cause] = []
        self.unknown: list[str] = []
        self.unknown_at: list[tuple[dict[str, Any], str]] = []  # (the object holding it, its key)
        self.decode_error: str | None = None
        self.lax = False  # True inside the top-level status: required lists are not enforced there

    def type_error(self, path: str, value: Any, check: _Check, owner: str) -> None:
        """Record that ``value`` at ``path`` is not what ``check`` admits; ``owner`` is the short
        name of the struct holding the field (for the Go-style decode message)."""
        got = json_type(value)
        if got == "integer" and "integer" in check.expect:
            shown, expect = render_value(value), check.go_type  # out of the int32/int64 range
        else:
            shown, expect = f'"{got}"', check.expect
        self.causes.append(Cause(path, f"Invalid value: {shown}: {path} in body must be of type {expect}: {shown}",
                                 TYPE_INVALID))
        if self.decode_error is None:
            go_got = "bool" if got == "boolean" else "number" if got in ("integer", "number") else got
            if go_got == "number":
                go_got = f"number {render_value(value)}"
            go_path = _BRACKETS.sub("", path)
            self.decode_error = (f"json: cannot unmarshal {go_got} into Go struct field "
                                 f"{owner}.{go_path} of type {check.go_type}")


# ---------------------------------------------------------------------------------------------
# compiled checkers
# ---------------------------------------------------------------------------------------------
class _Check:
    """One compiled schema node. ``types`` is what ``type(value)`` may be; ``run`` (or None when
    the type check says all) checks deeper: ``run(value, path, findings)``."""

    __slots__ = ("additional", "enum", "expect", "go_type", "items", "owner", "props", "range", "required",
                 "run", "types")

    def __init__(self) -> None:
        self.types: Any = _ANY
        self.expect = ""
        self.go_type = "interface {}"
        self.owner = ""
        self.run: Callable[[Any, str, _Findings], None] | None = None
        self.props: dict[str, _Check] = {}
        self.additional: _Check | None = None
        self.items: _Check | None = None
        self.required: tuple[str, ...] = ()
        self.enum: frozenset[Any] = frozenset()
        self.range: tuple[int, int] = _INT64

    def object(self, value: dict[str, Any], path: str, out: _Findings) -> None:
        props = self.props
        for key, val in value.items():
            check = props.get(key)
            if check is None:
                out.unknown.append(_join(path, key))
                out.unknown_at.append((value, key))
                continue
            if type(val) not in check.types:
                out.type_error(_join(path, key), val, check, self.owner)
            elif check.run is not None and val is not None:
                check.run(val, _join(path, key), out)
        if not out.lax:
            for name in self.required:
                if value.get(name) is None:
                    out.causes.append(Cause(_join(path, name), "Required value", REQUIRED))

    def lax_object(self, value: dict[str, Any], path: str, out: _Findings) -> None:
        """``object`` without required checks below this point (a kind's status)."""
        out.lax = True
        try:
            self.object(value, path, out)
        finally:
            out.lax = False

    def map(self, value: dict[str, Any], path: str, out: _Findings) -> None:
        check = self.additional
        assert check is not None
        types, run = check.types, check.run
        for key, val in value.items():
            if type(val) not in types:
                out.type_error(f"{path}[{key}]", val, check, self.owner)
            elif run is not None and val is not None:
                run(val, f"{path}[{key}]", out)

    def array(self, value: list[Any], path: str, out: _Findings) -> None:
        check = self.items
        assert check is not None
        types, run = check.types, check.run
        for index, val in enumerate(value):
            if type(val) not in types:
                out.type_error(f"{path}[{index}]", val, check, self.owner)
            elif run is not None and val is not None:
                run(val, f"{path}[{index}]", out)

    def enumerated(self, value: Any, path: str, out: _Findings) -> None:
        if value not in self.enum and value != "":
            supported = ", ".join(render_value(v) for v in sorted(self.enum, key=str))
            out.causes.append(Cause(path, f"Unsupported value: {render_value(value)}: supported values: {supported}",
                                    NOT_SUPPORTED))

    def integer(self, value: int, path: str, out: _Findings) -> None:
        low, high = self.range
        if not low <= value <= high:
            out.type_error(path, value, self, self.owner)

    def byte(self, value: str, path: str, out: _Findings) -> None:
        try:
            binascii.a2b_base64(value, strict_mode=True)
        except (binascii.Error, ValueError):
            out.causes.append(Cause(path, f"Invalid value: {render_value(value)}: illegal base64 data", INVALID))
            if out.decode_error is None:
                out.decode_error = f"illegal base64 data in {path}"

    def date_time(self, value: str, path: str, out: _Findings) -> None:
        if not _DATE_TIME.match(value):
            out.causes.append(Cause(path, f"Invalid value: {render_value(value)}: must be an RFC 3339 date-time",
                                    INVALID))
            if out.decode_error is None:
                out.decode_error = f'parsing time {render_value(value)} as RFC 3339 in {path}: invalid format'


def _go_type(node: SchemaNode) -> str:
    if node.name:
        parts = node.name.split(".")
        return f"{parts[-2]}.{parts[-1]}" if len(parts) > 1 else node.name
    types = node.types or frozenset()
    if "array" in types:
        return "[]" + (_go_type(node.items) if node.items else "interface {}")
    if "object" in types:
        return "map[string]" + (_go_type(node.additional) if node.additional else "interface {}")
    if "integer" in types:
        return node.format or "int"
    if "number" in types:
        return "float64"
    if "boolean" in types:
        return "bool"
    return "string" if "string" in types else "interface {}"


class _Compiler:
    """Turns resolved nodes into ``_Check`` trees; definitions are compiled once (cycles allowed)."""

    def __init__(self) -> None:
        self._defs: dict[str, _Check] = {}

    def compile(self, node: SchemaNode, owner: str, prop: str = "") -> _Check:
        if node.name is not None:
            check = self._defs.get(node.name)
            if check is not None:
                return check
            check = self._defs[node.name] = _Check()
            self._fill(check, node, node.name.rsplit(".", 1)[-1], prop)
            return check
        check = _Check()
        self._fill(check, node, owner, prop)
        return check

    def _fill(self, check: _Check, node: SchemaNode, owner: str, prop: str) -> None:
        types = node.types
        check.owner = owner
        check.go_type = _go_type(node)
        if types is None:
            return
        # JSON null decodes to the zero value in Go whatever the declared type: never a type error
        # (a required field that is null is reported as required instead).
        check.types = frozenset(t for name in types | {"null"} for t in _PY_TYPES.get(name, ()))
        check.expect = next((t for t in ("object", "array", "string", "integer", "number", "boolean")
                             if t in types), "null")
        if "object" in types:
            if node.is_struct:
                check.props = {key: self.compile(sub, owner, key) for key, sub in node.properties.items()}
                # `required` in the OpenAPI means "serialized even when empty" (no omitempty). A
                # missing boolean is simply false, so only non-boolean fields are enforced.
                check.required = tuple(r for r in node.required
                                       if r not in node.properties
                                       or (node.properties[r].types or _BOOLEAN) - {"null"} != _BOOLEAN)
                check.run = check.object
            elif node.additional is not None:
                check.additional = self.compile(node.additional, owner)
                check.run = check.map
        elif "array" in types:
            if node.items is not None:
                check.items = self.compile(node.items, owner)
                check.run = check.array
        elif node.enum and prop not in ("apiVersion", "kind"):
            check.enum = frozenset(node.enum)
            check.run = check.enumerated
        elif types & {"integer"} and "string" not in types:
            check.range = _INT32 if node.format == "int32" else _INT64
            check.run = check.integer
        elif node.format == "byte" and "string" in types:
            check.run = check.byte
        elif node.format == "date-time" and "string" in types:
            check.run = check.date_time


def compiled_validator(catalog: SchemaCatalog, group: str, version: str, kind: str) -> _Check | None:
    """The compiled checker of a kind (built once per catalog), or None if the kind is unknown."""
    name = catalog.name_for(group, version, kind)
    if name is None:
        return None
    compiler = catalog.memo("validation.compiler", _Compiler)
    return catalog.memo(("validation.kind", name), lambda: _root_check(compiler.compile(catalog.node(name), "")))


def _root_check(shared: _Check) -> _Check:
    """The checker of a whole object: like the definition's, but its ``status`` (written by
    controllers, which omit zero values that the OpenAPI lists as required) skips required checks."""
    status = shared.props.get("status")
    if status is None or status.run != status.object:
        return shared
    root = copy.copy(shared)
    lax = copy.copy(status)
    lax.run = lax.lax_object
    root.props = {**shared.props, "status": lax}
    root.run = root.object
    return root


def validate_against_schema(catalog: SchemaCatalog, group: str, version: str, kind: str, obj: Any, *,
                            unknown_fields: str = "Strict") -> SchemaResult:
    """Check ``obj`` against the definition of (group, version, kind).

    ``unknown_fields`` is the request's ``fieldValidation``: ``Strict`` (unknown fields are causes
    and ``strict_error()`` is set), ``Warn`` (each becomes the warning ``unknown field "PATH"``) or
    ``Ignore``. A kind the catalog does not know validates as anything (an empty result). Field
    paths are kube's: ``spec.containers[0].image``, ``metadata.labels[app]``.
    """
    if unknown_fields not in UNKNOWN_FIELD_MODES:
        raise ValueError(f"fieldValidation must be one of {', '.join(UNKNOWN_FIELD_MODES)}, not {unknown_fields!r}")
    check = compiled_validator(catalog, group, version, kind)
    if check is None:
        return SchemaResult(mode=unknown_fields)
    out = _Findings()
    if not isinstance(obj, dict):
        out.type_error("", obj, check, check.owner)
        out.decode_error = f"json: cannot unmarshal {json_type(obj)} into Go value of type {check.go_type}"
    elif check.run is not None:
        check.run(obj, "", out)
    warnings: list[str] = []
    if out.unknown:
        if unknown_fields == "Strict":
            out.causes.extend(Cause(path, "field not declared in schema", INVALID) for path in out.unknown)
        elif unknown_fields == "Warn":
            warnings = [f'unknown field "{path}"' for path in out.unknown]
    return SchemaResult(out.causes, warnings, out.unknown, out.decode_error, unknown_fields)


def prune_unknown_fields(catalog: SchemaCatalog, group: str, version: str, kind: str, obj: Any) -> list[str]:
    """Remove from ``obj``, in place, every field the kind's schema does not declare (as
    kube-apiserver's decoder drops them from built-in kinds) and return their paths, in kube's
    notation. Values of the wrong type are left for ``validate_against_schema`` to report; a kind
    the catalog does not know is left alone."""
    check = compiled_validator(catalog, group, version, kind)
    if check is None or check.run is None or not isinstance(obj, dict):
        return []
    out = _Findings()
    check.run(obj, "", out)
    for holder, key in out.unknown_at:
        holder.pop(key, None)
    return out.unknown


# ---------------------------------------------------------------------------------------------
# names, labels, annotations (k8s.io/apimachinery/pkg/util/validation)
# ---------------------------------------------------------------------------------------------
DNS1123_LABEL_FMT = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
DNS1123_SUBDOMAIN_FMT = DNS1123_LABEL_FMT + r"(\." + DNS1123_LABEL_FMT + ")*"
DNS1035_LABEL_FMT = "[a-z]([-a-z0-9]*[a-z0-9])?"
QUALIFIED_NAME_FMT = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
LABEL_VALUE_FMT = "(" + QUALIFIED_NAME_FMT + ")?"
DNS1123_LABEL_MAX = 63
DNS1123_SUBDOMAIN_MAX = 253
QUALIFIED_NAME_MAX = 63
LABEL_VALUE_MAX = 63
TOTAL_ANNOTATION_SIZE_LIMIT = 256 * 1024

_DNS1123_LABEL = re.compile(f"^{DNS1123_LABEL_FMT}$")
_DNS1123_SUBDOMAIN = re.compile(f"^{DNS1123_SUBDOMAIN_FMT}$")
_DNS1035_LABEL = re.compile(f"^{DNS1035_LABEL_FMT}$")
_QUALIFIED_NAME = re.compile(f"^{QUALIFIED_NAME_FMT}$")
_LABEL_VALUE = re.compile(f"^{LABEL_VALUE_FMT}$")

_DNS1123_LABEL_MSG = ("a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
                      "and must start and end with an alphanumeric character")
_DNS1123_SUBDOMAIN_MSG = ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, "
                          "'-' or '.', and must start and end with an alphanumeric character")
_DNS1035_LABEL_MSG = ("a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
                      "alphabetic character, and end with an alphanumeric character")
_QUALIFIED_NAME_MSG = ("must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
                       "alphanumeric character")
_LABEL_VALUE_MSG = ("a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', "
                    "and must start and end with an alphanumeric character")


def max_len_error(length: int) -> str:
    return f"must be no more than {length} characters"


def regex_error(message: str, fmt: str, *examples: str) -> str:
    """kube's ``RegexError``: the message, examples and the regex used."""
    if not examples:
        return f"{message} (regex used for validation is '{fmt}')"
    shown = " or ".join(f"'{e}', " for e in examples)  # kube's own spacing: "'a',  or 'b', "
    return f"{message} (e.g. {shown}regex used for validation is '{fmt}')"


def _byte_len(value: str) -> int:
    return len(value) if value.isascii() else len(value.encode())


def dns1123_label_errors(value: str) -> list[str]:
    """Why ``value`` is not an RFC 1123 label (empty list = valid)."""
    errs = []
    if _byte_len(value) > DNS1123_LABEL_MAX:
        errs.append(max_len_error(DNS1123_LABEL_MAX))
    if not _DNS1123_LABEL.match(value):
        if _DNS1123_SUBDOMAIN.match(value):
            errs.append("must not contain dots")
        else:
            errs.append(regex_error(_DNS1123_LABEL_MSG, DNS1123_LABEL_FMT, "my-name", "123-abc"))
    return errs


def dns1123_subdomain_errors(value: str) -> list[str]:
    """Why ``value`` is not an RFC 1123 subdomain (empty list = valid)."""
    errs = []
    if _byte_len(value) > DNS1123_SUBDOMAIN_MAX:
        errs.append(max_len_error(DNS1123_SUBDOMAIN_MAX))
    if not _DNS1123_SUBDOMAIN.match(value):
        errs.append(regex_error(_DNS1123_SUBDOMAIN_MSG, DNS1123_SUBDOMAIN_FMT, "example.com"))
    return errs


def dns1035_label_errors(value: str) -> list[str]:
    """Why ``value`` is not an RFC 1035 label (Service names) (empty list = valid)."""
    errs = []
    if _byte_len(value) > DNS1123_LABEL_MAX:
        errs.append(max_len_error(DNS1123_LABEL_MAX))
    if not _DNS1035_LABEL.match(value):
        errs.append(regex_error(_DNS1035_LABEL_MSG, DNS1035_LABEL_FMT, "my-name", "abc-123"))
    return errs


def qualified_name_errors(value: str) -> list[str]:
    """Why ``value`` is not a qualified name / label key: ``[prefix/]name`` with a DNS subdomain
    prefix and a name of at most 63 characters (empty list = valid)."""
    errs: list[str] = []
    parts = value.split("/")
    if len(parts) == 1:
        name = parts[0]
    elif len(parts) == 2:
        prefix, name = parts
        if not prefix:
            errs.append("prefix part must be non-empty")
        else:
            errs.extend("prefix part " + msg for msg in dns1123_subdomain_errors(prefix))
    else:
        return ["a qualified name " + regex_error(_QUALIFIED_NAME_MSG, QUALIFIED_NAME_FMT, "MyName", "my.name",
                                                   "123-abc")
                + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"]
    if not name:
        errs.append("name part must be non-empty")
    elif _byte_len(name) > QUALIFIED_NAME_MAX:
        errs.append("name part " + max_len_error(QUALIFIED_NAME_MAX))
    if not _QUALIFIED_NAME.match(name):
        errs.append("name part " + regex_error(_QUALIFIED_NAME_MSG, QUALIFIED_NAME_FMT, "MyName", "my.name", "123-abc"))
    return errs


def label_value_errors(value: str) -> list[str]:
    """Why ``value`` is not a label value (at most 63 characters, may be empty) (empty list = valid)."""
    errs = []
    if _byte_len(value) > LABEL_VALUE_MAX:
        errs.append(max_len_error(LABEL_VALUE_MAX))
    if not _LABEL_VALUE.match(value):
        errs.append(regex_error(_LABEL_VALUE_MSG, LABEL_VALUE_FMT, "MyValue", "my_value", "12345"))
    return errs


def is_dns1123_label(value: str) -> bool:
    """True for an RFC 1123 label: at most 63 lowercase alphanumerics or '-', alphanumeric at both ends."""
    return not dns1123_label_errors(value)


def is_dns1123_subdomain(value: str) -> bool:
    """True for an RFC 1123 subdomain: at most 253 characters, dot-separated labels."""
    return not dns1123_subdomain_errors(value)


def is_dns1035_label(value: str) -> bool:
    """True for an RFC 1035 label (like an RFC 1123 label, but starting with a letter)."""
    return not dns1035_label_errors(value)


def is_qualified_name(value: str) -> bool:
    """True for a qualified name (label and annotation keys, finalizers)."""
    return not qualified_name_errors(value)


def is_label_value(value: str) -> bool:
    """True for a valid label value."""
    return not label_value_errors(value)


# ---------------------------------------------------------------------------------------------
# ObjectMeta (k8s.io/apimachinery/pkg/api/validation/objectmeta.go)
# ---------------------------------------------------------------------------------------------
NameValidator = Callable[[str, bool], list[str]]


def _mask_trailing_dash(name: str) -> str:
    return name[:-1] + "a" if len(name) > 1 and name.endswith("-") else name


def name_is_dns_subdomain(name: str, prefix: bool) -> list[str]:
    """The default object name rule (``NameIsDNSSubdomain``); ``prefix`` is True for generateName."""
    return dns1123_subdomain_errors(_mask_trailing_dash(name) if prefix else name)


def name_is_dns_label(name: str, prefix: bool) -> list[str]:
    """Names that must be RFC 1123 labels (Namespace, Node-less kinds that say so)."""
    return dns1123_label_errors(_mask_trailing_dash(name) if prefix else name)


def name_is_dns1035_label(name: str, prefix: bool) -> list[str]:
    """Names that must be RFC 1035 labels (Service)."""
    return dns1035_label_errors(_mask_trailing_dash(name) if prefix else name)


def name_is_path_segment(name: str, prefix: bool) -> list[str]:
    """Names that only need to be usable as one URL path segment (RBAC kinds)."""
    errs = []
    if not prefix and name in (".", ".."):
        errs.append(f"may not be '{name}'")
    for bad in ("/", "%"):
        if bad in name:
            errs.append(f"may not contain '{bad}'")
    return errs


def _invalid(path: str, value: Any, detail: str) -> Cause:
    return Cause(path, f"Invalid value: {render_value(value)}: {detail}", INVALID)


def validate_labels(labels: Any, path: str = "metadata.labels") -> list[Cause]:
    """Label keys must be qualified names and values label values (``ValidateLabels``)."""
    if not isinstance(labels, Mapping):
        return []
    causes: list[Cause] = []
    for key, value in labels.items():
        causes.extend(_invalid(path, key, msg) for msg in qualified_name_errors(key))
        if isinstance(value, str):
            causes.extend(_invalid(path, value, msg) for msg in label_value_errors(value))
    return causes


def validate_annotations(annotations: Any, path: str = "metadata.annotations") -> list[Cause]:
    """Annotation keys are qualified names (case-insensitively) and all keys and values together
    may hold at most 256 KiB (``ValidateAnnotations``)."""
    if not isinstance(annotations, Mapping):
        return []
    causes: list[Cause] = []
    total = 0
    for key, value in annotations.items():
        causes.extend(_invalid(path, key, msg) for msg in qualified_name_errors(key.lower()))
        total += _byte_len(key) + (_byte_len(value) if isinstance(value, str) else 0)
    if total > TOTAL_ANNOTATION_SIZE_LIMIT:
        causes.append(Cause(path, f"Too long: must have at most {TOTAL_ANNOTATION_SIZE_LIMIT} bytes", TOO_LONG))
    return causes


def _validate_owner_references(refs: Any, path: str) -> list[Cause]:
    if not isinstance(refs, list):
        return []
    causes: list[Cause] = []
    controller = ""
    for ref in refs:
        if not isinstance(ref, Mapping):
            continue
        api_version = ref.get("apiVersion") or ""
        version = api_version.rsplit("/", 1)[-1]
        if not version:
            causes.append(_invalid(f"{path}.apiVersion", api_version, "version must not be empty"))
        for key in ("kind", "name", "uid"):
            if not ref.get(key):
                causes.append(_invalid(f"{path}.{key}", ref.get(key) or "", "must not be empty"))
        if api_version == "v1" and ref.get("kind") == "Event":
            causes.append(_invalid(path, dict(ref), "/v1, Kind=Event is disallowed from being an owner"))
        if ref.get("controller") is True:
            current = f"{ref.get('kind', '')}/{ref.get('name', '')}"
            if controller:
                causes.append(_invalid(path, refs, 'Only one reference can have Controller set to true. Found "true" '
                                                   f"in references for {controller} and {current}"))
            else:
                controller = current
    return causes


def _validate_finalizers(finalizers: Any, path: str) -> list[Cause]:
    if not isinstance(finalizers, list):
        return []
    causes: list[Cause] = []
    for finalizer in finalizers:
        if isinstance(finalizer, str):
            causes.extend(_invalid(path, finalizer, msg) for msg in qualified_name_errors(finalizer))
    if "orphan" in finalizers and "foregroundDeletion" in finalizers:
        causes.append(_invalid(path, finalizers, "finalizer orphan and foregroundDeletion cannot be both set"))
    return causes


def validate_object_meta(obj: Mapping[str, Any], namespaced: bool, *,
                         name_fn: NameValidator = name_is_dns_subdomain) -> list[Cause]:
    """kube's ``ValidateObjectMeta`` for a new object: field paths under ``metadata``.

    The name is required unless ``generateName`` is set (the caller generates the name before or
    after; both are checked with ``name_fn``). Namespaced kinds need an RFC 1123 label namespace;
    cluster-scoped kinds may not have one. Then generation >= 0, labels, annotations, owner
    references and finalizers. Returns an empty list when all is well.
    """
    meta = obj.get("metadata")
    if not isinstance(meta, Mapping):
        meta = {}
    causes: list[Cause] = []
    name = meta.get("name") or ""
    generate_name = meta.get("generateName") or ""
    if isinstance(generate_name, str) and generate_name:
        causes.extend(_invalid("metadata.generateName", generate_name, msg) for msg in name_fn(generate_name, True))
    if not name:
        if not generate_name:
            causes.append(Cause("metadata.name", "Required value: name or generateName is required", REQUIRED))
    elif isinstance(name, str):
        causes.extend(_invalid("metadata.name", name, msg) for msg in name_fn(name, False))
    namespace = meta.get("namespace") or ""
    if namespaced:
        if not namespace:
            causes.append(Cause("metadata.namespace", "Required value", REQUIRED))
        elif isinstance(namespace, str):
            causes.extend(_invalid("metadata.namespace", namespace, msg) for msg in dns1123_label_errors(namespace))
    elif namespace:
        causes.append(Cause("metadata.namespace", "Forbidden: not allowed on this type", FORBIDDEN))
    generation = meta.get("generation")
    if isinstance(generation, int) and generation < 0:
        causes.append(_invalid("metadata.generation", generation, "must be greater than or equal to 0"))
    causes.extend(validate_labels(meta.get("labels")))
    causes.extend(validate_annotations(meta.get("annotations")))
    causes.extend(_validate_owner_references(meta.get("ownerReferences"), "metadata.ownerReferences"))
    causes.extend(_validate_finalizers(meta.get("finalizers"), "metadata.finalizers"))
    return causes
