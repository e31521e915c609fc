"""Name formats and field-error rendering match k8s.io/apimachinery's messages."""

from __future__ import annotations

import pytest

from kapi.kinds import fielderrors as fe
from kapi.kinds.formats import (
    is_config_map_key,
    is_dns1123_label,
    is_dns1123_subdomain,
    is_label_value,
    is_qualified_name,
    is_valid_port_name,
    regex_error,
)

LABEL_MSG = ("a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start "
             "and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is "
             "'[a-z0-9]([-a-z0-9]*[a-z0-9])?')")


@pytest.mark.parametrize(("value", "errors"), [
    ("ok-name", []),
    ("Bad", [LABEL_MSG]),
    ("a.b", ["must not contain dots"]),
    ("x" * 64, ["must be no more than 63 characters"]),
])
def test_dns1123_label(value: str, errors: list[str]) -> None:
    assert is_dns1123_label(value) == errors


def test_other_formats() -> None:
    assert is_dns1123_subdomain("a.b-c") == []
    assert is_dns1123_subdomain("A")[0].startswith("a lowercase RFC 1123 subdomain")
    assert is_qualified_name("example.com/name") == []
    assert is_qualified_name("/name") == ["prefix part must be non-empty"]
    assert is_qualified_name("a/b/c")[0].startswith("a qualified name must consist of")
    assert is_qualified_name("bad name")[0].startswith("name part must consist of alphanumeric")
    assert is_label_value("") == [] and is_label_value("-x") != []
    assert is_config_map_key("ok.key_1") == []
    assert is_config_map_key("..x") == ["must not start with '..'"]
    assert is_config_map_key("a b")[0].startswith("a valid config key must consist of alphanumeric characters")
    assert is_valid_port_name("http") == [] and is_valid_port_name("80") == ["must contain at least one letter (a-z)"]
    assert regex_error("m", "f") == "m (regex used for validation is 'f')"


def test_field_error_bodies() -> None:
    assert fe.required("spec.x").to_dict() == {"reason": "FieldValueRequired", "message": "spec.x: Required value",
                                               "field": "spec.x"}
    assert fe.invalid("a", "v", "bad").message == 'Invalid value: "v": bad'
    assert fe.invalid("a", 3, "bad").message == "Invalid value: 3: bad"
    assert fe.invalid("a", None, "bad").message == "Invalid value: null: bad"
    assert fe.invalid("a", {"b": "c", "a": "d"}, "x").message == 'Invalid value: map[string]string{"a":"d", "b":"c"}: x'
    assert fe.not_supported("t", "X", ("A", "B")).message == 'Unsupported value: "X": supported values: "A", "B"'
    assert fe.forbidden("f", "no").message == "Forbidden: no"
    assert fe.duplicate("d", "n").message == 'Duplicate value: "n"'
    assert fe.not_found("v", "x").message == 'Not found: "x"'
    assert fe.too_long("", 10).to_dict()["message"] == "Too long: may not be more than 10 bytes"
    assert fe.immutable("spec.selector", fe.GoRepr("X{}")).message == "Invalid value: X{}: field is immutable"
    assert fe.nonnegative("r", -1)[0].message == "Invalid value: -1: must be greater than or equal to 0"
