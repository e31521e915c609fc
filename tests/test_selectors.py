"""Label and field selectors: kube's grammar, matching and error messages (table-driven)."""

from __future__ import annotations

import pytest

from kapi.selectors import (
    EVERYTHING,
    NOTHING,
    escape_field_value,
    from_label_selector_dict,
    parse_field_selector,
    parse_label_selector,
)

KEY_ERROR = ("name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
             "alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is "
             "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')")
VALUE_ERROR = ("a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and "
               "must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex "
               "used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')")


@pytest.mark.parametrize(("text", "canonical"), [
    ("", ""),
    ("   ", ""),
    ("a=b", "a=b"),
    ("a==b", "a==b"),
    ("a!=b", "a!=b"),
    ("b=1,a=2", "a=2,b=1"),
    ("x in (b,a)", "x in (a,b)"),
    ("x notin (a)", "x notin (a)"),
    ("x", "x"),
    ("!x", "!x"),
    ("  a = b , ! c ", "a=b,!c"),
    ("a in ()", "a in ()"),
    ("a in (,b)", "a in (,b)"),
    ("in in (in,notin)", "in in (in,notin)"),
    ("example.com/key=v", "example.com/key=v"),
    ("a=", "a="),
    ("a>1", "a>1"),
    ("a<2", "a<2"),
])
def test_parse_label_selector_canonical_form(text: str, canonical: str) -> None:
    assert str(parse_label_selector(text)) == canonical


@pytest.mark.parametrize(("text", "message"), [
    ("a b", "unable to parse requirement: found 'b', expected: in, notin, =, ==, !=, gt, lt"),
    ("a=b,", "found '', expected: identifier after ','"),
    ("a=b c", "found 'c', expected: ',' or 'end of string'"),
    ("(a)", "found '(', expected: !, identifier, or 'end of string'"),
    ("a notin x", "unable to parse requirement: found 'x' expected: '('"),
    ("a in (b", "unable to parse requirement: found '', expected: ',' or ')'"),
    ("a=b=c", "found '=', expected: ',' or 'end of string'"),
    ("a@=b", f'unable to parse requirement: <nil>: Invalid value: "a@": {KEY_ERROR}'),
    ("a=b@", f'unable to parse requirement: values[0][a]: Invalid value: "b@": {VALUE_ERROR}'),
    ("a>b", "unable to parse requirement: values[0]: Invalid value: \"b\": for 'Gt', 'Lt' operators, the value must "
            "be an integer"),
    ("!", "unable to parse requirement: found '', expected: identifier"),
])
def test_parse_label_selector_errors(text: str, message: str) -> None:
    with pytest.raises(ValueError) as err:
        parse_label_selector(text)
    assert str(err.value) == message


@pytest.mark.parametrize(("text", "labels", "expected"), [
    ("", {}, True),
    ("a=b", {"a": "b"}, True),
    ("a=b", {"a": "c"}, False),
    ("a=b", {}, False),
    ("a=", {"a": ""}, True),
    ("a=", {}, False),
    ("a!=b", {}, True),
    ("a!=b", {"a": "b"}, False),
    ("a in (x,y)", {"a": "y"}, True),
    ("a in (x,y)", {"a": "z"}, False),
    ("a in (x,y)", {}, False),
    ("a notin (x)", {}, True),
    ("a notin (x)", {"a": "x"}, False),
    ("a", {"a": ""}, True),
    ("a", {"b": ""}, False),
    ("!a", {"b": ""}, True),
    ("!a", {"a": "1"}, False),
    ("a>1", {"a": "2"}, True),
    ("a>1", {"a": "1"}, False),
    ("a>1", {"a": "x"}, False),
    ("a<1", {"a": "-5"}, True),
    ("a<1", {}, False),
    ("a=b,c", {"a": "b", "c": "d"}, True),
    ("a=b,c", {"a": "b"}, False),
])
def test_label_selector_matches(text: str, labels: dict[str, str], expected: bool) -> None:
    assert parse_label_selector(text).matches(labels) is expected


@pytest.mark.parametrize(("selector", "labels", "expected"), [
    (None, {"a": "b"}, False),
    ({}, {"a": "b"}, True),
    ({"matchLabels": {"app": "web"}}, {"app": "web", "x": "y"}, True),
    ({"matchLabels": {"app": "web"}}, {"app": "db"}, False),
    ({"matchExpressions": [{"key": "tier", "operator": "In", "values": ["a", "b"]}]}, {"tier": "b"}, True),
    ({"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["a"]}]}, {"tier": "a"}, False),
    ({"matchExpressions": [{"key": "tier", "operator": "Exists"}]}, {"tier": ""}, True),
    ({"matchExpressions": [{"key": "tier", "operator": "DoesNotExist"}]}, {"tier": ""}, False),
    ({"matchLabels": {"a": "1"}, "matchExpressions": [{"key": "b", "operator": "Exists"}]}, {"a": "1"}, False),
])
def test_from_label_selector_dict(selector: dict | None, labels: dict[str, str], expected: bool) -> None:
    assert from_label_selector_dict(selector).matches(labels) is expected


def test_from_label_selector_dict_errors_and_string() -> None:
    with pytest.raises(ValueError, match='"Bogus" is not a valid label selector operator'):
        from_label_selector_dict({"matchExpressions": [{"key": "a", "operator": "Bogus"}]})
    with pytest.raises(ValueError, match="values set can't be empty"):
        from_label_selector_dict({"matchExpressions": [{"key": "a", "operator": "In", "values": []}]})
    with pytest.raises(ValueError, match='key: Invalid value: "a b"'):
        from_label_selector_dict({"matchLabels": {"a b": "c"}})
    selector = from_label_selector_dict({"matchLabels": {"z": "1", "a": "2"},
                                         "matchExpressions": [{"key": "m", "operator": "In", "values": ["y", "x"]}]})
    assert str(selector) == "a=2,m in (x,y),z=1"
    assert EVERYTHING.empty and not NOTHING.empty and not NOTHING.matches({})


@pytest.mark.parametrize(("text", "fields", "expected"), [
    ("", {}, True),
    ("spec.nodeName=n1", {"spec.nodeName": "n1"}, True),
    ("spec.nodeName==n1", {"spec.nodeName": "n2"}, False),
    ("spec.nodeName=", {"spec.nodeName": ""}, True),
    ("spec.nodeName=", {}, True),
    ("spec.nodeName!=", {"spec.nodeName": "n1"}, True),
    ("status.phase!=Running,spec.nodeName=n1", {"status.phase": "Pending", "spec.nodeName": "n1"}, True),
    ("status.phase!=Running,spec.nodeName=n1", {"status.phase": "Running", "spec.nodeName": "n1"}, False),
    (r"metadata.name=a\,b\=c\\d", {"metadata.name": "a,b=c\\d"}, True),
])
def test_field_selector_matches(text: str, fields: dict[str, str], expected: bool) -> None:
    assert parse_field_selector(text).matches(fields) is expected


@pytest.mark.parametrize(("text", "message"), [
    ("a", "invalid selector: 'a'; can't understand 'a'"),
    ("a=b,c", "invalid selector: 'a=b,c'; can't understand 'c'"),
    (r"a=\x", r"invalid field selector: invalid escape sequence: \x"),
    ("a=b\\", "invalid field selector: invalid escape sequence: \\"),
    ("a==b=c", "invalid field selector: unescaped character in value: 61"),
])
def test_field_selector_errors(text: str, message: str) -> None:
    with pytest.raises(ValueError) as err:
        parse_field_selector(text)
    assert str(err.value) == message


def test_field_selector_helpers() -> None:
    selector = parse_field_selector("spec.nodeName=n1,metadata.name!=x,status.phase==Running")
    assert selector.fields() == frozenset({"spec.nodeName", "metadata.name", "status.phase"})
    assert selector.exact_match("spec.nodeName") == "n1"
    assert selector.exact_match("metadata.name") is None
    assert str(selector) == "metadata.name!=x,spec.nodeName=n1,status.phase=Running"
    assert escape_field_value("a,b=c\\") == "a\\,b\\=c\\\\"
    assert str(parse_field_selector(r"a=x\,y")) == r"a=x\,y"
