"""RBAC (rbac.authorization.k8s.io/v1): roles, clusterroles, rolebindings, clusterrolebindings.

Rules need verbs and, for resource rules, apiGroups and resources; bindings need a valid
``roleRef`` (immutable) and subjects. Roles print with kube's default table (``Created At``);
bindings with ROLE / AGE and the subjects in wide output.
"""

from __future__ import annotations

from typing import Any

from kapi.errors import Cause
from kapi.kinds import fielderrors as fe
from kapi.kinds.access import as_dict, as_list, child_dict, dicts
from kapi.kinds.formats import NAME_PATH_SEGMENT, is_dns1123_subdomain, is_valid_path_segment_name
from kapi.kinds.printing import AGE, CREATED_AT, age
from kapi.resources import ALL_VERBS, Column, ResourceType, Strategy

Obj = dict[str, Any]

GROUP = "rbac.authorization.k8s.io"
SUBJECT_KINDS = ("ServiceAccount", "User", "Group")


def validate_rule(rule: Obj, path: str, namespaced: bool) -> list[Cause]:
    """``ValidatePolicyRule``."""
    errs: list[Cause] = []
    if not as_list(rule.get("verbs")):
        errs.append(fe.required(fe.child(path, "verbs"), "verbs must contain at least one value"))
    urls = as_list(rule.get("nonResourceURLs"))
    if urls:
        if namespaced:
            errs.append(fe.invalid(fe.child(path, "nonResourceURLs"), urls,
                                   "namespaced rules cannot apply to non-resource URLs"))
        if as_list(rule.get("apiGroups")) or as_list(rule.get("resources")) or as_list(rule.get("resourceNames")):
            errs.append(fe.invalid(fe.child(path, "nonResourceURLs"), urls,
                                   "rules cannot apply to both regular resources and non-resource URLs"))
        return errs
    if not as_list(rule.get("apiGroups")):
        errs.append(fe.required(fe.child(path, "apiGroups"), "resource rules must supply at least one api group"))
    if not as_list(rule.get("resources")):
        errs.append(fe.required(fe.child(path, "resources"), "resource rules must supply at least one resource"))
    return errs


def validate_subject(subject: Obj, path: str, namespaced: bool) -> list[Cause]:
    """``ValidateRoleBindingSubject``."""
    errs: list[Cause] = []
    name, kind, group = str(subject.get("name") or ""), subject.get("kind") or "", subject.get("apiGroup") or ""
    if not name:
        errs.append(fe.required(fe.child(path, "name")))
    if kind == "ServiceAccount":
        if name:
            errs.extend(fe.each_invalid(fe.child(path, "name"), name, is_dns1123_subdomain(name)))
        if group:
            errs.append(fe.not_supported(fe.child(path, "apiGroup"), group, ("",)))
        if not namespaced and not subject.get("namespace"):
            errs.append(fe.required(fe.child(path, "namespace")))
    elif kind in ("User", "Group"):
        if group != GROUP:
            errs.append(fe.not_supported(fe.child(path, "apiGroup"), group, (GROUP,)))
    else:
        errs.append(fe.not_supported(fe.child(path, "kind"), kind, SUBJECT_KINDS))
    return errs


def subjects_strings(subjects: Any) -> tuple[str, str, str]:
    """``rbac.SubjectsStrings``: users, groups and ``namespace/name`` service accounts, ", "-joined."""
    users, groups, sas = [], [], []
    for s in dicts(subjects):
        kind, name = s.get("kind"), str(s.get("name") or "")
        if kind == "ServiceAccount":
            sas.append(f"{s.get('namespace') or ''}/{name}")
        elif kind == "User":
            users.append(name)
        elif kind == "Group":
            groups.append(name)
    return ", ".join(users), ", ".join(groups), ", ".join(sas)


class RoleStrategy(Strategy):
    """Roles and ClusterRoles: rules validated; printed with the default table (NAME, CREATED AT).
    Names are path segments (``system:controller:x`` is valid): ``name_format``."""

    name_format = NAME_PATH_SEGMENT

    def __init__(self, namespaced: bool) -> None:
        self.namespaced = namespaced

    def validate(self, obj: Obj) -> list[Cause]:
        errs: list[Cause] = []
        for i, rule in enumerate(dicts(obj.get("rules"))):
            errs.extend(validate_rule(rule, fe.index("rules", i), self.namespaced))
        if not self.namespaced:
            aggregation = as_dict(obj.get("aggregationRule"))
            if obj.get("aggregationRule") is not None and not dicts(aggregation.get("clusterRoleSelectors")):
                errs.append(fe.required("aggregationRule.clusterRoleSelectors", "at least one clusterRoleSelector "
                                                                                "required if aggregationRule is "
                                                                                "non-nil"))
        return errs

    def columns(self) -> list[Column]:
        return [CREATED_AT]

    def cells(self, obj: Obj) -> list[Any]:
        return [as_dict(obj.get("metadata")).get("creationTimestamp")]


class RoleBindingStrategy(Strategy):
    """RoleBindings and ClusterRoleBindings (names are path segments, as for roles)."""

    name_format = NAME_PATH_SEGMENT

    def __init__(self, namespaced: bool) -> None:
        self.namespaced = namespaced
        self.role_kinds = ("Role", "ClusterRole") if namespaced else ("ClusterRole",)

    def default(self, obj: Obj) -> None:
        role_ref = child_dict(obj, "roleRef")
        if not role_ref.get("apiGroup"):
            role_ref["apiGroup"] = GROUP
        for subject in dicts(obj.get("subjects")):
            if not subject.get("apiGroup") and subject.get("kind") in ("User", "Group"):
                subject["apiGroup"] = GROUP

    def validate(self, obj: Obj) -> list[Cause]:
        role_ref = as_dict(obj.get("roleRef"))
        errs: list[Cause] = []
        if role_ref.get("apiGroup") != GROUP:
            errs.append(fe.not_supported("roleRef.apiGroup", role_ref.get("apiGroup") or "", (GROUP,)))
        if role_ref.get("kind") not in self.role_kinds:
            errs.append(fe.not_supported("roleRef.kind", role_ref.get("kind") or "", self.role_kinds))
        name = str(role_ref.get("name") or "")
        if not name:
            errs.append(fe.required("roleRef.name"))
        else:
            errs.extend(fe.each_invalid("roleRef.name", name, is_valid_path_segment_name(name)))
        for i, subject in enumerate(dicts(obj.get("subjects"))):
            errs.extend(validate_subject(subject, fe.index("subjects", i), self.namespaced))
        return errs

    def validate_update(self, obj: Obj, old: Obj) -> list[Cause]:
        errs = self.validate(obj)
        new_ref, old_ref = as_dict(obj.get("roleRef")), as_dict(old.get("roleRef"))
        if new_ref != old_ref:
            fields = (("APIGroup", "apiGroup"), ("Kind", "kind"), ("Name", "name"))
            rendered = fe.GoRepr("rbac.RoleRef{" + ", ".join(
                f"{go_name}:{fe.go_quote(str(new_ref.get(name) or ''))}" for go_name, name in fields) + "}")
            errs.append(fe.invalid("roleRef", rendered, "cannot change roleRef"))
        return errs

    def columns(self) -> list[Column]:
        noun = "roleBinding" if self.namespaced else "clusterRoleBinding"
        return [Column("Role", description="RoleRef can reference a Role in the current namespace or a ClusterRole "
                                           "in the global namespace."), AGE,
                Column("Users", priority=1, description=f"Users in the {noun}"),
                Column("Groups", priority=1, description=f"Groups in the {noun}"),
                Column("ServiceAccounts", priority=1, description=f"ServiceAccounts in the {noun}")]

    def cells(self, obj: Obj) -> list[Any]:
        role_ref = as_dict(obj.get("roleRef"))
        return [f"{role_ref.get('kind') or ''}/{role_ref.get('name') or ''}", age(obj),
                *subjects_strings(obj.get("subjects"))]


def resources() -> list[ResourceType]:
    return [
        ResourceType(GROUP, "v1", "ClusterRoleBinding", "clusterrolebindings", "clusterrolebinding", False,
                     verbs=ALL_VERBS, storage_resource="clusterrolebindings", strategy=RoleBindingStrategy(False)),
        ResourceType(GROUP, "v1", "ClusterRole", "clusterroles", "clusterrole", False, verbs=ALL_VERBS,
                     storage_resource="clusterroles", strategy=RoleStrategy(False)),
        ResourceType(GROUP, "v1", "RoleBinding", "rolebindings", "rolebinding", True, verbs=ALL_VERBS,
                     storage_resource="rolebindings", strategy=RoleBindingStrategy(True)),
        ResourceType(GROUP, "v1", "Role", "roles", "role", True, verbs=ALL_VERBS, storage_resource="roles",
                     strategy=RoleStrategy(True)),
    ]
