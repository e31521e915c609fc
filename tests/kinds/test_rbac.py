"""RBAC kinds: rule and binding validation, defaults and tables."""

from __future__ import annotations

import copy
from typing import Any

from kapi.kinds.rbac import RoleBindingStrategy, RoleStrategy

from .helpers import ago, messages

ROLE = RoleStrategy(namespaced=True)
CLUSTER_ROLE = RoleStrategy(namespaced=False)
BINDING = RoleBindingStrategy(namespaced=True)
CLUSTER_BINDING = RoleBindingStrategy(namespaced=False)


def obj(**fields: Any) -> dict[str, Any]:
    return {"metadata": {"name": "x", "creationTimestamp": "2024-01-02T03:04:05Z"}, **fields}


def test_role_rules() -> None:
    assert ROLE.validate(obj(rules=[{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}])) == []
    assert messages(ROLE.validate(obj(rules=[{"apiGroups": [""], "resources": ["pods"]}]))) == [
        "rules[0].verbs: Required value: verbs must contain at least one value"]
    assert messages(ROLE.validate(obj(rules=[{"verbs": ["get"]}]))) == [
        "rules[0].apiGroups: Required value: resource rules must supply at least one api group",
        "rules[0].resources: Required value: resource rules must supply at least one resource"]
    assert messages(ROLE.validate(obj(rules=[{"verbs": ["get"], "nonResourceURLs": ["/healthz"]}]))) == [
        'rules[0].nonResourceURLs: Invalid value: []string{"/healthz"}: namespaced rules cannot apply to '
        "non-resource URLs"]
    assert CLUSTER_ROLE.validate(obj(rules=[{"verbs": ["get"], "nonResourceURLs": ["/healthz"]}])) == []


def test_role_table_is_the_default_table() -> None:
    [column] = ROLE.columns()
    assert (column.name, column.type) == ("Created At", "date")
    assert ROLE.cells(obj()) == ["2024-01-02T03:04:05Z"]


def binding(**fields: Any) -> dict[str, Any]:
    fields.setdefault("roleRef", {"kind": "ClusterRole", "name": "view"})
    fields.setdefault("subjects", [{"kind": "User", "name": "alice"},
                                   {"kind": "ServiceAccount", "name": "bot", "namespace": "ci"},
                                   {"kind": "Group", "name": "devs"}])
    value = obj(**fields)
    value["metadata"]["creationTimestamp"] = ago(hours=1)
    return value


def test_binding_defaults_validation_and_table() -> None:
    rb = binding()
    BINDING.default(rb)
    assert rb["roleRef"]["apiGroup"] == "rbac.authorization.k8s.io"
    assert rb["subjects"][0]["apiGroup"] == "rbac.authorization.k8s.io" and "apiGroup" not in rb["subjects"][1]
    assert BINDING.validate(rb) == []
    assert [(c.name, c.priority) for c in BINDING.columns()] == [
        ("Role", 0), ("Age", 0), ("Users", 1), ("Groups", 1), ("ServiceAccounts", 1)]
    assert BINDING.cells(rb) == ["ClusterRole/view", "60m", "alice", "devs", "ci/bot"]
    changed = copy.deepcopy(rb)
    changed["roleRef"]["name"] = "edit"
    assert messages(BINDING.validate_update(changed, rb)) == [
        'roleRef: Invalid value: rbac.RoleRef{APIGroup:"rbac.authorization.k8s.io", Kind:"ClusterRole", '
        'Name:"edit"}: cannot change roleRef']


def test_binding_errors() -> None:
    crb = binding(roleRef={"kind": "Role", "name": "x"}, subjects=[{"kind": "ServiceAccount", "name": "bot"},
                                                                   {"kind": "Robot", "name": "r"}])
    CLUSTER_BINDING.default(crb)
    assert messages(CLUSTER_BINDING.validate(crb)) == [
        'roleRef.kind: Unsupported value: "Role": supported values: "ClusterRole"',
        "subjects[0].namespace: Required value",
        'subjects[1].kind: Unsupported value: "Robot": supported values: "ServiceAccount", "User", "Group"']
    assert messages(BINDING.validate(binding(roleRef={"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                                                      "name": "a/b"}, subjects=[]))) == [
        'roleRef.name: Invalid value: "a/b": may not contain \'/\'']
