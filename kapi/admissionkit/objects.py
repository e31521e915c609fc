"""Reading and writing API objects from inside the server (admission plugins, in-server controllers).

Reads come from the watch cache (``app.cache``; never mutate what they return) with a live
storage fallback where a miss matters (``fetch``). Writes go straight to storage, guarded:
``create_if_absent`` (create-only, so two writers never duplicate an object) and
``update_guarded`` (read-modify-write on the key's revision, retried on conflict: kube's
``GuaranteedUpdate``). Objects written here get the server-set metadata a REST create gives them
(uid, creationTimestamp) and the kind's defaults.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import orjson

from kapi.rest.objects import encode_for_storage, new_uid, now_rfc3339
from kapi.storage import ConflictError, KeyExistsError, KeyNotFoundError

if TYPE_CHECKING:
    from kapi.app import App
    from kapi.resources import ResourceType

Obj = dict[str, Any]
MAX_RETRIES = 32


def resource_type(app: App, group: str, version: str, plural: str) -> ResourceType:
    """The served resource, or ``LookupError`` (a plugin asked for a kind this server lacks)."""
    rt = app.registry.lookup(group, version, plural)
    if rt is None:
        raise LookupError(f"the server does not serve {plural} in {group or 'core'}/{version}")
    return rt


def served(app: App, group: str, plural: str) -> ResourceType | None:
    """The first served version of ``group``/``plural`` (for callers that only know the resource)."""
    for rt in app.registry:
        if rt.group == group and rt.plural == plural:
            return rt
    return None


def object_key(app: App, group: str, version: str, plural: str, namespace: str, name: str) -> str:
    """The storage key of one object."""
    return resource_type(app, group, version, plural).key(app.root, namespace, name)


def cached(app: App, group: str, version: str, plural: str, namespace: str, name: str) -> Obj | None:
    """The object as the watch cache has it (read-only), or None."""
    key = object_key(app, group, version, plural, namespace, name)
    cache = app.cache.route(key)
    entry = cache.objects.get(key) if cache is not None else None
    return entry.obj if entry is not None else None


def _decode(value: bytes, revision: int) -> Obj:
    obj: Obj = orjson.loads(value)
    obj.setdefault("metadata", {})["resourceVersion"] = str(revision)
    return obj


async def fetch(app: App, group: str, version: str, plural: str, namespace: str, name: str) -> Obj | None:
    """The object from the cache, else from storage (a live lookup, for objects created moments
    ago that the cache has not seen yet); None when it does not exist."""
    found = cached(app, group, version, plural, namespace, name)
    if found is not None:
        return found
    key = object_key(app, group, version, plural, namespace, name)
    try:
        kv = await app.storage.get(key)
    except KeyNotFoundError:
        return None
    return resource_type(app, group, version, plural).strategy.from_storage(_decode(kv.value, kv.revision))


def cached_list(app: App, group: str, version: str, plural: str, namespace: str = "") -> list[Obj]:
    """Every cached object of a resource (of one namespace if given), unordered, read-only."""
    rt = resource_type(app, group, version, plural)
    prefix = rt.key_prefix(app.root, namespace)
    cache = app.cache.route(prefix)
    if cache is None:
        return []
    return [entry.obj for key, entry in cache.objects.items() if key.startswith(prefix)]


async def consistent_list(app: App, group: str, version: str, plural: str, namespace: str = "") -> list[Obj]:
    """``cached_list`` after the cache caught up with everything storage has committed, so an object
    created just before this request is seen (a consistent read, as for ``resourceVersion=""``)."""
    await app.cache.sync()
    return cached_list(app, group, version, plural, namespace)


def cache_signature(app: App, group: str, version: str, plural: str) -> tuple[tuple[str, int], ...]:
    """``(key, revision)`` of every cached object of a resource: changes whenever one does, so a
    plugin can keep parsed configuration until the signature moves."""
    prefix = resource_type(app, group, version, plural).key_prefix(app.root)
    cache = app.cache.route(prefix)
    if cache is None:
        return ()
    return tuple((key, entry.revision) for key, entry in cache.objects.items() if key.startswith(prefix))


async def create_if_absent(app: App, group: str, version: str, plural: str, obj: Obj) -> bool:
    """Store ``obj`` (defaulted, with uid and creationTimestamp) unless its key exists.

    :returns: True if this call created it. Never overwrites: concurrent callers create one object.
    """
    rt = resource_type(app, group, version, plural)
    meta = obj.setdefault("metadata", {})
    obj.setdefault("apiVersion", rt.group_version)
    obj.setdefault("kind", rt.kind)
    meta.setdefault("uid", new_uid())
    meta.setdefault("creationTimestamp", now_rfc3339())
    rt.strategy.prepare_for_create(obj)
    rt.strategy.default(obj)
    key = rt.key(app.root, str(meta.get("namespace") or ""), str(meta["name"]))
    try:
        await app.storage.create(key, encode_for_storage(rt.strategy.to_storage(obj)))
    except KeyExistsError:
        return False
    return True


Change = Callable[[Obj], "Obj | Awaitable[Obj | None] | None"]


async def update_guarded(app: App, group: str, version: str, plural: str, namespace: str, name: str,
                         change: Change) -> Obj | None:
    """Read the stored object, apply ``change`` to a private copy and write it back only if the
    key's revision did not move meanwhile; retried on conflict (``GuaranteedUpdate``).

    ``change`` returns the new object, or None to write nothing (the result is then the current
    object); it may be async and may raise to abort. Returns None if the object does not exist.
    """
    rt = resource_type(app, group, version, plural)
    key = rt.key(app.root, namespace, name)
    for _attempt in range(MAX_RETRIES):
        try:
            kv = await app.storage.get(key)
        except KeyNotFoundError:
            return None
        current = _decode(kv.value, kv.revision)
        result = change(_decode(kv.value, kv.revision))
        new = await result if inspect.isawaitable(result) else result
        if new is None:
            return current
        try:
            written = await app.storage.update(key, encode_for_storage(new), expected_revision=kv.revision)
        except ConflictError:
            continue
        except KeyNotFoundError:
            return None
        new.setdefault("metadata", {})["resourceVersion"] = str(written.revision)
        return new
    raise ConflictError(key, None)
