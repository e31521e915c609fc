"""Decode Kubernetes protobuf request bodies into the JSON-shaped dicts the JSON path produces.

kubectl and client-go's typed clients send built-in kinds as ``application/vnd.kubernetes.protobuf``
(and do not retry with JSON on 415). kapi answers in JSON but must read such bodies. The wire format:
the 4 bytes ``k8s\\x00``, then a ``runtime.Unknown`` message ``{typeMeta = 1 {apiVersion = 1, kind = 2},
raw = 2, contentEncoding = 3, contentType = 4}`` whose ``raw`` is the object's own message
(``k8s.io.api.core.v1.Namespace`` ...), chosen from ``typeMeta``.

Field numbers, names and types come from ``kapi/data/k8s_proto_fields.json``, generated from the
Kubernetes ``generated.proto`` files by ``kapi.protobuf_gen`` (see its docstring for the table format);
the table is loaded once, on first use.

Mapping to JSON (what Go's ``encoding/json`` would print for the same object):

* strings, bools and integers as such (int64 stays a JSON number); ``bytes`` as standard base64
  (``Secret.data``); repeated fields as lists (packed or not); ``map<K, V>`` as objects; Go structs
  embedded with ``json:",inline"`` merged into the enclosing object.
* Zero scalars (``0``, ``false``, ``""``) are dropped, as ``omitempty`` drops them, because
  gogo-protobuf writes every non-pointer field whether set or not; the server's defaulting then applies
  exactly as for a JSON body that omits them. They are kept for the fields the table marks ``keep``:
  Go pointers whose zero means something (``spec.replicas`` 0, ``terminationGracePeriodSeconds`` 0,
  ``backoffLimit`` 0, ``automountServiceAccountToken`` false, ``storageClassName`` "", ...) and required
  JSON properties (never ``omitempty``). The list is ``kapi.protobuf_gen.POINTER_FIELDS``.
* A message that is present is kept even when empty (``status: {}``, ``emptyDir: {}``), as
  ``encoding/json`` prints struct fields and non-nil pointers to empty structs.
* Special messages: ``meta.v1.Time`` -> RFC 3339 in UTC to the second (empty or zero -> omitted);
  ``MicroTime`` -> the same with 6 fractional digits; ``Duration`` -> Go duration text (``1h0m0s``);
  ``resource.Quantity`` -> its string; ``intstr.IntOrString`` -> int or string;
  ``runtime.RawExtension`` and ``meta.v1.FieldsV1`` -> the embedded JSON, decoded (a RawExtension that
  is itself a ``k8s\\x00`` body is decoded recursively); named-slice wrappers (``Verbs``,
  ``ExtraValue``) -> plain lists.
* Unknown field numbers are skipped (fields newer than the table); a known field with the wrong wire
  type, a truncated varint or length, a group, a missing prefix, an unknown kind, invalid UTF-8 or more
  than ``MAX_DEPTH`` nested messages raise ``ValueError`` with a message fit for a 400/415 Status.
"""

from __future__ import annotations

import base64
import datetime
import functools
import json
import struct
from collections.abc import Iterator, Mapping
from importlib import resources
from types import MappingProxyType
from typing import Any, NamedTuple

import orjson

MEDIA_TYPE = "application/vnd.kubernetes.protobuf"
MAGIC = b"k8s\x00"
MAX_DEPTH = 100

_META = "k8s.io.apimachinery.pkg.apis.meta.v1."
# Kinds of value (small ints: compared in the hot loop).
(K_STRING, K_BYTES, K_INT, K_UINT, K_BOOL, K_SINT, K_FIXED64, K_SFIXED64, K_DOUBLE, K_FIXED32, K_SFIXED32,
 K_FLOAT, K_MESSAGE, K_TIME, K_MICROTIME, K_DURATION, K_QUANTITY, K_INTORSTRING, K_RAW, K_FIELDSV1,
 K_LIST) = range(21)
# How a field's values are stored.
C_ONE, C_REPEATED, C_MAP, C_INLINE = range(4)

_SCALAR_KINDS: Mapping[str, int] = MappingProxyType({
    "string": K_STRING, "bytes": K_BYTES, "int32": K_INT, "int64": K_INT, "uint32": K_UINT, "uint64": K_UINT,
    "bool": K_BOOL, "sint32": K_SINT, "sint64": K_SINT, "fixed64": K_FIXED64, "sfixed64": K_SFIXED64,
    "double": K_DOUBLE, "fixed32": K_FIXED32, "sfixed32": K_SFIXED32, "float": K_FLOAT})
_SPECIAL_KINDS: Mapping[str, int] = MappingProxyType({
    _META + "Time": K_TIME, _META + "MicroTime": K_MICROTIME, _META + "Duration": K_DURATION,
    _META + "FieldsV1": K_FIELDSV1, "k8s.io.apimachinery.pkg.api.resource.Quantity": K_QUANTITY,
    "k8s.io.apimachinery.pkg.util.intstr.IntOrString": K_INTORSTRING,
    "k8s.io.apimachinery.pkg.runtime.RawExtension": K_RAW})
# The wire type each kind is sent with (repeated varint/fixed kinds may also come packed, wire type 2).
_WIRE_TYPES = (2, 2, 0, 0, 0, 0, 1, 1, 1, 5, 5, 5) + (2,) * 9
# API group -> protobuf package segment under k8s.io.api, where it is not the group's first label.
_GROUP_PACKAGES: Mapping[str, str] = MappingProxyType({"": "core", "internal.apiserver.k8s.io": "apiserverinternal"})
_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)
_GO_ZERO_TIME = -62135596800  # 0001-01-01T00:00:00Z, Go's zero time.Time


class Field(NamedTuple):
    """One field of a compiled message. ``sub`` is the ``Message`` of a message or list field, or
    ``(key_kind, value Field)`` for a map; ``keep`` keeps zero scalars (see the module docstring)."""

    name: str
    kind: int
    cardinality: int
    sub: Any
    keep: bool
    wire_type: int


class Message(NamedTuple):
    """A compiled message: its full name and its fields by number."""

    name: str
    fields: Mapping[int, Field]


def is_protobuf(content_type: str) -> bool:
    """True when a ``Content-Type`` header names the Kubernetes protobuf encoding (parameters ignored)."""
    return content_type.split(";", 1)[0].strip().lower() == MEDIA_TYPE


def decode_object(data: bytes) -> dict[str, Any]:
    """Decode a whole protobuf request body into ``{"apiVersion", "kind", **fields}``.

    :raises ValueError: the body is not a valid Kubernetes protobuf envelope for a known kind (the
        message says why; the caller answers 400, or 415 for an unknown kind or content type).
    """
    try:
        return _decode_envelope(data, 0)
    except UnicodeDecodeError as exc:
        raise ValueError(f"invalid protobuf body: a string field is not valid UTF-8 ({exc.reason})") from None
    except RecursionError:
        raise ValueError(f"invalid protobuf body: nested more than {MAX_DEPTH} levels") from None


@functools.cache
def _schema() -> Mapping[str, Message]:
    """The compiled table: message full name -> ``Message`` (loaded once)."""
    text = resources.files("kapi").joinpath("data/k8s_proto_fields.json").read_text(encoding="utf-8")
    table = json.loads(text)
    wrappers = frozenset(table["list_wrappers"])
    fields_of: dict[str, dict[int, Field]] = {name: {} for name in table["messages"]}
    messages = {name: Message(name, MappingProxyType(fields_of[name])) for name in table["messages"]}

    def compile_value(type_name: str) -> tuple[int, Message | None]:
        if type_name in _SCALAR_KINDS:
            return _SCALAR_KINDS[type_name], None
        if type_name in _SPECIAL_KINDS:
            return _SPECIAL_KINDS[type_name], None
        if type_name not in messages:
            raise RuntimeError(f"k8s_proto_fields.json: {type_name} is referenced but not defined")
        return (K_LIST if type_name in wrappers else K_MESSAGE), messages[type_name]

    for name, fields in table["messages"].items():
        for number, (json_name, type_name, cardinality, keep) in fields.items():
            kind, sub = compile_value(type_name)
            if cardinality.startswith("map:"):
                key_kind = _SCALAR_KINDS[cardinality[4:]]
                value = Field("value", kind, C_ONE, sub, True, _WIRE_TYPES[kind])
                fields_of[name][int(number)] = Field(json_name, kind, C_MAP, (key_kind, value), bool(keep), 2)
            else:
                card = {"1": C_ONE, "*": C_REPEATED, "inline": C_INLINE}[cardinality]
                fields_of[name][int(number)] = Field(json_name, kind, card, sub, bool(keep), _WIRE_TYPES[kind])
    return MappingProxyType(messages)


@functools.cache
def message_for(api_version: str, kind: str) -> Message:
    """The message of a kind: ``v1``/``Namespace`` -> ``k8s.io.api.core.v1.Namespace``,
    ``rbac.authorization.k8s.io/v1``/``Role`` -> ``k8s.io.api.rbac.v1.Role``; meta kinds
    (``DeleteOptions``, ``Status``...) under any group or ``meta.k8s.io/v1``.

    :raises ValueError: no protobuf schema is known for that kind.
    """
    group, _, version = api_version.rpartition("/")
    package = _GROUP_PACKAGES.get(group) or group.split(".", 1)[0]
    schema = _schema()
    for candidate in (f"k8s.io.api.{package}.{version}.{kind}", _META + kind):
        if candidate in schema and kind:
            return schema[candidate]
    raise ValueError(f"no protobuf schema for kind {kind!r} in {api_version!r}; send it as JSON")


def _varint(buf: bytes, pos: int, end: int) -> tuple[int, int]:
    """A varint at ``pos`` (general case; the hot loop inlines one-byte values)."""
    result = shift = 0
    while pos < end:
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7
        if shift >= 70:
            raise ValueError("invalid protobuf body: varint longer than 10 bytes")
    raise ValueError("invalid protobuf body: truncated varint")


def _length(buf: bytes, pos: int, end: int) -> tuple[int, int]:
    """Start and stop of a length-delimited value whose length varint is at ``pos``."""
    if pos < end and buf[pos] < 0x80:
        size, pos = buf[pos], pos + 1
    else:
        size, pos = _varint(buf, pos, end)
    stop = pos + size
    if stop > end:
        raise ValueError("invalid protobuf body: truncated length-delimited field")
    return pos, stop


def _skip(buf: bytes, pos: int, end: int, wire_type: int) -> int:
    """Position after an unknown field's value."""
    if wire_type == 0:
        return _varint(buf, pos, end)[1]
    if wire_type == 2:
        return _length(buf, pos, end)[1]
    if wire_type in (1, 5):
        pos += 8 if wire_type == 1 else 4
        if pos > end:
            raise ValueError("invalid protobuf body: truncated fixed-size field")
        return pos
    raise ValueError(f"invalid protobuf body: unsupported wire type {wire_type}")


def _fields(buf: bytes, pos: int, end: int) -> Iterator[tuple[int, int, int, int]]:
    """``(number, wire_type, value_or_start, stop)`` of each field, for the small special messages:
    a varint value comes with ``stop == -1``; a length-delimited one as ``[start, stop)``."""
    while pos < end:
        tag, pos = _varint(buf, pos, end)
        number, wire_type = tag >> 3, tag & 7
        if number == 0:
            raise ValueError("invalid protobuf body: field number 0")
        if wire_type == 0:
            value, pos = _varint(buf, pos, end)
            yield number, 0, value, -1
        elif wire_type == 2:
            start, pos = _length(buf, pos, end)
            yield number, 2, start, pos
        else:
            pos = _skip(buf, pos, end, wire_type)


def _int64(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _timestamp(buf: bytes, pos: int, end: int) -> tuple[int, int]:
    seconds = nanos = 0
    for number, wire_type, value, _stop in _fields(buf, pos, end):
        if wire_type != 0:
            raise ValueError("invalid protobuf body: wrong wire type in a timestamp")
        if number == 1:
            seconds = _int64(value)
        elif number == 2:
            nanos = _int64(value)
    return seconds, nanos


def _format_time(buf: bytes, pos: int, end: int, micro: bool) -> str | None:
    if pos == end:
        return None
    seconds, nanos = _timestamp(buf, pos, end)
    if seconds == _GO_ZERO_TIME and not nanos:
        return None
    try:
        moment = _EPOCH + datetime.timedelta(seconds=seconds, microseconds=nanos // 1000 if micro else 0)
    except OverflowError:
        raise ValueError(f"invalid protobuf body: timestamp {seconds} out of range") from None
    if not 1 <= moment.year <= 9999:
        raise ValueError(f"invalid protobuf body: timestamp {seconds} out of range")
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ" if micro else "%Y-%m-%dT%H:%M:%SZ")


def _fraction(value: int, digits: int) -> str:
    whole, rest = divmod(value, 10 ** digits)
    text = f"{rest:0{digits}d}".rstrip("0")
    return f"{whole}.{text}" if text else str(whole)


def go_duration(nanoseconds: int) -> str:
    """Go's ``time.Duration.String()``: ``0s``, ``1.5s``, ``1h0m0s``, ``250ms``, ``3µs``, ``-2m0s``."""
    if nanoseconds == 0:
        return "0s"
    sign, value = ("-", -nanoseconds) if nanoseconds < 0 else ("", nanoseconds)
    if value < 1_000:
        return f"{sign}{value}ns"
    if value < 1_000_000:
        return f"{sign}{_fraction(value, 3)}µs"
    if value < 1_000_000_000:
        return f"{sign}{_fraction(value, 6)}ms"
    seconds_text = _fraction(value % 60_000_000_000, 9) + "s"
    minutes, hours = value // 60_000_000_000 % 60, value // 3_600_000_000_000
    if hours:
        return f"{sign}{hours}h{minutes}m{seconds_text}"
    if minutes:
        return f"{sign}{minutes}m{seconds_text}"
    return sign + seconds_text


def _special(kind: int, buf: bytes, pos: int, end: int, depth: int) -> Any:
    """The JSON value of a special message (``None`` = omit the field)."""
    if kind in (K_TIME, K_MICROTIME):
        return _format_time(buf, pos, end, kind == K_MICROTIME)
    if kind == K_QUANTITY:
        text = ""
        for number, wire_type, start, stop in _fields(buf, pos, end):
            if number == 1 and wire_type == 2:
                text = buf[start:stop].decode()
        return text or "0"
    if kind == K_INTORSTRING:
        type_, int_val, str_val = 0, 0, ""
        for number, wire_type, value, stop in _fields(buf, pos, end):
            if number == 1 and wire_type == 0:
                type_ = value
            elif number == 2 and wire_type == 0:
                int_val = _int64(value)
            elif number == 3 and wire_type == 2:
                str_val = buf[value:stop].decode()
        if type_ not in (0, 1):
            raise ValueError(f"invalid protobuf body: IntOrString type {type_}")
        return str_val if type_ else int_val
    if kind == K_DURATION:
        nanoseconds = 0
        for number, wire_type, value, _stop in _fields(buf, pos, end):
            if number == 1 and wire_type == 0:
                nanoseconds = _int64(value)
        return go_duration(nanoseconds)
    # K_RAW and K_FIELDSV1: field 1 holds JSON (or, for RawExtension, possibly a nested k8s\x00 body).
    raw = b""
    for number, wire_type, start, stop in _fields(buf, pos, end):
        if number == 1 and wire_type == 2:
            raw = buf[start:stop]
    if not raw:
        return None
    if kind == K_RAW and raw.startswith(MAGIC):
        return _decode_envelope(raw, depth + 1)
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"invalid protobuf body: embedded JSON is malformed ({exc})") from None


def _scalar(kind: int, wire_type: int, value: int, buf: bytes, pos: int, stop: int) -> Any:
    """A scalar from its varint (``value``) or its bytes ``buf[pos:stop]``."""
    if kind == K_STRING:
        return buf[pos:stop].decode()
    if kind == K_BYTES:
        return base64.b64encode(buf[pos:stop]).decode("ascii")
    if kind == K_INT:
        return value - (1 << 64) if value >= 1 << 63 else value
    if kind == K_BOOL:
        return value != 0
    if kind == K_UINT:
        return value
    if kind == K_SINT:
        return (value >> 1) ^ -(value & 1)
    fmt = {K_FIXED64: "<Q", K_SFIXED64: "<q", K_DOUBLE: "<d", K_FIXED32: "<I", K_SFIXED32: "<i", K_FLOAT: "<f"}[kind]
    return struct.unpack_from(fmt, buf, pos)[0]


def _packed(field: Field, buf: bytes, pos: int, stop: int) -> list[Any]:
    """The values of a packed repeated scalar field."""
    values: list[Any] = []
    size = {1: 8, 5: 4}.get(field.wire_type)
    while pos < stop:
        if size is None:
            value, pos = _varint(buf, pos, stop)
            values.append(_scalar(field.kind, 0, value, buf, pos, pos))
        else:
            if pos + size > stop:
                raise ValueError("invalid protobuf body: truncated packed field")
            values.append(_scalar(field.kind, field.wire_type, 0, buf, pos, pos + size))
            pos += size
    return values


def _map_entry(field: Field, buf: bytes, pos: int, end: int, depth: int) -> tuple[Any, Any]:
    key_kind, value_field = field.sub
    key: Any = "" if key_kind == K_STRING else 0
    value: Any = None
    for number, wire_type, start, stop in _fields(buf, pos, end):
        if number == 1:
            key = _scalar(key_kind, wire_type, start, buf, start, stop)
        elif number == 2:
            if wire_type != value_field.wire_type:
                raise ValueError(f"invalid protobuf body: wrong wire type {wire_type} for a value of {field.name}")
            value = _value(value_field, wire_type, start, buf, start, stop, depth)
    if value is None:
        value = {K_STRING: "", K_BYTES: "", K_MESSAGE: {}, K_LIST: []}.get(value_field.kind, 0)
    return key, value


def _value(field: Field, wire_type: int, value: int, buf: bytes, pos: int, stop: int, depth: int) -> Any:
    """The JSON value of one occurrence of a non-map field (``None`` = omit)."""
    kind = field.kind
    if kind == K_MESSAGE:
        return _decode_message(field.sub, buf, pos, stop, depth + 1)
    if kind == K_LIST:
        return [buf[start:end].decode() for number, wire_type, start, end in _fields(buf, pos, stop)
                if number == 1 and wire_type == 2]
    if kind >= K_TIME:
        return _special(kind, buf, pos, stop, depth)
    return _scalar(kind, wire_type, value, buf, pos, stop)


def _decode_message(message: Message, buf: bytes, pos: int, end: int, depth: int) -> dict[str, Any]:
    """The JSON object of ``message`` encoded in ``buf[pos:end]``."""
    if depth > MAX_DEPTH:
        raise ValueError(f"invalid protobuf body: nested more than {MAX_DEPTH} levels")
    fields = message.fields
    out: dict[str, Any] = {}
    while pos < end:
        tag = buf[pos]
        if tag < 0x80:
            pos += 1
        else:
            tag, pos = _varint(buf, pos, end)
        number, wire_type = tag >> 3, tag & 7
        field = fields.get(number)
        if field is None:
            if number == 0:
                raise ValueError("invalid protobuf body: field number 0")
            pos = _skip(buf, pos, end, wire_type)
            continue
        value = 0
        if wire_type == 2:
            if pos < end and buf[pos] < 0x80:
                stop = pos + 1 + buf[pos]
                pos += 1
                if stop > end:
                    raise ValueError("invalid protobuf body: truncated length-delimited field")
            else:
                pos, stop = _length(buf, pos, end)
        elif wire_type == 0:
            if pos < end and buf[pos] < 0x80:
                value, pos = buf[pos], pos + 1
            else:
                value, pos = _varint(buf, pos, end)
            stop = pos
        else:
            stop = _skip(buf, pos, end, wire_type)
        start, pos = pos, stop
        cardinality = field.cardinality
        if wire_type != field.wire_type:
            if cardinality == C_REPEATED and wire_type == 2 and field.wire_type != 2:
                out.setdefault(field.name, []).extend(_packed(field, buf, start, stop))
                continue
            raise ValueError(f"invalid protobuf body: wrong wire type {wire_type} for field {number} "
                             f"({field.name}) of {message.name}")
        if cardinality == C_ONE:
            result = _value(field, wire_type, value, buf, start, stop, depth)
            if result is None:
                continue
            if field.kind == K_MESSAGE and isinstance(previous := out.get(field.name), dict):
                previous.update(result)  # a repeated singular message merges, as in protobuf
            elif result or field.keep or field.kind >= K_MESSAGE:
                out[field.name] = result
            else:
                out.pop(field.name, None)
        elif cardinality == C_REPEATED:
            out.setdefault(field.name, []).append(_value(field, wire_type, value, buf, start, stop, depth))
        elif cardinality == C_MAP:
            key, entry = _map_entry(field, buf, start, stop, depth)
            out.setdefault(field.name, {})[key] = entry
        else:
            out.update(_decode_message(field.sub, buf, start, stop, depth + 1))
    return out


def _decode_envelope(data: bytes, depth: int) -> dict[str, Any]:
    """``k8s\\x00`` + ``runtime.Unknown`` -> the decoded object with ``apiVersion`` and ``kind``."""
    if not data.startswith(MAGIC):
        raise ValueError("invalid protobuf body: it does not start with the Kubernetes prefix 'k8s\\x00'")
    if depth > MAX_DEPTH:
        raise ValueError(f"invalid protobuf body: nested more than {MAX_DEPTH} levels")
    api_version = kind = content_type = ""
    raw = (0, 0)
    for number, wire_type, start, stop in _fields(data, len(MAGIC), len(data)):
        if wire_type != 2:
            raise ValueError(f"invalid protobuf body: wrong wire type {wire_type} in the envelope")
        if number == 1:
            for sub_number, sub_type, sub_start, sub_stop in _fields(data, start, stop):
                if sub_type == 2 and sub_number in (1, 2):
                    text = data[sub_start:sub_stop].decode()
                    api_version, kind = (text, kind) if sub_number == 1 else (api_version, text)
        elif number == 2:
            raw = (start, stop)
        elif number == 3 and stop > start:
            raise ValueError(f"unsupported protobuf content encoding {data[start:stop].decode()!r}")
        elif number == 4:
            content_type = data[start:stop].decode()
    if not kind or not api_version:
        raise ValueError("invalid protobuf body: the envelope names no apiVersion and kind")
    if content_type and not is_protobuf(content_type):
        if content_type.split(";", 1)[0].strip().lower() != "application/json":
            raise ValueError(f"unsupported content type {content_type!r} inside the protobuf envelope")
        obj = orjson.loads(data[raw[0]:raw[1]])
        if not isinstance(obj, dict):
            raise ValueError("invalid protobuf body: the embedded JSON is not an object")
        return {"apiVersion": api_version, "kind": kind, **obj}
    body = _decode_message(message_for(api_version, kind), data, raw[0], raw[1], depth + 1)
    return {"apiVersion": api_version, "kind": kind, **body}
