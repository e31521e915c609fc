"""``metadata.managedFields``: who owns which fields, kept on every write, and server-side apply.

Entries are ``{"manager", "operation": "Apply"|"Update", "apiVersion", "time", "fieldsType":
"FieldsV1", "fieldsV1", ["subresource"]}``, one per (manager, operation, subresource).

* ``track_update(old, new, ...)`` — after a create (``old`` None), update or non-apply patch: the
  paths this request changed become owned by its manager's ``Update`` entry and are taken from every
  other entry; removed paths leave every entry. A client may replace the entries by sending a
  different non-empty ``managedFields`` (``[{}]`` clears them); leaving them out keeps them.
* ``apply(live, applied, ...)`` — server-side apply: merge ``applied`` into ``live`` (None creates),
  remove what the manager applied last time and no longer applies unless someone else owns it, and
  make the manager's ``Apply`` entry exactly the applied set. Changing a value another manager owns
  is a conflict (``ApplyConflict``) unless ``force``, which moves those paths to the applier.
* ``manager_name(field_manager, user_agent)`` — the manager of a request, as kube derives it.

An object without entries that gets applied to first hands its existing fields to a
``before-first-apply`` Update entry (as kube does), so the first apply can conflict with them.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

from kapi.patch import deep_copy
from kapi.schema import SchemaNode
from kapi.ssa.fieldset import FieldSet, Path, decode, diff, encode, field_set, ownable, path_string, subtract, union
from kapi.ssa.merge import merge, remove
from kapi.timestamps import now_rfc3339

Obj = dict[str, Any]
APPLY = "Apply"
UPDATE = "Update"
BEFORE_FIRST_APPLY = "before-first-apply"
MAX_MANAGER_LENGTH = 128




@dataclass
class Entry:
    """One decoded managedFields entry."""

    manager: str
    operation: str
    api_version: str
    time: str
    subresource: str
    fields: FieldSet = field(default_factory=set)

    @property
    def key(self) -> tuple[str, str, str]:
        return self.manager, self.operation, self.subresource

    @classmethod
    def from_dict(cls, raw: Obj) -> Entry:
        return cls(str(raw.get("manager", "")), str(raw.get("operation", "")), str(raw.get("apiVersion", "")),
                   str(raw.get("time", "")), str(raw.get("subresource", "")), decode(raw.get("fieldsV1")))

    def to_dict(self) -> Obj:
        out: Obj = {"manager": self.manager, "operation": self.operation, "apiVersion": self.api_version}
        if self.time:
            out["time"] = self.time
        out["fieldsType"] = "FieldsV1"
        out["fieldsV1"] = encode(self.fields)
        if self.subresource:
            out["subresource"] = self.subresource
        return out

    def describe(self) -> str:
        """The manager as kube names it in conflict messages."""
        text = f'"{self.manager}"'
        if self.subresource:
            text += f' with subresource "{self.subresource}"'
        if self.operation == UPDATE:
            text += f" using {self.api_version}" + (f" at {self.time}" if self.time else "")
        return text


@dataclass(frozen=True)
class Conflict:
    """A path the applier would change that ``owner`` manages."""

    path: Path
    owner: Entry

    @property
    def field(self) -> str:
        return path_string(self.path)


class ApplyConflict(Exception):
    """Server-side apply would change fields other managers own (HTTP 409); ``conflicts`` sorted."""

    def __init__(self, conflicts: list[Conflict]) -> None:
        self.conflicts = conflicts
        super().__init__(conflict_message(conflicts))


def conflict_message(conflicts: list[Conflict]) -> str:
    """kube's message: ``Apply failed with 1 conflict: conflict with "m" using v1: .data.x``."""
    count = len(conflicts)
    head = f"Apply failed with {count} conflict{'s' if count != 1 else ''}: "
    if count == 1:
        return head + f"conflict with {conflicts[0].owner.describe()}: {conflicts[0].field}"
    lines: list[str] = []
    last = ""
    for conflict in conflicts:
        who = conflict.owner.describe()
        if who != last:
            lines.append(f"conflicts with {who}:")
            last = who
        lines.append(f"- {conflict.field}")
    return head + "\n".join(lines)


def manager_name(field_manager: str, user_agent: str) -> str:
    """The ``fieldManager`` query parameter, else the User-Agent up to its first ``/`` (kube's
    default), at most 128 characters."""
    if field_manager:
        return field_manager
    return user_agent.split("/", 1)[0][:MAX_MANAGER_LENGTH]


def _well_formed(raw: Any) -> bool:
    return isinstance(raw, list) and all(
        isinstance(item, dict) and item.get("operation") in (APPLY, UPDATE) and item.get("manager")
        and isinstance(item.get("fieldsV1", {}), dict) for item in raw)


def _base_entries(old_raw: Any, sent: Any) -> list[Obj]:
    """The raw entries to start from: the client's if it sent different well-formed ones, ``[]`` for
    ``[{}]``, else the stored ones."""
    if sent == [{}]:
        return []
    if sent and sent != old_raw and _well_formed(sent):
        return list(sent)
    return list(old_raw) if _well_formed(old_raw) else []


def _key(raw: Obj) -> tuple[str, str, str]:
    return raw.get("manager", ""), raw.get("operation", ""), raw.get("subresource", "")


def track_update(old: Obj | None, new: Obj, *, manager: str, api_version: str, node: SchemaNode | None,
                 subresource: str = "", ignore_status: bool = False) -> None:
    """Set ``new["metadata"]["managedFields"]`` for a create (``old`` None) or update by ``manager``.

    Cost follows the size of the change: unchanged subtrees are skipped and entries are combined
    as ``FieldsV1`` tries without decoding them."""
    meta = new.setdefault("metadata", {})
    old_raw = (old.get("metadata") or {}).get("managedFields") if old else None
    before = ownable(old, subresource=subresource, ignore_status=ignore_status) if old else {}
    changed, removed = diff(before, ownable(new, subresource=subresource, ignore_status=ignore_status), node)
    sent = meta.get("managedFields")
    if not changed and not removed and (not sent or sent == old_raw):
        if old_raw:
            meta["managedFields"] = old_raw
        else:
            meta.pop("managedFields", None)
        return
    mine_key = (manager, UPDATE, subresource)
    entries: list[Obj] = []
    mine: Obj | None = None
    for raw in _base_entries(old_raw, sent):
        fields = raw.get("fieldsV1") or {}
        kept = subtract(subtract(fields, changed), removed)
        if _key(raw) == mine_key:
            mine = {**raw, "fieldsV1": kept}
            entries.append(mine)
        elif kept:
            entries.append(raw if kept is fields else {**raw, "fieldsV1": kept})
    if changed and manager:
        if mine is None:
            mine = {"manager": manager, "operation": UPDATE}
            entries.append(mine)
        mine.update(apiVersion=api_version, time=now_rfc3339(), fieldsType="FieldsV1",
                    fieldsV1=union(mine.get("fieldsV1") or {}, changed))
        if subresource:
            mine["subresource"] = subresource
    _store_raw(meta, entries)


def _store_raw(meta: Obj, entries: list[Obj]) -> None:
    kept = [e for e in entries if e.get("fieldsV1")]
    if kept:
        meta["managedFields"] = kept
    else:
        meta.pop("managedFields", None)


def apply(live: Obj | None, applied: Obj, *, manager: str, force: bool, api_version: str,
          node: SchemaNode | None, subresource: str = "", ignore_status: bool = False) -> Obj:
    """The object after ``manager`` applies ``applied`` to ``live`` (None creates); ``live`` is not
    changed.

    Raises ``ApplyConflict`` when, without ``force``, a value another manager owns would change."""
    view = functools.partial(ownable, subresource=subresource, ignore_status=ignore_status)
    base: Obj = live if live is not None else {}
    old_view = view(base)
    raw_entries = (base.get("metadata") or {}).get("managedFields")
    entries = [Entry.from_dict(e) for e in raw_entries or ()] if _well_formed(raw_entries) else []
    if live is not None and not entries and old_view:
        entries = [Entry(BEFORE_FIRST_APPLY, UPDATE, api_version, "", subresource, field_set(old_view, node))]
    key = (manager, APPLY, subresource)
    previous = next((e.fields for e in entries if e.key == key), set())
    applied_set = field_set(view(applied), node)
    merged = merge(deep_copy(base), applied, node)
    others = [e for e in entries if e.key != key]
    _prune(merged, previous - applied_set, others, node)
    changed_trie, removed_trie = diff(old_view, view(merged), node)
    changed, removed = decode(changed_trie), decode(removed_trie)
    conflicts = sorted((Conflict(path, owner) for owner in others for path in owner.fields & changed),
                       key=lambda c: (c.owner.manager, c.path))
    if conflicts and not force:
        raise ApplyConflict(conflicts)
    touched = changed | removed
    for entry in others:
        entry.fields -= touched
    mine = _own(entries, key, api_version)
    if mine.fields != applied_set or touched:
        mine.time = now_rfc3339()
    mine.fields = applied_set
    _store(merged.setdefault("metadata", {}), entries)
    return merged


def _own(entries: list[Entry], key: tuple[str, str, str], api_version: str) -> Entry:
    for entry in entries:
        if entry.key == key:
            entry.api_version = api_version
            return entry
    entry = Entry(key[0], key[1], api_version, "", key[2])
    entries.append(entry)
    return entry


def _store(meta: Obj, entries: list[Entry]) -> None:
    _store_raw(meta, [e.to_dict() for e in entries if e.fields])


def _prune(obj: Obj, candidates: FieldSet, others: list[Entry], node: SchemaNode | None) -> None:
    """Remove the paths in ``candidates`` that no other manager owns (neither the path nor below it)."""
    if not candidates:
        return
    owned: set[Path] = set()
    for entry in others:
        for path in entry.fields:
            owned.update(path[:i] for i in range(1, len(path) + 1))
    for path in sorted(candidates, key=len, reverse=True):
        if path not in owned:
            remove(obj, path, node)
