"""RBAC authorizer (``--authorization-mode=RBAC``): kube-apiserver's role-based access control.

What it decides, exactly as kube-apiserver does:

* A request is allowed when a rule of a role bound to the caller allows it. ClusterRoleBindings
  grant their ClusterRole everywhere; RoleBindings grant their Role or ClusterRole inside the
  binding's namespace. Subjects are ``User`` (the user name), ``Group`` (one of the user's
  groups) and ``ServiceAccount`` (user ``system:serviceaccount:NS:NAME``; a RoleBinding subject
  without a namespace means the binding's namespace).
* A rule allows a resource request when its ``verbs``, ``apiGroups``, ``resources`` and
  ``resourceNames`` match (``*`` matches anything; ``pods/log`` names a subresource and
  ``*/scale`` a subresource of any resource; no ``resourceNames`` means every name), and a
  non-resource request when its ``verbs`` and ``nonResourceURLs`` match (a trailing ``*`` matches
  a prefix). RBAC never denies: anything not allowed is passed to the next authorizer.
* ClusterRoles with an ``aggregationRule`` hold the rules of every ClusterRole matching one of its
  label selectors. The authorizer computes them from the current roles at once, and a small
  controller in the plugin writes them into the stored role (what kube-controller-manager's
  clusterrole-aggregation controller does), so ``kubectl get clusterrole admin -o yaml`` shows them.
* Privilege escalation is refused: creating or updating a Role or ClusterRole whose rules the
  caller does not hold is a 403 unless the caller may ``escalate`` it; creating or updating a
  binding needs the role's rules or the ``bind`` verb on the role; setting an ``aggregationRule``
  needs cluster-admin powers. Members of ``system:masters`` are exempt. This runs as validating
  admission on RBAC objects whenever this authorizer is enabled (``ALWAYS_ADMIT``), whether or not
  it is named in ``--enable-admission-plugins``.
* At startup the bootstrap policy is created when missing (and roles and bindings annotated
  ``rbac.authorization.kubernetes.io/autoupdate: "true"`` get missing rules and subjects back):
  ``cluster-admin``, ``admin``/``edit``/``view`` (aggregated), ``system:basic-user``,
  ``system:discovery``, ``system:public-info-viewer``, ``system:node``, ``system:kube-scheduler``,
  ``system:kube-controller-manager``, the ``system:controller:*`` roles of the controllers, and
  their bindings (``cluster-admin`` to group ``system:masters``, discovery and basic-user to
  ``system:authenticated``, public-info-viewer to everyone, ...).

Members of ``system:masters`` are allowed at once (kube-apiserver's privileged-group shortcut).
Performance: bindings are indexed by subject and roles by name; the index is rebuilt only when an
RBAC object changes (it compares the watch cache's revisions on each call), and each user's
resolved rules and recent decisions are cached, so a decision costs a few dictionary lookups.

The module also offers ``rules_for(user, namespace, app)`` (SelfSubjectRulesReview, ``kubectl auth
can-i --list``). It is longer than most plugins because a plugin is one module: the rule
semantics, the escalation checks and the bootstrap policy belong together.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

from kapi import (
    AUTHENTICATED,
    MASTERS,
    UNAUTHENTICATED,
    AdmissionRequest,
    APIError,
    ConflictError,
    Decision,
    KeyExistsError,
    KeyNotFoundError,
    Operation,
    RequestAttributes,
    UserInfo,
    hookimpl,
)
from kapi.timestamps import now_rfc3339

if TYPE_CHECKING:
    from kapi import App

ALIASES = ("RBAC",)
#: run this plugin's admission hook whenever it is an enabled authorizer (see kapi.app.Chains)
ALWAYS_ADMIT = True
PLUGIN = "authz_rbac"
GROUP = "rbac.authorization.k8s.io"
API_VERSION = f"{GROUP}/v1"
PLURALS = ("clusterroles", "roles", "clusterrolebindings", "rolebindings")
AUTOUPDATE = "rbac.authorization.kubernetes.io/autoupdate"
SA_PREFIX = "system:serviceaccount:"
MEMO_LIMIT = 4096
SET_LIMIT = 8192

Obj = dict[str, Any]
log = logging.getLogger(__name__)


# ---------------------------------------------------------------------------------------------
# rules: matching (RuleAllows) and coverage (Covers), kube's semantics


def _strings(value: Any) -> tuple[str, ...]:
    return tuple(str(v) for v in value) if isinstance(value, list) else ()


@dataclass(frozen=True, slots=True)
class Rule:
    """One PolicyRule. Equality is field by field, in order (kube's semantic equality)."""

    verbs: tuple[str, ...] = ()
    api_groups: tuple[str, ...] = ()
    resources: tuple[str, ...] = ()
    resource_names: tuple[str, ...] = ()
    non_resource_urls: tuple[str, ...] = ()

    @classmethod
    def parse(cls, rule: Any) -> Rule:
        """A rule from its JSON form (malformed fields read as empty)."""
        if not isinstance(rule, Mapping):
            return cls()
        return cls(_strings(rule.get("verbs")), _strings(rule.get("apiGroups")), _strings(rule.get("resources")),
                   _strings(rule.get("resourceNames")), _strings(rule.get("nonResourceURLs")))

    def to_dict(self) -> Obj:
        """The PolicyRule JSON form (empty lists omitted)."""
        out: Obj = {"verbs": list(self.verbs)}
        for key, value in (("apiGroups", self.api_groups), ("resources", self.resources),
                           ("resourceNames", self.resource_names), ("nonResourceURLs", self.non_resource_urls)):
            if value:
                out[key] = list(value)
        return out

    def compact(self) -> str:
        """kube's ``CompactString``: ``{APIGroups:[""], Resources:["pods"], Verbs:["get"]}``."""
        parts = [f"{name}:[{' '.join(orjson.dumps(v).decode() for v in values)}]"
                 for name, values in (("APIGroups", self.api_groups), ("Resources", self.resources),
                                      ("NonResourceURLs", self.non_resource_urls),
                                      ("ResourceNames", self.resource_names), ("Verbs", self.verbs)) if values]
        return "{" + ", ".join(parts) + "}"


def parse_rules(value: Any) -> tuple[Rule, ...]:
    """The rules of a ``rules`` list."""
    return tuple(Rule.parse(r) for r in value) if isinstance(value, list) else ()


class Matcher:
    """A rule compiled for fast matching against request attributes."""

    __slots__ = ("any_group", "any_resource", "any_url", "any_verb", "groups", "names", "resources",
                 "url_prefixes", "urls", "verbs")

    def __init__(self, rule: Rule) -> None:
        self.any_verb = "*" in rule.verbs
        self.verbs = frozenset(rule.verbs)
        self.any_group = "*" in rule.api_groups
        self.groups = frozenset(rule.api_groups)
        self.any_resource = "*" in rule.resources
        self.resources = frozenset(rule.resources)
        self.names = frozenset(rule.resource_names) if rule.resource_names else None
        self.any_url = "*" in rule.non_resource_urls
        self.urls = frozenset(u for u in rule.non_resource_urls if not u.endswith("*"))
        self.url_prefixes = tuple(u.rstrip("*") for u in rule.non_resource_urls if u.endswith("*"))

    def allows(self, a: RequestAttributes) -> bool:
        """``rbac.RuleAllows``."""
        if not (self.any_verb or a.verb in self.verbs):
            return False
        if not a.is_resource_request:
            path = a.path
            return self.any_url or path in self.urls or any(path.startswith(p) for p in self.url_prefixes)
        if not (self.any_group or a.api_group in self.groups):
            return False
        if not self.any_resource:
            sub = a.subresource
            combined = f"{a.resource}/{sub}" if sub else a.resource
            if combined not in self.resources and not (sub and f"*/{sub}" in self.resources):
                return False
        return self.names is None or a.name in self.names


def _has_all(owner: tuple[str, ...], wanted: tuple[str, ...]) -> bool:
    return set(wanted) <= set(owner)


def _resources_cover(owner: tuple[str, ...], wanted: tuple[str, ...]) -> bool:
    if "*" in owner or _has_all(owner, wanted):
        return True
    for path in wanted:
        if path in owner:
            continue
        if "/" not in path or f"*/{path.split('/', 1)[1]}" not in owner:
            return False
    return True


def _url_covers(owner: str, path: str) -> bool:
    return owner == path or (owner.endswith("*") and path.startswith(owner.rstrip("*")))


def rule_covers(owner: Rule, sub: Rule) -> bool:
    """``ruleCovers``: does ``owner`` grant everything ``sub`` grants?"""
    verbs = "*" in owner.verbs or _has_all(owner.verbs, sub.verbs)
    groups = "*" in owner.api_groups or _has_all(owner.api_groups, sub.api_groups)
    resources = _resources_cover(owner.resources, sub.resources)
    urls = all(any(_url_covers(o, path) for o in owner.non_resource_urls) for path in sub.non_resource_urls)
    if not sub.resource_names:
        names = not owner.resource_names
    else:
        names = not owner.resource_names or _has_all(owner.resource_names, sub.resource_names)
    return verbs and groups and resources and urls and names


def breakdown(rule: Rule) -> list[Rule]:
    """``BreakdownRule``: one rule per group/resource/(name)/verb, or per URL/verb."""
    out: list[Rule] = []
    for group in rule.api_groups:
        for resource in rule.resources:
            for verb in rule.verbs:
                if rule.resource_names:
                    out.extend(Rule((verb,), (group,), (resource,), (name,)) for name in rule.resource_names)
                else:
                    out.append(Rule((verb,), (group,), (resource,)))
    for url in rule.non_resource_urls:
        out.extend(Rule((verb,), non_resource_urls=(url,)) for verb in rule.verbs)
    return out


def covers(owner: Sequence[Rule], wanted: Iterable[Rule]) -> list[Rule]:
    """``Covers``: the atomic rules of ``wanted`` that no rule of ``owner`` covers (empty = covered)."""
    missing: list[Rule] = []
    for rule in wanted:
        for atom in breakdown(rule):
            if not any(rule_covers(o, atom) for o in owner):
                missing.append(atom)
    return missing


def compact_rules(rules: Sequence[Rule]) -> list[Rule]:
    """``CompactRules``: merge simple one-group/one-resource rules that differ only by verb."""
    out: list[Rule] = []
    simple: dict[tuple[str, str, tuple[str, ...]], list[str]] = {}
    for rule in rules:
        if (len(rule.api_groups) == 1 and len(rule.resources) == 1 and len(rule.resource_names) <= 1
                and not rule.non_resource_urls):
            simple.setdefault((rule.api_groups[0], rule.resources[0], rule.resource_names), []).extend(rule.verbs)
        else:
            out.append(rule)
    out.extend(Rule(tuple(verbs), (group,), (resource,), names) for (group, resource, names), verbs in simple.items())
    return out


# ---------------------------------------------------------------------------------------------
# label selectors (aggregationRule.clusterRoleSelectors)


def selector_matches(selector: Any, labels: Mapping[str, Any]) -> bool:
    """A metav1.LabelSelector against labels (an empty selector matches everything)."""
    if not isinstance(selector, Mapping):
        return False
    match_labels = selector.get("matchLabels")
    if isinstance(match_labels, Mapping) and any(labels.get(k) != v for k, v in match_labels.items()):
        return False
    for expr in selector.get("matchExpressions") or ():
        if not isinstance(expr, Mapping):
            return False
        key, op, values = str(expr.get("key")), expr.get("operator"), _strings(expr.get("values"))
        present = key in labels
        if (op == "In" and (not present or labels[key] not in values)) or \
                (op == "NotIn" and present and labels[key] in values) or \
                (op == "Exists" and not present) or (op == "DoesNotExist" and present) or \
                op not in ("In", "NotIn", "Exists", "DoesNotExist"):
            return False
    return True


def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    meta = obj.get("metadata")
    return meta if isinstance(meta, Mapping) else {}


def _selectors(obj: Mapping[str, Any]) -> list[Any] | None:
    """The clusterRoleSelectors of an aggregated ClusterRole, or None when it is not aggregated."""
    rule = obj.get("aggregationRule")
    if not isinstance(rule, Mapping):
        return None
    selectors = rule.get("clusterRoleSelectors")
    return list(selectors) if isinstance(selectors, list) else []


# ---------------------------------------------------------------------------------------------
# the policy: an immutable snapshot of the RBAC objects, indexed by subject


SubjectKey = tuple[str, str]  # ("User", name) or ("Group", name)
RoleRef = tuple[str, str]  # (kind, name)


def _subject_key(subject: Any, default_namespace: str) -> SubjectKey | None:
    if not isinstance(subject, Mapping):
        return None
    kind, name = subject.get("kind"), str(subject.get("name") or "")
    if kind in ("User", "Group") and name:
        return kind, name
    if kind == "ServiceAccount" and name:
        namespace = str(subject.get("namespace") or default_namespace)
        return ("User", f"{SA_PREFIX}{namespace}:{name}") if namespace else None
    return None


def _role_ref(obj: Mapping[str, Any]) -> RoleRef | None:
    ref = obj.get("roleRef")
    if not isinstance(ref, Mapping) or not ref.get("name"):
        return None
    return str(ref.get("kind") or ""), str(ref["name"])


def user_keys(user: UserInfo) -> list[SubjectKey]:
    """The subject keys a user answers to: its name and each of its groups."""
    return [("User", user.name), *(("Group", g) for g in user.groups)]


class RuleSet:
    """A user's resolved rules in one namespace, with a memo of recent decisions."""

    __slots__ = ("errors", "matchers", "memo", "rules")

    def __init__(self, rules: tuple[Rule, ...], errors: tuple[str, ...] = ()) -> None:
        self.rules = rules
        self.errors = errors
        self.matchers = tuple(Matcher(r) for r in dict.fromkeys(rules))
        self.memo: dict[tuple[str, ...], bool] = {}

    def allows(self, a: RequestAttributes) -> bool:
        key = (a.verb, a.api_group, a.resource, a.subresource, a.name) if a.is_resource_request else (a.verb, a.path)
        hit = self.memo.get(key)
        if hit is None:
            hit = any(m.allows(a) for m in self.matchers)
            if len(self.memo) >= MEMO_LIMIT:
                self.memo.clear()
            self.memo[key] = hit
        return hit


class Policy:
    """The RBAC objects at one moment: roles by name, bindings by subject, resolved lazily."""

    def __init__(self, clusterroles: Iterable[Obj], roles: Iterable[Obj], clusterrolebindings: Iterable[Obj],
                 rolebindings: Iterable[Obj]) -> None:
        self.clusterroles: dict[str, Obj] = {str(_meta(o).get("name")): o for o in clusterroles}
        self.roles: dict[tuple[str, str], Obj] = {(str(_meta(o).get("namespace")), str(_meta(o).get("name"))): o
                                                  for o in roles}
        self.cluster_subjects: dict[SubjectKey, list[str]] = {}
        for binding in clusterrolebindings:
            ref = _role_ref(binding)
            if ref is None or ref[0] != "ClusterRole":
                continue
            for subject in binding.get("subjects") or ():
                key = _subject_key(subject, "")
                if key is not None:
                    self.cluster_subjects.setdefault(key, []).append(ref[1])
        self.namespace_subjects: dict[str, dict[SubjectKey, list[RoleRef]]] = {}
        for binding in rolebindings:
            ref = _role_ref(binding)
            namespace = str(_meta(binding).get("namespace") or "")
            if ref is None or not namespace:
                continue
            index = self.namespace_subjects.setdefault(namespace, {})
            for subject in binding.get("subjects") or ():
                key = _subject_key(subject, namespace)
                if key is not None:
                    index.setdefault(key, []).append(ref)
        self._clusterrole_rules: dict[str, tuple[Rule, ...]] = {}
        self._role_rules: dict[tuple[str, str], tuple[Rule, ...]] = {}
        self.sets: dict[tuple[Any, ...], RuleSet] = {}

    # -- roles

    def clusterrole_rules(self, name: str, _visiting: frozenset[str] = frozenset()) -> tuple[Rule, ...] | None:
        """The effective rules of a ClusterRole (aggregated ones included), None if it is missing."""
        cached = self._clusterrole_rules.get(name)
        if cached is not None:
            return cached
        obj = self.clusterroles.get(name)
        if obj is None:
            return None
        selectors = _selectors(obj)
        if selectors is None:
            rules = self._clusterrole_rules[name] = parse_rules(obj.get("rules"))
            return rules
        rules = self._aggregate(name, selectors, _visiting | {name})
        if not _visiting:  # a result computed inside a cycle check may be partial: not memoized
            self._clusterrole_rules[name] = rules
        return rules

    def _aggregate(self, name: str, selectors: list[Any], visiting: frozenset[str]) -> tuple[Rule, ...]:
        """The clusterrole-aggregation controller's rule list (recursively, so nested aggregation
        is at its fixed point at once)."""
        out: dict[Rule, None] = {}
        for selector in selectors:
            for other in sorted(self.clusterroles):
                if other in visiting:
                    continue
                labels = _meta(self.clusterroles[other]).get("labels")
                if isinstance(labels, Mapping) and selector_matches(selector, labels):
                    for rule in self.clusterrole_rules(other, visiting) or ():
                        out.setdefault(rule, None)
        return tuple(out)

    def role_ref_rules(self, kind: str, name: str, namespace: str) -> tuple[Rule, ...] | None:
        """``GetRoleReferenceRules``: a binding's role rules (None when the role does not exist)."""
        if kind == "ClusterRole":
            return self.clusterrole_rules(name)
        if kind != "Role":
            return None
        key = (namespace, name)
        cached = self._role_rules.get(key)
        if cached is None:
            obj = self.roles.get(key)
            if obj is None:
                return None
            cached = self._role_rules[key] = parse_rules(obj.get("rules"))
        return cached

    # -- users

    def rules_for(self, user: UserInfo, namespace: str) -> RuleSet:
        """Every rule granted to ``user`` cluster-wide and, if given, in ``namespace`` (cached)."""
        key = (user.name, tuple(user.groups), namespace)
        found = self.sets.get(key)
        if found is not None:
            return found
        keys = user_keys(user)
        rules: list[Rule] = []
        errors: list[str] = []
        for subject in keys:
            for role in self.cluster_subjects.get(subject, ()):
                granted = self.clusterrole_rules(role)
                if granted is None:
                    errors.append(f'clusterrole.{GROUP} "{role}" not found')
                else:
                    rules.extend(granted)
        index = self.namespace_subjects.get(namespace) if namespace else None
        if index:
            for subject in keys:
                for kind, role in index.get(subject, ()):
                    granted = self.role_ref_rules(kind, role, namespace)
                    if granted is None:
                        errors.append(f'{kind.lower()}.{GROUP} "{role}" not found')
                    else:
                        rules.extend(granted)
        found = RuleSet(tuple(rules), tuple(errors))
        if len(self.sets) >= SET_LIMIT:
            self.sets.clear()
        self.sets[key] = found
        return found


def _objects(cache: Any) -> list[Obj]:
    return [c.obj for c in cache.objects.values()] if cache is not None else []


def _marker(cache: Any) -> int:
    """The revision of the last change a ResourceCache applied (0 without a cache)."""
    if cache is None:
        return 0
    window = cache.window
    return int(window[-1].obj.revision) if window else int(cache.window_start)


@dataclass
class State:
    """Per-app state: the watch caches of the RBAC objects and the current policy snapshot."""

    prefixes: dict[str, str]
    caches: tuple[Any, ...] = ()
    dispatcher: Any = None
    seen: int = -1
    markers: tuple[int, ...] = ()
    policy: Policy | None = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def current(self, app: App) -> Policy:
        """The policy as of the watch cache now: rebuilt only when an RBAC object changed (checked
        only when the store's revision moved since the last call)."""
        dispatcher = self.dispatcher
        if dispatcher is None:
            dispatcher = self.dispatcher = app.cache
            self.caches = tuple(dispatcher.route(self.prefixes[p]) if p in self.prefixes else None for p in PLURALS)
        revision = dispatcher.revision
        if revision == self.seen and self.policy is not None:
            return self.policy
        self.seen = revision
        markers = tuple(_marker(c) for c in self.caches)
        if self.policy is None or markers != self.markers:
            self.policy = Policy(*(_objects(c) for c in self.caches))
            self.markers = markers
        return self.policy


def _state(app: App) -> State | None:
    state = app.plugin_state(PLUGIN).get("state")
    return state if isinstance(state, State) else None


def _enabled(app: App) -> bool:
    return any(impl.function is kapi_authorize for impl in app.chains.authorize)


# ---------------------------------------------------------------------------------------------
# authorizer


@hookimpl
def kapi_authorize(attributes: RequestAttributes, app: App) -> Decision | None:
    """Allow when a bound role's rule allows the request; otherwise no opinion."""
    user = attributes.user
    if MASTERS in user.groups:
        return Decision.ALLOW
    state = _state(app)
    if state is None:
        return None
    rules = state.current(app).rules_for(user, attributes.namespace)
    return Decision.ALLOW if rules.allows(attributes) else None


def rules_for(user: UserInfo, namespace: str, app: App) -> Mapping[str, Any]:
    """The caller's rules in ``namespace`` as a SubjectRulesReview status (``resourceRules``,
    ``nonResourceRules``, ``incomplete``, ``evaluationError``): what ``kubectl auth can-i --list``
    shows."""
    state = _state(app)
    if state is None:
        return {"resourceRules": [], "nonResourceRules": [], "incomplete": False}
    found = state.current(app).rules_for(user, namespace)
    resource: list[Obj] = []
    non_resource: list[Obj] = []
    for rule in found.rules:
        if rule.resources:
            entry: Obj = {"verbs": list(rule.verbs), "apiGroups": list(rule.api_groups),
                          "resources": list(rule.resources)}
            if rule.resource_names:
                entry["resourceNames"] = list(rule.resource_names)
            resource.append(entry)
        if rule.non_resource_urls:
            non_resource.append({"verbs": list(rule.verbs), "nonResourceURLs": list(rule.non_resource_urls)})
    out: Obj = {"resourceRules": resource, "nonResourceRules": non_resource, "incomplete": False}
    if found.errors:
        out["evaluationError"] = "; ".join(found.errors)
    return out


# ---------------------------------------------------------------------------------------------
# privilege-escalation prevention (validating admission on RBAC objects)

FULL_AUTHORITY = (Rule(("*",), ("*",), ("*",)), Rule(("*",), non_resource_urls=("*",)))
_GC_FIELDS = ("ownerReferences", "finalizers", "managedFields", "resourceVersion")


def _without_gc_fields(obj: Mapping[str, Any]) -> Obj:
    meta = {k: v for k, v in _meta(obj).items() if k not in _GC_FIELDS}
    return {**obj, "metadata": meta}


def only_gc_fields_changed(obj: Mapping[str, Any], old: Mapping[str, Any]) -> bool:
    """``IsOnlyMutatingGCFields``: only owner references or finalizers differ."""
    return _without_gc_fields(obj) == _without_gc_fields(old)


def _forbidden(resource: str, name: str, why: str) -> APIError:
    qualified = f"{resource}.{GROUP}"
    target = f'{qualified} "{name}"' if name else qualified
    return APIError(403, "Forbidden", f"{target} is forbidden: {why}", group=GROUP, kind=resource, name=name)


def escalation_message(user: UserInfo, missing: Sequence[Rule]) -> str:
    """kube's ``ConfirmNoEscalation`` wording, with the missing rules compacted and sorted."""
    groups = " ".join(orjson.dumps(g).decode() for g in user.groups)
    lines = sorted({r.compact() for r in compact_rules(missing)})
    return (f'user "{user.name}" (groups=[{groups}]) is attempting to grant RBAC permissions not currently held:\n'
            + "\n".join(lines))


def _confirm(policy: Policy, user: UserInfo, namespace: str, wanted: Iterable[Rule], resource: str,
             name: str) -> None:
    owner = policy.rules_for(user, namespace)
    missing = covers(owner.rules, wanted)
    if missing:
        message = escalation_message(user, missing)
        if owner.errors:
            message += f"; resolution errors: [{', '.join(owner.errors)}]"
        raise _forbidden(resource, name, message)


async def _allowed(app: App, user: UserInfo, verb: str, resource: str, name: str, namespace: str,
                   group: str = GROUP) -> bool:
    attributes = RequestAttributes(verb=verb, path="", is_resource_request=True, api_group=group, api_version="*",
                                   resource=resource, namespace=namespace, name=name, user=user)
    return await app.authorize(attributes) is Decision.ALLOW


async def _check_role(request: AdmissionRequest, app: App, policy: Policy) -> None:
    obj, old = request.obj or {}, request.old_obj
    if old is not None and only_gc_fields_changed(obj, old):
        return
    name = request.name if request.operation is Operation.UPDATE else ""
    if await _allowed(app, request.user, "escalate", request.resource, name, request.namespace):
        return
    _confirm(policy, request.user, request.namespace, parse_rules(obj.get("rules")), request.resource, request.name)
    aggregates = _selectors(obj) is not None or (old is not None and _selectors(old) is not None)
    if request.resource == "clusterroles" and aggregates and covers(policy.rules_for(request.user, "").rules,
                                                                    FULL_AUTHORITY):
        raise _forbidden(request.resource, request.name,
                         "must have cluster-admin privileges to use the aggregationRule")


async def _check_binding(request: AdmissionRequest, app: App, policy: Policy) -> None:
    obj, old = request.obj or {}, request.old_obj
    if old is not None and only_gc_fields_changed(obj, old):
        return
    found = obj.get("roleRef")
    ref: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
    kind, role = str(ref.get("kind") or ""), str(ref.get("name") or "")
    plural = {"ClusterRole": "clusterroles", "Role": "roles"}.get(kind)
    if plural is None:
        raise _forbidden(request.resource, request.name, f"unknown roleRef kind {kind!r}")
    if await _allowed(app, request.user, "bind", plural, role, request.namespace, str(ref.get("apiGroup") or GROUP)):
        return
    rules = policy.role_ref_rules(kind, role, request.namespace)
    if rules is None:
        raise _forbidden(request.resource, request.name, f'{plural}.{GROUP} "{role}" not found')
    _confirm(policy, request.user, request.namespace, rules, request.resource, request.name)


@hookimpl
async def kapi_validate_admission(request: AdmissionRequest, app: App) -> None:
    """Refuse roles and bindings that grant more than the caller holds (403)."""
    if request.api_group != GROUP or request.resource not in PLURALS or request.subresource:
        return
    if request.operation not in (Operation.CREATE, Operation.UPDATE) or MASTERS in request.user.groups:
        return
    state = _state(app)
    if state is None:
        return
    policy = state.current(app)
    if request.resource in ("roles", "clusterroles"):
        await _check_role(request, app, policy)
    else:
        await _check_binding(request, app, policy)


# ---------------------------------------------------------------------------------------------
# bootstrap policy (plugin/pkg/auth/authorizer/rbac/bootstrappolicy, kube 1.3x)

READ = ("get", "list", "watch")
WRITE = ("create", "delete", "deletecollection", "patch", "update")
READ_WRITE = READ + WRITE
READ_UPDATE = ("get", "list", "patch", "update", "watch")
CORE, APPS, AUTHN, AUTHZ = "", "apps", "authentication.k8s.io", "authorization.k8s.io"
BATCH, COORD, STORAGE, EXT = "batch", "coordination.k8s.io", "storage.k8s.io", "extensions"
AGG_ADMIN, AGG_EDIT, AGG_VIEW = (f"rbac.authorization.k8s.io/aggregate-to-{x}" for x in ("admin", "edit", "view"))


def r(verbs: str | Sequence[str], groups: str | Sequence[str], resources: str | Sequence[str],
      names: Sequence[str] = ()) -> Rule:
    """A resource rule, lists sorted as kube's rule builder sorts them."""
    def many(v: str | Sequence[str]) -> tuple[str, ...]:
        return tuple(sorted([v] if isinstance(v, str) else v))
    return Rule(many(verbs), many(groups), many(resources), tuple(sorted(names)))


def u(verbs: str | Sequence[str], urls: Sequence[str]) -> Rule:
    """A non-resource rule."""
    return Rule(tuple(sorted([verbs] if isinstance(verbs, str) else verbs)), non_resource_urls=tuple(sorted(urls)))


def _events() -> Rule:
    return r(("create", "patch", "update"), (CORE, "events.k8s.io"), "events")


NODE_RULES = (
    r("create", AUTHN, "tokenreviews"), r("create", AUTHZ, ("localsubjectaccessreviews", "subjectaccessreviews")),
    r(READ, CORE, "services"), r(("create", "get", "list", "watch"), CORE, "nodes"),
    r(("patch", "update"), CORE, "nodes/status"), r(("patch", "update"), CORE, "nodes"),
    r(("create", "patch", "update"), CORE, "events"), r(READ, CORE, "pods"), r(("create", "delete"), CORE, "pods"),
    r(("patch", "update"), CORE, "pods/status"), r("create", CORE, "pods/eviction"),
    r(READ, CORE, ("configmaps", "secrets")), r("get", CORE, ("persistentvolumeclaims", "persistentvolumes")),
    r("get", CORE, "endpoints"), r(("create", "get", "list", "watch"), "certificates.k8s.io",
                                   "certificatesigningrequests"),
    r(("create", "delete", "get", "patch", "update"), COORD, "leases"), r("get", STORAGE, "volumeattachments"),
    r("create", CORE, "serviceaccounts/token"), r(("get", "patch", "update"), CORE, "persistentvolumeclaims/status"),
    r(READ, STORAGE, "csidrivers"), r(("create", "delete", "get", "patch", "update"), STORAGE, "csinodes"),
    r(READ, "node.k8s.io", "runtimeclasses"), r("get", "resource.k8s.io", "resourceclaims"),
    r("deletecollection", "resource.k8s.io", "resourceslices"),
)

SCHEDULER_RULES = (
    _events(), r("create", COORD, "leases"), r(("get", "list", "update", "watch"), COORD, "leases", ["kube-scheduler"]),
    r(READ_WRITE, COORD, "leasecandidates"), r(READ, CORE, "nodes"), r(("delete", *READ), CORE, "pods"),
    r("create", CORE, ("bindings", "pods/binding")), r(("patch", "update"), CORE, "pods/status"),
    r(READ, CORE, ("replicationcontrollers", "services")), r(READ, (APPS, EXT), "replicasets"),
    r(READ, APPS, "statefulsets"), r(READ, "policy", "poddisruptionbudgets"),
    r(READ, CORE, ("persistentvolumeclaims", "persistentvolumes")), r("create", AUTHN, "tokenreviews"),
    r("create", AUTHZ, "subjectaccessreviews"), r(READ, STORAGE, "csinodes"), r(READ, STORAGE, "volumeattachments"),
    r(READ, CORE, "namespaces"), r(READ, STORAGE, "csidrivers"), r(READ, STORAGE, "csistoragecapacities"),
)

EDIT_RULES = (
    r(READ, CORE, ("pods/attach", "pods/exec", "pods/portforward", "pods/proxy", "secrets", "services/proxy")),
    r("impersonate", CORE, "serviceaccounts"),
    r(WRITE, CORE, ("pods", "pods/attach", "pods/exec", "pods/portforward", "pods/proxy")),
    r("create", CORE, "pods/eviction"),
    r(WRITE, CORE, ("configmaps", "events", "persistentvolumeclaims", "replicationcontrollers",
                    "replicationcontrollers/scale", "secrets", "serviceaccounts", "services", "services/proxy")),
    r("create", CORE, "serviceaccounts/token"),
    r(WRITE, APPS, ("daemonsets", "deployments", "deployments/rollback", "deployments/scale", "replicasets",
                    "replicasets/scale", "statefulsets", "statefulsets/scale")),
    r(WRITE, "autoscaling", "horizontalpodautoscalers"), r(WRITE, BATCH, ("cronjobs", "jobs")),
    r(WRITE, EXT, ("daemonsets", "deployments", "deployments/rollback", "deployments/scale", "ingresses",
                   "networkpolicies", "replicasets", "replicasets/scale", "replicationcontrollers/scale")),
    r(WRITE, "policy", "poddisruptionbudgets"), r(WRITE, "networking.k8s.io", ("ingresses", "networkpolicies")),
    r(READ_WRITE, COORD, "leases"),
)

VIEW_RULES = (
    r(READ, CORE, ("configmaps", "endpoints", "persistentvolumeclaims", "persistentvolumeclaims/status", "pods",
                   "replicationcontrollers", "replicationcontrollers/scale", "serviceaccounts", "services",
                   "services/status")),
    r(READ, CORE, ("bindings", "events", "limitranges", "namespaces/status", "pods/log", "pods/status",
                   "replicationcontrollers/status", "resourcequotas", "resourcequotas/status")),
    r(READ, CORE, "namespaces"), r(READ, "discovery.k8s.io", "endpointslices"),
    r(READ, APPS, ("controllerrevisions", "daemonsets", "daemonsets/status", "deployments", "deployments/scale",
                   "deployments/status", "replicasets", "replicasets/scale", "replicasets/status", "statefulsets",
                   "statefulsets/scale", "statefulsets/status")),
    r(READ, "autoscaling", ("horizontalpodautoscalers", "horizontalpodautoscalers/status")),
    r(READ, BATCH, ("cronjobs", "cronjobs/status", "jobs", "jobs/status")),
    r(READ, EXT, ("daemonsets", "daemonsets/status", "deployments", "deployments/scale", "deployments/status",
                  "ingresses", "ingresses/status", "networkpolicies", "replicasets", "replicasets/scale",
                  "replicasets/status", "replicationcontrollers/scale")),
    r(READ, "policy", ("poddisruptionbudgets", "poddisruptionbudgets/status")),
    r(READ, "networking.k8s.io", ("ingresses", "ingresses/status", "networkpolicies")),
)

CLUSTER_ROLES: dict[str, tuple[Rule, ...]] = {
    "cluster-admin": FULL_AUTHORITY,
    "system:discovery": (u("get", ("/api", "/api/*", "/apis", "/apis/*", "/healthz", "/livez", "/openapi",
                                   "/openapi/*", "/readyz", "/version", "/version/")),),
    "system:public-info-viewer": (u("get", ("/healthz", "/livez", "/readyz", "/version", "/version/")),),
    "system:monitoring": (u("get", ("/healthz", "/healthz/*", "/livez", "/livez/*", "/metrics", "/metrics/slis",
                                    "/readyz", "/readyz/*")),),
    "system:basic-user": (r("create", AUTHZ, ("selfsubjectaccessreviews", "selfsubjectrulesreviews")),
                          r("create", AUTHN, "selfsubjectreviews")),
    "system:aggregate-to-admin": (r("create", AUTHZ, "localsubjectaccessreviews"),
                                  r(READ_WRITE, GROUP, ("rolebindings", "roles"))),
    "system:aggregate-to-edit": EDIT_RULES,
    "system:aggregate-to-view": VIEW_RULES,
    "system:auth-delegator": (r("create", AUTHN, "tokenreviews"), r("create", AUTHZ, "subjectaccessreviews")),
    "system:heapster": (r(READ, CORE, ("events", "namespaces", "nodes", "pods")), r(READ, EXT, "deployments")),
    "system:kube-aggregator": (r(READ, CORE, ("endpoints", "services")),),
    "system:kube-controller-manager": (
        _events(), r("create", COORD, "leases"), r(("get", "update"), COORD, "leases", ["kube-controller-manager"]),
        r("create", CORE, ("secrets", "serviceaccounts")), r("delete", CORE, "secrets"),
        r("get", CORE, ("configmaps", "namespaces", "secrets", "serviceaccounts")),
        r("update", CORE, ("secrets", "serviceaccounts")), r("create", AUTHN, "tokenreviews"),
        r("create", AUTHZ, "subjectaccessreviews"), r(("list", "watch"), "*", "*"),
        r("create", CORE, "serviceaccounts/token")),
    "system:kube-dns": (r(("list", "watch"), CORE, ("endpoints", "services")),),
    "system:kube-scheduler": SCHEDULER_RULES,
    "system:volume-scheduler": (r(READ_UPDATE, CORE, "persistentvolumes"), r(READ, STORAGE, "storageclasses"),
                                r(READ_UPDATE, CORE, "persistentvolumeclaims")),
    "system:kubelet-api-admin": (r(READ, CORE, "nodes"), r("proxy", CORE, "nodes"),
                                 r("*", CORE, ("nodes/log", "nodes/metrics", "nodes/proxy", "nodes/stats"))),
    "system:node": NODE_RULES,
    "system:node-bootstrapper": (r(("create", "get", "list", "watch"), "certificates.k8s.io",
                                   "certificatesigningrequests"),),
    "system:node-problem-detector": (r("get", CORE, "nodes"), r("patch", CORE, "nodes/status"), _events()),
    "system:node-proxier": (r(("list", "watch"), CORE, ("endpoints", "services")), r(READ, CORE, "nodes"),
                            _events(), r(("list", "watch"), "discovery.k8s.io", "endpointslices")),
    "system:persistent-volume-provisioner": (
        r(("create", "delete", *READ), CORE, "persistentvolumes"),
        r(("get", "list", "update", "watch"), CORE, "persistentvolumeclaims"), r(READ, STORAGE, "storageclasses"),
        r("watch", CORE, "events"), _events()),
    "system:service-account-issuer-discovery": (u("get", ("/.well-known/openid-configuration",
                                                          "/.well-known/openid-configuration/", "/openid/v1/jwks",
                                                          "/openid/v1/jwks/")),),
    "system:certificates.k8s.io:certificatesigningrequests:nodeclient": (
        r("create", "certificates.k8s.io", "certificatesigningrequests/nodeclient"),),
    "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient": (
        r("create", "certificates.k8s.io", "certificatesigningrequests/selfnodeclient"),),
    **{f"system:certificates.k8s.io:{role}": (r("approve", "certificates.k8s.io", "signers", [f"kubernetes.io/{s}"]),)
       for role, s in (("kube-apiserver-client-approver", "kube-apiserver-client"),
                       ("kube-apiserver-client-kubelet-approver", "kube-apiserver-client-kubelet"),
                       ("kubelet-serving-approver", "kubelet-serving"),
                       ("legacy-unknown-approver", "legacy-unknown"))},
}

#: controller name -> rules; each is bound to service account kube-system/NAME (controller_policy.go)
CONTROLLER_ROLES: dict[str, tuple[Rule, ...]] = {
    "clusterrole-aggregation-controller": (r(("escalate", "get", "list", "patch", "update", "watch"), GROUP,
                                             "clusterroles"),),
    "cronjob-controller": (r(("get", "list", "update", "watch"), BATCH, "cronjobs"),
                           r(("create", "delete", "get", "list", "patch", "update", "watch"), BATCH, "jobs"),
                           r("update", BATCH, "cronjobs/status"), r("update", BATCH, "cronjobs/finalizers"),
                           r(("delete", "list"), CORE, "pods"), _events()),
    "daemon-set-controller": (r(READ, (APPS, EXT), "daemonsets"), r("update", (APPS, EXT), "daemonsets/status"),
                              r("update", (APPS, EXT), "daemonsets/finalizers"), r(("list", "watch"), CORE, "nodes"),
                              r(("create", "delete", "list", "patch", "watch"), CORE, "pods"),
                              r("create", CORE, "pods/binding"),
                              r(("create", "delete", "get", "list", "patch", "update", "watch"), APPS,
                                "controllerrevisions"), _events()),
    "deployment-controller": (r(("get", "list", "update", "watch"), (APPS, EXT), "deployments"),
                              r("update", (APPS, EXT), "deployments/status"),
                              r("update", (APPS, EXT), "deployments/finalizers"),
                              r(("create", "delete", "get", "list", "patch", "update", "watch"), (APPS, EXT),
                                "replicasets"),
                              r(("get", "list", "update", "watch"), CORE, "pods"), _events()),
    "disruption-controller": (r(READ, (APPS, EXT), "deployments"), r(READ, (APPS, EXT), "replicasets"),
                              r(READ, CORE, "replicationcontrollers"), r(READ, "policy", "poddisruptionbudgets"),
                              r(READ, APPS, "statefulsets"), r("update", "policy", "poddisruptionbudgets/status"),
                              r(("patch", "update"), CORE, "pods/status"), r("get", "*", "*/scale"), _events()),
    "endpoint-controller": (r(READ, CORE, ("pods", "services")),
                            r(("create", "delete", "get", "list", "update"), CORE, "endpoints"),
                            r("create", CORE, "endpoints/restricted"), _events()),
    "endpointslice-controller": (r(READ, CORE, ("nodes", "pods", "services")),
                                 r("update", CORE, "services/finalizers"),
                                 r(("create", "delete", "get", "list", "update"), "discovery.k8s.io",
                                   "endpointslices"), _events()),
    "endpointslicemirroring-controller": (r(READ, CORE, ("endpoints", "services")),
                                          r("update", CORE, "services/finalizers"),
                                          r("update", CORE, "endpoints/finalizers"),
                                          r(("create", "delete", "get", "list", "update"), "discovery.k8s.io",
                                            "endpointslices"), _events()),
    "generic-garbage-collector": (r(("delete", "get", "list", "patch", "update", "watch"), "*", "*"), _events()),
    "horizontal-pod-autoscaler": (r(READ, "autoscaling", "horizontalpodautoscalers"),
                                  r("update", "autoscaling", "horizontalpodautoscalers/status"),
                                  r(("get", "update"), "*", "*/scale"), r("list", CORE, "pods"),
                                  r("list", "metrics.k8s.io", "pods"), r(("get", "list"), "custom.metrics.k8s.io", "*"),
                                  r(("get", "list"), "external.metrics.k8s.io", "*"), _events()),
    "job-controller": (r(("get", "list", "patch", "update", "watch"), BATCH, "jobs"), r("update", BATCH, "jobs/status"),
                       r("update", BATCH, "jobs/finalizers"),
                       r(("create", "delete", "list", "patch", "watch"), CORE, "pods"), _events()),
    "namespace-controller": (r(("delete", "get", "list", "watch"), CORE, "namespaces"),
                             r("update", CORE, ("namespaces/finalize", "namespaces/status")),
                             r(("delete", "deletecollection", "get", "list"), "*", "*")),
    "node-controller": (r(("delete", "get", "list", "patch", "update"), CORE, "nodes"),
                        r(("patch", "update"), CORE, "nodes/status"), r(("patch", "update"), CORE, "pods/status"),
                        r(("delete", "get", "list"), CORE, "pods"), _events()),
    "pod-garbage-collector": (r(("delete", "list", "watch"), CORE, "pods"), r(("get", "list"), CORE, "nodes"),
                              r("patch", CORE, "pods/status")),
    "replicaset-controller": (r(("get", "list", "update", "watch"), (APPS, EXT), "replicasets"),
                              r("update", (APPS, EXT), "replicasets/status"),
                              r("update", (APPS, EXT), "replicasets/finalizers"),
                              r(("create", "delete", "list", "patch", "watch"), CORE, "pods"), _events()),
    "replication-controller": (r(("get", "list", "update", "watch"), CORE, "replicationcontrollers"),
                               r("update", CORE, "replicationcontrollers/status"),
                               r("update", CORE, "replicationcontrollers/finalizers"),
                               r(("create", "delete", "list", "patch", "watch"), CORE, "pods"), _events()),
    "resourcequota-controller": (r(("list", "watch"), "*", "*"), r("update", CORE, "resourcequotas/status"),
                                 _events()),
    "root-ca-cert-publisher": (r(("create", "update"), CORE, "configmaps"), _events()),
    "service-account-controller": (r("create", CORE, "serviceaccounts"), _events()),
    "service-controller": (r(READ, CORE, "services"), r(("patch", "update"), CORE, "services/status"),
                           r(("list", "watch"), CORE, "nodes"), _events()),
    "statefulset-controller": (r(("list", "watch"), CORE, "pods"), r(READ, APPS, "statefulsets"),
                               r("update", APPS, "statefulsets/status"), r("update", APPS, "statefulsets/finalizers"),
                               r(("create", "delete", "get", "patch", "update"), CORE, "pods"),
                               r(("create", "delete", "get", "list", "patch", "update", "watch"), APPS,
                                 "controllerrevisions"),
                               r(("create", "get", "list", "watch"), CORE, "persistentvolumeclaims"), _events(),
                               r(("delete", "update"), CORE, "persistentvolumeclaims"),
                               r("update", CORE, "pods/finalizers")),
    "ttl-after-finished-controller": (r(("delete", "get", "list", "watch"), BATCH, "jobs"), _events()),
    "ttl-controller": (r(("list", "patch", "update", "watch"), CORE, "nodes"), _events()),
}

#: aggregated roles: name -> (labels, selector label); edit and view also aggregate upward
AGGREGATED = {"admin": ({}, AGG_ADMIN), "edit": ({AGG_ADMIN: "true"}, AGG_EDIT),
              "view": ({AGG_EDIT: "true"}, AGG_VIEW)}
AGGREGATE_LABELS = {"system:aggregate-to-admin": AGG_ADMIN, "system:aggregate-to-edit": AGG_EDIT,
                    "system:aggregate-to-view": AGG_VIEW}

Subject = tuple[str, str, str]  # kind, name, namespace (service accounts)
CLUSTER_BINDINGS: dict[str, tuple[Subject, ...]] = {
    "cluster-admin": (("Group", MASTERS, ""),),
    "system:basic-user": (("Group", AUTHENTICATED, ""),),
    "system:discovery": (("Group", AUTHENTICATED, ""),),
    "system:public-info-viewer": (("Group", AUTHENTICATED, ""), ("Group", UNAUTHENTICATED, "")),
    "system:monitoring": (("Group", "system:monitoring", ""),),
    "system:kube-controller-manager": (("User", "system:kube-controller-manager", ""),),
    "system:kube-dns": (("ServiceAccount", "kube-dns", "kube-system"),),
    "system:kube-scheduler": (("User", "system:kube-scheduler", ""),),
    "system:volume-scheduler": (("User", "system:kube-scheduler", ""),),
    "system:node": (),
    "system:node-proxier": (("User", "system:kube-proxy", ""),),
    "system:service-account-issuer-discovery": (("Group", "system:serviceaccounts", ""),),
}

#: (namespace, role) -> rules; (namespace, binding) -> (role, subjects)   (namespace_policy.go)
NAMESPACE_ROLES: dict[tuple[str, str], tuple[Rule, ...]] = {
    ("kube-system", "extension-apiserver-authentication-reader"): (
        r(READ, CORE, "configmaps", ["extension-apiserver-authentication"]),),
    ("kube-system", "system::leader-locking-kube-controller-manager"): (
        r("watch", CORE, "configmaps"), r(("get", "update"), CORE, "configmaps", ["kube-controller-manager"])),
    ("kube-system", "system::leader-locking-kube-scheduler"): (
        r("watch", CORE, "configmaps"), r(("get", "update"), CORE, "configmaps", ["kube-scheduler"])),
    ("kube-system", "system:controller:bootstrap-signer"): (r(READ, CORE, "secrets"),),
    ("kube-system", "system:controller:token-cleaner"): (r(("delete", *READ), CORE, "secrets"), _events()),
    ("kube-public", "system:controller:bootstrap-signer"): (
        r(READ, CORE, "configmaps"), r(("patch", "update"), CORE, "configmaps", ["cluster-info"]), _events()),
}
NAMESPACE_BINDINGS: dict[tuple[str, str], tuple[str, tuple[Subject, ...]]] = {
    ("kube-system", "system::extension-apiserver-authentication-reader"): (
        "extension-apiserver-authentication-reader",
        (("User", "system:kube-controller-manager", ""), ("User", "system:kube-scheduler", ""))),
    ("kube-system", "system::leader-locking-kube-controller-manager"): (
        "system::leader-locking-kube-controller-manager",
        (("User", "system:kube-controller-manager", ""),
         ("ServiceAccount", "kube-controller-manager", "kube-system"))),
    ("kube-system", "system::leader-locking-kube-scheduler"): (
        "system::leader-locking-kube-scheduler",
        (("User", "system:kube-scheduler", ""), ("ServiceAccount", "kube-scheduler", "kube-system"))),
    ("kube-system", "system:controller:bootstrap-signer"): (
        "system:controller:bootstrap-signer", (("ServiceAccount", "bootstrap-signer", "kube-system"),)),
    ("kube-system", "system:controller:token-cleaner"): (
        "system:controller:token-cleaner", (("ServiceAccount", "token-cleaner", "kube-system"),)),
    ("kube-public", "system:controller:bootstrap-signer"): (
        "system:controller:bootstrap-signer", (("ServiceAccount", "bootstrap-signer", "kube-system"),)),
}


def _metadata(name: str, namespace: str = "", labels: Mapping[str, str] | None = None) -> Obj:
    meta: Obj = {"name": name, "labels": {"kubernetes.io/bootstrapping": "rbac-defaults", **(labels or {})},
                 "annotations": {AUTOUPDATE: "true"}}
    if namespace:
        meta["namespace"] = namespace
    return meta


def _subjects(subjects: Iterable[Subject]) -> list[Obj]:
    out: list[Obj] = []
    for kind, name, namespace in subjects:
        if kind == "ServiceAccount":
            out.append({"kind": kind, "name": name, "namespace": namespace})
        else:
            out.append({"kind": kind, "apiGroup": GROUP, "name": name})
    return out


def _role(kind: str, name: str, rules: Iterable[Rule], namespace: str = "",
          labels: Mapping[str, str] | None = None) -> Obj:
    return {"apiVersion": API_VERSION, "kind": kind, "metadata": _metadata(name, namespace, labels),
            "rules": [rule.to_dict() for rule in rules]}


def _binding(kind: str, name: str, role_kind: str, role: str, subjects: Iterable[Subject],
             namespace: str = "") -> Obj:
    out: Obj = {"apiVersion": API_VERSION, "kind": kind, "metadata": _metadata(name, namespace),
                "roleRef": {"apiGroup": GROUP, "kind": role_kind, "name": role}}
    listed = _subjects(subjects)
    if listed:
        out["subjects"] = listed
    return out


def bootstrap_objects() -> dict[str, list[Obj]]:
    """The bootstrap policy by plural: clusterroles (aggregated ones already filled), roles and
    their bindings. Fresh dicts on every call."""
    clusterroles = [_role("ClusterRole", name, rules, labels={AGGREGATE_LABELS[name]: "true"}
                          if name in AGGREGATE_LABELS else None) for name, rules in CLUSTER_ROLES.items()]
    clusterroles += [_role("ClusterRole", f"system:controller:{name}", rules)
                     for name, rules in CONTROLLER_ROLES.items()]
    for name, (labels, selector_label) in AGGREGATED.items():
        role = _role("ClusterRole", name, (), labels=labels)
        role["aggregationRule"] = {"clusterRoleSelectors": [{"matchLabels": {selector_label: "true"}}]}
        clusterroles.append(role)
    policy = Policy(clusterroles, (), (), ())
    for role in clusterroles:
        if "aggregationRule" in role:
            role["rules"] = [rule.to_dict() for rule in policy.clusterrole_rules(role["metadata"]["name"]) or ()]
    bindings = [_binding("ClusterRoleBinding", name, "ClusterRole", name, subjects)
                for name, subjects in CLUSTER_BINDINGS.items()]
    bindings += [_binding("ClusterRoleBinding", f"system:controller:{name}", "ClusterRole",
                          f"system:controller:{name}", (("ServiceAccount", name, "kube-system"),))
                 for name in CONTROLLER_ROLES]
    roles = [_role("Role", name, rules, namespace) for (namespace, name), rules in NAMESPACE_ROLES.items()]
    role_bindings = [_binding("RoleBinding", name, "Role", role, subjects, namespace)
                     for (namespace, name), (role, subjects) in NAMESPACE_BINDINGS.items()]
    return {"clusterroles": clusterroles, "clusterrolebindings": bindings, "roles": roles,
            "rolebindings": role_bindings}




def _stored(obj: Mapping[str, Any]) -> bytes:
    """The stored form of an object: JSON without ``metadata.resourceVersion``."""
    meta = {k: v for k, v in _meta(obj).items() if k != "resourceVersion"}
    return orjson.dumps({**obj, "metadata": meta})


def reconciled(existing: Obj, wanted: Obj) -> Obj | None:
    """kube's reconciliation of an ``autoupdate`` bootstrap object: missing rules, aggregation
    selectors and subjects are added back. None when nothing is missing or updates are off."""
    if _meta(existing).get("annotations", {}).get(AUTOUPDATE) == "false":
        return None
    out = {**existing}
    changed = False
    if "roleRef" in wanted:
        have = [s for s in existing.get("subjects") or () if isinstance(s, Mapping)]
        extra = [s for s in wanted.get("subjects", ()) if s not in have]
        if extra:
            out["subjects"], changed = [*have, *extra], True
    elif "aggregationRule" in wanted:
        have_selectors = _selectors(existing) or []
        extra = [s for s in wanted["aggregationRule"]["clusterRoleSelectors"] if s not in have_selectors]
        if extra:
            out["aggregationRule"], changed = {"clusterRoleSelectors": [*have_selectors, *extra]}, True
    else:
        have_rules = parse_rules(existing.get("rules"))
        extra_rules = [rule for rule in parse_rules(wanted.get("rules")) if covers(have_rules, (rule,))]
        if extra_rules:
            out["rules"], changed = [*(x.to_dict() for x in have_rules), *(x.to_dict() for x in extra_rules)], True
    return out if changed else None


async def ensure_bootstrap_policy(app: App) -> int:
    """Create the bootstrap roles and bindings that are missing, and reconcile ``autoupdate``
    ones. Returns the number of objects written. Reads each prefix once."""
    written = 0
    for plural, objects in bootstrap_objects().items():
        rt = app.registry.lookup(GROUP, "v1", plural)
        if rt is None:
            continue
        page = await app.storage.list(rt.key_prefix(app.root))
        existing = {kv.key: kv for kv in page.items}
        for obj in objects:
            meta = obj["metadata"]
            key = rt.key(app.root, meta.get("namespace", ""), meta["name"])
            found = existing.get(key)
            if found is None:
                meta["uid"], meta["creationTimestamp"] = str(uuid.uuid4()), now_rfc3339()
                with contextlib.suppress(KeyExistsError):
                    await app.storage.create(key, _stored(obj))
                    written += 1
                continue
            update = reconciled(orjson.loads(found.value), obj)
            if update is not None:
                with contextlib.suppress(ConflictError, KeyNotFoundError):
                    await app.storage.update(key, _stored(update), expected_revision=found.revision)
                    written += 1
    return written


# ---------------------------------------------------------------------------------------------
# clusterrole aggregation (kube-controller-manager's clusterrole-aggregation controller)


async def aggregate_once(app: App, state: State) -> int:
    """Write the effective rules into every aggregated ClusterRole whose stored rules differ.
    Each write is guarded by the cached revision; a conflict is retried on the next event."""
    policy = state.current(app)
    cache = state.caches[0]
    written = 0
    for cached in list(cache.objects.values()) if cache is not None else ():
        obj = cached.obj
        if _selectors(obj) is None:
            continue
        wanted = policy.clusterrole_rules(str(_meta(obj).get("name"))) or ()
        if parse_rules(obj.get("rules")) == wanted:
            continue
        try:
            await app.storage.update(cached.key, _stored({**obj, "rules": [rule.to_dict() for rule in wanted]}),
                                     expected_revision=cached.revision)
            written += 1
        except (ConflictError, KeyNotFoundError):
            continue
    return written


async def _cache_ready(app: App) -> Any:
    while True:
        try:
            return app.cache
        except RuntimeError:
            await asyncio.sleep(0.02)


async def run_aggregation(app: App, state: State) -> None:
    """Follow ClusterRole changes and keep aggregated roles filled, until cancelled."""
    dispatcher = await _cache_ready(app)
    state.current(app)
    cache = state.caches[0]
    if cache is None:
        return
    prefix = state.prefixes["clusterroles"]
    while True:
        subscription = dispatcher.subscribe(cache, prefix, dispatcher.revision)
        if subscription is None:
            await asyncio.sleep(0.1)
            continue
        _, watcher = subscription
        try:
            await aggregate_once(app, state)
            async for _event in watcher.events():
                while not watcher.queue.empty() and not watcher.overflowed:  # one pass per burst
                    watcher.queue.get_nowait()
                if watcher.overflowed:
                    break
                await aggregate_once(app, state)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.warning("clusterrole aggregation failed; resubscribing", exc_info=True)
            await asyncio.sleep(0.5)
        finally:
            dispatcher.unsubscribe(cache, watcher)


# ---------------------------------------------------------------------------------------------
# lifecycle


@hookimpl
async def kapi_startup(app: App) -> None:
    """When RBAC is an enabled authorizer: create the bootstrap policy and start aggregation."""
    if not _enabled(app):
        return
    prefixes = {p: rt.key_prefix(app.root) for p in PLURALS if (rt := app.registry.lookup(GROUP, "v1", p))}
    state = State(prefixes)
    app.plugin_state(PLUGIN)["state"] = state
    await ensure_bootstrap_policy(app)
    state.tasks.append(asyncio.get_running_loop().create_task(run_aggregation(app, state),
                                                              name="kapi-rbac-aggregation"))


@hookimpl
async def kapi_shutdown(app: App) -> None:
    """Stop the aggregation task."""
    state = _state(app)
    if state is None:
        return
    for task in state.tasks:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
    state.tasks.clear()
    app.plugin_state(PLUGIN).pop("state", None)
