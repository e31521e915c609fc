"""labelSelector + fieldSelector query parameters -> one predicate over objects."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kapi import errors, selectors
from kapi.resources import ResourceType

Predicate = Callable[[dict[str, Any]], bool]


def field_values(rt: ResourceType, obj: dict[str, Any]) -> dict[str, str]:
    """All field-selector values of ``obj``: the generic metadata ones plus the kind's own."""
    meta = obj.get("metadata", {})
    values = {"metadata.name": meta.get("name", ""), "metadata.namespace": meta.get("namespace", "")}
    values.update(rt.strategy.field_values(obj))
    return values


def supported_fields(rt: ResourceType) -> frozenset[str]:
    probe = rt.strategy.field_values({})
    return frozenset({"metadata.name", "metadata.namespace", *probe})


def build(rt: ResourceType, label_selector: str, field_selector: str) -> Predicate | None:
    """A predicate for the selectors, or None when both are empty. 400 on a bad selector or a
    field the kind does not support (``field label not supported: X``)."""
    label = None
    field = None
    if label_selector.strip():
        try:
            label = selectors.parse_label_selector(label_selector)
        except ValueError as exc:
            raise errors.bad_request(str(exc)) from None
    if field_selector.strip():
        try:
            field = selectors.parse_field_selector(field_selector)
        except ValueError as exc:
            raise errors.bad_request(str(exc)) from None
        supported = supported_fields(rt)
        for name in field.fields():
            if name not in supported:
                raise errors.bad_request(f'field label not supported: {name}')
    if label is None and field is None:
        return None

    def matches(obj: dict[str, Any]) -> bool:
        if label is not None and not label.matches(obj.get("metadata", {}).get("labels") or {}):
            return False
        return field is None or field.matches(field_values(rt, obj))

    return matches
