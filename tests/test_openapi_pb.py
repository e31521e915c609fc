"""kapi.openapi_pb: the gnostic ``openapi.v2.Document`` protobuf of /openapi/v2, read back with a tiny
generic protobuf reader and compared with the JSON document (kubectl itself runs in tests/e2e)."""

from __future__ import annotations

import struct
from typing import Any

import orjson
import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from kapi.kinds import builtin_resources
from kapi.openapi import OpenAPI
from kapi.openapi_pb import V2_PROTOBUF, encode_document, schema, to_yaml, varint, wants_v2_protobuf
from kapi.schema import load_catalog
from tests.conftest import client_for, make_app

PB_AT = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"


# ---------------------------------------------------------------------------------------------
# a generic protobuf reader: bytes -> [(field, wire type, value)]
# ---------------------------------------------------------------------------------------------
def read_varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return result, pos


def fields(data: bytes) -> list[tuple[int, int, Any]]:
    """Every field of a message in wire order; length-delimited values stay bytes."""
    out: list[tuple[int, int, Any]] = []
    pos = 0
    while pos < len(data):
        key, pos = read_varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = read_varint(data, pos)
        elif wire == 1:
            value, pos = struct.unpack_from("<d", data, pos)[0], pos + 8
        elif wire == 2:
            size, pos = read_varint(data, pos)
            value, pos = data[pos:pos + size], pos + size
        else:
            raise AssertionError(f"unexpected wire type {wire}")
        out.append((number, wire, value))
    assert pos == len(data)
    return out


def by_number(data: bytes) -> dict[int, list[Any]]:
    out: dict[int, list[Any]] = {}
    for number, _, value in fields(data):
        out.setdefault(number, []).append(value)
    return out


def named(data: bytes, number: int = 1) -> dict[str, bytes]:
    """A ``repeated Named* = number`` field as an ordered dict name -> value bytes."""
    out = {}
    for entry in by_number(data).get(number, []):
        pair = by_number(entry)
        out[pair[1][0].decode()] = pair.get(2, [b""])[0]
    return out


def any_value(data: bytes) -> Any:
    return yaml.safe_load(by_number(data)[2][0].decode())


def decode_schema(data: bytes) -> dict[str, Any]:
    """openapi.v2.Schema -> JSON, for the fields the Kubernetes definitions use."""
    f = by_number(data)
    out: dict[str, Any] = {}
    strings = {1: "$ref", 2: "format", 4: "description"}
    for number, name in strings.items():
        if number in f:
            out[name] = f[number][0].decode()
    if 19 in f:
        out["required"] = [v.decode() for v in f[19]]
    if 21 in f:
        item = by_number(f[21][0])
        out["additionalProperties"] = decode_schema(item[1][0]) if 1 in item else bool(item[2][0])
    if 22 in f:
        types = [v.decode() for v in by_number(f[22][0])[1]]
        out["type"] = types[0] if len(types) == 1 else types
    if 23 in f:
        (items,) = by_number(f[23][0])[1]
        out["items"] = decode_schema(items)
    if 25 in f:
        out["properties"] = {k: decode_schema(v) for k, v in named(f[25][0]).items()}
    out.update({k: any_value(v) for k, v in named(data, 31).items()})
    return out


# ---------------------------------------------------------------------------------------------
# the built-in document
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def openapi() -> OpenAPI:
    return OpenAPI(load_catalog(), builtin_resources())


@pytest.fixture(scope="module")
def doc(openapi: OpenAPI) -> dict[str, Any]:
    return orjson.loads(openapi.v2())


@pytest.fixture(scope="module")
def document(openapi: OpenAPI) -> dict[int, list[Any]]:
    return by_number(openapi.v2_protobuf())


def test_document_header(document: dict[int, list[Any]], doc: dict[str, Any]) -> None:
    assert document[1] == [b"2.0"]
    info = by_number(document[2][0])
    assert info[1][0].decode() == doc["info"]["title"]
    assert info[2][0].decode() == doc["info"]["version"]
    (security,) = document[12]
    assert {k: [s.decode() for s in by_number(v).get(1, [])] for k, v in named(security).items()} == {
        "BearerToken": []}
    api_key = by_number(named(document[13][0])["BearerToken"])[2][0]  # SecurityDefinitionsItem.api_key_security
    assert [v[0].decode() for v in by_number(api_key).values()] == ["apiKey", "authorization", "header",
                                                                    "Bearer Token authentication"]


def test_every_definition_round_trips(document: dict[int, list[Any]], doc: dict[str, Any]) -> None:
    definitions = named(document[9][0])
    assert list(definitions) == list(doc["definitions"])
    for name, data in definitions.items():
        assert decode_schema(data) == doc["definitions"][name], name


def test_group_version_kind_extension(document: dict[int, list[Any]]) -> None:
    """kube-openapi maps a GVK to its definition through this YAML text: a list of maps."""
    definitions = named(document[9][0])
    extensions = named(definitions["io.k8s.api.apps.v1.Deployment"], 31)
    text = by_number(extensions["x-kubernetes-group-version-kind"])[2][0].decode()
    assert text == "- group: apps\n  kind: Deployment\n  version: v1\n"
    core = named(definitions["io.k8s.api.core.v1.ConfigMap"], 31)
    assert any_value(core["x-kubernetes-group-version-kind"]) == [{"group": "", "kind": "ConfigMap",
                                                                   "version": "v1"}]


def test_paths(document: dict[int, list[Any]], doc: dict[str, Any]) -> None:
    paths = named(document[8][0], 2)
    assert list(paths) == list(doc["paths"])
    url = "/api/v1/namespaces/{namespace}/configmaps/{name}"
    item, expected = by_number(paths[url]), doc["paths"][url]
    assert len(item[9]) == len(expected["parameters"])  # path-level parameters
    patch = by_number(item[8][0])
    assert patch[5][0].decode() == expected["patch"]["operationId"]
    assert [v.decode() for v in patch[7]] == expected["patch"]["consumes"]
    body, *query = (by_number(p)[1][0] for p in patch[8])  # ParametersItem.parameter
    assert by_number(by_number(body)[1][0])[2] == [b"body"]  # Parameter.body_parameter.name
    first_query = by_number(by_number(by_number(query[0])[2][0])[3][0])  # non_body -> query sub-schema
    assert first_query[4][0].decode() == expected["patch"]["parameters"][1]["name"]
    responses = named(patch[9][0])
    assert list(responses) == list(expected["patch"]["responses"])
    ok = by_number(by_number(responses["200"])[1][0])  # ResponseValue.response
    assert decode_schema(by_number(ok[2][0])[1][0]) == expected["patch"]["responses"]["200"]["schema"]
    ext = {k: any_value(v) for k, v in named(item[8][0], 13).items()}
    assert ext == {k: v for k, v in expected["patch"].items() if k.startswith("x-")}


def test_cached_once(openapi: OpenAPI) -> None:
    assert openapi.v2_protobuf() is openapi.v2_protobuf()


# ---------------------------------------------------------------------------------------------
# encoding details
# ---------------------------------------------------------------------------------------------
def test_varint() -> None:
    assert varint(0) == b"\x00"
    assert varint(1) == b"\x01"
    assert varint(300) == b"\xac\x02"
    assert varint(-1) == b"\xff" * 9 + b"\x01"


def test_schema_scalars_and_oneofs() -> None:
    data = schema({"type": ["string", "null"], "maxLength": 3, "minimum": 1.5, "maximum": 0, "uniqueItems": False,
                   "additionalProperties": False, "enum": ["a", 1], "default": "a", "nullable": True,
                   "x-kubernetes-int-or-string": True})
    f = by_number(data)
    assert [v.decode() for v in by_number(f[22][0])[1]] == ["string", "null"]
    assert f[11] == [3]
    assert f[9] == [1.5]
    assert 7 not in f and 16 not in f  # proto3: zero values are left out
    assert fields(f[21][0]) == [(2, 0, 0)]  # additionalProperties: false is written (oneof member)
    assert [any_value(v) for v in f[20]] == ["a", 1]
    assert any_value(f[5][0]) == "a"
    assert {k: any_value(v) for k, v in named(data, 31).items()} == {"x-kubernetes-int-or-string": True}
    assert [number for number, _, _ in fields(data)] == sorted(number for number, _, _ in fields(data))


def test_schema_items_list_and_empty_messages() -> None:
    f = by_number(schema({"items": [{"type": "string"}, {}], "additionalProperties": {}}))
    assert [decode_schema(s) for s in by_number(f[23][0])[1]] == [{"type": "string"}, {}]
    assert fields(f[21][0]) == [(1, 2, b"")]  # an empty schema is still present


def test_document_minimal_parameters_and_refs() -> None:
    data = encode_document({"swagger": "2.0", "paths": {"x-top": 1, "/p": {
        "parameters": [{"$ref": "#/parameters/a"}, {"name": "n", "in": "path", "required": True, "type": "string"},
                       {"name": "h", "in": "header", "type": "integer", "format": "int32"}],
        "get": {"responses": {"default": {"$ref": "#/responses/r"}, "x-r": "y"}}}},
        "parameters": {"a": {"name": "a", "in": "formData", "type": "file", "allowEmptyValue": True}},
        "x-doc": {"k": [1]}})
    f = by_number(data)
    paths = by_number(f[8][0])
    assert any_value(by_number(paths[1][0])[2][0]) == 1  # Paths.vendor_extension
    item = by_number(by_number(paths[2][0])[2][0])
    ref, path_param, header = (by_number(p) for p in item[9])
    assert by_number(ref[2][0])[1] == [b"#/parameters/a"]
    assert by_number(by_number(by_number(path_param[1][0])[2][0])[4][0])[1] == [1]  # path sub-schema required
    header_sub = by_number(by_number(by_number(header[1][0])[2][0])[1][0])
    assert header_sub[5] == [b"integer"] and header_sub[6] == [b"int32"]
    responses = by_number(item[2][0])[9][0]  # PathItem.get -> Operation.responses
    default = by_number(named(responses)["default"])  # ResponseValue
    assert by_number(default[2][0])[1] == [b"#/responses/r"]
    assert any_value(by_number(by_number(responses)[2][0])[2][0]) == "y"
    form = by_number(by_number(by_number(named(f[10][0])["a"])[2][0])[2][0])
    assert form[5] == [1] and form[6] == [b"file"]
    assert any_value(by_number(f[16][0])[2][0]) == {"k": [1]}


# ---------------------------------------------------------------------------------------------
# YAML text and content negotiation
# ---------------------------------------------------------------------------------------------
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-2**63, 2**63 - 1) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12)


@given(JSON_VALUES)
def test_yaml_round_trips(value: Any) -> None:
    assert yaml.safe_load(to_yaml(value)) == value


def test_yaml_style() -> None:
    assert to_yaml("merge") == "merge\n"
    assert to_yaml(["name", "protocol"]) == "- name\n- protocol\n"
    assert to_yaml({"a": {"b": [1, "yes"]}, "c": []}) == 'a:\n  b:\n  - 1\n  - "yes"\nc: []\n'


@pytest.mark.parametrize(("accept", "expected"), [
    (PB_AT, True),
    (V2_PROTOBUF, True),
    (f"{PB_AT}, application/json", True),
    (f"application/json, {PB_AT}", False),
    (f"application/json;q=0.5, {PB_AT}", True),
    (f"{PB_AT};q=0, application/json", False),
    ("", False),
    ("*/*", False),
    ("application/yaml", False),
])
def test_wants_v2_protobuf(accept: str, expected: bool) -> None:
    assert wants_v2_protobuf(accept) is expected


async def test_route_serves_protobuf_and_json() -> None:
    app = make_app()
    await app.startup()
    try:
        async with client_for(app) as client:
            pb = await client.get("/openapi/v2", headers={"accept": PB_AT})
            assert pb.status_code == 200
            assert pb.headers["content-type"] == V2_PROTOBUF
            assert by_number(pb.content)[1] == [b"2.0"]
            plain = await client.get("/openapi/v2", headers={"accept": "application/json"})
            assert plain.headers["content-type"].startswith("application/json")
            assert orjson.loads(plain.content)["swagger"] == "2.0"
            refused = await client.get("/openapi/v2", headers={"accept": "application/yaml"})
            assert refused.status_code == 406
    finally:
        await app.shutdown()
