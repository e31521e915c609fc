"""Path + method -> RequestInfo, table-driven (the shapes listed in kapi.requestinfo)."""

from __future__ import annotations

import pytest

from kapi.requestinfo import parse

CASES = [
    # method, path, query, verb, group, version, namespace, resource, subresource, name
    ("GET", "/api/v1/pods", "", "list", "", "v1", "", "pods", "", ""),
    ("GET", "/api/v1/pods", "watch=1", "watch", "", "v1", "", "pods", "", ""),
    ("GET", "/api/v1/namespaces/ns1/pods", "watch=true", "watch", "", "v1", "ns1", "pods", "", ""),
    ("GET", "/api/v1/watch/namespaces/ns1/pods", "", "watch", "", "v1", "ns1", "pods", "", ""),
    ("GET", "/api/v1/namespaces/ns1/pods/p", "", "get", "", "v1", "ns1", "pods", "", "p"),
    ("PUT", "/api/v1/namespaces/ns1/pods/p/status", "", "update", "", "v1", "ns1", "pods", "status", "p"),
    ("POST", "/api/v1/namespaces/ns1/pods/p/binding", "", "create", "", "v1", "ns1", "pods", "binding", "p"),
    ("POST", "/api/v1/namespaces/ns1/configmaps", "", "create", "", "v1", "ns1", "configmaps", "", ""),
    ("DELETE", "/api/v1/namespaces/ns1/configmaps", "", "deletecollection", "", "v1", "ns1", "configmaps", "", ""),
    ("DELETE", "/api/v1/namespaces/ns1/configmaps/c", "", "delete", "", "v1", "ns1", "configmaps", "", "c"),
    ("PATCH", "/apis/apps/v1/namespaces/d/deployments/x/scale", "", "patch", "apps", "v1", "d", "deployments",
     "scale", "x"),
    ("GET", "/api/v1/namespaces/ns1", "", "get", "", "v1", "ns1", "namespaces", "", "ns1"),
    ("PUT", "/api/v1/namespaces/ns1/finalize", "", "update", "", "v1", "ns1", "namespaces", "finalize", "ns1"),
    ("GET", "/api/v1/namespaces", "", "list", "", "v1", "", "namespaces", "", ""),
    ("GET", "/api/v1/nodes/n1/status", "", "get", "", "v1", "", "nodes", "status", "n1"),
    ("GET", "/api/v1/namespaces/a/secrets", "fieldSelector=metadata.name%3Ds1&watch=1", "watch", "", "v1", "a",
     "secrets", "", "s1"),
    ("GET", "/api/v1/namespaces/a/secrets", "fieldSelector=metadata.name%3D%3Ds1", "list", "", "v1", "a",
     "secrets", "", "s1"),
    ("GET", "/apis/rbac.authorization.k8s.io/v1/clusterroles", "", "list", "rbac.authorization.k8s.io", "v1", "",
     "clusterroles", "", ""),
]


@pytest.mark.parametrize(("method", "path", "query", "verb", "group", "version", "ns", "resource", "sub", "name"),
                         CASES)
def test_resource_paths(method: str, path: str, query: str, verb: str, group: str, version: str, ns: str,
                        resource: str, sub: str, name: str) -> None:
    info = parse(method, path, query)
    assert info.is_resource_request
    assert (info.verb, info.api_group, info.api_version, info.namespace, info.resource, info.subresource,
            info.name) == (verb, group, version, ns, resource, sub, name)


@pytest.mark.parametrize("path", ["/", "/api", "/api/v1", "/apis", "/apis/apps", "/apis/apps/v1", "/version",
                                  "/healthz", "/openapi/v3/apis/apps/v1", "/api/v1/watch",
                                  "/api/v1/namespaces/a/pods/b/c/d"])
def test_non_resource_paths(path: str) -> None:
    info = parse("GET", path)
    assert not info.is_resource_request and info.verb == "get" and info.path == path


def test_attributes_carry_the_user() -> None:
    from kapi import UserInfo

    attrs = parse("GET", "/api/v1/pods").attributes(UserInfo("u"))
    assert attrs.user.name == "u" and attrs.is_read_only
