"""The API server's metrics, with kube-apiserver's names and labels where they exist.

One ``Metrics`` per app (no global registry), served at ``GET /metrics``:

* ``apiserver_request_total{verb,dry_run,group,version,resource,subresource,scope,component,code}``
  and ``apiserver_request_duration_seconds`` (histogram, same labels but ``code``). Verbs as
  kube-apiserver reports them: GET, LIST, WATCH, POST, PUT, PATCH, APPLY, DELETE,
  DELETECOLLECTION; scope ``resource``/``namespace``/``cluster``;
* ``apiserver_current_inflight_requests{request_kind}`` (``readOnly``/``mutating``; watches are
  not counted) and ``apiserver_longrunning_requests{...}`` (open watches);
* ``apiserver_storage_objects{resource}`` and ``apiserver_registered_watchers{group,version,kind}``
  (read from the watch cache when scraped);
* ``etcd_request_duration_seconds{operation,type}`` (every storage call; ``type`` is the
  resource's storage prefix, e.g. ``pods``, whatever the backend);
* ``authentication_duration_seconds{result}`` and ``authentication_attempts{result}``;
  ``apiserver_authorization_decisions_total{type,name,decision}``;
  ``apiserver_admission_controller_admission_duration_seconds{name,operation,rejected,type}``;
* kapi's own ``kapi_plugin_duration_seconds{hook,plugin}``: every plugin call of the pipeline.

With ``--workers N`` each process has its own metrics (scrape each, or sum).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from kapi.observability.prom import Collected, Counter, Gauge, Histogram, Labels, Registry
from kapi.observability.trace import RequestTrace, Step

if TYPE_CHECKING:
    from kapi.app import App
    from kapi.requestinfo import RequestInfo

REQUEST_BUCKETS = (0.005, 0.025, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 1.25, 1.5, 2, 3, 4, 5, 6, 8, 10, 15, 20, 30,
                   45, 60)
AUTH_BUCKETS = tuple(0.001 * 2**i for i in range(15))
ADMISSION_BUCKETS = (0.005, 0.025, 0.1, 0.5, 1.0, 2.5)
PLUGIN_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)

REQUEST_LABELS = ("verb", "dry_run", "group", "version", "resource", "subresource", "scope", "component")
COMPONENT = "apiserver"
VERBS = {"get": "GET", "list": "LIST", "watch": "WATCH", "create": "POST", "update": "PUT", "patch": "PATCH",
         "delete": "DELETE", "deletecollection": "DELETECOLLECTION"}
MUTATING = frozenset({"create", "update", "patch", "delete", "deletecollection"})
ADMISSION_TYPES = {"kapi_mutate_admission": "admit", "kapi_validate_admission": "validate"}


def reported_verb(info: RequestInfo, content_type: str = "") -> str:
    """kube-apiserver's ``verb`` label for a request."""
    if not info.is_resource_request:
        return info.verb.upper()
    if info.verb == "patch" and content_type.startswith("application/apply-patch"):
        return "APPLY"
    return VERBS.get(info.verb, info.verb.upper())


def request_labels(info: RequestInfo, dry_run: bool, content_type: str = "") -> Labels:
    """The label values of ``apiserver_request_*`` for a request (``REQUEST_LABELS`` order)."""
    if not info.is_resource_request:
        return (reported_verb(info), "", "", "", "", "", "", COMPONENT)
    scope = "resource" if info.name else ("namespace" if info.namespace else "cluster")
    return (reported_verb(info, content_type), "All" if dry_run else "", info.api_group, info.api_version,
            info.resource, info.subresource, scope, COMPONENT)


class Metrics:
    """Every metric of one app (see the module docstring)."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.registry = registry = Registry()
        self.requests = registry.add(Counter("apiserver_request_total", "Counter of apiserver requests broken out "
                                             "for each verb, dry run value, group, version, resource, scope, "
                                             "component, and HTTP response code.", (*REQUEST_LABELS, "code")))
        self.duration = registry.add(Histogram("apiserver_request_duration_seconds", "Response latency "
                                               "distribution in seconds for each verb, dry run value, group, "
                                               "version, resource, subresource, scope and component.",
                                               REQUEST_LABELS, buckets=REQUEST_BUCKETS))
        self.inflight = registry.add(Gauge("apiserver_current_inflight_requests", "Maximal number of currently "
                                           "used inflight request limit of this apiserver per request kind in "
                                           "last second.", ("request_kind",)))
        self.inflight.set(("mutating",), 0)
        self.inflight.set(("readOnly",), 0)
        self.longrunning = registry.add(Gauge("apiserver_longrunning_requests", "Gauge of all active long-running "
                                              "apiserver requests broken out by verb, group, version, resource, "
                                              "scope and component.", REQUEST_LABELS))
        registry.add(Collected("apiserver_storage_objects", "Number of stored objects at the time of last check "
                               "split by kind.", ("resource",), self._storage_objects))
        registry.add(Collected("apiserver_registered_watchers", "Number of currently registered watchers for a "
                               "given resources", ("group", "version", "kind"), self._watchers))
        self.etcd = registry.add(Histogram("etcd_request_duration_seconds", "Etcd request latency in seconds for "
                                           "each operation and object type.", ("operation", "type"),
                                           buckets=REQUEST_BUCKETS))
        self.authn_duration = registry.add(Histogram("authentication_duration_seconds", "Authentication duration "
                                                     "in seconds broken out by result.", ("result",),
                                                     buckets=AUTH_BUCKETS))
        self.authn_attempts = registry.add(Counter("authentication_attempts", "Counter of authenticated "
                                                   "attempts.", ("result",)))
        self.authz_decisions = registry.add(Counter("apiserver_authorization_decisions_total", "Total number of "
                                                    "terminal decisions made by an authorizer split by authorizer "
                                                    "type, name, and decision.", ("type", "name", "decision")))
        self.admission = registry.add(Histogram("apiserver_admission_controller_admission_duration_seconds",
                                                "Admission controller latency histogram in seconds, identified by "
                                                "name and broken out for each operation and API resource and type "
                                                "(validate or admit).", ("name", "operation", "rejected", "type"),
                                                buckets=ADMISSION_BUCKETS))
        self.plugins = registry.add(Histogram("kapi_plugin_duration_seconds", "Latency of each plugin call of the "
                                              "request pipeline, by hook and plugin.", ("hook", "plugin"),
                                              buckets=PLUGIN_BUCKETS))

    # -- observations --------------------------------------------------------------------------

    def plugin_call(self, hook: str, step: Step, kwargs: Mapping[str, Any]) -> None:
        """One plugin call of the pipeline (the trace's observer)."""
        self.plugins.observe((hook, step.plugin), step.seconds)
        if hook == "kapi_authorize" and step.outcome in ("allow", "deny"):
            kind = getattr(self.app.pm.get_plugin(step.plugin), "ALIASES", (step.plugin,))[:1] or (step.plugin,)
            self.authz_decisions.inc((kind[0], step.plugin, "allowed" if step.outcome == "allow" else "denied"))
        elif hook in ADMISSION_TYPES:
            request = kwargs.get("request")
            operation = request.operation.value if request is not None else ""
            rejected = "true" if step.outcome in ("rejected", "error") else "false"
            self.admission.observe((step.plugin, operation, rejected, ADMISSION_TYPES[hook]), step.seconds)

    def request_done(self, labels: Labels, code: int, seconds: float, trace: RequestTrace) -> None:
        """A finished request: the request counter and histogram, and authentication's totals."""
        self.requests.inc((*labels, str(code)))
        self.duration.observe(labels, seconds)
        authn = [s for s in trace.steps if s.stage == "authenticate"]
        if authn:
            last = authn[-1].outcome
            result = "success" if last == "recognised" else ("error" if last == "error" else "failure")
            self.authn_duration.observe((result,), sum(s.seconds for s in authn))
            self.authn_attempts.inc((result,))

    # -- scrape-time collectors ----------------------------------------------------------------

    def _caches(self) -> Iterator[tuple[Any, Any]]:
        try:
            caches = self.app.cache.caches
        except RuntimeError:  # not started
            return
        for rt in self.app.registry:
            cache = caches.get(rt.key_prefix(self.app.root))
            if cache is not None:
                yield rt, cache

    def _storage_objects(self) -> Iterator[tuple[Labels, float]]:
        for rt, cache in self._caches():
            yield (rt.qualified,), float(len(cache.objects))

    def _watchers(self) -> Iterator[tuple[Labels, float]]:
        for rt, cache in self._caches():
            if cache.watchers:
                yield (rt.group, rt.version, rt.kind), float(len(cache.watchers))

    def render(self) -> bytes:
        return self.registry.render()
