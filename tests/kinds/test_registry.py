"""builtin_resources: discovery facts, storage layout, and robustness of every strategy."""

from __future__ import annotations

from typing import Any

import pytest

from kapi.kinds import builtin_resources, name_format
from kapi.resources import Column, Registry, ResourceType

ROOT = "/registry"
ADMISSION = "admissionregistration.k8s.io"


def by_path() -> dict[tuple[str, str], ResourceType]:
    return {(rt.group, rt.plural): rt for rt in builtin_resources()}


def test_resource_set_and_facts() -> None:
    resources = by_path()
    assert set(resources) == {
        ("", "namespaces"), ("", "pods"), ("", "nodes"), ("", "services"), ("", "endpoints"), ("", "configmaps"),
        ("", "secrets"), ("", "serviceaccounts"), ("", "events"), ("events.k8s.io", "events"), ("apps", "deployments"),
        ("apps", "replicasets"), ("coordination.k8s.io", "leases"), ("rbac.authorization.k8s.io", "roles"),
        ("rbac.authorization.k8s.io", "clusterroles"), ("rbac.authorization.k8s.io", "rolebindings"),
        ("rbac.authorization.k8s.io", "clusterrolebindings"), ("authorization.k8s.io", "selfsubjectaccessreviews"),
        ("authorization.k8s.io", "subjectaccessreviews"), ("authorization.k8s.io", "localsubjectaccessreviews"),
        ("authorization.k8s.io", "selfsubjectrulesreviews"), ("authentication.k8s.io", "tokenreviews"),
        ("authentication.k8s.io", "selfsubjectreviews"),
        ("batch", "jobs"), ("batch", "cronjobs"), ("discovery.k8s.io", "endpointslices"),
        ("", "limitranges"), ("", "resourcequotas"), ("scheduling.k8s.io", "priorityclasses"),
        ("apiextensions.k8s.io", "customresourcedefinitions"),
        *((ADMISSION, plural) for plural in ("mutatingwebhookconfigurations", "validatingwebhookconfigurations",
                                             "validatingadmissionpolicies", "validatingadmissionpolicybindings"))}
    assert {k for k, rt in resources.items() if "all" in rt.categories} == {
        ("", "pods"), ("", "services"), ("apps", "deployments"), ("apps", "replicasets"), ("batch", "jobs"),
        ("batch", "cronjobs")}
    assert resources[("", "pods")].subresources == ("binding", "log", "status")
    assert resources[("", "namespaces")].subresources == ("finalize", "status")
    assert resources[("apps", "deployments")].subresources == ("scale", "status")
    assert resources[("", "serviceaccounts")].subresources == ("token",)
    assert resources[("authorization.k8s.io", "selfsubjectaccessreviews")].verbs == ("create",)
    assert resources[("", "nodes")].namespaced is False and resources[("", "namespaces")].namespaced is False
    short = {rt.plural: rt.short_names for rt in resources.values() if rt.short_names}
    assert short == {"namespaces": ("ns",), "pods": ("po",), "nodes": ("no",), "services": ("svc",),
                     "endpoints": ("ep",), "configmaps": ("cm",), "serviceaccounts": ("sa",), "events": ("ev",),
                     "deployments": ("deploy",), "replicasets": ("rs",), "cronjobs": ("cj",),
                     "limitranges": ("limits",), "resourcequotas": ("quota",), "priorityclasses": ("pc",),
                     "customresourcedefinitions": ("crd", "crds")}
    Registry(builtin_resources())  # no duplicates


def test_storage_layout() -> None:
    resources = by_path()
    assert resources[("", "services")].key(ROOT, "ns", "a") == "/registry/services/specs/ns/a"
    assert resources[("", "endpoints")].key(ROOT, "ns", "a") == "/registry/services/endpoints/ns/a"
    assert resources[("", "nodes")].key(ROOT, "", "n") == "/registry/minions/n"
    assert resources[("", "events")].key_prefix(ROOT) == resources[("events.k8s.io", "events")].key_prefix(ROOT)


def test_name_formats() -> None:
    formats = {rt.plural: name_format(rt) for rt in builtin_resources()}
    assert formats["namespaces"] == "dns-label" and formats["services"] == "dns1035-label"
    assert formats["clusterroles"] == formats["rolebindings"] == "path-segment"
    assert formats["pods"] == formats["configmaps"] == "dns-subdomain"


def test_fresh_list_each_call() -> None:
    first = builtin_resources()
    first.clear()
    assert builtin_resources()


@pytest.mark.parametrize("rt", builtin_resources(), ids=lambda rt: f"{rt.group or 'core'}.{rt.plural}")
def test_strategies_tolerate_sparse_objects(rt: ResourceType) -> None:
    strategy = rt.strategy
    columns = strategy.columns()
    assert all(isinstance(c, Column) for c in columns)
    for sparse in ({}, {"metadata": {}, "spec": None, "status": None}):
        obj: dict[str, Any] = dict(sparse)
        assert len(strategy.cells(obj)) == len(columns)
        assert isinstance(strategy.field_values(obj), dict)
        strategy.prepare_for_create(obj)
        strategy.default(obj)
        strategy.validate(obj)
        strategy.validate_update(obj, obj)
