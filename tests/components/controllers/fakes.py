"""A fake API (``FakeApi``) and informers over it, for the controllers' unit tests (not a test module).

``FakeApi`` has ``kapi.client.Client``'s methods (get, list, create, update, patch, delete) over
in-memory objects, with just enough of kube-apiserver's semantics for controllers: names from
``generateName``, uids, resourceVersions and generations; each kind's ``Strategy`` prepares and
defaults objects (so Jobs get their generated selector); status, finalize and main-resource
updates keep the parts they may not change; ``resourceVersion`` guards (409); finalizers and
propagation policies keep an object with a ``deletionTimestamp``; a terminating namespace
refuses creates (403); discovery documents come from ``kapi.discovery``.

Every write is recorded in ``actions`` (``(verb, path)``) and delivered at once to the
``FakeInformer`` objects watching that resource (their ``store`` is a live view), like a watch
with no delay. ``fail(verb, plural, error)`` makes the next matching call raise.
"""

from __future__ import annotations

import asyncio
import datetime
import itertools
import uuid
from collections.abc import Iterator, Mapping
from typing import Any

import orjson

from kapi.client import ApiError
from kapi.components.controllers.framework import Clock, ControllerContext, ControllerOptions
from kapi.components.controllers.informers import SharedInformers
from kapi.discovery import Discovery
from kapi.kinds import builtin_resources
from kapi.patch import json_patch, merge_patch
from kapi.requestinfo import parse
from kapi.resources import Registry, ResourceType
from kapi.selectors import parse_field_selector, parse_label_selector

Obj = dict[str, Any]


def _error(code: int, reason: str, message: str) -> ApiError:
    return ApiError({"kind": "Status", "code": code, "reason": reason, "message": message})


def _copy(obj: Any) -> Any:
    return orjson.loads(orjson.dumps(obj))


class FakeClock(Clock):
    """A clock tests move by hand."""

    def __init__(self, start: datetime.datetime | None = None) -> None:
        self.current = start or datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC)
        self.mono = 1000.0

    def now(self) -> datetime.datetime:
        return self.current

    def monotonic(self) -> float:
        return self.mono

    def advance(self, seconds: float) -> None:
        self.current += datetime.timedelta(seconds=seconds)
        self.mono += seconds


class _View(Mapping[str, Obj]):
    """The objects of one resource an informer sees (namespace and selectors applied)."""

    def __init__(self, table: dict[str, Obj], namespace: str, field_selector: str, label_selector: str) -> None:
        self.table = table
        self.namespace = namespace
        self.fields = parse_field_selector(field_selector) if field_selector else None
        self.labels = parse_label_selector(label_selector) if label_selector else None

    def accepts(self, obj: Obj) -> bool:
        meta = obj.get("metadata") or {}
        if self.namespace and meta.get("namespace") != self.namespace:
            return False
        if self.labels is not None and not self.labels.matches(meta.get("labels") or {}):
            return False
        if self.fields is not None:
            values = {"metadata.name": str(meta.get("name") or ""),
                      "metadata.namespace": str(meta.get("namespace") or "")}
            values.update({k: str(v) for k, v in _field_values(obj).items()})
            return bool(self.fields.matches(values))
        return True

    def __getitem__(self, key: str) -> Obj:
        obj = self.table[key]
        if not self.accepts(obj):
            raise KeyError(key)
        return obj

    def __iter__(self) -> Iterator[str]:
        return iter([k for k, o in list(self.table.items()) if self.accepts(o)])

    def __len__(self) -> int:
        return sum(1 for _ in self)


def _field_values(obj: Obj) -> dict[str, str]:
    spec = obj.get("spec") or {}
    return {"spec.nodeName": str(spec.get("nodeName") or "")}


class FakeInformer:
    """An informer whose store is a live view of ``FakeApi`` and whose handlers run on each write."""

    def __init__(self, api: FakeApi, rt: ResourceType, view: _View) -> None:
        self.api = api
        self.rt = rt
        self.store = view
        self.handlers: list[tuple[Any, Any, Any]] = []
        self.has_synced = True

    def add_handler(self, on_add: Any = None, on_update: Any = None, on_delete: Any = None) -> None:
        self.handlers.append((on_add, on_update, on_delete))

    def start(self) -> None:
        """Like an informer's first list: every object is an add."""
        for obj in list(self.store.values()):
            for on_add, _, _ in self.handlers:
                if on_add is not None:
                    on_add(obj)

    def stop(self) -> None:
        pass

    async def wait_synced(self, timeout: float | None = None) -> bool:
        return True

    def deliver(self, kind: str, old: Obj | None, new: Obj | None) -> None:
        obj = new if new is not None else old
        assert obj is not None
        if not self.store.accepts(obj):
            return
        for on_add, on_update, on_delete in self.handlers:
            if kind == "add" and on_add is not None:
                on_add(new)
            elif kind == "update" and on_update is not None:
                on_update(old, new)
            elif kind == "delete" and on_delete is not None:
                on_delete(old)


class FakeApi:
    """See the module docstring."""

    def __init__(self, clock: FakeClock | None = None) -> None:
        self.clock = clock or FakeClock()
        self.registry = Registry(builtin_resources())
        self.discovery = Discovery(builtin_resources())
        self.tables: dict[tuple[str, str], dict[str, Obj]] = {}
        self.informers: list[FakeInformer] = []
        self.actions: list[tuple[str, str]] = []
        self.failures: list[tuple[str, str, ApiError]] = []
        self._rv = itertools.count(100)
        self._names = itertools.count(1)

    # -- plumbing ------------------------------------------------------------------------------

    def _rt(self, group: str, version: str, plural: str) -> ResourceType:
        rt = self.registry.lookup(group, version, plural)
        if rt is None:
            raise _error(404, "NotFound", f"the server could not find the requested resource ({plural})")
        return rt

    def table(self, rt: ResourceType) -> dict[str, Obj]:
        return self.tables.setdefault((rt.group, rt.plural), {})

    def informer(self, path: str, field_selector: str = "", label_selector: str = "") -> FakeInformer:
        info = parse("GET", path)
        rt = self._rt(info.api_group, info.api_version, info.resource)
        view = _View(self.table(rt), info.namespace, field_selector, label_selector)
        informer = FakeInformer(self, rt, view)
        self.informers.append(informer)
        return informer

    def _notify(self, rt: ResourceType, kind: str, old: Obj | None, new: Obj | None) -> None:
        for informer in list(self.informers):
            if informer.rt.group == rt.group and informer.rt.plural == rt.plural:
                informer.deliver(kind, old, new)

    def fail(self, verb: str, plural: str, error: ApiError | None = None) -> None:
        """Make the next ``verb`` on ``plural`` raise ``error`` (default a 500)."""
        self.failures.append((verb, plural, error or _error(500, "InternalError", "injected failure")))

    def _check_failure(self, verb: str, plural: str) -> None:
        for i, (v, p, error) in enumerate(self.failures):
            if v == verb and p == plural:
                del self.failures[i]
                raise error

    def _key(self, rt: ResourceType, namespace: str, name: str) -> str:
        return f"{namespace}/{name}" if rt.namespaced else name

    def _stamp(self) -> str:
        return self.clock.now().strftime("%Y-%m-%dT%H:%M:%SZ")

    def objects(self, plural: str, group: str = "") -> list[Obj]:
        """Copies of every stored object of a resource (for assertions)."""
        return [_copy(o) for o in self.tables.get((group, plural), {}).values()]

    def seed(self, *objs: Obj) -> list[Obj]:
        """Store objects as given (with the kind's defaults), notifying informers; returns them."""
        out = []
        for obj in objs:
            group, _, version = str(obj.get("apiVersion") or "v1").rpartition("/")
            rt = self.registry.by_kind(group, version, str(obj["kind"]))
            assert rt is not None, obj.get("kind")
            stored = _copy(obj)
            rt.strategy.default(stored)
            meta = stored.setdefault("metadata", {})
            meta.setdefault("uid", str(uuid.uuid4()))
            meta.setdefault("creationTimestamp", self._stamp())
            meta["resourceVersion"] = str(next(self._rv))
            if rt.strategy.has_status:
                meta.setdefault("generation", 1)
            key = self._key(rt, str(meta.get("namespace") or ""), str(meta["name"]))
            old = self.table(rt).get(key)
            self.table(rt)[key] = stored
            self._notify(rt, "add" if old is None else "update", old, stored)
            out.append(stored)
        return out

    def remove(self, obj: Obj) -> None:
        """Drop an object at once (as if force-deleted), notifying informers."""
        group, _, version = str(obj.get("apiVersion") or "v1").rpartition("/")
        rt = self.registry.by_kind(group, version, str(obj["kind"]))
        assert rt is not None
        meta = obj["metadata"]
        old = self.table(rt).pop(self._key(rt, str(meta.get("namespace") or ""), meta["name"]), None)
        if old is not None:
            self._notify(rt, "delete", old, None)

    # -- client API ----------------------------------------------------------------------------

    async def get(self, path: str, **params: Any) -> Obj:
        self.actions.append(("get", path))
        if path in ("/api", "/apis") or (path.count("/") <= 3 and path.startswith("/apis/")) or path == "/api/v1":
            return self._discovery(path)
        info = parse("GET", path)
        rt = self._rt(info.api_group, info.api_version, info.resource)
        self._check_failure("get", rt.plural)
        obj = self.table(rt).get(self._key(rt, info.namespace, info.name))
        if obj is None:
            raise _error(404, "NotFound", f'{rt.plural} "{info.name}" not found')
        return _copy(obj)

    def _discovery(self, path: str) -> Obj:
        parts = path.strip("/").split("/")
        body: bytes | None
        if path == "/api":
            body = self.discovery.api()
        elif path == "/api/v1":
            body = self.discovery.api_v1()
        elif path == "/apis":
            body = self.discovery.apis()
        elif len(parts) == 3:
            body = self.discovery.group_version(parts[1], parts[2])
        else:
            body = self.discovery.group(parts[1])
        if body is None:
            raise _error(404, "NotFound", "not found")
        data: Obj = orjson.loads(body)
        return data

    async def list(self, path: str, **params: Any) -> Obj:
        self.actions.append(("list", path))
        info = parse("GET", path)
        rt = self._rt(info.api_group, info.api_version, info.resource)
        self._check_failure("list", rt.plural)
        view = _View(self.table(rt), info.namespace, params.get("fieldSelector") or "",
                     params.get("labelSelector") or "")
        return {"kind": rt.list_kind, "apiVersion": rt.group_version,
                "metadata": {"resourceVersion": str(next(self._rv))}, "items": [_copy(o) for o in view.values()]}

    async def create(self, path: str, obj: Mapping[str, Any], **params: Any) -> Obj:
        self.actions.append(("create", path))
        info = parse("POST", path)
        rt = self._rt(info.api_group, info.api_version, info.resource)
        self._check_failure("create", rt.plural)
        if info.subresource == "token":
            return {**_copy(dict(obj)), "status": {"token": f"token-{info.name}-{next(self._names)}",
                                                    "expirationTimestamp": self._stamp()}}
        new = _copy(dict(obj))
        meta = new.setdefault("metadata", {})
        if rt.namespaced:
            meta["namespace"] = info.namespace
            namespace = self.table(self._rt("", "v1", "namespaces")).get(info.namespace)
            if namespace is not None and (namespace.get("metadata") or {}).get("deletionTimestamp"):
                raise _error(403, "Forbidden", f"unable to create new content in namespace {info.namespace} "
                                               f"because it is being terminated")
        if not meta.get("name"):
            meta["name"] = f"{meta.get('generateName', 'x-')}{next(self._names):05d}"
        key = self._key(rt, info.namespace, meta["name"])
        if key in self.table(rt):
            raise _error(409, "AlreadyExists", f'{rt.plural} "{meta["name"]}" already exists')
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = self._stamp()
        meta["resourceVersion"] = str(next(self._rv))
        if rt.strategy.has_status:
            meta["generation"] = 1
        rt.strategy.prepare_for_create(new)
        rt.strategy.default(new)
        self.table(rt)[key] = new
        self._notify(rt, "add", None, new)
        return _copy(new)

    def _write(self, rt: ResourceType, key: str, old: Obj, new: Obj, subresource: str) -> Obj:
        wanted = (new.get("metadata") or {}).get("resourceVersion")
        if wanted and str(wanted) != str(old["metadata"]["resourceVersion"]):
            raise _error(409, "Conflict", "the object has been modified; please apply your changes to the latest "
                                          "version and try again")
        new = _copy(new)
        if subresource == "status":
            new = {**_copy(old), "status": new.get("status")}
        elif subresource == "finalize":
            new = {**_copy(old), "spec": {**(old.get("spec") or {}), **{"finalizers": (new.get("spec") or {})
                                                                         .get("finalizers") or []}}}
        else:
            meta = new.setdefault("metadata", {})
            for field in ("uid", "creationTimestamp", "deletionTimestamp", "generation", "namespace", "name"):
                if field in old["metadata"]:
                    meta[field] = old["metadata"][field]
            if rt.strategy.has_status:
                new["status"] = _copy(old.get("status"))
                if new.get("spec") != old.get("spec"):
                    meta["generation"] = int(old["metadata"].get("generation") or 1) + 1
            if rt.plural == "namespaces":
                new["spec"] = _copy(old.get("spec"))
        new["metadata"]["resourceVersion"] = str(next(self._rv))
        meta = new["metadata"]
        ns_pending = rt.plural == "namespaces" and (new.get("spec") or {}).get("finalizers")
        graceful = rt.plural == "pods" and (new.get("spec") or {}).get("nodeName") and \
            meta.get("deletionGracePeriodSeconds")
        if meta.get("deletionTimestamp") and not meta.get("finalizers") and not ns_pending and not graceful:
            del self.table(rt)[key]
            self._notify(rt, "delete", old, None)
            return _copy(new)
        self.table(rt)[key] = new
        self._notify(rt, "update", old, new)
        return _copy(new)

    def _current(self, path: str, method: str) -> tuple[ResourceType, str, Obj, str]:
        info = parse(method, path)
        rt = self._rt(info.api_group, info.api_version, info.resource)
        key = self._key(rt, info.namespace, info.name)
        old = self.table(rt).get(key)
        if old is None:
            raise _error(404, "NotFound", f'{rt.plural} "{info.name}" not found')
        return rt, key, old, info.subresource

    async def update(self, path: str, obj: Mapping[str, Any], **params: Any) -> Obj:
        self.actions.append(("update", path))
        rt, key, old, sub = self._current(path, "PUT")
        self._check_failure("update", f"{rt.plural}/{sub}" if sub else rt.plural)
        return self._write(rt, key, old, dict(obj), sub)

    async def patch(self, path: str, patch: Any, type: str = "merge", **params: Any) -> Obj:
        self.actions.append(("patch", path))
        rt, key, old, sub = self._current(path, "PATCH")
        self._check_failure("patch", rt.plural)
        base = _copy(old)
        if type == "json":
            new = json_patch(base, patch)
        else:
            base["metadata"].pop("resourceVersion", None)
            new = merge_patch(base, patch)
            if not (patch.get("metadata") or {}).get("resourceVersion"):
                new["metadata"].pop("resourceVersion", None)
        return self._write(rt, key, old, new, sub)

    async def delete(self, path: str, *, options: Mapping[str, Any] | None = None, **params: Any) -> Obj:
        info = parse("DELETE", path)
        if not info.name:  # deletecollection
            rt = self._rt(info.api_group, info.api_version, info.resource)
            items = list(_View(self.table(rt), info.namespace, "", "").values())
            self.actions.append(("deletecollection", path))
            for obj in items:
                meta = obj["metadata"]
                await self.delete(path + "/" + meta["name"], options=options)
            return {"kind": rt.list_kind, "items": items}
        self.actions.append(("delete", path))
        rt, key, old, _ = self._current(path, "DELETE")
        self._check_failure("delete", rt.plural)
        options = dict(options or {})
        options.update({k: v for k, v in params.items() if k in ("propagationPolicy", "gracePeriodSeconds")})
        pre = options.get("preconditions") or {}
        if pre.get("uid") and pre["uid"] != old["metadata"].get("uid"):
            raise _error(409, "Conflict", "Precondition failed: UID")
        meta = old["metadata"]
        finalizers = list(meta.get("finalizers") or [])
        policy = options.get("propagationPolicy")
        if policy == "Orphan" and "orphan" not in finalizers:
            finalizers.append("orphan")
        if policy == "Foreground" and "foregroundDeletion" not in finalizers:
            finalizers.append("foregroundDeletion")
        pending = rt.plural == "namespaces" and (old.get("spec") or {}).get("finalizers")
        graceful = rt.plural == "pods" and (old.get("spec") or {}).get("nodeName") and \
            options.get("gracePeriodSeconds") != 0
        if finalizers or pending or graceful:
            new = _copy(old)
            new["metadata"].setdefault("deletionTimestamp", self._stamp())
            if graceful:
                new["metadata"]["deletionGracePeriodSeconds"] = 30
            if finalizers:
                new["metadata"]["finalizers"] = finalizers
            if rt.plural == "namespaces":
                new.setdefault("status", {})["phase"] = "Terminating"
            if new == old:
                return new
            new["metadata"]["resourceVersion"] = str(next(self._rv))
            self.table(rt)[key] = new
            self._notify(rt, "update", old, new)
            return _copy(new)
        del self.table(rt)[key]
        self._notify(rt, "delete", old, None)
        return _copy(old)

    async def aclose(self) -> None:
        pass


class Recorded:
    """A Recorder that keeps ``(component, type, reason, message)`` tuples."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str, str, str]] = []

    def for_component(self, component: str, client: Any = None) -> Any:
        outer = self

        class _One:
            def record(self, obj: Mapping[str, Any], type_: str, reason: str, message: str) -> None:
                outer.events.append((component, type_, reason, message))

        return _One()

    def reasons(self) -> list[str]:
        return [e[2] for e in self.events]


def make_context(api: FakeApi, **options: Any) -> tuple[ControllerContext, Recorded]:
    """A ControllerContext over ``api`` (informers are FakeInformers) and its event log. Call
    ``ctx.informers.start()`` after creating controllers to deliver the existing objects."""
    recorded = Recorded()
    informers = SharedInformers(api, lambda client, path, fs, ls: api.informer(path, fs, ls))  # type: ignore[arg-type,return-value]
    ctx = ControllerContext(client=api, informers=informers, options=ControllerOptions(**options),  # type: ignore[arg-type]
                            recorders=recorded.for_component, clock=api.clock)
    return ctx, recorded


async def drain(controller: Any, rounds: int = 50) -> None:
    """Process the controller's ready keys until none is left (bounded)."""
    for _ in range(rounds):
        key = controller.queue.get_nowait()
        if key is None:
            await asyncio.sleep(0)
            key = controller.queue.get_nowait()
            if key is None:
                return
        try:
            await controller.process(key)
        finally:
            controller.queue.done(key)
