"""Field sets: which fields of an object a manager owns, as structured-merge-diff computes them.

A *path* is a tuple of path elements written as in ``FieldsV1``: ``"f:name"`` (a field or map key),
``"k:{...}"`` (an item of an associative list, by its key fields as compact JSON with sorted keys),
``"v:..."`` (an item of a set list, as JSON). A field set is held either as the ``FieldsV1`` *trie*
itself (nested dicts; an empty dict is a member leaf, ``"."`` marks a member that has children) —
the fast form for every write — or as a Python ``set`` of paths (``decode``/``encode``), which apply
uses for intersections and printing.

How the schema shapes sets (the kube rules, from ``x-kubernetes-*`` extensions on ``SchemaNode``):

* lists: ``x-kubernetes-list-type: map`` (items by ``x-kubernetes-list-map-keys``), ``set`` (items
  by value) or ``atomic`` (owned whole). Without a list type, a ``merge`` patch strategy with a
  merge key makes a map list, without a key a set; anything else is atomic.
* maps: structs and maps merge field by field unless ``x-kubernetes-map-type: atomic``.
* no schema (unknown or preserve-unknown-fields): maps are granular, lists atomic.

``field_trie`` lists an object's leaves, items and map entries (kube's ``ToFieldSet``); ``diff``
compares two objects and returns the tries of paths changed (added or modified) and removed (kube's
``Compare``); ``union``/``subtract`` combine tries copy-on-write. ``path_string`` prints a path as
kube prints it in conflicts (``.spec.containers[name="app"].image``).
"""

from __future__ import annotations

from typing import Any

import orjson

from kapi.schema import SchemaNode

Path = tuple[str, ...]
FieldSet = set[Path]
Trie = dict[str, Any]

#: list-map key fields that kube defaults when an item omits them (containerPort lists key on protocol)
KEY_DEFAULTS: dict[str, Any] = {"protocol": "TCP"}

#: metadata fields never owned by anyone
STRIPPED_META = frozenset({"name", "namespace", "uid", "resourceVersion", "generation", "creationTimestamp",
                           "selfLink", "managedFields", "deletionTimestamp", "deletionGracePeriodSeconds"})
_NO_PROPS: dict[str, SchemaNode] = {}


def list_kind(node: SchemaNode | None) -> tuple[str, tuple[str, ...]]:
    """``("map", keys)``, ``("set", ())`` or ``("atomic", ())`` for a list schema."""
    if node is None:
        return "atomic", ()
    declared = node.list_type
    if declared == "map":
        keys = node.list_map_keys or ((node.merge_key,) if node.merge_key else ())
        return ("map", keys) if keys else ("atomic", ())
    if declared in ("set", "atomic"):
        return declared, ()
    if node.has_strategy("merge"):
        return ("map", (node.merge_key,)) if node.merge_key else ("set", ())
    return "atomic", ()


def is_atomic_map(node: SchemaNode | None) -> bool:
    return node is not None and node.map_type == "atomic"


def item_element(item: Any, keys: tuple[str, ...]) -> str:
    """The path element of a list item: ``k:`` by its key fields, else ``v:`` by its value."""
    if keys and isinstance(item, dict):
        key = {f: item[f] if f in item else KEY_DEFAULTS[f] for f in sorted(keys) if f in item or f in KEY_DEFAULTS}
        if key:
            return "k:" + orjson.dumps(key).decode()
    return "v:" + orjson.dumps(item, option=orjson.OPT_SORT_KEYS).decode()


def ownable(obj: dict[str, Any], *, subresource: str = "", ignore_status: bool = False) -> dict[str, Any]:
    """The part of an object that can be owned: without apiVersion, kind and server metadata.

    For the status subresource only ``status``; with ``ignore_status`` (main resource of a kind with
    a status subresource) without ``status``. Shallow: shares values with ``obj``."""
    if subresource == "status":
        return {"status": obj["status"]} if "status" in obj else {}
    out = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind") and not (ignore_status and k == "status")}
    meta = out.get("metadata")
    if isinstance(meta, dict):
        kept = {k: v for k, v in meta.items() if k not in STRIPPED_META}
        if kept:
            out["metadata"] = kept
        else:
            del out["metadata"]
    return out


def field_trie(value: Any, node: SchemaNode | None) -> Trie:
    """The owned paths of a whole object, as a ``FieldsV1`` trie (kube's ``ToFieldSet``)."""
    trie: Trie = {}
    _fill(value, node, trie)
    return trie


def field_set(value: Any, node: SchemaNode | None) -> FieldSet:
    """The owned paths of a whole object, as a set."""
    return decode(field_trie(value, node))


def _put(trie: Trie, element: str, sub: Trie, member: bool) -> None:
    if sub:
        if member:
            sub["."] = {}
        trie[element] = sub
    elif member:
        trie[element] = sub


def _fill(value: Any, node: SchemaNode | None, trie: Trie) -> bool:
    """Add the paths below ``value`` to ``trie`` (the trie node of value's own path); True when the
    value is itself a leaf (scalar, atomic list or map), so its path is a member."""
    if isinstance(value, dict):
        if is_atomic_map(node):
            return True
        declared = node.properties if node is not None else _NO_PROPS
        for key, child in value.items():
            if not isinstance(child, (dict, list)):  # the common case: a scalar leaf
                trie["f:" + key] = {}
                continue
            sub: Trie = {}
            leaf = _fill(child, declared.get(key) or (node.additional if node is not None else None), sub)
            _put(trie, "f:" + key, sub, leaf or key not in declared or (isinstance(child, dict) and not child))
        return False
    if isinstance(value, list):
        kind, keys = list_kind(node)
        if kind == "atomic":
            return True
        items = node.items if node is not None else None
        for item in value:
            sub = {}
            if kind == "map":
                _fill(item, items, sub)
            _put(trie, item_element(item, keys), sub, True)
        return False
    return True


def _added_member(value: Any, node: SchemaNode | None, declared: bool, leaf: bool) -> bool:
    """Whether a newly present value's own path is a member: leaves, map entries, empty or null
    values, and maps that are not structs (``metadata.labels`` gets ``"."``)."""
    return leaf or not declared or value is None or (isinstance(value, dict) and (not value or (
        node is not None and not node.is_struct)))


def diff(old: Any, new: Any, node: SchemaNode | None) -> tuple[Trie, Trie]:
    """``(changed, removed)`` tries: paths added or modified from ``old`` to ``new``, and paths removed
    (kube's ``Compare``). Equal subtrees are skipped with one C-level comparison, so the cost follows
    the size of the change, not of the object."""
    changed: Trie = {}
    removed: Trie = {}
    if old != new:
        _diff(old, new, node, changed, removed)
    return changed, removed


def _gone(value: Any, node: SchemaNode | None, element: str, removed: Trie) -> None:
    sub: Trie = {}
    _fill(value, node, sub)
    _put(removed, element, sub, True)


def _diff(old: Any, new: Any, node: SchemaNode | None, changed: Trie, removed: Trie) -> bool:
    """Add the changes below this path; True when the value at this path is itself modified."""
    if isinstance(old, dict) and isinstance(new, dict) and not is_atomic_map(node):
        declared = node.properties if node is not None else _NO_PROPS
        for key, value in new.items():
            child = node.child(key) if node is not None else None
            if key not in old:
                sub: Trie = {}
                leaf = _fill(value, child, sub)
                _put(changed, "f:" + key, sub, _added_member(value, child, key in declared, leaf))
            elif old[key] != value:
                sub = {}
                gone: Trie = {}
                leaf = _diff(old[key], value, child, sub, gone)
                _put(changed, "f:" + key, sub, leaf)
                _put(removed, "f:" + key, gone, False)
        for key, value in old.items():
            if key not in new:
                _gone(value, node.child(key) if node is not None else None, "f:" + key, removed)
        return False
    if isinstance(old, list) and isinstance(new, list):
        kind, keys = list_kind(node)
        if kind != "atomic":
            items = node.items if node is not None and kind == "map" else None
            before = {item_element(item, keys): item for item in old}
            after = {item_element(item, keys): item for item in new}
            for element, item in after.items():
                if element not in before:
                    sub = {}
                    if kind == "map":
                        _fill(item, items, sub)
                    _put(changed, element, sub, True)
                elif kind == "map" and before[element] != item:
                    sub, gone = {}, {}
                    _diff(before[element], item, items, sub, gone)
                    _put(changed, element, sub, False)
                    _put(removed, element, gone, False)
            for element, item in before.items():
                if element not in after:
                    _gone(item if kind == "map" else None, items, element, removed)
            return False
    return True


# ---------------------------------------------------------------------------------------------
# trie algebra (copy on write: results share untouched subtrees with the inputs)


def _is_member(sub: Trie) -> bool:
    return not sub or "." in sub


def union(a: Trie, b: Trie) -> Trie:
    """The paths in ``a`` or ``b``."""
    if not b:
        return a
    out = dict(a)
    for element, bsub in b.items():
        asub = out.get(element)
        if asub is None or element == ".":
            out[element] = bsub
            continue
        merged = union(asub, bsub)
        if merged and (_is_member(asub) or _is_member(bsub)) and "." not in merged:
            merged = {".": {}, **merged}
        out[element] = merged
    return out


def subtract(a: Trie, b: Trie) -> Trie:
    """The paths in ``a`` and not in ``b`` (``a`` itself when nothing is taken away)."""
    out: Trie | None = None
    for element, bsub in b.items():
        asub = a.get(element)
        if asub is None or element == ".":
            continue
        rest = subtract(asub, bsub) if bsub else asub
        member = _is_member(asub) and not _is_member(bsub)
        has_children = any(k != "." for k in rest)
        result: Trie | None
        if has_children:
            result = rest if ("." in rest) == member else (
                {".": {}, **rest} if member else {k: v for k, v in rest.items() if k != "."})
        else:
            result = {} if member else None
        if result is not asub:
            if out is None:
                out = dict(a)
            if result is None:
                del out[element]
            else:
                out[element] = result
    return a if out is None else out


# ---------------------------------------------------------------------------------------------
# FieldsV1 and printing


def encode(paths: FieldSet) -> dict[str, Any]:
    """The ``FieldsV1`` trie of a set; a member that also has children gets a ``"."`` entry first."""
    root: dict[str, Any] = {}
    members: set[int] = set()
    for path in sorted(paths):
        trie = root
        for element in path:
            child = trie.get(element)
            if child is None:
                if not trie and id(trie) in members:
                    trie["."] = {}
                child = trie[element] = {}
            trie = child
        members.add(id(trie))
    return root


def decode(trie: Any, path: Path = (), out: FieldSet | None = None) -> FieldSet:
    """The set a ``FieldsV1`` trie holds (malformed parts are ignored)."""
    if out is None:
        out = set()
    if isinstance(trie, dict):
        for element, child in trie.items():
            if element == ".":
                out.add(path)
            elif child:
                decode(child, (*path, element), out)
            else:
                out.add((*path, element))
    return out


def path_string(path: Path) -> str:
    """A path as kube prints it: ``.spec.ports[port=80,protocol="TCP"]``, ``.finalizers[="x"]``."""
    parts = []
    for element in path:
        kind, text = element[:2], element[2:]
        if kind == "f:":
            parts.append("." + text)
        elif kind == "k:":
            try:
                key = orjson.loads(text)
                parts.append("[" + ",".join(f"{k}={orjson.dumps(v).decode()}" for k, v in key.items()) + "]")
            except orjson.JSONDecodeError:
                parts.append("[" + text + "]")
        elif kind == "v:":
            parts.append("[=" + text + "]")
        else:
            parts.append("[" + text + "]")
    return "".join(parts)
