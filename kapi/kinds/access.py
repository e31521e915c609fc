"""Null-safe access to decoded JSON objects (clients send ``null`` for many optional fields)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def get_path(obj: Any, *path: str) -> Any:
    """``obj[path[0]][path[1]]...``, or None when a step is missing or not a mapping."""
    cur = obj
    for step in path:
        if not isinstance(cur, Mapping):
            return None
        cur = cur.get(step)
    return cur


def as_dict(value: Any) -> dict[str, Any]:
    """``value`` when it is a dict, else an empty dict (for reading, never for writing back)."""
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list[Any]:
    """``value`` when it is a list, else an empty list (for reading)."""
    return value if isinstance(value, list) else []


def child_dict(parent: dict[str, Any], key: str) -> dict[str, Any]:
    """``parent[key]`` as a dict, created (or replacing a null) when absent: for defaulting in place."""
    value = parent.get(key)
    if not isinstance(value, dict):
        value = {}
        parent[key] = value
    return value


def dicts(value: Any) -> list[dict[str, Any]]:
    """The dict items of a list (skipping anything malformed), for walking containers, ports..."""
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []
