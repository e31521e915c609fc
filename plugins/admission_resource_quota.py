"""ResourceQuota admission (``--enable-admission-plugins=ResourceQuota``, on by default), with the quota
reconciler that keeps ``status.used`` true.

What a quota counts (``spec.hard`` keys):

* object counts: ``pods``, ``services``, ``configmaps``, ``secrets``, ``persistentvolumeclaims``,
  ``replicationcontrollers``, ``resourcequotas``, ``services.loadbalancers``,
  ``services.nodeports``, and ``count/<resource>[.<group>]`` for any namespaced resource
  (``count/deployments.apps``);
* pod compute: ``requests.cpu`` / ``cpu``, ``requests.memory`` / ``memory``, ``limits.cpu``,
  ``limits.memory``, ``requests.ephemeral-storage``, ``limits.ephemeral-storage`` and extended
  resources (``requests.nvidia.com/gpu``); claims: ``requests.storage``. Pods that have finished
  (Succeeded/Failed) count for nothing;
* scopes (pods only): ``Terminating``, ``NotTerminating``, ``BestEffort``, ``NotBestEffort``, and
  ``scopeSelector`` terms on ``PriorityClass`` (In, NotIn, Exists, DoesNotExist).

On create, for each quota of the namespace that counts the object, the plugin reads the quota
from storage, checks ``used + requested <= hard`` and writes the new ``status.used`` guarded by the
quota's revision (a concurrent change makes it re-read and re-check), as kube's quota admission
does. Creates in one namespace are evaluated one at a time per API server (kube batches them per
namespace too), so 20 concurrent creates against ``pods: 10`` admit exactly 10. A refusal is 403
``exceeded quota: NAME, requested: pods=1, used: pods=10, limited: pods=10``; a quota on
cpu/memory also demands that every container states it (``failed quota: NAME: must specify
limits.cpu for: web``). Dry-run requests are checked but charge nothing. Updates are not charged.

The reconciler (started in ``kapi_startup`` when the plugin is enabled) recounts a namespace's
quotas from the watch cache: when a quota appears or its ``spec.hard`` changes, when a counted
object is deleted or a pod finishes, and every ``resync_seconds`` (default 300). Objects admitted
but not yet visible in the cache are counted from the admission's own record, so a recount never
undercuts a charge (within one API server; with several servers a recount may briefly undercount
another server's in-flight creates, as kube's controller may).

Options (``plugin_options["admission_resource_quota"]``): ``resync_seconds``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from typing import TYPE_CHECKING, Any

import orjson

from kapi import AdmissionRequest, EventType, Operation, admissionkit, hookimpl

if TYPE_CHECKING:
    from kapi import App
    from kapi.admissionkit.informer import Change

ALIASES = ("ResourceQuota",)
PLUGIN_NAME = "admission_resource_quota"
PENDING_SECONDS = 60.0
DEFAULT_RESYNC = 300.0
TERMINAL_PHASES = ("Succeeded", "Failed")
#: hard keys that require every container to state the resource (kube's backward-compatibility rule)
CONTAINER_REQUIRED = {"requests.cpu": ("requests", "cpu"), "cpu": ("requests", "cpu"),
                      "requests.memory": ("requests", "memory"), "memory": ("requests", "memory"),
                      "limits.cpu": ("limits", "cpu"), "limits.memory": ("limits", "memory")}
#: object-count names of core resources (besides ``count/<resource>``)
CORE_COUNTS = ("pods", "services", "configmaps", "secrets", "persistentvolumeclaims", "replicationcontrollers",
               "resourcequotas")

Obj = dict[str, Any]
Usage = dict[str, Fraction]


# ---------------------------------------------------------------------------------------------
# usage of one object


def _pod_usage(pod: Mapping[str, Any]) -> Usage:
    if (pod.get("status") or {}).get("phase") in TERMINAL_PHASES:
        return {}
    spec = pod.get("spec") or {}
    usage: Usage = {}
    for which in ("requests", "limits"):
        totals, _binary = admissionkit.pod_totals(spec, which)
        for name, value in totals.items():
            usage[f"{which}.{name}"] = value
            if which == "requests" and name in ("cpu", "memory"):
                usage[name] = value
    return usage


def _service_usage(service: Mapping[str, Any]) -> Usage:
    spec = service.get("spec") or {}
    kind = spec.get("type") or "ClusterIP"
    usage: Usage = {}
    if kind == "LoadBalancer":
        usage["services.loadbalancers"] = Fraction(1)
    if kind in ("NodePort", "LoadBalancer"):
        usage["services.nodeports"] = Fraction(len(spec.get("ports") or []))
    return usage


def object_usage(group: str, plural: str, obj: Mapping[str, Any]) -> Usage:
    """Everything one object counts for (before the quota's ``hard`` keys are applied)."""
    counted = f"count/{plural}.{group}" if group else f"count/{plural}"
    usage: Usage = {counted: Fraction(1)}
    if not group and plural in CORE_COUNTS:
        usage[plural] = Fraction(1)
    if not group and plural == "pods":
        compute = _pod_usage(obj)
        if not compute and (obj.get("status") or {}).get("phase") in TERMINAL_PHASES:
            return {}
        usage.update(compute)
    elif not group and plural == "services":
        usage.update(_service_usage(obj))
    elif not group and plural == "persistentvolumeclaims":
        storage = (((obj.get("spec") or {}).get("resources") or {}).get("requests") or {}).get("storage")
        if storage is not None:
            usage["requests.storage"] = admissionkit.parse_quantity(storage)
    return usage


def counted_resource(key: str) -> tuple[str, str] | None:
    """The ``(group, plural)`` a hard key counts, or None for keys counting compute of pods/claims."""
    if key.startswith("count/"):
        plural, _, group = key[len("count/"):].partition(".")
        return group, plural
    if key in CORE_COUNTS:
        return "", key
    if key.startswith("services."):
        return "", "services"
    if key == "requests.storage" or key.endswith(".storageclass.storage.k8s.io/requests.storage"):
        return "", "persistentvolumeclaims"
    return "", "pods"


# ---------------------------------------------------------------------------------------------
# scopes


def _best_effort(pod: Mapping[str, Any]) -> bool:
    spec = pod.get("spec") or {}
    return not any((c.get("resources") or {}).get(which) for field in ("containers", "initContainers")
                   for c in spec.get(field) or [] if isinstance(c, dict) for which in ("requests", "limits"))


def _scope_matches(scope: str, operator: str, values: list[str], pod: Mapping[str, Any]) -> bool:
    spec = pod.get("spec") or {}
    if scope == "Terminating":
        return spec.get("activeDeadlineSeconds") is not None
    if scope == "NotTerminating":
        return spec.get("activeDeadlineSeconds") is None
    if scope == "BestEffort":
        return _best_effort(pod)
    if scope == "NotBestEffort":
        return not _best_effort(pod)
    if scope == "PriorityClass":
        name = spec.get("priorityClassName")
        return {"In": name in values, "NotIn": name not in values, "Exists": bool(name),
                "DoesNotExist": not name}.get(operator, False)
    return False


def quota_applies(quota: Mapping[str, Any], group: str, plural: str, obj: Mapping[str, Any]) -> bool:
    """Whether the quota's scopes select the object (scoped quotas select pods only)."""
    spec = quota.get("spec") or {}
    terms: list[tuple[str, str, list[str]]] = [(str(s), "Exists", []) for s in spec.get("scopes") or []]
    terms += [(str(t.get("scopeName")), str(t.get("operator")), [str(v) for v in t.get("values") or []])
              for t in (spec.get("scopeSelector") or {}).get("matchExpressions") or [] if isinstance(t, dict)]
    if not terms:
        return True
    if group or plural != "pods":
        return False
    return all(_scope_matches(s, op, values, obj) for s, op, values in terms)


def charged(quota: Mapping[str, Any], usage: Usage) -> Usage:
    """The part of ``usage`` the quota limits."""
    hard = (quota.get("spec") or {}).get("hard") or {}
    return {name: value for name, value in usage.items() if name in hard}


# ---------------------------------------------------------------------------------------------
# plugin state


@dataclass
class Pending:
    """An admitted create the cache has not shown yet (counted by recounts until it shows)."""

    group: str
    plural: str
    obj: Obj
    deadline: float


@dataclass
class State:
    """Per app: a lock per namespace (charges and recounts of one namespace never interleave), the
    pending creates, and the reconciler's queue."""

    locks: dict[str, asyncio.Lock] = field(default_factory=dict)
    pending: dict[str, Pending] = field(default_factory=dict)
    namespaces: dict[str, set[str]] = field(default_factory=dict)
    queue: asyncio.Queue[str] = field(default_factory=asyncio.Queue)
    queued: set[str] = field(default_factory=set)

    def lock(self, namespace: str) -> asyncio.Lock:
        return self.locks.setdefault(namespace, asyncio.Lock())

    def schedule(self, namespace: str) -> None:
        if namespace not in self.queued:
            self.queued.add(namespace)
            self.queue.put_nowait(namespace)


def state_of(app: App) -> State:
    holder = app.plugin_state(PLUGIN_NAME)
    if "state" not in holder:
        holder["state"] = State()
    state: State = holder["state"]
    return state


def _format(values: Mapping[str, Fraction], hard: Mapping[str, Any]) -> dict[str, str]:
    return {name: admissionkit.format_quantity(value, admissionkit.is_binary(hard.get(name)))
            for name, value in values.items()}


def _pretty(values: Mapping[str, str]) -> str:
    return ",".join(f"{name}={values[name]}" for name in sorted(values))


# ---------------------------------------------------------------------------------------------
# admission


def _missing_container_resources(quota: Mapping[str, Any], pod: Mapping[str, Any]) -> str:
    """``must specify ...`` for compute resources the quota limits but containers omit, or ""."""
    hard = (quota.get("spec") or {}).get("hard") or {}
    missing: dict[str, list[str]] = {}
    spec = pod.get("spec") or {}
    for key in sorted(k for k in hard if k in CONTAINER_REQUIRED):
        which, name = CONTAINER_REQUIRED[key]
        for container in [*(spec.get("containers") or []), *(spec.get("initContainers") or [])]:
            if name not in ((container.get("resources") or {}).get(which) or {}):
                missing.setdefault(key, []).append(str(container.get("name", "")))
    if not missing:
        return ""
    return "must specify " + "; ".join(f"{key} for: {','.join(sorted(names))}" for key, names in missing.items())


async def _recount_quota(app: App, state: State, quota: Obj) -> Obj | None:
    """The quota with a freshly counted status, or None when its status is already right."""
    namespace = quota["metadata"]["namespace"]
    hard = (quota.get("spec") or {}).get("hard") or {}
    totals: Usage = dict.fromkeys(hard, Fraction(0))
    now = time.monotonic()
    for group, plural in {r for r in map(counted_resource, hard) if r is not None}:
        rt = admissionkit.objects.served(app, group, plural)
        if rt is None:
            continue
        seen = admissionkit.objects.cached_list(app, group, rt.version, plural, namespace)
        keys = set()
        for obj in seen:
            keys.add(obj.get("metadata", {}).get("name"))
            _add(totals, quota, group, plural, obj)
        for key, entry in list(state.pending.items()):
            if entry.deadline < now:
                state.pending.pop(key, None)
            elif (entry.group, entry.plural) == (group, plural) and entry.obj["metadata"].get("namespace") == \
                    namespace and entry.obj["metadata"].get("name") not in keys:
                _add(totals, quota, group, plural, entry.obj)
    status = {"hard": dict(hard), "used": _format({k: totals[k] for k in hard}, hard)}
    if quota.get("status") == status:
        return None
    return {**quota, "status": status}


def _add(totals: Usage, quota: Mapping[str, Any], group: str, plural: str, obj: Mapping[str, Any]) -> None:
    if not quota_applies(quota, group, plural, obj):
        return
    for name, value in charged(quota, object_usage(group, plural, obj)).items():
        if (counted_resource(name) or ("", "")) == (group, plural):
            totals[name] = totals.get(name, Fraction(0)) + value


async def recount(app: App, namespace: str) -> None:
    """Recount every quota of ``namespace`` and write the statuses that changed (guarded)."""
    state = state_of(app)
    async with state.lock(namespace):
        await app.cache.sync()
        for quota in admissionkit.objects.cached_list(app, "", "v1", "resourcequotas", namespace):
            name = quota["metadata"]["name"]

            async def refresh(current: Obj) -> Obj | None:
                return await _recount_quota(app, state, current)

            await admissionkit.objects.update_guarded(app, "", "v1", "resourcequotas", namespace, name, refresh)


async def _charge(request: AdmissionRequest, app: App, quotas: list[Obj], usage: Usage) -> None:
    state = state_of(app)
    group, plural = request.api_group, request.resource
    obj = dict(request.obj or {})

    for listed in quotas:
        name = listed["metadata"]["name"]

        async def check(current: Obj) -> Obj | None:
            if not quota_applies(current, group, plural, obj):
                return None
            delta = charged(current, usage)
            if not delta:
                return None
            hard = (current.get("spec") or {}).get("hard") or {}
            if any(k not in ((current.get("status") or {}).get("used") or {}) for k in delta):
                current = await _recount_quota(app, state, current) or current
            used = admissionkit.quantities((current.get("status") or {}).get("used"))
            limits = admissionkit.quantities(hard)
            new_used = {k: used.get(k, Fraction(0)) + v for k, v in delta.items()}
            failed = sorted(k for k, v in new_used.items() if v > limits[k])
            if failed:
                requested = _pretty(_format({k: delta[k] for k in failed}, hard))
                was = _pretty(_format({k: used.get(k, Fraction(0)) for k in failed}, hard))
                limited = _pretty({k: str(hard[k]) for k in failed})
                raise admissionkit.forbidden(request, f"exceeded quota: {current['metadata']['name']}, requested: "
                                                      f"{requested}, used: {was}, limited: {limited}")
            if request.dry_run:
                return None
            all_used = {**used, **new_used}
            return {**current, "status": {"hard": dict(hard), "used": _format({k: all_used.get(k, Fraction(0))
                                                                              for k in hard}, hard)}}

        await admissionkit.objects.update_guarded(app, "", "v1", "resourcequotas", request.namespace, name, check)
    if not request.dry_run:
        key = f"{group}/{plural}/{request.namespace}/{request.name}"
        meta = {**(obj.get("metadata") or {}), "namespace": request.namespace, "name": request.name}
        state.pending[key] = Pending(group, plural, {**obj, "metadata": meta}, time.monotonic() + PENDING_SECONDS)


@hookimpl
async def kapi_validate_admission(request: AdmissionRequest, app: App) -> None:
    """Check and charge the namespace's quotas for a new object."""
    if request.operation is not Operation.CREATE or not request.namespace or request.subresource \
            or request.obj is None:
        return
    quotas = admissionkit.objects.cached_list(app, "", "v1", "resourcequotas", request.namespace)
    if not quotas and request.namespace in state_of(app).namespaces:  # known to the reconciler, not yet cached
        quotas = await admissionkit.objects.consistent_list(app, "", "v1", "resourcequotas", request.namespace)
    if not quotas:
        return
    usage = object_usage(request.api_group, request.resource, request.obj)
    target = (request.api_group, request.resource)
    relevant = [q for q in quotas if quota_applies(q, *target, request.obj)
                and any(counted_resource(k) == target for k in (q.get("spec") or {}).get("hard") or {})]
    if not relevant:
        return
    if not request.api_group and request.resource == "pods":
        for quota in relevant:
            missing = _missing_container_resources(quota, request.obj)
            if missing:
                raise admissionkit.forbidden(request, f"failed quota: {quota['metadata']['name']}: {missing}")
    async with state_of(app).lock(request.namespace):
        await _charge(request, app, relevant, usage)


# ---------------------------------------------------------------------------------------------
# the reconciler


def _namespace_of(app: App, key: str, prefixes: Iterable[tuple[str, str, str]]) -> tuple[str, str, str] | None:
    for prefix, group, plural in prefixes:
        if key.startswith(prefix):
            namespace = key[len(prefix):].split("/", 1)[0]
            return namespace, group, plural
    return None


async def _watch_deletions(app: App, state: State) -> None:
    """Recount a quota namespace when a counted object goes away (or a pod finishes); forget the
    pending record of objects that showed up."""
    prefixes = sorted(((rt.key_prefix(app.root), rt.group, rt.plural) for rt in app.registry if rt.namespaced),
                      key=lambda p: -len(p[0]))
    while True:
        try:
            revision = await app.storage.current_revision()
            async for event in app.storage.watch(app.root + "/", revision=revision):
                found = _namespace_of(app, event.kv.key, prefixes)
                if found is None:
                    continue
                namespace, group, plural = found
                if event.type is EventType.ADDED:
                    name = event.kv.key.rsplit("/", 1)[-1]
                    state.pending.pop(f"{group}/{plural}/{namespace}/{name}", None)
                    continue
                if namespace not in state.namespaces:
                    continue
                if event.type is EventType.DELETED or (plural == "pods" and not group and _finished(event.kv.value)):
                    state.schedule(namespace)
        except asyncio.CancelledError:
            raise
        except Exception:
            await asyncio.sleep(0.5)


def _finished(value: bytes) -> bool:
    with contextlib.suppress(ValueError):
        return (orjson.loads(value).get("status") or {}).get("phase") in TERMINAL_PHASES
    return False


async def _worker(app: App, state: State) -> None:
    while True:  # kapi_startup runs before the watch cache exists: wait for it
        try:
            app.cache  # noqa: B018 - raises until the app has started
            break
        except RuntimeError:
            await asyncio.sleep(0.01)
    while True:
        namespace = await state.queue.get()
        state.queued.discard(namespace)
        try:
            await recount(app, namespace)
        except asyncio.CancelledError:
            raise
        except Exception:
            state.schedule(namespace)
            await asyncio.sleep(0.5)


async def _resync(app: App, state: State, every: float) -> None:
    while True:
        await asyncio.sleep(every)
        for namespace in list(state.namespaces):
            state.schedule(namespace)


@hookimpl
async def kapi_startup(app: App) -> None:
    """Start the quota reconciler (only when the plugin is enabled)."""
    if PLUGIN_NAME not in app.chains.admission_names:
        return
    state = state_of(app)

    def on_quota(change: Change) -> None:
        meta = change.obj.get("metadata", {})
        namespace, name = str(meta.get("namespace", "")), str(meta.get("name", ""))
        if change.type is EventType.DELETED:
            names = state.namespaces.get(namespace, set())
            names.discard(name)
            if not names:
                state.namespaces.pop(namespace, None)
            return
        state.namespaces.setdefault(namespace, set()).add(name)
        status = change.obj.get("status") or {}
        hard = (change.obj.get("spec") or {}).get("hard") or {}
        if change.type is EventType.ADDED or status.get("hard") != hard or set(status.get("used") or {}) != set(hard):
            state.schedule(namespace)

    every = float(app.config.options_for(PLUGIN_NAME).get("resync_seconds", DEFAULT_RESYNC))
    background = admissionkit.informer.Background(app, PLUGIN_NAME)
    background.spawn(admissionkit.informer.Informer(app, "", "v1", "resourcequotas", on_quota).run(),
                     name="kapi-quota-informer")
    background.spawn(_watch_deletions(app, state), name="kapi-quota-deletions")
    background.spawn(_worker(app, state), name="kapi-quota-worker")
    background.spawn(_resync(app, state, every), name="kapi-quota-resync")


@hookimpl
async def kapi_shutdown(app: App) -> None:
    await admissionkit.informer.Background(app, PLUGIN_NAME).stop()
