"""GET, LIST and WATCH with kube-apiserver's resourceVersion semantics.

* get: from storage (consistent); ``resourceVersion=0`` from the watch cache.
* list without ``limit``: from the watch cache - after a consistent sync unless
  ``resourceVersion=0`` (any freshness) was asked.
* list with ``limit`` (and every ``continue``): pages read from storage at one revision; the
  continue token carries that revision and the last key; once compacted -> 410 Expired.
* watch: from the cache window (or storage for older revisions); ``resourceVersion`` unset or
  ``0`` or ``sendInitialEvents=true`` start with ADDED events for the current objects.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import random
import time
from collections.abc import AsyncIterator, Iterable
from typing import Any, Protocol

import orjson
from starlette.responses import Response, StreamingResponse

from kapi import errors
from kapi.rest import filters, tables
from kapi.rest.context import JSON, Ctx, int_param, json_response
from kapi.storage import CompactedError, EventType, KeyNotFoundError
from kapi.watchcache import CachedObject, CacheEvent, WatcherOverflow, decode, storage_events

BOOKMARK_INTERVAL = 10.0


def served(ctx: Ctx, cached: CachedObject) -> CachedObject:
    """``cached`` in the form this resource serves (a converted copy for kinds stored differently)."""
    if not ctx.rt.strategy.converts:
        return cached
    return CachedObject(cached.key, ctx.rt.strategy.from_storage(cached.obj), cached.revision)


def _list_body(ctx: Ctx, raws: Iterable[bytes], meta: dict[str, Any]) -> bytes:
    """The list's JSON, built with one copy of the items (a 10k-pod list is tens of MiB)."""
    head = orjson.dumps({"kind": ctx.rt.list_kind, "apiVersion": ctx.rt.group_version, "metadata": meta})
    parts = [head[:-1], b',"items":[']
    for raw in raws:
        parts.append(raw)
        parts.append(b",")
    if len(parts) > 2:
        parts.pop()
    parts.append(b"]}")
    return b"".join(parts)


def _respond_objects(ctx: Ctx, objs: list[CachedObject], meta: dict[str, Any]) -> Response:
    accept = ctx.request.headers.get("accept", "")
    if tables.wants_table(accept):
        table = tables.make_table(ctx.rt, (o.obj for o in objs), include=ctx.query("includeObject", "Metadata"),
                                  list_meta=meta, api_version=tables.table_version(accept))
        return json_response(table)
    return Response(_list_body(ctx, (o.raw for o in objs), meta), media_type=JSON)


def respond_object(ctx: Ctx, obj: dict[str, Any], status: int = 200, raw: bytes | None = None) -> Response:
    """One object, as JSON or as a one-row Table when asked."""
    accept = ctx.request.headers.get("accept", "")
    if tables.wants_table(accept):
        return json_response(tables.make_table(ctx.rt, [obj], include=ctx.query("includeObject", "Metadata"),
                                               api_version=tables.table_version(accept)), status)
    return json_response(raw if raw is not None else obj, status)


async def get(ctx: Ctx) -> Response:
    if ctx.query("resourceVersion") == "0":
        cache = ctx.app.cache.route(ctx.key())
        cached = cache.objects.get(ctx.key()) if cache is not None else None
        if cached is None:
            raise ctx.not_found()
    else:
        try:
            cached = decode(await ctx.app.storage.get(ctx.key()))
        except KeyNotFoundError:
            raise ctx.not_found() from None
    cached = served(ctx, cached)
    return respond_object(ctx, cached.obj, raw=cached.raw)


def _encode_continue(revision: int, start: str) -> str:
    token = orjson.dumps({"v": "meta.k8s.io/v1", "rv": revision, "start": start})
    return base64.urlsafe_b64encode(token).decode().rstrip("=")


def _decode_continue(token: str) -> tuple[int, str]:
    try:
        data = orjson.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        revision, start = int(data["rv"]), str(data["start"])
    except (ValueError, KeyError, TypeError, binascii.Error, orjson.JSONDecodeError):
        raise errors.bad_request("continue key is not valid: the continue token cannot be decoded") from None
    if revision <= 0:
        raise errors.bad_request("continue key is not valid: bad resource version")
    return revision, start


async def list_objects(ctx: Ctx) -> Response:
    if ctx.flag("watch"):
        return await watch(ctx)
    match = filters.build(ctx.rt, ctx.query("labelSelector"), ctx.query("fieldSelector"))
    limit = int_param(ctx, "limit")
    token = ctx.query("continue")
    rv = ctx.query("resourceVersion")
    if token or (limit > 0 and rv != "0"):
        return await _list_paged(ctx, match, limit, token)
    if rv not in ("", "0"):
        _parse_rv(rv)
    dispatcher = ctx.app.cache
    if rv != "0" and not await dispatcher.sync():
        raise errors.timeout("timed out waiting for the watch cache to catch up with storage")
    cache = dispatcher.route(ctx.prefix())
    objs = cache.snapshot(ctx.prefix()) if cache is not None else []
    if ctx.rt.strategy.converts:
        objs = [served(ctx, o) for o in objs]
    if match is not None:
        objs = [o for o in objs if match(o.obj)]
    return _respond_objects(ctx, objs, {"resourceVersion": str(dispatcher.revision)})


async def _list_paged(ctx: Ctx, match: filters.Predicate | None, limit: int, token: str) -> Response:
    prefix = ctx.prefix()
    revision, start = _decode_continue(token) if token else (0, "")
    start_after = prefix + start if start else ""
    found: list[CachedObject] = []
    more = False
    remaining: int | None = None
    try:
        while True:
            page = await ctx.app.storage.list(prefix, revision=revision, limit=limit or 500, start_after=start_after)
            revision = page.revision
            for kv in page.items:
                start_after = kv.key
                obj = served(ctx, decode(kv))
                if match is None or match(obj.obj):
                    found.append(obj)
                if limit and len(found) >= limit:
                    break
            more = page.more or (bool(page.items) and start_after != page.items[-1].key)
            remaining = page.remaining if match is None else None
            if not more or (limit and len(found) >= limit):
                break
    except CompactedError:
        raise errors.gone("The provided continue parameter is too old to display a consistent list result. "
                          "You can start a new list without the continue parameter.") from None
    meta: dict[str, Any] = {"resourceVersion": str(revision)}
    if more:
        meta["continue"] = _encode_continue(revision, start_after[len(prefix):])
        if remaining is not None:
            meta["remainingItemCount"] = remaining
    return _respond_objects(ctx, found, meta)


def _parse_rv(rv: str) -> int:
    try:
        value = int(rv)
    except ValueError:
        raise errors.bad_request(f'invalid resource version "{rv}"') from None
    if value < 0:
        raise errors.bad_request(f'invalid resource version "{rv}"')
    return value


# ---------------------------------------------------------------------------------------------
# watch


def _event_line(type_: str, raw: bytes) -> bytes:
    return b'{"type":"' + type_.encode() + b'","object":' + raw + b"}\n"


def _status_event(err: errors.APIError) -> bytes:
    return _event_line("ERROR", err.body())


class _Encoder:
    """Renders events for one watch: JSON objects (shared bytes) or one-row Tables."""

    def __init__(self, ctx: Ctx) -> None:
        accept = ctx.request.headers.get("accept", "")
        self.ctx = ctx
        self.table = tables.wants_table(accept)
        self.table_version = tables.table_version(accept)
        self.include = ctx.query("includeObject", "Metadata")
        self.first = True

    def encode(self, type_: str, obj: CachedObject) -> bytes:
        if not self.table:
            return _event_line(type_, obj.raw)
        table = tables.make_table(self.ctx.rt, [obj.obj], include=self.include, api_version=self.table_version,
                                  with_columns=self.first)
        self.first = False
        return _event_line(type_, orjson.dumps(table))

    def bookmark(self, revision: int, *, initial_end: bool = False) -> bytes:
        meta: dict[str, Any] = {"resourceVersion": str(revision)}
        if initial_end:
            meta["annotations"] = {"k8s.io/initial-events-end": "true"}
        obj = {"kind": self.ctx.rt.kind, "apiVersion": self.ctx.rt.group_version, "metadata": meta}
        return _event_line("BOOKMARK", orjson.dumps(obj))


def served_event(ctx: Ctx, event: CacheEvent) -> CacheEvent:
    """The event with its objects in the served form of the resource."""
    if not ctx.rt.strategy.converts:
        return event
    prev = served(ctx, event.prev) if event.prev is not None else None
    return CacheEvent(event.type, served(ctx, event.obj), prev)


def _filtered(event: CacheEvent, match: filters.Predicate | None) -> tuple[str, CachedObject] | None:
    """The event as this watcher sees it: objects moving out of the selection become DELETED."""
    if match is None:
        return event.type.value, event.obj
    now = event.type is not EventType.DELETED and match(event.obj.obj)
    before = event.prev is not None and match(event.prev.obj)
    if event.type is EventType.DELETED:
        return ("DELETED", event.obj) if match(event.obj.obj) else None
    if now and before:
        return "MODIFIED", event.obj
    if now:
        return "ADDED", event.obj
    if before:
        return "DELETED", event.obj
    return None


async def watch(ctx: Ctx) -> Response:
    match = filters.build(ctx.rt, ctx.query("labelSelector"), ctx.query("fieldSelector"))
    if ctx.info.name:
        by_name = filters.build(ctx.rt, "", f"metadata.name={ctx.info.name}")
        match = by_name if match is None else (lambda o, a=match, b=by_name: a(o) and b(o))  # type: ignore[misc]
    rv = ctx.query("resourceVersion")
    send_initial = ctx.query("sendInitialEvents") == "true"
    bookmarks = ctx.flag("allowWatchBookmarks")
    if send_initial and not bookmarks:
        raise errors.invalid(ctx.rt.group, ctx.rt.kind, "", (errors.Cause(
            "allowWatchBookmarks", "sendInitialEvents requires setting allowWatchBookmarks to true",
            "FieldValueForbidden"),))
    min_timeout = ctx.app.config.min_request_timeout
    timeout = int_param(ctx, "timeoutSeconds", 0) or int(min_timeout * (1 + random.random()))
    dispatcher = ctx.app.cache
    prefix = ctx.prefix()
    cache = dispatcher.route(prefix)
    if cache is None:
        raise errors.internal(f"no watch cache for {ctx.rt.qualified}")
    initial: list[CachedObject] = []
    if rv in ("", "0") or send_initial:
        if rv == "" and not await dispatcher.sync():
            raise errors.timeout("timed out waiting for the watch cache to catch up with storage")
        start = dispatcher.revision
        initial = [served(ctx, o) for o in cache.snapshot(prefix)] if ctx.rt.strategy.converts \
            else cache.snapshot(prefix)
        subscription = dispatcher.subscribe(cache, prefix, start)
    else:
        start = _parse_rv(rv)
        if start > dispatcher.revision and not await dispatcher.wait_for(start):
            raise errors.timeout(f"Too large resource version: {start}, current: {dispatcher.revision}")
        subscription = dispatcher.subscribe(cache, prefix, start)
    encoder = _Encoder(ctx)

    async def stream() -> AsyncIterator[bytes]:
        deadline = time.monotonic() + timeout
        watcher = None
        try:
            for obj in initial:
                if match is None or match(obj.obj):
                    yield encoder.encode("ADDED", obj)
            if send_initial:
                yield encoder.bookmark(start, initial_end=True)
            source: EventBatches
            if subscription is None:
                source = _IteratorBatches(storage_events(ctx.app.storage, prefix, start))
            else:
                replay, watcher = subscription
                chunk = _lines(ctx, replay, match, encoder)
                if chunk:
                    yield chunk
                source = watcher
            try:
                async for chunk in _live(ctx, source, match, encoder, deadline, bookmarks):
                    yield chunk
            finally:
                if isinstance(source, _IteratorBatches):
                    await source.aclose()
        except CompactedError as exc:
            yield _status_event(errors.gone(f"too old resource version: {start} ({exc.compacted})"))
        except WatcherOverflow as exc:
            yield _status_event(errors.APIError(500, "InternalError", str(exc)))
        finally:
            if watcher is not None:
                dispatcher.unsubscribe(cache, watcher)

    return StreamingResponse(stream(), media_type=JSON, headers={"cache-control": "no-cache, private"})


class EventBatches(Protocol):
    """A source of watch events in batches (``Watcher`` or ``_IteratorBatches``)."""

    async def next_batch(self, timeout: float | None) -> list[CacheEvent] | None:
        """The next events (``[]`` when none came within ``timeout``; None when the source ended)."""
        ...


class _IteratorBatches:
    """An async iterator of events (a storage watch) as ``EventBatches`` of one event each; the
    pending ``__anext__`` survives a timeout (a cancelled generator could not be resumed)."""

    def __init__(self, iterator: AsyncIterator[CacheEvent]) -> None:
        self._iterator = iterator
        self._pending: asyncio.Future[CacheEvent] | None = None

    async def next_batch(self, timeout: float | None) -> list[CacheEvent] | None:
        if self._pending is None:
            self._pending = asyncio.ensure_future(self._iterator.__anext__())
        done, _ = await asyncio.wait({self._pending}, timeout=timeout)
        if not done:
            return []
        task, self._pending = self._pending, None
        try:
            return [task.result()]
        except StopAsyncIteration:
            return None

    async def aclose(self) -> None:
        if self._pending is not None:
            self._pending.cancel()
        aclose = getattr(self._iterator, "aclose", None)
        if aclose is not None:
            with contextlib.suppress(Exception):
                await aclose()


def _lines(ctx: Ctx, events: Iterable[CacheEvent], match: filters.Predicate | None, encoder: _Encoder) -> bytes:
    """The watch lines of ``events`` as this watcher sees them, as one chunk."""
    lines = []
    for event in events:
        seen = _filtered(served_event(ctx, event), match)
        if seen is not None:
            lines.append(encoder.encode(*seen))
    return b"".join(lines)


async def _live(ctx: Ctx, source: EventBatches, match: filters.Predicate | None, encoder: _Encoder,
                deadline: float, bookmarks: bool) -> AsyncIterator[bytes]:
    """Live events until the deadline, one chunk per batch, with periodic bookmarks when allowed."""
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return
        batch = await source.next_batch(min(left, BOOKMARK_INTERVAL))
        if batch is None:
            return
        if not batch:
            if bookmarks:
                yield encoder.bookmark(ctx.app.cache.revision)
            continue
        chunk = _lines(ctx, batch, match, encoder)
        if chunk:
            yield chunk
