"""Discovery documents: legacy and aggregated shapes, as kube-apiserver serves them."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from kapi.discovery import (
    Discovery,
    aggregated_etag,
    negotiate_aggregated,
    storage_version_hash,
    version_sort_key,
)
from kapi.kinds import builtin_resources
from kapi.resources import ResourceType

KUBECTL_ACCEPT = ("application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,"
                  "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json")


@pytest.fixture(scope="module")
def discovery() -> Discovery:
    return Discovery(builtin_resources())


def load(data: bytes | None) -> Any:
    assert data is not None
    return orjson.loads(data)


def by_name(resources: list[dict[str, Any]], key: str = "name") -> dict[str, dict[str, Any]]:
    return {r[key]: r for r in resources}


def test_api_versions(discovery: Discovery) -> None:
    assert load(discovery.api()) == {"kind": "APIVersions", "versions": ["v1"]}
    with_address = Discovery(builtin_resources(), server_address="10.0.0.1:6443")
    assert load(with_address.api())["serverAddressByClientCIDRs"] == [
        {"clientCIDR": "0.0.0.0/0", "serverAddress": "10.0.0.1:6443"}]


def test_core_resource_list(discovery: Discovery) -> None:
    doc = load(discovery.api_v1())
    assert doc["kind"] == "APIResourceList" and doc["groupVersion"] == "v1" and "apiVersion" not in doc
    names = [r["name"] for r in doc["resources"]]
    assert names == sorted(names)
    resources = by_name(doc["resources"])
    assert resources["pods"] == {
        "name": "pods", "singularName": "pod", "namespaced": True, "kind": "Pod",
        "verbs": ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"],
        "shortNames": ["po"], "categories": ["all"], "storageVersionHash": "xPOwRZ+Yhw8="}
    assert resources["pods/status"] == {"name": "pods/status", "singularName": "", "namespaced": True, "kind": "Pod",
                                        "verbs": ["get", "patch", "update"]}
    assert resources["pods/binding"]["kind"] == "Binding" and resources["pods/binding"]["verbs"] == ["create"]
    assert resources["pods/log"]["verbs"] == ["get"]
    assert resources["namespaces"]["verbs"] == ["create", "delete", "get", "list", "patch", "update", "watch"]
    assert resources["namespaces"]["namespaced"] is False
    assert resources["namespaces/finalize"]["verbs"] == ["update"]
    assert resources["serviceaccounts/token"] == {
        "name": "serviceaccounts/token", "singularName": "", "namespaced": True, "group": "authentication.k8s.io",
        "version": "v1", "kind": "TokenRequest", "verbs": ["create"]}
    assert resources["services"]["shortNames"] == ["svc"] and resources["services"]["categories"] == ["all"]
    assert resources["endpoints"]["singularName"] == "endpoints"
    assert "secrets" in resources and "shortNames" not in resources["secrets"]
    assert set(resources) >= {"configmaps", "events", "nodes", "nodes/status", "services/status"}


def test_groups(discovery: Discovery) -> None:
    doc = load(discovery.apis())
    assert doc["kind"] == "APIGroupList" and doc["apiVersion"] == "v1"
    names = [g["name"] for g in doc["groups"]]
    assert names == ["apps", "events.k8s.io", "authentication.k8s.io", "authorization.k8s.io", "batch",
                     "rbac.authorization.k8s.io", "admissionregistration.k8s.io", "apiextensions.k8s.io",
                     "scheduling.k8s.io",
                     "coordination.k8s.io", "discovery.k8s.io"]
    apps = load(discovery.group("apps"))
    assert apps == {"kind": "APIGroup", "apiVersion": "v1", "name": "apps",
                    "versions": [{"groupVersion": "apps/v1", "version": "v1"}],
                    "preferredVersion": {"groupVersion": "apps/v1", "version": "v1"}}
    assert discovery.group("nope") is None
    assert discovery.group_version("apps", "v2") is None


def test_group_version_resource_list(discovery: Discovery) -> None:
    doc = load(discovery.group_version("apps", "v1"))
    assert doc["apiVersion"] == "v1" and doc["groupVersion"] == "apps/v1"
    resources = by_name(doc["resources"])
    assert resources["deployments/scale"] == {
        "name": "deployments/scale", "singularName": "", "namespaced": True, "group": "autoscaling", "version": "v1",
        "kind": "Scale", "verbs": ["get", "patch", "update"]}
    assert resources["replicasets"]["shortNames"] == ["rs"]
    ssar = by_name(load(discovery.group_version("authorization.k8s.io", "v1"))["resources"])
    assert ssar["selfsubjectaccessreviews"] == {
        "name": "selfsubjectaccessreviews", "singularName": "selfsubjectaccessreview", "namespaced": False,
        "kind": "SelfSubjectAccessReview", "verbs": ["create"]}
    events = by_name(load(discovery.group_version("events.k8s.io", "v1"))["resources"])
    assert events["events"]["storageVersionHash"] == storage_version_hash("", "v1", "Event")


def test_aggregated_core(discovery: Discovery) -> None:
    doc = load(discovery.aggregated_api())
    assert doc["kind"] == "APIGroupDiscoveryList" and doc["apiVersion"] == "apidiscovery.k8s.io/v2"
    assert doc["metadata"] == {}
    [core] = doc["items"]
    assert core["metadata"] == {"creationTimestamp": None}
    [v1] = core["versions"]
    assert v1["version"] == "v1" and v1["freshness"] == "Current"
    pods = by_name(v1["resources"], "resource")["pods"]
    assert pods == {
        "resource": "pods", "responseKind": {"group": "", "version": "", "kind": "Pod"}, "scope": "Namespaced",
        "singularResource": "pod", "verbs": ["create", "delete", "deletecollection", "get", "list", "patch", "update",
                                             "watch"],
        "shortNames": ["po"], "categories": ["all"],
        "subresources": [
            {"subresource": "binding", "responseKind": {"group": "", "version": "", "kind": "Binding"},
             "verbs": ["create"]},
            {"subresource": "log", "responseKind": {"group": "", "version": "", "kind": "Pod"}, "verbs": ["get"]},
            {"subresource": "status", "responseKind": {"group": "", "version": "", "kind": "Pod"},
             "verbs": ["get", "patch", "update"]}]}
    nodes = by_name(v1["resources"], "resource")["nodes"]
    assert nodes["scope"] == "Cluster" and "categories" not in nodes


def test_aggregated_groups(discovery: Discovery) -> None:
    doc = load(discovery.aggregated_apis())
    names = [item["metadata"]["name"] for item in doc["items"]]
    assert names[0] == "apps" and "" not in names
    apps = doc["items"][0]
    assert apps["metadata"] == {"name": "apps", "creationTimestamp": None}
    deployments = by_name(apps["versions"][0]["resources"], "resource")["deployments"]
    assert deployments["subresources"][0] == {
        "subresource": "scale", "responseKind": {"group": "autoscaling", "version": "v1", "kind": "Scale"},
        "verbs": ["get", "patch", "update"]}
    beta = load(discovery.aggregated_apis("v2beta1"))
    assert beta["apiVersion"] == "apidiscovery.k8s.io/v2beta1" and beta["items"] == doc["items"]


def test_etags_and_negotiation(discovery: Discovery) -> None:
    etag = discovery.aggregated_apis_etag()
    assert etag.startswith('"') and etag.endswith('"') and etag == aggregated_etag(discovery.aggregated_apis())
    assert discovery.aggregated_api_etag() != etag
    assert negotiate_aggregated(KUBECTL_ACCEPT) == "v2"
    assert negotiate_aggregated("application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList") == \
        "v2beta1"
    assert negotiate_aggregated("application/json, */*") is None
    assert negotiate_aggregated("") is None


def test_version_ordering_and_custom_groups() -> None:
    assert sorted(["v1beta1", "v1alpha1", "v2", "v1", "foo"], key=version_sort_key) == \
        ["v2", "v1", "v1beta1", "v1alpha1", "foo"]
    extra = [ResourceType("example.com", version, "Widget", "widgets", "widget", True)
             for version in ("v1beta1", "v1")]
    discovery = Discovery([*builtin_resources(), *extra])
    group = load(discovery.group("example.com"))
    assert [v["version"] for v in group["versions"]] == ["v1", "v1beta1"]
    assert group["preferredVersion"]["version"] == "v1"
    assert [g["name"] for g in load(discovery.apis())["groups"]][-1] == "example.com"
