"""Merging an applied configuration into a live object, and removing owned paths from an object.

``merge(live, applied, node)`` follows the same schema rules as ``fieldset``: structs and granular
maps merge key by key, map lists merge item by item on their keys (live items keep their place,
new items are appended in applied order), set lists are united, everything else (scalars, atomic
lists and maps) is replaced by the applied value. ``live`` is changed in place and returned; the
applied values are copied in, so ``applied`` stays untouched.

``remove(obj, path, node)`` deletes the value at one path (a map entry or a list item) in place,
and does nothing when the path is not there.
"""

from __future__ import annotations

from typing import Any

from kapi.patch import deep_copy
from kapi.schema import SchemaNode
from kapi.ssa.fieldset import Path, is_atomic_map, item_element, list_kind


def merge(live: Any, applied: Any, node: SchemaNode | None) -> Any:
    """``applied`` merged over ``live`` (see the module docstring)."""
    if isinstance(live, dict) and isinstance(applied, dict) and not is_atomic_map(node):
        for key, value in applied.items():
            child = node.child(key) if node is not None else None
            live[key] = merge(live[key], value, child) if key in live else deep_copy(value)
        return live
    if isinstance(live, list) and isinstance(applied, list):
        kind, keys = list_kind(node)
        if kind == "map":
            items = node.items if node is not None else None
            position = {item_element(item, keys): i for i, item in enumerate(live)}
            for value in applied:
                at = position.get(item_element(value, keys))
                if at is None:
                    live.append(deep_copy(value))
                else:
                    live[at] = merge(live[at], value, items)
            return live
        if kind == "set":
            present = {item_element(item, ()) for item in live}
            live.extend(deep_copy(v) for v in applied if item_element(v, ()) not in present)
            return live
    return deep_copy(applied)


def remove(obj: Any, path: Path, node: SchemaNode | None) -> None:
    """Delete the map entry or list item at ``path`` from ``obj`` (in place; absent paths are ignored)."""
    if not path:
        return
    parent: Any = obj
    for element in path[:-1]:
        parent, node = _step(parent, element, node)
        if parent is None:
            return
    last = path[-1]
    if last.startswith("f:"):
        if isinstance(parent, dict):
            parent.pop(last[2:], None)
        return
    if isinstance(parent, list):
        _kind, keys = list_kind(node)
        parent[:] = [item for item in parent if item_element(item, keys) != last]


def _step(value: Any, element: str, node: SchemaNode | None) -> tuple[Any, SchemaNode | None]:
    if element.startswith("f:"):
        if not isinstance(value, dict):
            return None, None
        key = element[2:]
        return value.get(key), node.child(key) if node is not None else None
    if not isinstance(value, list):
        return None, None
    _kind, keys = list_kind(node)
    items = node.items if node is not None else None
    for item in value:
        if item_element(item, keys) == element:
            return item, items
    return None, None
