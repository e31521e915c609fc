"""Node authorizer (``--authorization-mode=Node``): what a kubelet may read and write.

A kubelet authenticates as user ``system:node:NAME`` in group ``system:nodes`` (the kubelet
client certificate ``CN=system:node:NAME, O=system:nodes``). For such callers this authorizer,
like kube-apiserver's, confines the kubelet to its own node through a graph of the objects bound
to it, built from the watch cache (pods with ``spec.nodeName`` = NAME, and what those pods
reference):

* ``get`` (and ``list``/``watch`` by name) of **secrets** and **configmaps** referenced by a pod
  bound to the node (volumes, projected sources, ``env``/``envFrom``, ``imagePullSecrets``, CSI
  and flex volume secret references);
* ``get`` of **persistentvolumeclaims** used by its pods (plus ``update``/``patch`` of their
  ``status``), and of the **persistentvolumes** those claims are bound to;
* ``create`` of **serviceaccounts/token** for service accounts its pods run as;
* ``get`` of **pods** bound to it, and ``update``/``patch`` of their ``status``;
* its own **Node** (``get``, ``update``, ``patch``, ``delete``, and ``nodes/status``) and its own
  **Lease** in ``kube-node-lease`` (``get``, ``create``, ``update``, ``patch``, ``delete``).

Everything else is checked against the ``system:node`` role's rules (kube's static node rules):
creating nodes and mirror pods, events, evictions, CSR, reading services and the like. NodeRestriction
admission narrows those writes further (its own Node on create, mirror pods bound to itself).

Not narrowed here, as in kube-apiserver before field-selector authorization: ``list``/``watch`` of
pods and nodes are allowed by the static rules, because kapi's request attributes do not carry the
request's field selector (``spec.nodeName=NAME``) that kube 1.32+ checks. Persistent volumes'
own secret references are not followed.

Requests from any other user get no opinion (the next authorizer decides), so the usual setting
is ``--authorization-mode=Node,RBAC``. ``rules_for`` reports node users as incomplete, like kube.
The graph follows the pods' watch-cache events incrementally (a full rebuild only after the cache
window was lost), so a decision costs a few dictionary lookups.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from kapi import Decision, EventType, RequestAttributes, UserInfo, hookimpl

if TYPE_CHECKING:
    from kapi import App

ALIASES = ("Node",)
PLUGIN = "authz_node"
NODES_GROUP = "system:nodes"
NODE_PREFIX = "system:node:"
LEASE_NAMESPACE = "kube-node-lease"
READ = frozenset({"get", "list", "watch"})
LEASE_VERBS = frozenset({"get", "create", "update", "patch", "delete"})

Obj = dict[str, Any]

#: kube's NodeRules (the system:node role) for what the graph does not subdivide:
#: (apiGroup, resource[/subresource]) -> verbs
STATIC_RULES: dict[tuple[str, str], frozenset[str]] = {
    (group, resource): frozenset(verbs) for group, resource, verbs in (
        ("authentication.k8s.io", "tokenreviews", ("create",)),
        ("authorization.k8s.io", "subjectaccessreviews", ("create",)),
        ("authorization.k8s.io", "localsubjectaccessreviews", ("create",)),
        ("", "services", ("get", "list", "watch")),
        ("", "nodes", ("create", "get", "list", "watch", "update", "patch")),
        ("", "nodes/status", ("update", "patch")),
        ("", "events", ("create", "update", "patch")),
        ("", "pods", ("get", "list", "watch", "create", "delete")),
        ("", "pods/status", ("update", "patch")),
        ("", "pods/eviction", ("create",)),
        ("", "endpoints", ("get",)),
        ("certificates.k8s.io", "certificatesigningrequests", ("create", "get", "list", "watch")),
        ("storage.k8s.io", "volumeattachments", ("get",)),
        ("storage.k8s.io", "csidrivers", ("get", "list", "watch")),
        ("storage.k8s.io", "csinodes", ("create", "delete", "get", "patch", "update")),
        ("node.k8s.io", "runtimeclasses", ("get", "list", "watch")),
        ("resource.k8s.io", "resourceclaims", ("get",)),
        ("resource.k8s.io", "resourceslices", ("deletecollection",)),
    )
}

_SECRET_VOLUME_REFS = ("azureFile", "cephfs", "cinder", "flexVolume", "iscsi", "rbd", "scaleIO", "storageos")


def node_name(user: UserInfo) -> str | None:
    """The node a kubelet identity speaks for: NAME of ``system:node:NAME`` in ``system:nodes``;
    ``""`` for a member of the group with another name; None for everyone else."""
    if NODES_GROUP not in user.groups:
        return None
    return user.name[len(NODE_PREFIX):] if user.name.startswith(NODE_PREFIX) else ""


# ---------------------------------------------------------------------------------------------
# the graph: pod -> node, and pod -> the objects it references


def _dicts(value: Any) -> Iterator[Mapping[str, Any]]:
    if isinstance(value, list):
        yield from (v for v in value if isinstance(v, Mapping))


def _get(obj: Any, *path: str) -> Any:
    for step in path:
        if not isinstance(obj, Mapping):
            return None
        obj = obj.get(step)
    return obj


def _containers(spec: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    for key in ("initContainers", "containers", "ephemeralContainers"):
        yield from _dicts(spec.get(key))


def pod_references(pod: Mapping[str, Any]) -> frozenset[tuple[str, str]]:
    """The ``(resource, name)`` objects a pod uses in its namespace: secrets, configmaps,
    persistentvolumeclaims and its serviceaccount (kube's graph_populator edges)."""
    found = pod.get("spec")
    spec: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
    pod_name = str(_get(pod, "metadata", "name") or "")
    refs: set[tuple[str, str]] = set()

    def add(resource: str, name: Any) -> None:
        if isinstance(name, str) and name:
            refs.add((resource, name))

    add("serviceaccounts", spec.get("serviceAccountName") or spec.get("serviceAccount"))
    for secret in _dicts(spec.get("imagePullSecrets")):
        add("secrets", secret.get("name"))
    for container in _containers(spec):
        for env in _dicts(container.get("env")):
            add("secrets", _get(env, "valueFrom", "secretKeyRef", "name"))
            add("configmaps", _get(env, "valueFrom", "configMapKeyRef", "name"))
        for source in _dicts(container.get("envFrom")):
            add("secrets", _get(source, "secretRef", "name"))
            add("configmaps", _get(source, "configMapRef", "name"))
    for volume in _dicts(spec.get("volumes")):
        add("secrets", _get(volume, "secret", "secretName"))
        add("configmaps", _get(volume, "configMap", "name"))
        add("persistentvolumeclaims", _get(volume, "persistentVolumeClaim", "claimName"))
        if isinstance(volume.get("ephemeral"), Mapping):
            add("persistentvolumeclaims", f"{pod_name}-{volume.get('name')}")
        add("secrets", _get(volume, "csi", "nodePublishSecretRef", "name"))
        add("secrets", _get(volume, "azureFile", "secretName"))
        for kind in _SECRET_VOLUME_REFS:
            add("secrets", _get(volume, kind, "secretRef", "name"))
        for source in _dicts(_get(volume, "projected", "sources")):
            add("secrets", _get(source, "secret", "name"))
            add("configmaps", _get(source, "configMap", "name"))
    return frozenset(refs)


@dataclass
class Graph:
    """Pods bound to nodes and the objects they reference, kept in step with the pods' cache."""

    pods: dict[tuple[str, str], tuple[str, frozenset[tuple[str, str]]]] = field(default_factory=dict)
    by_node: dict[str, set[tuple[str, str]]] = field(default_factory=dict)
    edges: dict[tuple[str, str, str, str], int] = field(default_factory=dict)
    revision: int = -1

    def remove(self, key: tuple[str, str]) -> None:
        found = self.pods.pop(key, None)
        if found is None:
            return
        node, refs = found
        pods = self.by_node.get(node)
        if pods is not None:
            pods.discard(key)
            if not pods:
                del self.by_node[node]
        for resource, name in refs:
            edge = (node, resource, key[0], name)
            count = self.edges.get(edge, 0) - 1
            if count > 0:
                self.edges[edge] = count
            else:
                self.edges.pop(edge, None)

    def put(self, pod: Mapping[str, Any]) -> None:
        key = (str(_get(pod, "metadata", "namespace") or ""), str(_get(pod, "metadata", "name") or ""))
        self.remove(key)
        node = _get(pod, "spec", "nodeName")
        if not isinstance(node, str) or not node:
            return
        refs = pod_references(pod)
        self.pods[key] = (node, refs)
        self.by_node.setdefault(node, set()).add(key)
        for resource, name in refs:
            edge = (node, resource, key[0], name)
            self.edges[edge] = self.edges.get(edge, 0) + 1

    def rebuild(self, pods: Iterable[Mapping[str, Any]]) -> None:
        self.pods.clear()
        self.by_node.clear()
        self.edges.clear()
        for pod in pods:
            self.put(pod)

    def follow(self, cache: Any) -> None:
        """Apply the pods' cache events since the last call (rebuild when the window lost them)."""
        window = cache.window
        marker = int(window[-1].obj.revision) if window else int(cache.window_start)
        if marker == self.revision:
            return
        if self.revision >= 0 and cache.covers(self.revision):
            fresh = []
            for event in reversed(window):
                if event.obj.revision <= self.revision:
                    break
                fresh.append(event)
            for event in reversed(fresh):
                if event.type is EventType.DELETED:
                    meta = _get(event.obj.obj, "metadata") or {}
                    self.remove((str(meta.get("namespace") or ""), str(meta.get("name") or "")))
                else:
                    self.put(event.obj.obj)
        else:
            self.rebuild(c.obj for c in list(cache.objects.values()))
        self.revision = marker

    def uses(self, node: str, resource: str, namespace: str, name: str) -> bool:
        return (node, resource, namespace, name) in self.edges

    def has_pod(self, node: str, namespace: str, name: str) -> bool:
        found = self.pods.get((namespace, name))
        return found is not None and found[0] == node


# ---------------------------------------------------------------------------------------------
# decisions


@dataclass
class State:
    """Per-app state: the graph and the caches it reads."""

    graph: Graph = field(default_factory=Graph)
    pods: Any = None
    claims: Any = None
    claim_prefix: str = ""
    ready: bool = False

    def current(self, app: App) -> Graph:
        if not self.ready:
            pods = app.registry.lookup("", "v1", "pods")
            claims = app.registry.lookup("", "v1", "persistentvolumeclaims")
            self.pods = app.cache.route(pods.key_prefix(app.root)) if pods is not None else None
            if claims is not None:
                self.claim_prefix = claims.key_prefix(app.root)
                self.claims = app.cache.route(self.claim_prefix)
            self.ready = True
        if self.pods is not None:
            self.graph.follow(self.pods)
        return self.graph

    def claim_volume(self, namespace: str, claim: str) -> str:
        if self.claims is None:
            return ""
        cached = self.claims.objects.get(f"{self.claim_prefix}{namespace}/{claim}")
        return str(_get(cached.obj, "spec", "volumeName") or "") if cached is not None else ""


def _state(app: App) -> State:
    holder = app.plugin_state(PLUGIN)
    state = holder.get("state")
    if not isinstance(state, State):
        state = holder["state"] = State()
    return state


def _static(a: RequestAttributes) -> Decision | None:
    if not a.is_resource_request:
        return None
    resource = f"{a.resource}/{a.subresource}" if a.subresource else a.resource
    verbs = STATIC_RULES.get((a.api_group, resource))
    return Decision.ALLOW if verbs is not None and a.verb in verbs else None


def _allow(ok: bool) -> Decision | None:
    return Decision.ALLOW if ok else None


def _referenced(node: str, a: RequestAttributes, app: App, verbs: frozenset[str]) -> Decision | None:
    """Reads of an object a pod on ``node`` references (secrets, configmaps, claims)."""
    if a.verb not in verbs or a.subresource or not a.namespace or not a.name:
        return None
    return _allow(_state(app).current(app).uses(node, a.resource, a.namespace, a.name))


def _volume(node: str, a: RequestAttributes, app: App) -> Decision | None:
    """``get`` of a persistent volume bound to a claim a pod on ``node`` uses."""
    if a.verb != "get" or a.subresource or not a.name:
        return None
    state = _state(app)
    graph = state.current(app)
    for namespace, pod in graph.by_node.get(node, ()):
        for resource, claim in graph.pods[(namespace, pod)][1]:
            if resource == "persistentvolumeclaims" and state.claim_volume(namespace, claim) == a.name:
                return Decision.ALLOW
    return None


def _pod(node: str, a: RequestAttributes, app: App) -> Decision | None:
    bound = (a.verb == "get" and not a.subresource) or (a.subresource == "status" and a.verb in ("update", "patch"))
    if bound:
        return _allow(bool(a.name) and _state(app).current(app).has_pod(node, a.namespace, a.name))
    return _static(a)


def _node(node: str, a: RequestAttributes) -> Decision | None:
    if a.verb == "create" and not a.subresource:
        return Decision.ALLOW
    if not a.name:  # list / watch (see the module docs)
        return _static(a)
    if a.name != node:
        return None
    if a.subresource == "status":
        return _allow(a.verb in ("update", "patch", "get"))
    return _allow(not a.subresource and a.verb in ("get", "update", "patch", "delete"))


def _lease(node: str, a: RequestAttributes) -> Decision | None:
    if a.verb not in LEASE_VERBS or a.subresource or a.namespace != LEASE_NAMESPACE:
        return None
    return _allow(a.verb == "create" or a.name == node)


def decide(node: str, a: RequestAttributes, app: App) -> Decision | None:
    """The decision for a request of the kubelet of ``node``."""
    if not a.is_resource_request:
        return None
    group, resource = a.api_group, a.resource
    if group == "":
        if resource in ("secrets", "configmaps"):
            return _referenced(node, a, app, READ)
        if resource == "persistentvolumeclaims":
            if a.subresource == "status":
                if a.verb not in ("update", "patch", "get"):
                    return None
                return _allow(bool(a.name) and _state(app).current(app).uses(node, resource, a.namespace, a.name))
            return _referenced(node, a, app, frozenset({"get"}))
        if resource == "persistentvolumes":
            return _volume(node, a, app)
        if resource == "serviceaccounts":
            if a.verb != "create" or a.subresource != "token" or not a.name:
                return None
            return _allow(_state(app).current(app).uses(node, resource, a.namespace, a.name))
        if resource == "pods":
            return _pod(node, a, app)
        if resource == "nodes":
            return _node(node, a)
    elif group == "coordination.k8s.io" and resource == "leases":
        return _lease(node, a)
    return _static(a)


@hookimpl
def kapi_authorize(attributes: RequestAttributes, app: App) -> Decision | None:
    """Decide for kubelets (``system:node:NAME``); no opinion for everyone else."""
    node = node_name(attributes.user)
    if not node:
        return None
    return decide(node, attributes, app)


def rules_for(user: UserInfo, namespace: str, app: App) -> Mapping[str, Any]:
    """Node permissions are not enumerable (kube answers the same): incomplete for kubelets."""
    out: Obj = {"resourceRules": [], "nonResourceRules": [], "incomplete": False}
    if node_name(user) is not None:
        out["incomplete"] = True
        out["evaluationError"] = "node authorizer does not support user rule resolution"
    return out
