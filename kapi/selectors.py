"""Label and field selectors, parsed and matched as k8s.io/apimachinery's ``labels`` and ``fields``.

Label selectors (``?labelSelector=``)::

    sel = parse_label_selector("app=web,tier in (a,b),!canary")
    sel.matches({"app": "web", "tier": "a"})      # True

The grammar and error messages are kube's (``labels.Parse``): ``k=v``, ``k==v``, ``k!=v``,
``k in (a,b)``, ``k notin (a)``, ``k``, ``!k``, ``k>1``, ``k<1``; keys must be qualified names and
values valid label values. A bad selector raises ``ValueError`` whose text is kube's message
(``found 'x', expected: ...``, ``unable to parse requirement: ...``): the caller answers 400 with
it unchanged. ``from_label_selector_dict`` turns a ``metav1.LabelSelector`` (matchLabels +
matchExpressions) into the same type; ``None`` selects nothing, ``{}`` selects everything.

Field selectors (``?fieldSelector=``): comma-separated ``f=v``, ``f==v``, ``f!=v``, with ``\\``
escaping of ``\\ , =`` in values (``fields.ParseSelector``). ``FieldSelector.fields()`` names
the fields used, so the caller can reject unsupported ones (``field label not supported: X``).

Both selector types are immutable and compile to plain closures once, so ``matches`` is cheap.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from kapi.kinds.fielderrors import go_quote
from kapi.kinds.formats import is_label_value, is_qualified_name

Labels = Mapping[str, str]
Matcher = Callable[[Labels], bool]

# selection.Operator values
EQUALS = "="
DOUBLE_EQUALS = "=="
NOT_EQUALS = "!="
IN = "in"
NOT_IN = "notin"
EXISTS = "exists"
DOES_NOT_EXIST = "!"
GREATER_THAN = "gt"
LESS_THAN = "lt"

_BINARY_OPERATORS = "in, notin, =, ==, !=, gt, lt"
_INT64 = re.compile(r"^[+-]?[0-9]+$")
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


def _parse_int64(text: str) -> int | None:
    """Go's ``strconv.ParseInt(text, 10, 64)``, None on error."""
    if not _INT64.match(text):
        return None
    value = int(text)
    return value if _INT64_MIN <= value <= _INT64_MAX else None


# ---------------------------------------------------------------------------------------------
# requirements and label selectors


def _compile(key: str, op: str, values: tuple[str, ...]) -> Matcher:
    if op in (EQUALS, DOUBLE_EQUALS):
        want = values[0]
        return lambda labels: labels.get(key) == want
    if op == NOT_EQUALS:
        unwanted = values[0]
        return lambda labels: labels.get(key) != unwanted
    if op == IN:
        allowed = frozenset(values)
        return lambda labels: labels.get(key) in allowed
    if op == NOT_IN:
        excluded = frozenset(values)
        return lambda labels: labels.get(key) not in excluded
    if op == EXISTS:
        return lambda labels: key in labels
    if op == DOES_NOT_EXIST:
        return lambda labels: key not in labels
    bound = _parse_int64(values[0]) if len(values) == 1 else None
    greater = op == GREATER_THAN

    def compare(labels: Labels) -> bool:
        raw = labels.get(key)
        if raw is None or bound is None:
            return False
        value = _parse_int64(raw)
        if value is None:
            return False
        return value > bound if greater else value < bound

    return compare


@dataclass(frozen=True, slots=True)
class Requirement:
    """One term of a label selector (``labels.Requirement``). ``values`` are sorted."""

    key: str
    operator: str
    values: tuple[str, ...] = ()
    _match: Matcher = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_match", _compile(self.key, self.operator, self.values))

    def matches(self, labels: Labels) -> bool:
        return self._match(labels)

    def __str__(self) -> str:
        op = self.operator
        if op == EXISTS:
            return self.key
        if op == DOES_NOT_EXIST:
            return f"!{self.key}"
        joined = ",".join(self.values)
        if op in (IN, NOT_IN):
            return f"{self.key} {op} ({joined})"
        symbol = {GREATER_THAN: ">", LESS_THAN: "<"}.get(op, op)
        return f"{self.key}{symbol}{joined}"


def _aggregate(messages: list[str]) -> str:
    """``utilerrors.NewAggregate(...).Error()``: one message, or ``[a, b]`` (duplicates dropped)."""
    unique = list(dict.fromkeys(messages))
    return unique[0] if len(unique) == 1 else "[" + ", ".join(unique) + "]"


def new_requirement(key: str, operator: str, values: Iterable[str], path: str = "") -> Requirement:
    """``labels.NewRequirement``: validate and build a requirement; ``ValueError`` with kube's text.

    ``path`` prefixes field paths in messages (kube passes none: paths start at ``key``/``values``).
    """
    vals = tuple(sorted(set(values)))
    errs: list[str] = []
    prefix = f"{path}." if path else ""
    key_msgs = is_qualified_name(key)
    if key_msgs:
        errs.append(f"{prefix}key: Invalid value: {go_quote(key)}: {'; '.join(key_msgs)}")
    values_path = f"{prefix}values"
    if operator in (IN, NOT_IN):
        if not vals:
            errs.append(f"{values_path}: Invalid value: []string{{}}: for 'in', 'notin' operators, values set can't "
                        "be empty")
    elif operator in (EQUALS, DOUBLE_EQUALS, NOT_EQUALS):
        if len(vals) != 1:
            errs.append(f"{values_path}: Invalid value: {_slice(vals)}: exact-match compatibility requires one "
                        "single value")
    elif operator in (EXISTS, DOES_NOT_EXIST):
        if vals:
            errs.append(f"{values_path}: Invalid value: {_slice(vals)}: values set must be empty for exists and "
                        "does not exist")
    elif operator in (GREATER_THAN, LESS_THAN):
        if len(vals) != 1:
            errs.append(f"{values_path}: Invalid value: {_slice(vals)}: for 'Gt', 'Lt' operators, exactly one "
                        "value is required")
        errs.extend(f"{values_path}[{i}]: Invalid value: {go_quote(v)}: for 'Gt', 'Lt' operators, the value must be an "
                    "integer" for i, v in enumerate(vals) if _parse_int64(v) is None)
    else:
        errs.append(f'{prefix}operator: Unsupported value: {go_quote(operator)}: supported values: "in", "notin", "=", '
                    '"==", "!=", "exists", "!", "gt", "lt"')
    for i, v in enumerate(vals):
        msgs = is_label_value(v)
        if msgs:
            errs.append(f"{values_path}[{i}][{key}]: Invalid value: {go_quote(v)}: {'; '.join(msgs)}")
    if errs:
        raise ValueError(_aggregate(errs))
    return Requirement(key, operator, vals)


def _slice(values: tuple[str, ...]) -> str:
    return "[]string{" + ", ".join(go_quote(v) for v in values) + "}"


@dataclass(frozen=True, slots=True)
class LabelSelector:
    """A parsed label selector: the AND of ``requirements`` (sorted by key).

    No requirements selects everything, unless ``nothing`` is set (a nil ``metav1.LabelSelector``),
    which selects nothing.
    """

    requirements: tuple[Requirement, ...] = ()
    nothing: bool = False
    _matchers: tuple[Matcher, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_matchers", tuple(r._match for r in self.requirements))

    @property
    def empty(self) -> bool:
        """True when the selector matches every set of labels."""
        return not self.requirements and not self.nothing

    def matches(self, labels: Labels | None) -> bool:
        """Whether ``labels`` satisfy every requirement."""
        if self.nothing:
            return False
        labels = labels or {}
        for match in self._matchers:  # noqa: SIM110 - a plain loop beats all(<genexpr>) on this hot path
            if not match(labels):
                return False
        return True

    def __str__(self) -> str:
        """``Selector.String()``: ``a=b,c in (x,y)``; empty for everything and nothing."""
        return ",".join(str(r) for r in self.requirements)


EVERYTHING = LabelSelector()
NOTHING = LabelSelector(nothing=True)


# ---------------------------------------------------------------------------------------------
# the label selector lexer and parser (labels/selector.go)

_ERROR, _EOS, _CLOSED_PAR, _COMMA, _DOES_NOT_EXIST, _DOUBLE_EQUALS, _EQUALS, _GREATER = range(8)
_IDENT, _IN, _LESS, _NOT_EQUALS, _NOT_IN, _OPEN_PAR = range(8, 14)

_STRING_TO_TOKEN = {")": _CLOSED_PAR, ",": _COMMA, "!": _DOES_NOT_EXIST, "==": _DOUBLE_EQUALS, "=": _EQUALS,
                    ">": _GREATER, "in": _IN, "<": _LESS, "!=": _NOT_EQUALS, "notin": _NOT_IN, "(": _OPEN_PAR}
_SPECIAL = frozenset("=!(),><")
_WHITESPACE = frozenset(" \t\r\n")
_VALUES, _KEY_AND_OPERATOR = 0, 1

Token = tuple[int, str]


def _lex(text: str) -> list[Token]:
    """All tokens of ``text``, ending with the end-of-string token."""
    tokens: list[Token] = []
    pos, end = 0, len(text)
    while True:
        while pos < end and text[pos] in _WHITESPACE:
            pos += 1
        if pos >= end or text[pos] == "\0":
            tokens.append((_EOS, ""))
            return tokens
        if text[pos] in _SPECIAL:
            buffer, last = "", None
            while pos < end and text[pos] in _SPECIAL:
                candidate = buffer + text[pos]
                if candidate in _STRING_TO_TOKEN:
                    buffer, last = candidate, (_STRING_TO_TOKEN[candidate], candidate)
                    pos += 1
                elif last is not None:
                    break
                else:
                    buffer = candidate
                    pos += 1
            tokens.append(last if last is not None else (_ERROR, f"error expected: keyword found '{buffer}'"))
            continue
        start = pos
        while pos < end and text[pos] not in _SPECIAL and text[pos] not in _WHITESPACE and text[pos] != "\0":
            pos += 1
        word = text[start:pos]
        tokens.append((_STRING_TO_TOKEN.get(word, _IDENT) if word in ("in", "notin") else _IDENT, word))


class _Parser:
    """Recursive-descent parser over the token list, as ``labels.Parser``."""

    def __init__(self, text: str) -> None:
        self.tokens = _lex(text)
        self.pos = 0

    def _at(self, pos: int, context: int) -> Token:
        tok, lit = self.tokens[min(pos, len(self.tokens) - 1)]
        if context == _VALUES and tok in (_IN, _NOT_IN):
            tok = _IDENT
        return tok, lit

    def lookahead(self, context: int) -> Token:
        return self._at(self.pos, context)

    def consume(self, context: int) -> Token:
        self.pos += 1
        return self._at(self.pos - 1, context)

    def parse(self) -> list[Requirement]:
        requirements: list[Requirement] = []
        while True:
            tok, lit = self.lookahead(_VALUES)
            if tok in (_IDENT, _DOES_NOT_EXIST):
                try:
                    requirements.append(self.requirement())
                except ValueError as exc:
                    raise ValueError(f"unable to parse requirement: {exc}") from None
                tok, lit = self.consume(_VALUES)
                if tok == _EOS:
                    return requirements
                if tok != _COMMA:
                    raise ValueError(f"found '{lit}', expected: ',' or 'end of string'")
                tok2, lit2 = self.lookahead(_VALUES)
                if tok2 not in (_IDENT, _DOES_NOT_EXIST):
                    raise ValueError(f"found '{lit2}', expected: identifier after ','")
            elif tok == _EOS:
                return requirements
            else:
                raise ValueError(f"found '{lit}', expected: !, identifier, or 'end of string'")

    def requirement(self) -> Requirement:
        key, operator = self.key_and_inferred_operator()
        if operator in (EXISTS, DOES_NOT_EXIST):
            return new_requirement(key, operator, ())
        operator = self.operator()
        values = self.values() if operator in (IN, NOT_IN) else self.exact_value()
        return new_requirement(key, operator, values)

    def key_and_inferred_operator(self) -> tuple[str, str]:
        operator = ""
        tok, lit = self.consume(_VALUES)
        if tok == _DOES_NOT_EXIST:
            operator = DOES_NOT_EXIST
            tok, lit = self.consume(_VALUES)
        if tok != _IDENT:
            raise ValueError(f"found '{lit}', expected: identifier")
        msgs = is_qualified_name(lit)
        if msgs:
            raise ValueError(f"<nil>: Invalid value: {go_quote(lit)}: {'; '.join(msgs)}")
        nxt, _ = self.lookahead(_VALUES)
        if nxt in (_EOS, _COMMA) and operator != DOES_NOT_EXIST:
            operator = EXISTS
        return lit, operator

    def operator(self) -> str:
        tok, lit = self.consume(_KEY_AND_OPERATOR)
        ops = {_IN: IN, _EQUALS: EQUALS, _DOUBLE_EQUALS: DOUBLE_EQUALS, _GREATER: GREATER_THAN, _LESS: LESS_THAN,
               _NOT_IN: NOT_IN, _NOT_EQUALS: NOT_EQUALS}
        if tok not in ops:
            raise ValueError(f"found '{lit}', expected: {_BINARY_OPERATORS}")
        return ops[tok]

    def values(self) -> set[str]:
        tok, lit = self.consume(_VALUES)
        if tok != _OPEN_PAR:
            raise ValueError(f"found '{lit}' expected: '('")
        tok, lit = self.lookahead(_VALUES)
        if tok in (_IDENT, _COMMA):
            values = self.identifiers()
            if self.consume(_VALUES)[0] != _CLOSED_PAR:
                raise ValueError(f"found '{lit}', expected: ')'")
            return values
        if tok == _CLOSED_PAR:
            self.consume(_VALUES)
            return {""}
        raise ValueError(f"found '{lit}', expected: ',', ')' or identifier")

    def identifiers(self) -> set[str]:
        values: set[str] = set()
        while True:
            tok, lit = self.consume(_VALUES)
            if tok == _IDENT:
                values.add(lit)
                tok2, lit2 = self.lookahead(_VALUES)
                if tok2 == _COMMA:
                    continue
                if tok2 == _CLOSED_PAR:
                    return values
                raise ValueError(f"found '{lit2}', expected: ',' or ')'")
            if tok == _COMMA:
                if not values:
                    values.add("")
                tok2, _ = self.lookahead(_VALUES)
                if tok2 == _CLOSED_PAR:
                    values.add("")
                    return values
                if tok2 == _COMMA:
                    self.consume(_VALUES)
                    values.add("")
                continue
            raise ValueError(f"found '{lit}', expected: ',', or identifier")

    def exact_value(self) -> set[str]:
        tok, _ = self.lookahead(_VALUES)
        if tok in (_EOS, _COMMA):
            return {""}
        tok, lit = self.consume(_VALUES)
        if tok == _IDENT:
            return {lit}
        raise ValueError(f"found '{lit}', expected: identifier")


def parse_label_selector(text: str) -> LabelSelector:
    """Parse a ``labelSelector`` string (``labels.Parse``). Empty selects everything.

    :raises ValueError: with kube's message for a malformed selector or an invalid key/value.
    """
    if not text.strip():
        return EVERYTHING
    requirements = _Parser(text).parse()
    return LabelSelector(tuple(sorted(requirements, key=lambda r: r.key)))


_EXPRESSION_OPERATORS = {"In": IN, "NotIn": NOT_IN, "Exists": EXISTS, "DoesNotExist": DOES_NOT_EXIST}


def from_label_selector_dict(selector: Mapping[str, Any] | None) -> LabelSelector:
    """``metav1.LabelSelectorAsSelector``: None selects nothing, no terms selects everything.

    :raises ValueError: for an unknown operator (``"X" is not a valid label selector operator``) or
        an invalid key or value.
    """
    if selector is None:
        return NOTHING
    match_labels = selector.get("matchLabels") or {}
    expressions = selector.get("matchExpressions") or []
    if not match_labels and not expressions:
        return EVERYTHING
    requirements = [new_requirement(str(k), EQUALS, (str(v),)) for k, v in match_labels.items()]
    for expr in expressions:
        op = _EXPRESSION_OPERATORS.get(expr.get("operator", ""))
        if op is None:
            raise ValueError(f'"{expr.get("operator", "")}" is not a valid label selector operator')
        requirements.append(new_requirement(str(expr.get("key", "")), op, [str(v) for v in expr.get("values") or []]))
    return LabelSelector(tuple(sorted(requirements, key=lambda r: r.key)))


# ---------------------------------------------------------------------------------------------
# field selectors (fields/selector.go)

_TERM_OPERATORS = ("!=", "==", "=")


@dataclass(frozen=True, slots=True)
class FieldRequirement:
    """One term of a field selector: ``field`` ``operator`` (``=``, ``==`` or ``!=``) ``value``."""

    field: str
    operator: str
    value: str

    def __str__(self) -> str:
        op = "!=" if self.operator == "!=" else "="
        return f"{self.field}{op}{escape_field_value(self.value)}"


@dataclass(frozen=True, slots=True)
class FieldSelector:
    """A parsed field selector: the AND of ``requirements`` (sorted as kube sorts the terms)."""

    requirements: tuple[FieldRequirement, ...] = ()
    _terms: tuple[tuple[str, bool, str], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_terms", tuple((r.field, r.operator != "!=", r.value) for r in self.requirements))

    @property
    def empty(self) -> bool:
        return not self.requirements

    def fields(self) -> frozenset[str]:
        """The field names the selector uses."""
        return frozenset(r.field for r in self.requirements)

    def exact_match(self, name: str) -> str | None:
        """The value ``name`` must equal, when the selector requires one (``metadata.name=x``)."""
        for r in self.requirements:
            if r.field == name and r.operator != "!=":
                return r.value
        return None

    def matches(self, fields: Mapping[str, str]) -> bool:
        """Whether the object's field values satisfy every term (a missing field counts as "")."""
        for name, equal, value in self._terms:  # noqa: SIM110 - hot path, see LabelSelector.matches
            if (fields.get(name, "") == value) is not equal:
                return False
        return True

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.requirements)


def _split_terms(text: str) -> list[str]:
    terms, start, in_slash = [], 0, False
    for i, ch in enumerate(text):
        if in_slash:
            in_slash = False
        elif ch == "\\":
            in_slash = True
        elif ch == ",":
            terms.append(text[start:i])
            start = i + 1
    terms.append(text[start:])
    return terms


def _split_term(term: str) -> tuple[str, str, str] | None:
    for i in range(len(term)):
        for op in _TERM_OPERATORS:
            if term.startswith(op, i):
                return term[:i], op, term[i + len(op):]
    return None


def unescape_field_value(text: str) -> str:
    """``fields.UnescapeValue``: undo ``\\\\``, ``\\,``, ``\\=``; reject bare ``,``/``=`` and bad escapes."""
    if not any(ch in text for ch in "\\,="):
        return text
    out: list[str] = []
    in_slash = False
    for ch in text:
        if in_slash:
            if ch not in "\\,=":
                raise ValueError(f"invalid field selector: invalid escape sequence: \\{ch}")
            out.append(ch)
            in_slash = False
        elif ch == "\\":
            in_slash = True
        elif ch in ",=":
            raise ValueError(f"invalid field selector: unescaped character in value: {ord(ch)}")
        else:
            out.append(ch)
    if in_slash:
        raise ValueError("invalid field selector: invalid escape sequence: \\")
    return "".join(out)


def escape_field_value(text: str) -> str:
    """``fields.EscapeValue``: the inverse of ``unescape_field_value``."""
    return text.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=")


def parse_field_selector(text: str) -> FieldSelector:
    """Parse a ``fieldSelector`` string (``fields.ParseSelector``). Empty selects everything.

    :raises ValueError: ``invalid selector: 'S'; can't understand 'T'`` or an escaping error.
    """
    requirements = []
    for part in sorted(_split_terms(text)) if text else ():
        if not part:
            continue
        split = _split_term(part)
        if split is None:
            raise ValueError(f"invalid selector: '{text}'; can't understand '{part}'")
        lhs, op, rhs = split
        requirements.append(FieldRequirement(lhs, op, unescape_field_value(rhs)))
    return FieldSelector(tuple(requirements))
