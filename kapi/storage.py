"""The storage contract: one async interface that every store implements.

Modelled on k8s.io/apiserver's ``storage.Interface`` and etcd v3's data model:

* Keys are ``str`` paths (``/registry/pods/NS/NAME``); values are opaque ``bytes`` (the API
  server stores JSON without ``metadata.resourceVersion``; it sets it from ``revision``).
* A single store-wide **revision** counts every successful write (create, update, delete) and
  only grows. A key's ``revision`` is the revision of its last write (etcd's ``mod_revision``);
  it is the object's ``resourceVersion``. ``create_revision`` is the revision that created it.
* Writes are atomic and guarded: ``create`` succeeds only if the key is absent; ``update`` and a
  guarded ``delete`` succeed only if the key's revision still equals ``expected_revision``
  (compare-and-swap). Read-modify-write loops live above the store.
* ``list`` reads a consistent snapshot at ``revision`` (0 = now), ordered by key, optionally
  paged with ``limit`` and ``start_after``; a revision older than the last compaction raises
  ``CompactedError``.
* ``watch`` yields every change under a prefix with revision > ``revision``, in revision order,
  exactly once; a start revision older than the compaction raises ``CompactedError`` (HTTP 410).
* ``compact(rev)`` forgets history before ``rev``; the latest value of every key is kept.

Usage::

    kv = await store.create("/registry/configmaps/default/a", b'{"data":{}}')
    try:
        kv = await store.update(kv.key, b'{"data":{"x":"1"}}', expected_revision=kv.revision)
    except ConflictError as err:
        current = err.current          # re-read, re-apply, retry
    async for event in store.watch("/registry/configmaps/", revision=kv.revision):
        ...

``kapi.testing.storage_contract`` is the test suite every implementation must pass.
"""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol, runtime_checkable


@dataclass(frozen=True, slots=True)
class KeyValue:
    """One stored key. ``revision`` is the mod revision; for a deleted key returned by ``delete``
    or carried by a DELETED event, ``value`` is the last value and ``revision`` the deletion's."""

    key: str
    value: bytes
    revision: int
    create_revision: int


class EventType(enum.Enum):
    ADDED = "ADDED"
    MODIFIED = "MODIFIED"
    DELETED = "DELETED"


@dataclass(frozen=True, slots=True)
class StorageEvent:
    """A change. ``kv.revision`` is the revision of the change; ``prev`` the value before it
    (None for ADDED)."""

    type: EventType
    kv: KeyValue
    prev: KeyValue | None = None


@dataclass(frozen=True, slots=True)
class ListResult:
    """A page of a list. ``revision`` is the snapshot it was read at (pass it back to read the next
    page at the same snapshot); ``more`` says whether keys remain after the last item;
    ``remaining`` counts them when the store knows (else None)."""

    items: list[KeyValue]
    revision: int
    more: bool = False
    remaining: int | None = None


class StorageError(Exception):
    """Base of every storage error."""


class KeyExistsError(StorageError):
    """``create`` of a key that exists."""

    def __init__(self, key: str) -> None:
        super().__init__(f"key exists: {key}")
        self.key = key


class KeyNotFoundError(StorageError):
    """``get``, ``update`` or ``delete`` of a key that does not exist."""

    def __init__(self, key: str) -> None:
        super().__init__(f"key not found: {key}")
        self.key = key


class ConflictError(StorageError):
    """A guarded write whose ``expected_revision`` is stale. ``current`` is the stored value."""

    def __init__(self, key: str, current: KeyValue | None) -> None:
        super().__init__(f"revision mismatch: {key}")
        self.key = key
        self.current = current


class CompactedError(StorageError):
    """A read or watch at a revision that compaction already removed (HTTP 410 Gone)."""

    def __init__(self, requested: int, compacted: int) -> None:
        super().__init__(f"required revision {requested} has been compacted (compacted revision {compacted})")
        self.requested = requested
        self.compacted = compacted


class UnavailableError(StorageError):
    """The store cannot be reached or timed out (HTTP 503). The write may or may not have happened."""


@runtime_checkable
class Storage(Protocol):
    """An async key-value store with revisions. See the module docstring for the contract."""

    async def create(self, key: str, value: bytes, *, ttl: int | None = None) -> KeyValue:
        """Store ``value`` if ``key`` is absent, else raise ``KeyExistsError``. ``ttl`` (seconds), if
        given, lets the store delete the key after that time (events); a store may ignore it."""
        ...

    async def get(self, key: str) -> KeyValue:
        """The current value of ``key``, or ``KeyNotFoundError``."""
        ...

    async def list(self, prefix: str, *, revision: int = 0, limit: int = 0, start_after: str = "") -> ListResult:
        """Keys starting with ``prefix`` and greater than ``start_after``, in key order, as of
        ``revision`` (0 = latest; a future revision is an error of the caller), at most ``limit``
        of them (0 = all). Raises ``CompactedError`` for a compacted revision."""
        ...

    async def update(self, key: str, value: bytes, *, expected_revision: int) -> KeyValue:
        """Replace ``key``'s value if its revision equals ``expected_revision``; else
        ``ConflictError`` (with the current value) or ``KeyNotFoundError``."""
        ...

    async def delete(self, key: str, *, expected_revision: int = 0) -> KeyValue:
        """Delete ``key`` (if ``expected_revision`` is non-zero, only at that revision, else
        ``ConflictError``). Returns the last value with the deletion's revision."""
        ...

    def watch(self, prefix: str, *, revision: int) -> AsyncIterator[StorageEvent]:
        """Every change under ``prefix`` with revision > ``revision``, in order, until the iterator
        is closed. Raises ``CompactedError`` (on first iteration at the latest) if ``revision`` is
        older than the compaction."""
        ...

    async def current_revision(self) -> int:
        """The revision of the last write in the whole store (0 when empty)."""
        ...

    async def compact(self, revision: int) -> None:
        """Forget history before ``revision``; reads and watches below it then raise
        ``CompactedError``. Latest values are kept."""
        ...

    async def close(self) -> None:
        """Release connections and files; pending watches end."""
        ...
