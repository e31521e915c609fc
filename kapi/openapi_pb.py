"""The Swagger 2.0 document in gnostic's protobuf form (``openapi.v2.Document``).

client-go asks for ``/openapi/v2`` only as ``application/com.github.proto-openapi.spec.v2@v1.0+protobuf``
(kubectl validates a ``kind: List`` manifest against it), and decodes it with the ``openapi_v2``
package of google/gnostic-models. ``encode_document(doc)`` turns the JSON document (a dict, as
``OpenAPI.v2()`` renders it) into that message; the field numbers below are the ones of
``openapiv2/OpenAPIv2.proto``.

Encoding rules, as gnostic's compiler applies them:

- proto3: zero scalars (``""``, ``0``, ``False``) are left out, except inside a ``oneof`` (an
  ``additionalProperties: false`` is written); sub-messages are always written, empty or not.
- maps are repeated ``Named*`` pairs (``name = 1``, ``value = 2``) in document order.
- every ``x-*`` key becomes a ``NamedAny`` vendor extension whose ``Any.yaml`` holds the value as
  YAML text; kube-openapi reads ``x-kubernetes-group-version-kind`` back with a YAML decoder into a
  list of ``{group, version, kind}`` maps, which is how kubectl finds the definition of a kind.
  ``default``, ``example`` and ``enum`` values are ``Any.yaml`` too.
- JSON-Schema keys that Swagger 2.0 does not have (``oneOf``, ``nullable``, ...) are dropped.

The encoder is pure and table-driven: one tuple of ``(json key, writer)`` per message, in field
order. It runs once per app (about 0.1 s for the built-in document); callers cache the bytes.
"""

from __future__ import annotations

import json
import math
import re
import struct
from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType
from typing import Any

# The Content-Type of the answer: kube-apiserver's spelling. client-go asks with the "@v1.0" one, but
# "@" is not a MIME token character and Go's mime.ParseMediaType rejects it in a response.
V2_PROTOBUF = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
_V2_PROTOBUF_TYPES = frozenset({V2_PROTOBUF, "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"})
_JSON_TYPES = frozenset({"application/json", "application/*", "*/*"})

Writer = Callable[[Any], bytes]
Table = tuple[tuple[str, Writer], ...]


# ---------------------------------------------------------------------------------------------
# content negotiation
# ---------------------------------------------------------------------------------------------
def wants_v2_protobuf(accept: str) -> bool:
    """True when the most preferred type of ``accept`` that /openapi/v2 serves is the gnostic
    protobuf (either spelling); False for JSON, ``*/*``, an empty header, or nothing servable."""
    ranked: list[tuple[float, int, str]] = []
    for index, part in enumerate(accept.split(",")):
        media, *params = (p.strip() for p in part.split(";"))
        quality = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if quality > 0 and (media in _V2_PROTOBUF_TYPES or media in _JSON_TYPES):
            ranked.append((-quality, index, media))
    return bool(ranked) and min(ranked)[2] in _V2_PROTOBUF_TYPES


# ---------------------------------------------------------------------------------------------
# YAML text of extension values (block style, like yaml.Marshal)
# ---------------------------------------------------------------------------------------------
_PLAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_./-]*")
_RESERVED = frozenset({"y", "n", "yes", "no", "on", "off", "true", "false", "null"})
# not YAML-printable, or a line break inside a quoted scalar (NEL, LS, PS)
_UNSAFE = re.compile("[\x7f-\x9f\u2028\u2029\ud800-\udfff\ufffe\uffff]")


def _scalar(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isfinite(value):
            text = repr(value)
            if "e" in text:  # YAML 1.1 floats need a dot in the mantissa: 5e-324 -> 5.0e-324
                mantissa, exponent = text.split("e")
                text = f"{mantissa if '.' in mantissa else mantissa + '.0'}e{exponent}"
            return text
        return ".nan" if math.isnan(value) else (".inf" if value > 0 else "-.inf")
    text = str(value)
    if _PLAIN.fullmatch(text) and text.lower() not in _RESERVED:
        return text
    # a JSON string is a YAML double-quoted scalar once the characters YAML may not hold (or would
    # read as line breaks) are escaped as well
    return _UNSAFE.sub(_escape, json.dumps(text, ensure_ascii=False))


def _escape(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


def _yaml_lines(value: Any, indent: str) -> Iterable[str]:
    if isinstance(value, dict) and value:
        for key, item in value.items():
            head = f"{indent}{_scalar(str(key))}:"
            if isinstance(item, dict) and item:
                yield head
                yield from _yaml_lines(item, indent + "  ")
            elif isinstance(item, list) and item:
                yield head
                yield from _yaml_lines(item, indent)
            else:
                yield f"{head} {_flow(item)}"
    elif isinstance(value, list) and value:
        for item in value:
            lines = list(_yaml_lines(item, indent + "  "))
            yield f"{indent}- {lines[0][len(indent) + 2:]}"
            yield from lines[1:]
    else:
        yield f"{indent}{_flow(value)}"


def _flow(value: Any) -> str:
    if isinstance(value, dict):
        return "{}"
    if isinstance(value, list):
        return "[]"
    return _scalar(value)


def to_yaml(value: Any) -> str:
    """``value`` (a JSON value) as YAML text ending in a newline: ``[{"kind": "Pod"}]`` is
    ``"- kind: Pod\\n"``. Strings that a YAML 1.1 reader would not read back as the same string
    are written double-quoted."""
    return "\n".join(_yaml_lines(value, "")) + "\n"


# ---------------------------------------------------------------------------------------------
# wire format
# ---------------------------------------------------------------------------------------------
def varint(value: int) -> bytes:
    """``value`` as a base-128 varint; negative numbers as their 64-bit two's complement."""
    if 0 <= value < 0x80:
        return bytes((value,))
    value &= 0xFFFFFFFFFFFFFFFF
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _key(number: int, wire: int) -> bytes:
    return varint(number << 3 | wire)


def _delimited(key: bytes, payload: bytes) -> bytes:
    size = len(payload)
    return key + (bytes((size,)) if size < 0x80 else varint(size)) + payload


def string(number: int) -> Writer:
    """A ``string`` field (left out when empty)."""
    key = _key(number, 2)
    return lambda value: _delimited(key, str(value).encode()) if value != "" else b""


def strings(number: int) -> Writer:
    """A ``repeated string`` field (a JSON list, or one string)."""
    key = _key(number, 2)
    return lambda values: b"".join(_delimited(key, str(v).encode())
                                   for v in ([values] if isinstance(values, str) else values))


def boolean(number: int, *, oneof: bool = False) -> Writer:
    """A ``bool`` field (left out when false unless it is a oneof member)."""
    true, false = _key(number, 0) + b"\x01", (_key(number, 0) + b"\x00" if oneof else b"")
    return lambda value: true if value else false


def int64(number: int) -> Writer:
    """An ``int64`` field (left out when zero)."""
    key = _key(number, 0)
    return lambda value: key + varint(int(value)) if value else b""


def double(number: int) -> Writer:
    """A ``double`` field (left out when zero)."""
    key = _key(number, 1)
    return lambda value: key + struct.pack("<d", float(value)) if value else b""


def message(number: int, encode: Writer) -> Writer:
    """A message field: always written, even when its encoding is empty."""
    key = _key(number, 2)
    return lambda value: _delimited(key, encode(value))


def messages(number: int, encode: Writer) -> Writer:
    """A ``repeated`` message field from a JSON list."""
    key = _key(number, 2)
    return lambda values: b"".join(_delimited(key, encode(v)) for v in values)


def named(number: int, encode: Writer, *, skip_extensions: bool = False) -> Writer:
    """A ``repeated Named*`` field (``name = 1``, ``value = 2``) from a JSON object."""
    key, name, value_field = _key(number, 2), string(1), message(2, encode)
    return lambda mapping: b"".join(_delimited(key, name(k) + value_field(v)) for k, v in mapping.items()
                                    if not (skip_extensions and k.startswith("x-")))


def _any(value: Any) -> bytes:
    """``openapi.v2.Any``: the YAML text in field 2."""
    return _delimited(_FIELD_2, to_yaml(value).encode())


_FIELD_2 = _key(2, 2)


class MessageType:
    """The encoder of one message: ``table`` maps JSON keys to field writers in field order, and
    ``x-*`` keys become ``NamedAny`` vendor extensions at ``extension_field`` (0: none; it is the
    last field of every message that has it). Fields are written in field order whatever the
    key order of the JSON object; a None value is left out."""

    __slots__ = ("_extension_key", "_extension_rank", "_fields")

    def __init__(self, table: Table, extension_field: int = 0) -> None:
        self._fields = MappingProxyType({name: (rank, write) for rank, (name, write) in enumerate(table)})
        self._extension_key = _key(extension_field, 2) if extension_field else b""
        self._extension_rank = len(table)

    def __call__(self, obj: dict[str, Any]) -> bytes:
        parts: list[tuple[int, bytes]] = []
        fields, extension_key = self._fields, self._extension_key
        for name, value in obj.items():
            field = fields.get(name)
            if field is not None:
                if value is not None:
                    parts.append((field[0], field[1](value)))
            elif extension_key and name.startswith("x-"):
                parts.append((self._extension_rank, _delimited(extension_key, _named_any(name, value))))
        if len(parts) > 1:
            parts.sort(key=_rank)
        return b"".join([part for _, part in parts])


def _rank(part: tuple[int, bytes]) -> int:
    return part[0]


def _named_any(name: str, value: Any) -> bytes:
    return _NAME(name) + _delimited(_FIELD_2, _any(value))


_NAME = string(1)


def extensions(number: int) -> Writer:
    """The field ``repeated NamedAny vendor_extension = number``: every ``x-*`` key of a JSON object."""
    key = _key(number, 2)
    return lambda obj: b"".join([_delimited(key, _named_any(k, v)) for k, v in obj.items() if k.startswith("x-")])


_EXTERNAL_DOCS = MessageType((("description", string(1)), ("url", string(2))), 3)


# ---------------------------------------------------------------------------------------------
# Schema (recursive: the tables name ``schema``, which reads _SCHEMA at call time)
# ---------------------------------------------------------------------------------------------
def schema(obj: dict[str, Any]) -> bytes:
    """``openapi.v2.Schema`` of one Swagger 2.0 schema object."""
    return _SCHEMA(obj)


_SCHEMA_LIST = messages(1, schema)
_SCHEMA_ONE = message(1, schema)
_BOOLEAN_ONEOF = boolean(2, oneof=True)


def _items_item(value: Any) -> bytes:
    """``ItemsItem``: ``items`` is one schema or a list of them."""
    return _SCHEMA_LIST(value if isinstance(value, list) else [value])


def _additional_properties(value: Any) -> bytes:
    """``AdditionalPropertiesItem``: oneof a schema (1) or a boolean (2)."""
    return _BOOLEAN_ONEOF(value) if isinstance(value, bool) else _SCHEMA_ONE(value)


_XML = MessageType((("name", string(1)), ("namespace", string(2)), ("prefix", string(3)),
                   ("attribute", boolean(4)), ("wrapped", boolean(5))), 6)
_SCHEMA = MessageType((
    ("$ref", string(1)), ("format", string(2)), ("title", string(3)), ("description", string(4)),
    ("default", message(5, _any)), ("multipleOf", double(6)), ("maximum", double(7)),
    ("exclusiveMaximum", boolean(8)), ("minimum", double(9)), ("exclusiveMinimum", boolean(10)),
    ("maxLength", int64(11)), ("minLength", int64(12)), ("pattern", string(13)), ("maxItems", int64(14)),
    ("minItems", int64(15)), ("uniqueItems", boolean(16)), ("maxProperties", int64(17)),
    ("minProperties", int64(18)), ("required", strings(19)), ("enum", messages(20, _any)),
    ("additionalProperties", message(21, _additional_properties)), ("type", message(22, strings(1))),
    ("items", message(23, _items_item)), ("allOf", messages(24, schema)),
    ("properties", message(25, named(1, schema))), ("discriminator", string(26)), ("readOnly", boolean(27)),
    ("xml", message(28, _XML)), ("externalDocs", message(29, _EXTERNAL_DOCS)), ("example", message(30, _any)),
), 31)
_FILE_SCHEMA = message(2, MessageType((
    ("format", string(1)), ("title", string(2)), ("description", string(3)), ("default", message(4, _any)),
    ("required", strings(5)), ("type", string(6)), ("readOnly", boolean(7)),
    ("externalDocs", message(8, _EXTERNAL_DOCS)), ("example", message(9, _any))), 10))


def _schema_item(obj: dict[str, Any]) -> bytes:
    """``SchemaItem`` of a response: oneof a schema (1) or a file schema (2)."""
    return _FILE_SCHEMA(obj) if obj.get("type") == "file" else _SCHEMA_ONE(obj)


# ---------------------------------------------------------------------------------------------
# parameters, responses, operations, paths
# ---------------------------------------------------------------------------------------------
def _primitives_items(obj: dict[str, Any]) -> bytes:
    return _PRIMITIVES_ITEMS(obj)


def _primitive_fields(first: int) -> Table:
    """The fields that PrimitivesItems, Header and the non-body parameter sub-schemas share, in
    this order, numbered from ``first``."""
    kinds: tuple[tuple[str, Callable[[int], Writer]], ...] = (
        ("type", string), ("format", string), ("items", lambda n: message(n, _primitives_items)),
        ("collectionFormat", string), ("default", lambda n: message(n, _any)), ("maximum", double),
        ("exclusiveMaximum", boolean), ("minimum", double), ("exclusiveMinimum", boolean), ("maxLength", int64),
        ("minLength", int64), ("pattern", string), ("maxItems", int64), ("minItems", int64),
        ("uniqueItems", boolean), ("enum", lambda n: messages(n, _any)), ("multipleOf", double))
    return tuple((name, make(first + offset)) for offset, (name, make) in enumerate(kinds))


_PRIMITIVES = _primitive_fields(1)
_PRIMITIVES_ITEMS = MessageType(_PRIMITIVES, 18)
_HEADER = MessageType((*_PRIMITIVES, ("description", string(18))), 19)
_SUB_SCHEMA_BASE: Table = (("required", boolean(1)), ("in", string(2)), ("description", string(3)),
                           ("name", string(4)))
_SIMPLE_PARAM = MessageType((*_SUB_SCHEMA_BASE, *_primitive_fields(5)), 22)
_EMPTY_VALUE_PARAM = MessageType((*_SUB_SCHEMA_BASE, ("allowEmptyValue", boolean(5)), *_primitive_fields(6)), 23)
# "in" -> NonBodyParameter's oneof member (header 1, formData 2, query 3, path 4) inside Parameter field 2
_NON_BODY: Mapping[str, Writer] = MappingProxyType({
    where: message(2, message(number, encode)) for where, number, encode in (
        ("header", 1, _SIMPLE_PARAM), ("formData", 2, _EMPTY_VALUE_PARAM), ("query", 3, _EMPTY_VALUE_PARAM),
        ("path", 4, _SIMPLE_PARAM))})
_BODY = message(1, MessageType((("description", string(1)), ("name", string(2)), ("in", string(3)),
                               ("required", boolean(4)), ("schema", message(5, schema))), 6))
_JSON_REFERENCE = message(2, MessageType((("$ref", string(1)), ("description", string(2)))))


def _parameter(obj: dict[str, Any]) -> bytes:
    """``Parameter``: oneof a body parameter (1) or a non-body one (2) chosen by ``in``."""
    where = obj.get("in", "query")
    return _BODY(obj) if where == "body" else _NON_BODY.get(where, _NON_BODY["query"])(obj)


_PARAMETER = message(1, _parameter)


def _parameters_item(obj: dict[str, Any]) -> bytes:
    """``ParametersItem``: oneof a parameter (1) or a ``$ref`` (2)."""
    return _JSON_REFERENCE(obj) if "$ref" in obj else _PARAMETER(obj)


_RESPONSE = MessageType((("description", string(1)), ("schema", message(2, _schema_item)),
                        ("headers", message(3, named(1, _HEADER))), ("examples", message(4, named(1, _any)))), 5)
_RESPONSE_FIELD = message(1, _RESPONSE)


def _response_value(obj: dict[str, Any]) -> bytes:
    """``ResponseValue``: oneof a response (1) or a ``$ref`` (2)."""
    return _JSON_REFERENCE(obj) if "$ref" in obj else _RESPONSE_FIELD(obj)


def keyed(number: int, encode: Writer, extension_field: int) -> Writer:
    """A message of ``repeated Named* = number`` for the plain keys of a JSON object plus
    ``vendor_extension = extension_field`` for its ``x-*`` keys (Paths, Responses)."""
    write, vendor = named(number, encode, skip_extensions=True), extensions(extension_field)
    if extension_field < number:
        return lambda obj: vendor(obj) + write(obj)
    return lambda obj: write(obj) + vendor(obj)


_SECURITY_REQUIREMENT = named(1, strings(1))
_OPERATION = MessageType((
    ("tags", strings(1)), ("summary", string(2)), ("description", string(3)),
    ("externalDocs", message(4, _EXTERNAL_DOCS)), ("operationId", string(5)), ("produces", strings(6)),
    ("consumes", strings(7)), ("parameters", messages(8, _parameters_item)),
    ("responses", message(9, keyed(1, _response_value, 2))), ("schemes", strings(10)),
    ("deprecated", boolean(11)), ("security", messages(12, _SECURITY_REQUIREMENT))), 13)
_PATH_ITEM = MessageType((
    ("$ref", string(1)),
    *((method, message(number, _OPERATION))
      for number, method in enumerate(("get", "put", "post", "delete", "options", "head", "patch"), start=2)),
    ("parameters", messages(9, _parameters_item))), 10)


# ---------------------------------------------------------------------------------------------
# security definitions and the document
# ---------------------------------------------------------------------------------------------
def _security_scheme(*names: str) -> Writer:
    """A security scheme message whose fields are ``names`` numbered from 1, then its extensions."""
    def field(name: str, number: int) -> Writer:
        return message(number, named(1, string(2))) if name == "scopes" else string(number)

    return MessageType(tuple((name, field(name, number)) for number, name in enumerate(names, 1)), len(names) + 1)


# SecurityDefinitionsItem oneof: basic 1, apiKey 2, oauth2 implicit 3 / password 4 / application 5 / accessCode 6
_BASIC = message(1, _security_scheme("type", "description"))
_API_KEY = message(2, _security_scheme("type", "name", "in", "description"))
_OAUTH2: Mapping[str, Writer] = MappingProxyType({
    "implicit": message(3, _security_scheme("type", "flow", "scopes", "authorizationUrl", "description")),
    "password": message(4, _security_scheme("type", "flow", "scopes", "tokenUrl", "description")),
    "application": message(5, _security_scheme("type", "flow", "scopes", "tokenUrl", "description")),
    "accessCode": message(6, _security_scheme("type", "flow", "scopes", "authorizationUrl", "tokenUrl",
                                              "description")),
})


def _security_definitions_item(obj: dict[str, Any]) -> bytes:
    kind = obj.get("type")
    if kind == "apiKey":
        return _API_KEY(obj)
    if kind == "oauth2":
        return _OAUTH2.get(obj.get("flow", ""), _OAUTH2["implicit"])(obj)
    return _BASIC(obj)


_INFO = MessageType((
    ("title", string(1)), ("version", string(2)), ("description", string(3)), ("termsOfService", string(4)),
    ("contact", message(5, MessageType((("name", string(1)), ("url", string(2)), ("email", string(3))), 4))),
    ("license", message(6, MessageType((("name", string(1)), ("url", string(2))), 3)))), 7)
_TAG = MessageType((("name", string(1)), ("description", string(2)), ("externalDocs", message(3, _EXTERNAL_DOCS))),
                  4)
_DOCUMENT = MessageType((
    ("swagger", string(1)), ("info", message(2, _INFO)), ("host", string(3)), ("basePath", string(4)),
    ("schemes", strings(5)), ("consumes", strings(6)), ("produces", strings(7)),
    ("paths", message(8, keyed(2, _PATH_ITEM, 1))), ("definitions", message(9, named(1, schema))),
    ("parameters", message(10, named(1, _parameter))), ("responses", message(11, named(1, _RESPONSE))),
    ("security", messages(12, _SECURITY_REQUIREMENT)),
    ("securityDefinitions", message(13, named(1, _security_definitions_item))), ("tags", messages(14, _TAG)),
    ("externalDocs", message(15, _EXTERNAL_DOCS)),
), 16)


def encode_document(doc: dict[str, Any]) -> bytes:
    """The ``openapi.v2.Document`` protobuf encoding of a Swagger 2.0 document (a JSON dict)."""
    return _DOCUMENT(doc)
