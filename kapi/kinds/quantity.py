"""Kubernetes resource quantities (``100m``, ``1.5Gi``, ``2e3``) as exact fractions.

``parse_quantity`` accepts what ``resource.ParseQuantity`` accepts (decimal SI suffixes
``n u m "" k M G T P E``, binary suffixes ``Ki Mi Gi Ti Pi Ei``, and ``e``/``E`` exponents) and
raises ``ValueError`` with kube's message otherwise. Values are ``fractions.Fraction`` so sums and
comparisons are exact (QoS classes, requests <= limits, scheduler fit).
"""

from __future__ import annotations

import functools
import re
from fractions import Fraction

QUANTITY_ERROR = "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"

_NUMBER = re.compile(r"^([+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))(.*)$")
_EXPONENT = re.compile(r"^[eE]([+-]?[0-9]+)$")
_SUFFIXES: dict[str, Fraction] = {
    "": Fraction(1), "n": Fraction(1, 10**9), "u": Fraction(1, 10**6), "m": Fraction(1, 1000),
    "k": Fraction(10**3), "M": Fraction(10**6), "G": Fraction(10**9), "T": Fraction(10**12),
    "P": Fraction(10**15), "E": Fraction(10**18),
    "Ki": Fraction(2**10), "Mi": Fraction(2**20), "Gi": Fraction(2**30), "Ti": Fraction(2**40),
    "Pi": Fraction(2**50), "Ei": Fraction(2**60),
}


@functools.lru_cache(maxsize=4096)
def _parse(text: str) -> Fraction:
    match = _NUMBER.match(text.strip())
    if not match:
        raise ValueError(QUANTITY_ERROR)
    number, suffix = match.groups()
    if suffix in _SUFFIXES:
        return Fraction(number) * _SUFFIXES[suffix]
    exp = _EXPONENT.match(suffix)
    if exp:
        return Fraction(number) * Fraction(10) ** int(exp.group(1))
    raise ValueError(QUANTITY_ERROR)


def parse_quantity(value: object) -> Fraction:
    """The exact value of a quantity given as a string or a JSON number."""
    if isinstance(value, bool):
        raise ValueError(QUANTITY_ERROR)
    if isinstance(value, int):
        return Fraction(value)
    if isinstance(value, float):
        return Fraction(str(value))
    if isinstance(value, str):
        return _parse(value)
    raise ValueError(QUANTITY_ERROR)


def is_quantity(value: object) -> bool:
    try:
        parse_quantity(value)
    except ValueError:
        return False
    return True
