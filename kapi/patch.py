"""The three patch types of ``PATCH`` requests: JSON patch, JSON merge patch, strategic merge patch.

Every function returns a new document and never changes its inputs (the result shares nothing
with them). Bad patches raise ``PatchError`` (a ``ValueError``) whose message says what is wrong;
``MalformedPatchError`` marks a patch document that is itself ill-formed. kube-apiserver answers
the first with 422 and the second with 400, and so should the caller (``PatchError.code``).

* ``json_patch`` — RFC 6902 (add, remove, replace, move, copy, test) with RFC 6901 pointers.
* ``merge_patch`` — RFC 7386: objects merge recursively, ``null`` deletes, anything else replaces.
* ``strategic_merge_patch`` — Kubernetes' strategic merge patch, driven by the schema's
  ``x-kubernetes-patch-strategy`` / ``x-kubernetes-patch-merge-key``: lists with strategy ``merge``
  and a merge key merge element by element (containers by ``name``, ports by ``containerPort``),
  lists of scalars with strategy ``merge`` are united, every other list is replaced, maps merge,
  ``null`` deletes. Directives: ``$patch: replace|delete`` (in a map or a list element; ``merge``
  is accepted in a map as the default), ``$retainKeys``, ``$deleteFromPrimitiveList/<field>`` and
  ``$setElementOrder/<field>``. Merged lists are ordered as apimachinery orders them: patch order
  and live order interleaved, ``$setElementOrder`` first. Where apimachinery would store a stray
  directive or a ``null`` inside a newly added value, kapi drops it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import orjson

from kapi.schema import SchemaCatalog, SchemaNode

DIRECTIVE = "$patch"
RETAIN_KEYS = "$retainKeys"
DELETE_FROM_PRIMITIVE_LIST = "$deleteFromPrimitiveList/"
SET_ELEMENT_ORDER = "$setElementOrder/"


class PatchError(ValueError):
    """A patch that cannot be applied to this document (HTTP 422)."""

    code = 422


class MalformedPatchError(PatchError):
    """A patch document that is not well-formed (HTTP 400)."""

    code = 400


# ---------------------------------------------------------------------------------------------
# JSON helpers
# ---------------------------------------------------------------------------------------------
def deep_copy(value: Any) -> Any:
    """A copy of a JSON value that shares no dict or list with the original.

    An orjson round trip is about 3x faster than walking the value in Python; values orjson cannot
    encode (integers beyond 64 bits, non-string keys) take the slow path."""
    if isinstance(value, (dict, list)):
        try:
            return orjson.loads(orjson.dumps(value))
        except (TypeError, orjson.JSONEncodeError):
            return _walk_copy(value)
    return value


def _walk_copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _walk_copy(v) if isinstance(v, (dict, list)) else v for k, v in value.items()}
    if isinstance(value, list):
        return [_walk_copy(v) if isinstance(v, (dict, list)) else v for v in value]
    return value


def json_equal(a: Any, b: Any) -> bool:
    """JSON equality: numbers compare by value, but booleans are never numbers."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(json_equal(v, b[k]) for k, v in a.items())
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, (int, float)):
        return isinstance(b, (int, float)) and a == b
    return type(a) is type(b) and a == b


# ---------------------------------------------------------------------------------------------
# RFC 6902 JSON patch
# ---------------------------------------------------------------------------------------------
def _pointer(ptr: Any, what: str) -> list[str]:
    if not isinstance(ptr, str):
        raise MalformedPatchError(f'"{what}" must be a JSON pointer string, not {ptr!r}')
    if ptr == "":
        return []
    if not ptr.startswith("/"):
        raise MalformedPatchError(f'JSON pointer "{ptr}" must be empty or start with "/"')
    return [token.replace("~1", "/").replace("~0", "~") for token in ptr[1:].split("/")]


def _index(token: str, size: int, ptr: str, *, allow_end: bool) -> int:
    if token == "-" and allow_end:
        return size
    if not token.isdigit() or (len(token) > 1 and token[0] == "0"):
        raise PatchError(f'path "{ptr}": "{token}" is not a valid array index')
    index = int(token)
    if index > size or (index == size and not allow_end):
        raise PatchError(f'path "{ptr}": index {index} is out of range for an array of length {size}')
    return index


def _walk(doc: Any, tokens: list[str], ptr: str) -> Any:
    """The value at ``tokens`` (PatchError when any step is missing)."""
    node = doc
    for depth, token in enumerate(tokens):
        if isinstance(node, dict):
            if token not in node:
                raise PatchError(f'path "{ptr}" does not exist: no key "{token}" at "/{"/".join(tokens[:depth])}"')
            node = node[token]
        elif isinstance(node, list):
            node = node[_index(token, len(node), ptr, allow_end=False)]
        else:
            raise PatchError(f'path "{ptr}" does not exist: "/{"/".join(tokens[:depth])}" is not an object or array')
    return node


def _add(doc: Any, tokens: list[str], value: Any, ptr: str) -> Any:
    if not tokens:
        return value
    parent = _walk(doc, tokens[:-1], ptr)
    last = tokens[-1]
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        parent.insert(_index(last, len(parent), ptr, allow_end=True), value)
    else:
        raise PatchError(f'path "{ptr}": the parent is not an object or array')
    return doc


def _remove(doc: Any, tokens: list[str], ptr: str) -> Any:
    if not tokens:
        raise PatchError("cannot remove the whole document")
    parent = _walk(doc, tokens[:-1], ptr)
    last = tokens[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise PatchError(f'path "{ptr}" does not exist: cannot remove a missing key')
        return parent.pop(last)
    if isinstance(parent, list):
        return parent.pop(_index(last, len(parent), ptr, allow_end=False))
    raise PatchError(f'path "{ptr}": the parent is not an object or array')


def json_patch(doc: Any, ops: Any) -> Any:
    """Apply an RFC 6902 patch (a list of operations) and return the new document.

    ``MalformedPatchError`` when the patch is not a list of well-formed operations; ``PatchError``
    when an operation cannot apply (missing path, bad index, failed ``test``)."""
    if not isinstance(ops, list):
        raise MalformedPatchError("a JSON patch must be a JSON array of operations")
    result = deep_copy(doc)
    for number, op in enumerate(ops):
        if not isinstance(op, Mapping):
            raise MalformedPatchError(f"operation {number} is not a JSON object")
        kind = op.get("op")
        tokens = _pointer(op.get("path"), "path")
        ptr = str(op.get("path"))
        if kind in ("add", "replace", "test") and "value" not in op:
            raise MalformedPatchError(f'operation {number} ("{kind}") has no "value"')
        if kind == "add":
            result = _add(result, tokens, deep_copy(op["value"]), ptr)
        elif kind == "remove":
            _remove(result, tokens, ptr)
        elif kind == "replace":
            if tokens:
                _walk(result, tokens, ptr)
                _remove(result, tokens, ptr)
            result = _add(result, tokens, deep_copy(op["value"]), ptr)
        elif kind in ("move", "copy"):
            from_tokens = _pointer(op.get("from"), "from")
            source = str(op.get("from"))
            if kind == "move":
                if tokens[: len(from_tokens)] == from_tokens and len(tokens) > len(from_tokens):
                    raise PatchError(f'cannot move "{source}" into its own child "{ptr}"')
                value = _remove(result, from_tokens, source) if from_tokens else result
            else:
                value = deep_copy(_walk(result, from_tokens, source))
            result = _add(result, tokens, value, ptr)
        elif kind == "test":
            if not json_equal(_walk(result, tokens, ptr), op["value"]):
                raise PatchError(f'test failed: the value at "{ptr}" is not {op["value"]!r}')
        else:
            raise MalformedPatchError(f"operation {number} has an unknown op {kind!r}")
    return result


# ---------------------------------------------------------------------------------------------
# RFC 7386 merge patch
# ---------------------------------------------------------------------------------------------
def _merge_into(target: dict[str, Any], patch: Mapping[str, Any]) -> None:
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, Mapping):
            current = target.get(key)
            if not isinstance(current, dict):
                current = target[key] = {}
            _merge_into(current, value)
        else:
            target[key] = deep_copy(value)


def merge_patch(doc: Any, patch: Any) -> Any:
    """Apply an RFC 7386 JSON merge patch and return the new document."""
    if not isinstance(patch, Mapping):
        return deep_copy(patch)
    result = deep_copy(doc) if isinstance(doc, dict) else {}
    _merge_into(result, patch)
    return result


# ---------------------------------------------------------------------------------------------
# strategic merge patch
# ---------------------------------------------------------------------------------------------
_DROP = object()  # what a value that deletes itself ({"$patch": "delete"}) produces


def strategic_merge_patch(catalog: SchemaCatalog, group: str, version: str, kind: str, doc: Any,
                          patch: Any) -> dict[str, Any]:
    """Apply a strategic merge patch to an object of (group, version, kind).

    A kind the catalog does not know is patched without schema (maps merge, lists are replaced);
    kube-apiserver refuses strategic merge patches for custom resources (415), which is the
    caller's decision."""
    return strategic_merge(catalog.node_for(group, version, kind), doc, patch)


def strategic_merge(node: SchemaNode | None, doc: Any, patch: Any) -> dict[str, Any]:
    """Apply a strategic merge patch using ``node`` (the object's resolved schema, or None)."""
    if not isinstance(patch, Mapping):
        raise MalformedPatchError("a strategic merge patch must be a JSON object")
    original = deep_copy(doc) if isinstance(doc, dict) else {}
    merged = _merge_map(original, patch, node)
    return {} if merged is _DROP else merged


def _child(node: SchemaNode | None, key: str) -> SchemaNode | None:
    return node.child(key) if node is not None else None


def _fresh(value: Any, node: SchemaNode | None) -> Any:
    """What a patch value becomes where there is nothing to merge it into."""
    if isinstance(value, Mapping):
        if value.get(DIRECTIVE) == "delete":
            return _DROP
        return _merge_map({}, value, node)
    if isinstance(value, list):
        return _merge_list([], value, node)
    return value


def _merge_map(original: dict[str, Any], patch: Mapping[str, Any], node: SchemaNode | None) -> Any:
    """Merge ``patch`` into ``original`` (owned by the caller and changed in place)."""
    directive = patch.get(DIRECTIVE)
    if directive is not None:
        if directive == "delete":
            return {}
        if directive == "replace":
            return _merge_map({}, {k: v for k, v in patch.items() if k != DIRECTIVE}, node)
        if directive != "merge":
            raise MalformedPatchError(f"unknown patch type: {directive} in map: {dict(patch)}")
    if RETAIN_KEYS in patch:
        _retain_keys(original, patch)
    ordered = _apply_element_orders(original, patch, node)
    for key, value in patch.items():
        if key in ordered or key in (DIRECTIVE, RETAIN_KEYS) or key.startswith(SET_ELEMENT_ORDER):
            continue
        if key.startswith(DELETE_FROM_PRIMITIVE_LIST):
            _delete_from_primitive_list(original, key, value)
            continue
        if value is None:
            original.pop(key, None)
            continue
        child = _child(node, key)
        current = original.get(key)
        if isinstance(value, Mapping) and isinstance(current, dict):
            replace = child is not None and child.has_strategy("replace")
            result = _fresh(value, child) if replace else _merge_map(current, value, child)
        elif isinstance(value, list) and isinstance(current, list):
            result = _merge_list(current, value, child)
        else:
            result = _fresh(value, child)
        if result is _DROP:
            original.pop(key, None)
        else:
            original[key] = result
    return original


def _retain_keys(original: dict[str, Any], patch: Mapping[str, Any]) -> None:
    retain = patch[RETAIN_KEYS]
    if not isinstance(retain, list) or not all(isinstance(k, str) for k in retain):
        raise MalformedPatchError("invalid patch format of retainKeys")
    keep = set(retain)
    for key, value in patch.items():
        if value is None or key.startswith("$"):
            continue
        if key not in keep:
            raise PatchError(f'patch content doesn\'t match retainKeys list: "{key}" is not in {retain}')
    for key in [k for k in original if k not in keep]:
        del original[key]


def _delete_from_primitive_list(original: dict[str, Any], key: str, values: Any) -> None:
    field = key[len(DELETE_FROM_PRIMITIVE_LIST):]
    if not field or not isinstance(values, list):
        raise MalformedPatchError("invalid patch format of primitive list")
    current = original.get(field)
    if isinstance(current, list):
        original[field] = [item for item in current if not any(json_equal(item, gone) for gone in values)]


# -- lists ------------------------------------------------------------------------------------
def _key_function(merge_key: str) -> Callable[[Any], Any]:
    if merge_key:
        return lambda item: item.get(merge_key) if isinstance(item, Mapping) else None
    return lambda item: item


def _position(items: list[Any], key: Callable[[Any], Any]) -> Callable[[Any], int]:
    """index-of by key (-1 when absent), as apimachinery's ``index``."""
    keys = [key(item) for item in items]

    def find(item: Any) -> int:
        wanted = key(item)
        for i, candidate in enumerate(keys):
            if json_equal(candidate, wanted):
                return i
        return -1

    return find


def _ordered(items: list[Any], order: list[Any], key: Callable[[Any], Any]) -> list[Any]:
    where = _position(order, key)
    return sorted(items, key=lambda item: (where(item) < 0, where(item)))


def _interleave(server_only: list[Any], patch_items: list[Any], server_order: list[Any],
                key: Callable[[Any], Any]) -> list[Any]:
    """apimachinery's ``mergeSortedSlice``: patch items win ties; server-only items stay in live order."""
    where = _position(server_order, key)
    out: list[Any] = []
    i = j = 0
    while i < len(server_only) or j < len(patch_items):
        if j >= len(patch_items):
            out.append(server_only[i])
            i += 1
        elif i >= len(server_only):
            out.append(patch_items[j])
            j += 1
        else:
            left, right = where(server_only[i]), where(patch_items[j])
            if left >= 0 and right >= 0 and left < right:
                out.append(server_only[i])
                i += 1
            else:
                out.append(patch_items[j])
                j += 1
    return out


def _normalize(merged: list[Any], patch_order: list[Any], server_order: list[Any],
               key: Callable[[Any], Any]) -> list[Any]:
    in_patch = _position(patch_order, key)
    patch_items = [item for item in merged if in_patch(item) >= 0]
    server_only = [item for item in merged if in_patch(item) < 0]
    return _interleave(_ordered(server_only, server_order, key), _ordered(patch_items, patch_order, key),
                       server_order, key)


def _check_elements(*lists: list[Any]) -> bool:
    """True when the elements are objects, False when scalars; PatchError when mixed or nested lists."""
    seen: type | None = None
    for items in lists:
        for item in items:
            if isinstance(item, list):
                raise PatchError("lists of lists are not supported")
            kind = dict if isinstance(item, Mapping) else object
            if seen is not None and kind is not seen:
                raise PatchError("list element types are not identical")
            seen = kind
    return seen is dict


def _merge_list(original: list[Any], patch: list[Any], node: SchemaNode | None) -> list[Any]:
    item_node = node.items if node is not None else None
    if node is None or not node.has_strategy("merge"):
        fresh = (_fresh(item, item_node) for item in patch)
        return [item for item in fresh if item is not _DROP]
    if not _check_elements(original, patch):
        return _merge_scalars(original, patch)
    merge_key = node.merge_key
    if not merge_key:
        raise PatchError("cannot merge lists of objects without a merge key")
    key = _key_function(merge_key)
    plain: list[Mapping[str, Any]] = []
    replace = False
    for item in patch:
        directive = item.get(DIRECTIVE)
        if directive is None:
            plain.append(item)
        elif directive == "delete":
            if merge_key not in item:
                raise PatchError(f"map: {dict(item)} does not contain declared merge key: {merge_key}")
            original = [o for o in original if not json_equal(key(o), item[merge_key])]
        elif directive == "replace":
            replace = True
        elif directive == "merge":
            raise PatchError("merging lists cannot yet be specified in the patch")
        else:
            raise MalformedPatchError(f"unknown patch type: {directive} in map: {dict(item)}")
    if replace:
        fresh = (_fresh(item, item_node) for item in plain)
        return [item for item in fresh if item is not _DROP]
    merged = list(original)
    where = _position(merged, key)
    for item in plain:
        if merge_key not in item:
            raise PatchError(f"map: {dict(item)} does not contain declared merge key: {merge_key}")
        index = where(item)
        if index >= 0:
            merged[index] = _merge_map(merged[index], item, item_node)
        else:
            value = _fresh(item, item_node)
            if value is not _DROP:
                merged.append(value)
    return _normalize(merged, plain, original, key)


def _merge_scalars(original: list[Any], patch: list[Any]) -> list[Any]:
    merged: list[Any] = []
    for item in [*original, *patch]:
        if not any(json_equal(item, seen) for seen in merged):
            merged.append(item)
    return _normalize(merged, patch, original, _key_function(""))


def _apply_element_orders(original: dict[str, Any], patch: Mapping[str, Any], node: SchemaNode | None) -> set[str]:
    """Handle every ``$setElementOrder/<field>``; returns the fields it finished."""
    done: set[str] = set()
    for directive, order in patch.items():
        if not directive.startswith(SET_ELEMENT_ORDER):
            continue
        field = directive[len(SET_ELEMENT_ORDER):]
        if not field or not isinstance(order, list):
            raise MalformedPatchError("invalid patch format of setElementOrder list")
        child = _child(node, field)
        merge_key = child.merge_key if child is not None else ""
        current, value = original.get(field), patch.get(field)
        if current is not None and not isinstance(current, list):
            raise PatchError(f'"{field}" is not a list, so $setElementOrder cannot order it')
        if value is not None and not isinstance(value, list):
            raise MalformedPatchError(f'"{field}" must be a list where $setElementOrder/{field} is given')
        key = _key_function(merge_key)
        _check_order(value or [], order, key, merge_key)
        if current is None and value is None:
            continue
        if value is None:
            merged = current or []
        elif current is None:
            merged = _merge_list([], value, child)
        else:
            merged = _merge_list(current, value, child)
        original[field] = _normalize(merged, order, current or [], key)
        done.add(field)
    return done


def _check_order(patch_list: list[Any], order: list[Any], key: Callable[[Any], Any], merge_key: str) -> None:
    """Items of the patch list (deletions aside) must appear in ``order``, in the same order."""
    if merge_key and any(not isinstance(item, Mapping) or merge_key not in item for item in order):
        raise PatchError(f"$setElementOrder items must be objects holding the merge key {merge_key}")
    wanted = [item for item in patch_list if not (isinstance(item, Mapping) and DIRECTIVE in item)]
    at = 0
    for item in wanted:
        while at < len(order) and not json_equal(key(order[at]), key(item)):
            at += 1
        if at >= len(order):
            raise PatchError(f"the order in patch list {patch_list} doesn't match $setElementOrder list {order}")
        at += 1
