"""kapi.openapi: structure of /openapi/v2 and /openapi/v3 documents (kubectl is run end to end elsewhere)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from openapi_spec_validator import validate

from kapi.openapi import OpenAPI, convert_schema, group_version_path
from kapi.resources import ResourceType
from kapi.schema import load_catalog

CRONTAB = ("stable.example.com", "v1", "CronTab")
RESOURCES = (
    ResourceType("", "v1", "Pod", "pods", "pod", True, short_names=("po",),
                 subresources=("status", "binding", "eviction", "log", "exec", "attach", "portforward",
                               "ephemeralcontainers")),
    ResourceType("", "v1", "Namespace", "namespaces", "namespace", False, subresources=("status", "finalize")),
    ResourceType("", "v1", "ConfigMap", "configmaps", "configmap", True),
    ResourceType("", "v1", "ServiceAccount", "serviceaccounts", "serviceaccount", True, subresources=("token",)),
    ResourceType("apps", "v1", "Deployment", "deployments", "deployment", True, subresources=("status", "scale")),
    ResourceType("rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", "clusterrole", False),
    ResourceType("authorization.k8s.io", "v1", "SelfSubjectAccessReview", "selfsubjectaccessreviews",
                 "selfsubjectaccessreview", False, verbs=("create",)),
    ResourceType(*CRONTAB, "crontabs", "crontab", True),
)
CRONTAB_SCHEMA = {"type": "object", "description": "A cron tab.", "properties": {"spec": {
    "type": "object", "properties": {"cronSpec": {"type": "string"}, "replicas": {"type": "integer"}}}}}


@pytest.fixture(scope="module")
def openapi() -> OpenAPI:
    return OpenAPI(load_catalog(), RESOURCES, extra_schemas={CRONTAB: CRONTAB_SCHEMA})


@pytest.fixture(scope="module")
def v2(openapi: OpenAPI) -> dict[str, Any]:
    return orjson.loads(openapi.v2())


def v3(openapi: OpenAPI, path: str) -> dict[str, Any]:
    data = openapi.v3_group(path)
    assert data is not None
    return orjson.loads(data)


def nodes(value: Any) -> Iterator[dict[str, Any]]:
    """Every mapping inside a document."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            yield item
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def schemas_in(doc: dict[str, Any]) -> Iterator[dict[str, Any]]:
    container = doc.get("definitions") or doc["components"]["schemas"]
    for schema in container.values():
        yield from nodes(schema)


def assert_refs_resolve(doc: dict[str, Any], prefix: str, names: set[str]) -> None:
    refs = {node["$ref"] for node in nodes(doc) if isinstance(node.get("$ref"), str)}
    assert refs
    for ref in refs:
        assert ref.startswith(prefix), ref
        assert ref[len(prefix):] in names, ref


def assert_openapi_types(doc: dict[str, Any]) -> None:
    for node in schemas_in(doc):
        if "type" in node and isinstance(node["type"], (str, list)):
            assert isinstance(node["type"], str), node  # never ["string", "null"]
            assert node["type"] != "null"
        assert "oneOf" not in node and "$defs" not in node


def find_operation(doc: dict[str, Any], method: str, gvk: dict[str, str]) -> dict[str, Any] | None:
    """What kubectl's query-param verifier does: the PATCH operation tagged with the kind."""
    for path in doc["paths"].values():
        op = path.get(method)
        if op and op.get("x-kubernetes-group-version-kind") == gvk:
            return op  # type: ignore[no-any-return]
    return None


# ---------------------------------------------------------------------------------------------
# v2
# ---------------------------------------------------------------------------------------------
def test_v2_document(openapi: OpenAPI, v2: dict[str, Any]) -> None:
    assert v2["swagger"] == "2.0"
    assert v2["info"] == {"title": "Kubernetes", "version": "v1.37.0"}
    assert openapi.v2() is openapi.v2()  # built once, cached as bytes
    definitions = v2["definitions"]
    assert_refs_resolve(v2, "#/definitions/", set(definitions))
    assert_openapi_types(v2)
    assert definitions["io.k8s.apimachinery.pkg.util.intstr.IntOrString"]["format"] == "int-or-string"
    assert definitions["io.k8s.apimachinery.pkg.util.intstr.IntOrString"]["type"] == "string"
    assert definitions["io.k8s.apimachinery.pkg.api.resource.Quantity"]["type"] == "string"
    pod = definitions["io.k8s.api.core.v1.Pod"]
    assert pod["type"] == "object"
    assert pod["x-kubernetes-group-version-kind"] == [{"group": "", "kind": "Pod", "version": "v1"}]
    assert pod["properties"]["apiVersion"] == {"description": pod["properties"]["apiVersion"]["description"],
                                               "type": "string"}  # the enum kubernetes-validate adds is gone
    containers = definitions["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"]
    assert containers["x-kubernetes-patch-merge-key"] == "name"
    assert containers["x-kubernetes-patch-strategy"] == "merge"
    assert containers["items"] == {"$ref": "#/definitions/io.k8s.api.core.v1.Container"}
    assert "com.example.stable.v1.CronTab" in definitions
    assert "io.k8s.api.batch.v1.Job" not in definitions  # only what the served kinds reach


def test_v2_paths(v2: dict[str, Any]) -> None:
    paths = v2["paths"]
    item = paths["/api/v1/namespaces/{namespace}/pods/{name}"]
    assert set(item) == {"get", "put", "patch", "delete", "parameters"}
    assert {p["name"] for p in item["parameters"]} == {"name", "namespace", "pretty"}
    get = item["get"]
    assert get["operationId"] == "readCoreV1NamespacedPod"
    assert get["x-kubernetes-action"] == "get"
    assert get["x-kubernetes-group-version-kind"] == {"group": "", "kind": "Pod", "version": "v1"}
    assert get["responses"]["200"]["schema"] == {"$ref": "#/definitions/io.k8s.api.core.v1.Pod"}
    assert get["tags"] == ["core_v1"]
    patch = item["patch"]
    assert "application/strategic-merge-patch+json" in patch["consumes"]
    assert {p["name"] for p in patch["parameters"]} >= {"body", "fieldValidation", "fieldManager", "dryRun", "force"}
    collection = paths["/api/v1/namespaces/{namespace}/pods"]
    assert collection["get"]["x-kubernetes-action"] == "list"
    assert collection["post"]["x-kubernetes-action"] == "post"
    assert collection["delete"]["x-kubernetes-action"] == "deletecollection"
    assert paths["/api/v1/pods"]["get"]["operationId"] == "listCoreV1PodForAllNamespaces"
    assert paths["/api/v1/watch/namespaces/{namespace}/pods"]["get"]["x-kubernetes-action"] == "watchlist"
    assert paths["/api/v1/namespaces/{namespace}/pods/{name}/binding"]["post"]["x-kubernetes-group-version-kind"] == {
        "group": "", "kind": "Binding", "version": "v1"}
    assert paths["/api/v1/namespaces/{namespace}/pods/{name}/log"]["get"]["responses"]["200"]["schema"] == {
        "type": "string"}
    exec_path = paths["/api/v1/namespaces/{namespace}/pods/{name}/exec"]
    assert exec_path["post"]["x-kubernetes-action"] == "connect"
    assert exec_path["get"]["operationId"] == "connectCoreV1GetNamespacedPodExec"
    scale = paths["/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale"]
    assert scale["get"]["x-kubernetes-group-version-kind"] == {"group": "autoscaling", "kind": "Scale",
                                                               "version": "v1"}
    assert scale["patch"]["operationId"] == "patchAppsV1NamespacedDeploymentScale"
    # cluster-scoped: no namespace, no "ForAllNamespaces" list
    roles = paths["/apis/rbac.authorization.k8s.io/v1/clusterroles/{name}"]
    assert {p["name"] for p in roles["parameters"]} == {"name", "pretty"}
    assert roles["get"]["operationId"] == "readRbacAuthorizationV1ClusterRole"
    assert roles["get"]["tags"] == ["rbacAuthorization_v1"]
    assert "/apis/rbac.authorization.k8s.io/v1/clusterroles" in paths
    # create-only kinds get only their verbs
    review = paths["/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"]
    assert set(review) == {"post", "parameters"}
    assert "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews/{name}" not in paths


def test_v2_is_valid_swagger() -> None:
    small = OpenAPI(load_catalog(), [ResourceType("", "v1", "ConfigMap", "configmaps", "configmap", True)])
    validate(orjson.loads(small.v2()))


# ---------------------------------------------------------------------------------------------
# v3
# ---------------------------------------------------------------------------------------------
def test_v3_index(openapi: OpenAPI) -> None:
    index = orjson.loads(openapi.v3_index())
    expected = {group_version_path(rt.group, rt.version) for rt in RESOURCES}
    assert set(index["paths"]) == expected == set(openapi.v3_paths())
    assert "api/v1" in expected and "apis/apps/v1" in expected
    for path, entry in index["paths"].items():
        data = openapi.v3_group(path)
        assert data is not None
        digest = hashlib.sha512(data).hexdigest().upper()
        assert entry == {"serverRelativeURL": f"/openapi/v3/{path}?hash={digest}"}
        assert openapi.v3_hash(path) == digest
    assert openapi.v3_group("apis/batch/v1") is None and openapi.v3_hash("apis/batch/v1") is None
    assert openapi.v3_group("/apis/apps/v1") == openapi.v3_group("apis/apps/v1")


@pytest.mark.parametrize("path", ["api/v1", "apis/apps/v1", "apis/rbac.authorization.k8s.io/v1",
                                  "apis/stable.example.com/v1"])
def test_v3_group_documents(openapi: OpenAPI, path: str) -> None:
    doc = v3(openapi, path)
    assert doc["openapi"] == "3.0.0"
    assert doc["info"]["version"] == "v1.37.0"
    schemas = doc["components"]["schemas"]
    assert_refs_resolve(doc, "#/components/schemas/", set(schemas))
    assert_openapi_types(doc)
    prefix = f"/{path}/"
    assert all(p.startswith(prefix) for p in doc["paths"]), list(doc["paths"])


def test_v3_documents_hold_only_their_definitions(openapi: OpenAPI) -> None:
    apps = v3(openapi, "apis/apps/v1")["components"]["schemas"]
    assert "io.k8s.api.apps.v1.Deployment" in apps and "io.k8s.api.core.v1.PodSpec" in apps
    assert "io.k8s.api.autoscaling.v1.Scale" in apps
    assert "io.k8s.api.rbac.v1.ClusterRole" not in apps
    assert "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions" in apps
    rbac = v3(openapi, "apis/rbac.authorization.k8s.io/v1")["components"]["schemas"]
    assert "io.k8s.api.core.v1.PodSpec" not in rbac


def test_v3_patch_operations_advertise_field_validation(openapi: OpenAPI) -> None:
    for rt in RESOURCES:
        if "patch" not in rt.verbs:
            continue
        doc = v3(openapi, group_version_path(rt.group, rt.version))
        op = find_operation(doc, "patch", {"group": rt.group, "kind": rt.kind, "version": rt.version})
        assert op is not None, rt.kind
        assert "fieldValidation" in {p["name"] for p in op["parameters"]}
        assert op["x-kubernetes-action"] == "patch"
        body = op["requestBody"]["content"]["application/strategic-merge-patch+json"]["schema"]
        assert body == {"$ref": "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.Patch"}


def test_v3_explain_walk(openapi: OpenAPI) -> None:
    """What `kubectl explain deployment.spec.template.spec.containers.ports` needs: the kind's schema by
    x-kubernetes-group-version-kind, then descriptions and types along the refs."""
    schemas = v3(openapi, "apis/apps/v1")["components"]["schemas"]
    gvk = {"group": "apps", "kind": "Deployment", "version": "v1"}
    (name,) = [n for n, s in schemas.items() if gvk in s.get("x-kubernetes-group-version-kind", [])]
    node = schemas[name]
    for field in ("spec", "template", "spec", "containers", "ports"):
        prop = node["properties"][field]
        assert prop.get("description"), field
        target = prop.get("items", prop)
        if "allOf" in target:  # a reference with a description beside it
            assert "$ref" not in target
            (target,) = target["allOf"]
        node = schemas[target["$ref"].rsplit("/", 1)[-1]] if "$ref" in target else target
    assert node["required"] == ["containerPort"]
    assert node["properties"]["containerPort"] == {
        "description": node["properties"]["containerPort"]["description"], "format": "int32", "type": "integer"}


def test_v3_wraps_references_that_have_siblings(openapi: OpenAPI) -> None:
    schemas = v3(openapi, "apis/apps/v1")["components"]["schemas"]
    strategy = schemas["io.k8s.api.apps.v1.DeploymentSpec"]["properties"]["strategy"]
    assert strategy["allOf"] == [{"$ref": "#/components/schemas/io.k8s.api.apps.v1.DeploymentStrategy"}]
    assert strategy["x-kubernetes-patch-strategy"] == "retainKeys" and strategy["description"]
    containers = schemas["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"]
    assert containers["items"] == {"$ref": "#/components/schemas/io.k8s.api.core.v1.Container"}


def test_v3_custom_kind(openapi: OpenAPI) -> None:
    doc = v3(openapi, "apis/stable.example.com/v1")
    schemas = doc["components"]["schemas"]
    crontab = schemas["com.example.stable.v1.CronTab"]
    assert crontab["x-kubernetes-group-version-kind"] == [{"group": "stable.example.com", "kind": "CronTab",
                                                           "version": "v1"}]
    meta = "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
    assert crontab["properties"]["metadata"] == {"$ref": meta}
    listing = doc["paths"]["/apis/stable.example.com/v1/namespaces/{namespace}/crontabs"]["get"]
    assert listing["operationId"] == "listStableExampleComV1NamespacedCronTab"
    assert listing["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/com.example.stable.v1.CronTabList"}


def test_v3_is_valid_openapi(openapi: OpenAPI) -> None:
    validate(v3(openapi, "apis/rbac.authorization.k8s.io/v1"))
    validate(v3(openapi, "apis/stable.example.com/v1"))


def test_unknown_kind_gets_a_generic_schema() -> None:
    odd = OpenAPI(load_catalog(), [ResourceType("example.com", "v1", "Thing", "things", "thing", True)])
    doc = orjson.loads(odd.v3_group("apis/example.com/v1") or b"{}")
    get = doc["paths"]["/apis/example.com/v1/namespaces/{namespace}/things/{name}"]["get"]
    assert get["responses"]["200"]["content"]["application/json"]["schema"] == {"type": "object"}
    assert_refs_resolve(doc, "#/components/schemas/", set(doc["components"]["schemas"]))


@pytest.mark.parametrize(("schema", "expected"), [
    ({"type": ["string", "null"]}, {"type": "string"}),
    ({"type": "integer", "format": "int32"}, {"type": "integer", "format": "int32"}),
    ({"oneOf": [{"type": ["string", "null"]}, {"type": ["integer", "null"]}]},
     {"type": "string", "format": "int-or-string"}),
    ({"oneOf": [{"type": ["string", "null"]}, {"type": ["number", "null"]}]}, {"type": "string"}),
    ({"$ref": "#/$defs/a.B", "description": "d"}, {"$ref": "#/definitions/a.B", "description": "d"}),
    ({"type": ["array", "null"], "items": {"$ref": "#/$defs/a.B"}},
     {"type": "array", "items": {"$ref": "#/definitions/a.B"}}),
    ({"type": ["object", "null"], "additionalProperties": {"type": ["string", "null"]}},
     {"type": "object", "additionalProperties": {"type": "string"}}),
    ({"type": ["object", "null"], "properties": {"a": {"type": "string"}}, "additionalProperties": False},
     {"type": "object", "properties": {"a": {"type": "string"}}}),
    ({"description": "any JSON"}, {"description": "any JSON"}),
])
def test_convert_schema(schema: dict[str, Any], expected: dict[str, Any]) -> None:
    assert convert_schema(schema, "#/definitions/") == expected
