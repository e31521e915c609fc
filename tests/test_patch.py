"""kapi.patch: RFC 6902 JSON patch, RFC 7386 merge patch and Kubernetes strategic merge patch."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from kapi.patch import (
    MalformedPatchError,
    PatchError,
    json_equal,
    json_patch,
    merge_patch,
    strategic_merge,
    strategic_merge_patch,
)
from kapi.schema import SchemaCatalog, load_catalog


@pytest.fixture(scope="module")
def catalog() -> SchemaCatalog:
    return load_catalog()


# ---------------------------------------------------------------------------------------------
# RFC 6902
# ---------------------------------------------------------------------------------------------
DOC = {"metadata": {"name": "a", "labels": {"x": "1"}}, "spec": {"list": [1, 2, 3], "a/b": {"m~n": 5}}}


@pytest.mark.parametrize(("ops", "expected"), [
    ([{"op": "add", "path": "/metadata/labels/y", "value": "2"}],
     {**DOC, "metadata": {"name": "a", "labels": {"x": "1", "y": "2"}}}),
    ([{"op": "add", "path": "/spec/list/1", "value": 9}], {**DOC, "spec": {**DOC["spec"], "list": [1, 9, 2, 3]}}),
    ([{"op": "add", "path": "/spec/list/-", "value": 4}], {**DOC, "spec": {**DOC["spec"], "list": [1, 2, 3, 4]}}),
    ([{"op": "add", "path": "/spec/list/3", "value": 4}], {**DOC, "spec": {**DOC["spec"], "list": [1, 2, 3, 4]}}),
    ([{"op": "remove", "path": "/spec/list/0"}], {**DOC, "spec": {**DOC["spec"], "list": [2, 3]}}),
    ([{"op": "remove", "path": "/metadata/labels/x"}], {**DOC, "metadata": {"name": "a", "labels": {}}}),
    ([{"op": "replace", "path": "/metadata/name", "value": "b"}],
     {**DOC, "metadata": {"name": "b", "labels": {"x": "1"}}}),
    ([{"op": "replace", "path": "/spec/list/2", "value": 0}], {**DOC, "spec": {**DOC["spec"], "list": [1, 2, 0]}}),
    ([{"op": "replace", "path": "/spec/a~1b/m~0n", "value": 6}],
     {**DOC, "spec": {"list": [1, 2, 3], "a/b": {"m~n": 6}}}),
    ([{"op": "move", "from": "/metadata/labels/x", "path": "/metadata/labels/z"}],
     {**DOC, "metadata": {"name": "a", "labels": {"z": "1"}}}),
    ([{"op": "move", "from": "/spec/list/0", "path": "/spec/list/-"}],
     {**DOC, "spec": {**DOC["spec"], "list": [2, 3, 1]}}),
    ([{"op": "copy", "from": "/metadata/name", "path": "/metadata/labels/name"}],
     {**DOC, "metadata": {"name": "a", "labels": {"x": "1", "name": "a"}}}),
    ([{"op": "test", "path": "/spec/list", "value": [1, 2, 3.0]},
      {"op": "test", "path": "/metadata/name", "value": "a"}], DOC),
    ([{"op": "replace", "path": "", "value": {"new": True}}], {"new": True}),
    ([], DOC),
])
def test_json_patch(ops: list[dict[str, Any]], expected: Any) -> None:
    before = copy.deepcopy(DOC)
    ops_before = copy.deepcopy(ops)
    assert json_patch(DOC, ops) == expected
    assert before == DOC and ops_before == ops  # inputs untouched


@pytest.mark.parametrize(("ops", "error", "match"), [
    ({"op": "add"}, MalformedPatchError, "JSON array"),
    ([{"op": "add", "path": "/a"}], MalformedPatchError, 'no "value"'),
    ([{"op": "frobnicate", "path": "/a"}], MalformedPatchError, "unknown op"),
    ([{"op": "add", "path": "a", "value": 1}], MalformedPatchError, "start with"),
    (["add"], MalformedPatchError, "not a JSON object"),
    ([{"op": "remove", "path": "/metadata/nope"}], PatchError, "does not exist"),
    ([{"op": "replace", "path": "/spec/missing/x", "value": 1}], PatchError, "does not exist"),
    ([{"op": "add", "path": "/spec/list/7", "value": 1}], PatchError, "out of range"),
    ([{"op": "add", "path": "/spec/list/01", "value": 1}], PatchError, "not a valid array index"),
    ([{"op": "remove", "path": "/spec/list/-"}], PatchError, "not a valid array index"),
    ([{"op": "test", "path": "/metadata/name", "value": "b"}], PatchError, "test failed"),
    ([{"op": "test", "path": "/spec/list/0", "value": True}], PatchError, "test failed"),
    ([{"op": "move", "from": "/spec", "path": "/spec/inner"}], PatchError, "own child"),
    ([{"op": "remove", "path": ""}], PatchError, "whole document"),
])
def test_json_patch_errors(ops: Any, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match) as info:
        json_patch(DOC, ops)
    assert isinstance(info.value, ValueError)
    assert info.value.code == (400 if error is MalformedPatchError else 422)  # type: ignore[attr-defined]


def test_json_patch_result_is_independent() -> None:
    value = {"deep": [1]}
    result = json_patch(DOC, [{"op": "add", "path": "/v", "value": value}])
    result["v"]["deep"].append(2)
    result["metadata"]["labels"]["x"] = "changed"
    assert value == {"deep": [1]} and DOC["metadata"]["labels"]["x"] == "1"


# ---------------------------------------------------------------------------------------------
# RFC 7386 (the examples of its appendix A)
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("doc", "patch", "expected"), [
    ({"a": "b"}, {"a": "c"}, {"a": "c"}),
    ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
    ({"a": "b"}, {"a": None}, {}),
    ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
    ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
    ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
    ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
    ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
    (["a", "b"], ["c", "d"], ["c", "d"]),
    ({"a": "b"}, ["c"], ["c"]),
    ({"a": "foo"}, None, None),
    ({"a": "foo"}, "bar", "bar"),
    ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
    ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
    ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
])
def test_merge_patch(doc: Any, patch: Any, expected: Any) -> None:
    before = copy.deepcopy(doc)
    assert merge_patch(doc, patch) == expected
    assert doc == before


def test_merge_patch_result_is_independent() -> None:
    patch = {"spec": {"list": [1, 2]}}
    result = merge_patch({"spec": {}}, patch)
    result["spec"]["list"].append(3)
    assert patch == {"spec": {"list": [1, 2]}}


# ---------------------------------------------------------------------------------------------
# strategic merge patch
# ---------------------------------------------------------------------------------------------
DEPLOYMENT = {
    "apiVersion": "apps/v1", "kind": "Deployment",
    "metadata": {"name": "patch-demo", "labels": {"app": "nginx"},
                 "finalizers": ["a.example.com/x", "b.example.com/y"]},
    "spec": {
        "replicas": 2,
        "selector": {"matchLabels": {"app": "nginx"}},
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
        "template": {
            "metadata": {"labels": {"app": "nginx"}},
            "spec": {
                "containers": [{
                    "name": "patch-demo-ctr", "image": "nginx",
                    "ports": [{"containerPort": 80, "protocol": "TCP"}],
                    "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                }],
                "tolerations": [{"effect": "NoSchedule", "key": "dedicated", "value": "test-team"}],
                "volumes": [{"name": "data", "emptyDir": {}}],
            },
        },
    },
}


def template_spec(obj: dict[str, Any]) -> dict[str, Any]:
    return obj["spec"]["template"]["spec"]


def smp(catalog: SchemaCatalog, patch: dict[str, Any], doc: dict[str, Any] = DEPLOYMENT) -> dict[str, Any]:
    before = copy.deepcopy(doc)
    patch_before = copy.deepcopy(patch)
    result = strategic_merge_patch(catalog, "apps", "v1", "Deployment", doc, patch)
    assert doc == before and patch == patch_before  # inputs untouched
    return result


def test_smp_containers_merge_by_name_new_first(catalog: SchemaCatalog) -> None:
    # kubernetes.io "Update API Objects in Place Using kubectl patch": the new container is listed first
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "patch-demo-ctr-2", "image": "redis"}]}}}}
    containers = template_spec(smp(catalog, patch))["containers"]
    assert [c["name"] for c in containers] == ["patch-demo-ctr-2", "patch-demo-ctr"]
    assert containers[1] == template_spec(DEPLOYMENT)["containers"][0]


def test_smp_set_image(catalog: SchemaCatalog) -> None:
    # what `kubectl set image deployment/patch-demo patch-demo-ctr=nginx:1.27` sends
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "patch-demo-ctr", "image": "nginx:1.27"}]}}}}
    (container,) = template_spec(smp(catalog, patch))["containers"]
    assert container["image"] == "nginx:1.27" and container["ports"] and container["env"]


def test_smp_tolerations_replaced(catalog: SchemaCatalog) -> None:
    patch = {"spec": {"template": {"spec": {"tolerations": [{"effect": "NoSchedule", "key": "disktype",
                                                              "value": "ssd"}]}}}}
    assert template_spec(smp(catalog, patch))["tolerations"] == [{"effect": "NoSchedule", "key": "disktype",
                                                                    "value": "ssd"}]


@pytest.mark.parametrize(("ports", "expected"), [
    ([{"containerPort": 80, "name": "http"}], [{"containerPort": 80, "protocol": "TCP", "name": "http"}]),
    ([{"containerPort": 443}], [{"containerPort": 443}, {"containerPort": 80, "protocol": "TCP"}]),
    ([{"containerPort": 80, "$patch": "delete"}], []),
])
def test_smp_ports_merge_by_container_port(catalog: SchemaCatalog, ports: list[dict[str, Any]],
                                           expected: list[dict[str, Any]]) -> None:
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "patch-demo-ctr", "ports": ports}]}}}}
    assert template_spec(smp(catalog, patch))["containers"][0]["ports"] == expected


@pytest.mark.parametrize(("env", "expected"), [
    ([{"name": "B", "value": "22"}], [{"name": "A", "value": "1"}, {"name": "B", "value": "22"}]),
    ([{"name": "C", "value": "3"}],
     [{"name": "C", "value": "3"}, {"name": "A", "value": "1"}, {"name": "B", "value": "2"}]),
    ([{"name": "A", "$patch": "delete"}], [{"name": "B", "value": "2"}]),
    ([{"name": "B", "value": None, "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
     [{"name": "A", "value": "1"}, {"name": "B", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]),
    ([{"name": "Z", "value": "9"}, {"$patch": "replace"}], [{"name": "Z", "value": "9"}]),
])
def test_smp_env_merge_by_name(catalog: SchemaCatalog, env: list[dict[str, Any]],
                               expected: list[dict[str, Any]]) -> None:
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "patch-demo-ctr", "env": env}]}}}}
    assert template_spec(smp(catalog, patch))["containers"][0]["env"] == expected


def test_smp_delete_container(catalog: SchemaCatalog) -> None:
    doc = copy.deepcopy(DEPLOYMENT)
    template_spec(doc)["containers"].append({"name": "sidecar", "image": "busybox"})
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "patch-demo-ctr", "$patch": "delete"}]}}}}
    assert template_spec(smp(catalog, patch, doc))["containers"] == [{"name": "sidecar", "image": "busybox"}]


def test_smp_retain_keys(catalog: SchemaCatalog) -> None:
    # switching the strategy to Recreate must drop rollingUpdate: kubectl apply sends $retainKeys
    patch = {"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate", "rollingUpdate": None}}}
    assert smp(catalog, patch)["spec"]["strategy"] == {"type": "Recreate"}
    volumes = {"spec": {"template": {"spec": {"volumes": [
        {"name": "data", "$retainKeys": ["name", "hostPath"], "hostPath": {"path": "/tmp"}}]}}}}
    assert template_spec(smp(catalog, volumes))["volumes"] == [{"name": "data", "hostPath": {"path": "/tmp"}}]
    with pytest.raises(PatchError, match="retainKeys"):
        smp(catalog, {"spec": {"strategy": {"$retainKeys": ["type"], "rollingUpdate": {"maxSurge": 1}}}})
    with pytest.raises(MalformedPatchError, match="retainKeys"):
        smp(catalog, {"spec": {"strategy": {"$retainKeys": "type"}}})


def test_smp_maps_and_scalars(catalog: SchemaCatalog) -> None:
    # kubectl label / annotate / scale
    result = smp(catalog, {"metadata": {"labels": {"tier": "web", "app": None}, "annotations": {"a": "b"}},
                           "spec": {"replicas": 5}})
    assert result["metadata"]["labels"] == {"tier": "web"}
    assert result["metadata"]["annotations"] == {"a": "b"}
    assert result["spec"]["replicas"] == 5
    assert smp(catalog, {"spec": {"selector": None}})["spec"].get("selector") is None


def test_smp_primitive_merge_list(catalog: SchemaCatalog) -> None:
    result = smp(catalog, {"metadata": {"finalizers": ["c.example.com/z", "a.example.com/x"]}})
    assert result["metadata"]["finalizers"] == ["c.example.com/z", "a.example.com/x", "b.example.com/y"]
    result = smp(catalog, {"metadata": {"$deleteFromPrimitiveList/finalizers": ["a.example.com/x"]}})
    assert result["metadata"]["finalizers"] == ["b.example.com/y"]
    with pytest.raises(MalformedPatchError, match="primitive list"):
        smp(catalog, {"metadata": {"$deleteFromPrimitiveList/finalizers": "a.example.com/x"}})


def test_smp_directives_on_maps(catalog: SchemaCatalog) -> None:
    replaced = smp(catalog, {"metadata": {"labels": {"$patch": "replace", "only": "this"}}})
    assert replaced["metadata"]["labels"] == {"only": "this"}
    emptied = smp(catalog, {"spec": {"template": {"metadata": {"labels": {"$patch": "delete"}}}}})
    assert emptied["spec"]["template"]["metadata"]["labels"] == {}
    merged = smp(catalog, {"metadata": {"labels": {"$patch": "merge", "b": "2"}}})
    assert merged["metadata"]["labels"] == {"app": "nginx", "b": "2"}
    with pytest.raises(MalformedPatchError, match="unknown patch type"):
        smp(catalog, {"metadata": {"labels": {"$patch": "explode"}}})
    with pytest.raises(PatchError, match="merging lists cannot yet be specified"):
        smp(catalog, {"spec": {"template": {"spec": {"containers": [{"$patch": "merge"}]}}}})


def test_smp_new_values_drop_directives_and_nulls(catalog: SchemaCatalog) -> None:
    doc = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}}
    patch = {"metadata": {"annotations": {"a": "1", "b": None}},
             "spec": {"template": {"spec": {"containers": [{"name": "c", "image": "i", "env": [
                 {"name": "X", "value": None}, {"name": "gone", "$patch": "delete"}]}]}}}}
    result = smp(catalog, patch, doc)
    assert result["metadata"]["annotations"] == {"a": "1"}
    assert template_spec(result)["containers"] == [{"name": "c", "image": "i", "env": [{"name": "X"}]}]


def test_smp_replace_strategy_map(catalog: SchemaCatalog) -> None:
    pdb = {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "p"},
           "spec": {"selector": {"matchLabels": {"a": "1"}, "matchExpressions": [{"key": "k", "operator": "Exists"}]}}}
    result = strategic_merge_patch(catalog, "policy", "v1", "PodDisruptionBudget", pdb,
                                   {"spec": {"selector": {"matchLabels": {"b": "2"}}}})
    assert result["spec"]["selector"] == {"matchLabels": {"b": "2"}}


def test_smp_set_element_order(catalog: SchemaCatalog) -> None:
    # apimachinery "add multiple items in a list and preserve order", on containers
    doc = copy.deepcopy(DEPLOYMENT)
    template_spec(doc)["containers"] = [{"name": "1", "other": "a"}, {"name": "2", "value": "2", "other": "b"}]
    patch = {"spec": {"template": {"spec": {
        "$setElementOrder/containers": [{"name": "1"}, {"name": "4"}, {"name": "2"}, {"name": "3"}],
        "containers": [{"name": "4", "value": "4"}, {"name": "3", "value": "3"}]}}}}
    assert template_spec(smp(catalog, patch, doc))["containers"] == [
        {"name": "1", "other": "a"}, {"name": "4", "value": "4"}, {"name": "2", "value": "2", "other": "b"},
        {"name": "3", "value": "3"}]
    reorder = {"spec": {"template": {"spec": {"$setElementOrder/containers": [{"name": "2"}, {"name": "1"}]}}}}
    assert [c["name"] for c in template_spec(smp(catalog, reorder, doc))["containers"]] == ["2", "1"]
    scalars = {"metadata": {"$setElementOrder/finalizers": ["b.example.com/y", "a.example.com/x"]}}
    assert smp(catalog, scalars)["metadata"]["finalizers"] == ["b.example.com/y", "a.example.com/x"]
    with pytest.raises(PatchError, match="doesn't match"):
        smp(catalog, {"spec": {"template": {"spec": {"$setElementOrder/containers": [{"name": "x"}],
                                                     "containers": [{"name": "y", "image": "i"}]}}}})


def test_smp_kubectl_apply_shape(catalog: SchemaCatalog) -> None:
    # the shape of a client-side `kubectl apply` patch after editing one container's image and an env var
    patch = {
        "metadata": {"annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}"}},
        "spec": {"template": {"spec": {
            "$setElementOrder/containers": [{"name": "patch-demo-ctr"}],
            "containers": [{"$setElementOrder/env": [{"name": "A"}, {"name": "B"}], "name": "patch-demo-ctr",
                            "image": "nginx:2", "env": [{"name": "B", "value": "3"}]}]}}},
    }
    result = smp(catalog, patch)
    (container,) = template_spec(result)["containers"]
    assert container["image"] == "nginx:2"
    assert container["env"] == [{"name": "A", "value": "1"}, {"name": "B", "value": "3"}]
    assert "kubectl.kubernetes.io/last-applied-configuration" in result["metadata"]["annotations"]


def test_smp_errors(catalog: SchemaCatalog) -> None:
    with pytest.raises(PatchError, match="does not contain declared merge key: name"):
        smp(catalog, {"spec": {"template": {"spec": {"containers": [{"image": "x"}]}}}})
    with pytest.raises(PatchError, match="does not contain declared merge key"):
        smp(catalog, {"spec": {"template": {"spec": {"containers": [{"$patch": "delete"}]}}}})
    with pytest.raises(MalformedPatchError, match="JSON object"):
        smp(catalog, ["not", "an", "object"])  # type: ignore[arg-type]
    with pytest.raises(PatchError, match="not identical"):
        smp(catalog, {"metadata": {"finalizers": [{"a": 1}]}})


def test_smp_type_change_and_unknown_fields(catalog: SchemaCatalog) -> None:
    result = smp(catalog, {"spec": {"replicas": {"weird": True}, "unknownList": [1], "unknownMap": {"a": None}}})
    assert result["spec"]["replicas"] == {"weird": True}
    assert result["spec"]["unknownList"] == [1] and result["spec"]["unknownMap"] == {}


def test_smp_without_schema() -> None:
    doc = {"spec": {"items": [{"name": "a"}], "map": {"a": 1}}}
    result = strategic_merge(None, doc, {"spec": {"items": [{"name": "b"}], "map": {"b": 2}}})
    assert result == {"spec": {"items": [{"name": "b"}], "map": {"a": 1, "b": 2}}}


def test_smp_pod_and_node(catalog: SchemaCatalog) -> None:
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
           "spec": {"containers": [{"name": "c", "image": "i"}], "nodeName": ""},
           "status": {"conditions": [{"type": "Ready", "status": "False"}, {"type": "PodScheduled", "status": "True"}]}}
    status_patch = {"status": {"conditions": [{"type": "Ready", "status": "True"}], "phase": "Running"}}
    result = strategic_merge_patch(catalog, "", "v1", "Pod", pod, status_patch)
    assert result["status"]["conditions"] == [{"type": "Ready", "status": "True"},
                                              {"type": "PodScheduled", "status": "True"}]
    assert result["status"]["phase"] == "Running"


def test_json_equal() -> None:
    assert json_equal(1, 1.0) and json_equal({"a": [1]}, {"a": [1.0]})
    assert not json_equal(True, 1) and not json_equal(0, False) and not json_equal("1", 1)
    assert not json_equal({"a": 1}, {"a": 1, "b": 2}) and not json_equal([1], [1, 2])
