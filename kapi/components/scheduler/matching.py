"""Pure matching rules shared by filters and scores: node selector terms, taints and tolerations.

* ``node_selector_term_matches`` - ``NodeSelectorTerm``: every ``matchExpressions`` requirement
  on the node's labels and every ``matchFields`` requirement (only ``metadata.name``) holds;
  an empty term matches nothing (as in Kubernetes).
* ``tolerates`` - ``Toleration.ToleratesTaint``: same effect (or the toleration has none), and
  ``Exists`` (an empty key tolerates every key) or ``Equal`` with the same value.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

Obj = dict[str, Any]


def _int(value: str) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def requirement_matches(requirement: Mapping[str, Any], values: Mapping[str, str]) -> bool:
    """One ``NodeSelectorRequirement`` (In, NotIn, Exists, DoesNotExist, Gt, Lt) against ``values``.
    An unknown operator matches nothing."""
    key = str(requirement.get("key") or "")
    op = requirement.get("operator")
    wanted = [str(v) for v in requirement.get("values") or []]
    present = key in values
    if op == "In":
        return present and values[key] in wanted
    if op == "NotIn":
        return not present or values[key] not in wanted
    if op == "Exists":
        return present
    if op == "DoesNotExist":
        return not present
    if op in ("Gt", "Lt") and present and len(wanted) == 1:
        have, bound = _int(values[key]), _int(wanted[0])
        if have is None or bound is None:
            return False
        return have > bound if op == "Gt" else have < bound
    return False


def node_selector_term_matches(term: Mapping[str, Any], labels: Mapping[str, str], node_name: str) -> bool:
    """Whether a ``NodeSelectorTerm`` selects the node (labels and name)."""
    expressions = term.get("matchExpressions") or []
    fields = term.get("matchFields") or []
    if not expressions and not fields:
        return False
    if not all(requirement_matches(r, labels) for r in expressions):
        return False
    return all(r.get("key") == "metadata.name" and requirement_matches(r, {"metadata.name": node_name})
               for r in fields)


def node_selector_matches(selector: Mapping[str, Any] | None, labels: Mapping[str, str], node_name: str) -> bool:
    """A ``NodeSelector``: any of its terms matches (no terms: nothing matches)."""
    terms = (selector or {}).get("nodeSelectorTerms") or []
    return any(node_selector_term_matches(t, labels, node_name) for t in terms)


def tolerates(toleration: Mapping[str, Any], taint: Mapping[str, Any]) -> bool:
    """Whether one toleration tolerates one taint."""
    effect = toleration.get("effect") or ""
    if effect and effect != taint.get("effect"):
        return False
    key = toleration.get("key") or ""
    if key and key != taint.get("key"):
        return False
    operator = toleration.get("operator") or "Equal"
    if operator == "Exists":
        return True
    return operator == "Equal" and (toleration.get("value") or "") == (taint.get("value") or "")


def untolerated_taint(taints: Iterable[Mapping[str, Any]], tolerations: Sequence[Mapping[str, Any]],
                      effects: frozenset[str]) -> Mapping[str, Any] | None:
    """The first taint with one of ``effects`` that no toleration tolerates, or None."""
    for taint in taints:
        if taint.get("effect") in effects and not any(tolerates(t, taint) for t in tolerations):
            return taint
    return None


def describe_taint(taint: Mapping[str, Any]) -> str:
    """``{key: value}`` as the scheduler's message shows a taint."""
    return f"{{{taint.get('key', '')}: {taint.get('value') or ''}}}"
