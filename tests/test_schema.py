"""kapi.schema: the catalog of Kubernetes 1.37 definitions and resolved navigation."""

from __future__ import annotations

import subprocess
import sys

import pytest

from kapi.schema import SchemaCatalog, SchemaNode, custom_definition_name, definitions_path, load_catalog

CORE = "io.k8s.api.core.v1"
META = "io.k8s.apimachinery.pkg.apis.meta.v1"


@pytest.fixture(scope="module")
def catalog() -> SchemaCatalog:
    return load_catalog()


def walk(node: SchemaNode | None, *steps: str) -> SchemaNode:
    """Follow properties ("name"), array items ("[]") and map values ("{}")."""
    for step in steps:
        assert node is not None, steps
        if step == "[]":
            node = node.items
        elif step == "{}":
            node = node.additional
        else:
            node = node.child(step)
    assert node is not None, steps
    return node


def test_loaded_once_and_shared() -> None:
    assert load_catalog() is load_catalog()
    assert definitions_path().name == "_definitions.json"
    assert definitions_path().parent.name == "v1.37.0-local"


def test_loading_is_fast_and_does_not_import_kubernetes_validate() -> None:
    code = ("import sys, time; t = time.perf_counter(); from kapi.schema import load_catalog; "
            "c = load_catalog(); print(time.perf_counter() - t, len(c), 'kubernetes_validate' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    elapsed, count, imported = out.stdout.split()
    assert int(count) > 800
    assert imported == "False"
    assert float(elapsed) < 0.5  # about 15-60 ms including the kapi import; generous for CI


@pytest.mark.parametrize(("gvk", "name"), [
    (("", "v1", "Pod"), f"{CORE}.Pod"),
    (("", "v1", "PodList"), f"{CORE}.PodList"),
    (("", "v1", "Namespace"), f"{CORE}.Namespace"),
    (("apps", "v1", "Deployment"), "io.k8s.api.apps.v1.Deployment"),
    (("batch", "v1", "Job"), "io.k8s.api.batch.v1.Job"),
    (("rbac.authorization.k8s.io", "v1", "ClusterRole"), "io.k8s.api.rbac.v1.ClusterRole"),
    (("autoscaling", "v1", "Scale"), "io.k8s.api.autoscaling.v1.Scale"),
    (("apiextensions.k8s.io", "v1", "CustomResourceDefinition"),
     "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinition"),
    (("", "v1", "DeleteOptions"), f"{META}.DeleteOptions"),
    (("apps", "v1", "DeleteOptions"), f"{META}.DeleteOptions"),
    (("", "v1", "NoSuchKind"), None),
    (("apps", "v9", "Deployment"), None),
])
def test_name_for(catalog: SchemaCatalog, gvk: tuple[str, str, str], name: str | None) -> None:
    assert catalog.name_for(*gvk) == name


def test_gvks_of_a_definition(catalog: SchemaCatalog) -> None:
    assert catalog.gvks(f"{CORE}.Pod") == (("", "v1", "Pod"),)
    assert ("apps", "v1", "DeleteOptions") in catalog.gvks(f"{META}.DeleteOptions")
    assert catalog.gvks(f"{CORE}.PodSpec") == ()


@pytest.mark.parametrize(("kind", "steps", "expected"), [
    (("", "v1", "Pod"), ("spec", "containers"),
     {"patch_strategies": ("merge",), "merge_key": "name", "list_type": "map", "list_map_keys": ("name",)}),
    (("", "v1", "Pod"), ("spec", "containers", "[]", "ports"),
     {"patch_strategies": ("merge",), "merge_key": "containerPort", "list_map_keys": ("containerPort", "protocol")}),
    (("", "v1", "Pod"), ("spec", "containers", "[]", "env"), {"patch_strategies": ("merge",), "merge_key": "name"}),
    (("", "v1", "Pod"), ("spec", "tolerations"), {"patch_strategies": (), "merge_key": "", "list_type": "atomic"}),
    (("", "v1", "Pod"), ("spec", "volumes"), {"patch_strategies": ("merge", "retainKeys"), "merge_key": "name"}),
    (("", "v1", "Pod"), ("metadata", "finalizers"), {"patch_strategies": ("merge",), "list_type": "set"}),
    (("", "v1", "Pod"), ("metadata", "ownerReferences"), {"patch_strategies": ("merge",), "merge_key": "uid"}),
    (("apps", "v1", "Deployment"), ("spec", "strategy"),
     {"patch_strategies": ("retainKeys",), "name": "io.k8s.api.apps.v1.DeploymentStrategy"}),
    (("policy", "v1", "PodDisruptionBudget"), ("spec", "selector"), {"patch_strategies": ("replace",)}),
    (("", "v1", "Pod"), ("spec",), {"name": f"{CORE}.PodSpec", "required": ("containers",)}),
    (("", "v1", "Pod"), ("spec", "containers", "[]"), {"name": f"{CORE}.Container", "required": ("name",)}),
    (("", "v1", "Pod"), ("metadata", "labels", "{}"), {"types": frozenset({"string", "null"})}),
    (("", "v1", "Pod"), ("spec", "containers", "[]", "ports", "[]", "containerPort"),
     {"types": frozenset({"integer"}), "format": "int32"}),
    (("", "v1", "Pod"), ("spec", "containers", "[]", "livenessProbe", "httpGet", "port"),
     {"types": frozenset({"integer", "string", "null"}), "name": "io.k8s.apimachinery.pkg.util.intstr.IntOrString"}),
    (("", "v1", "Pod"), ("spec", "overhead", "{}"),
     {"types": frozenset({"number", "string", "null"}), "name": "io.k8s.apimachinery.pkg.api.resource.Quantity"}),
    (("", "v1", "Secret"), ("data", "{}"), {"format": "byte"}),
    (("", "v1", "Pod"), ("metadata", "creationTimestamp"), {"format": "date-time"}),
])
def test_resolved_navigation(catalog: SchemaCatalog, kind: tuple[str, str, str], steps: tuple[str, ...],
                             expected: dict[str, object]) -> None:
    node = walk(catalog.node_for(*kind), *steps)
    for attribute, value in expected.items():
        assert getattr(node, attribute) == value, attribute


def test_site_description_wins_over_target(catalog: SchemaCatalog) -> None:
    pod = catalog.node_for("", "v1", "Pod")
    assert pod is not None
    assert pod.child("spec").description.startswith("Specification of the desired behavior of the pod")  # type: ignore[union-attr]
    assert catalog.node(f"{CORE}.PodSpec").description.startswith("PodSpec is a description of a pod")


def test_struct_versus_map_versus_free_form(catalog: SchemaCatalog) -> None:
    pod = catalog.node_for("", "v1", "Pod")
    assert pod is not None and pod.is_struct
    assert pod.child("nope") is None
    labels = walk(pod, "metadata", "labels")
    assert not labels.is_struct and labels.child("anything") is not None
    raw = catalog.node("io.k8s.apimachinery.pkg.runtime.RawExtension")
    assert not raw.is_struct and raw.additional is None
    assert catalog.node("io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSON").types is None


def test_nodes_are_cached(catalog: SchemaCatalog) -> None:
    assert catalog.node(f"{CORE}.Pod") is catalog.node(f"{CORE}.Pod")
    pod = catalog.node(f"{CORE}.Pod")
    assert pod.properties is pod.properties
    with pytest.raises(KeyError):
        catalog.node("io.k8s.nothing.Here")


def test_recursive_definitions_resolve_lazily(catalog: SchemaCatalog) -> None:
    props = catalog.node("io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaProps")
    deep = walk(props, "properties", "{}", "properties", "{}", "items")
    assert deep.name == "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaPropsOrArray"


def test_reachable(catalog: SchemaCatalog) -> None:
    names = catalog.reachable([f"{CORE}.Pod"])
    assert f"{CORE}.Pod" in names and f"{CORE}.Container" in names and f"{META}.ObjectMeta" in names
    assert "io.k8s.api.apps.v1.Deployment" not in names
    crd = catalog.reachable(["io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinition"])
    assert "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaProps" in crd
    assert catalog.reachable(["no.such.Thing"]) == []


def test_custom_kinds(catalog: SchemaCatalog) -> None:
    gvk = ("stable.example.com", "v1", "CronTab")
    spec = {"type": "object", "properties": {"cronSpec": {"type": "string"}}}
    schema = {"type": "object", "properties": {"spec": spec}}
    extended = catalog.with_kinds({gvk: schema})
    name = custom_definition_name(*gvk)
    assert name == "com.example.stable.v1.CronTab"
    assert extended.name_for(*gvk) == name
    assert extended.name_for("stable.example.com", "v1", "CronTabList") == name + "List"
    node = extended.node_for(*gvk)
    assert node is not None
    assert walk(node, "metadata").name == f"{META}.ObjectMeta"
    assert walk(node, "spec", "cronSpec").types == frozenset({"string"})
    assert catalog.name_for(*gvk) is None  # the base is untouched
    assert extended.name_for("", "v1", "Pod") == f"{CORE}.Pod"


def test_memo_builds_once(catalog: SchemaCatalog) -> None:
    calls: list[int] = []
    extended = catalog.extended({})

    def build() -> int:
        calls.append(1)
        return 42

    assert extended.memo("k", build) == 42
    assert extended.memo("k", build) == 42
    assert calls == [1]
