"""kapi.validation: schema validation, ObjectMeta rules and the name/label helpers."""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from typing import Any

import orjson
import pytest

from kapi.errors import Cause
from kapi.schema import SchemaCatalog, load_catalog
from kapi.validation import (
    dns1123_label_errors,
    is_dns1035_label,
    is_dns1123_label,
    is_dns1123_subdomain,
    is_label_value,
    is_qualified_name,
    label_value_errors,
    name_is_dns1035_label,
    name_is_path_segment,
    qualified_name_errors,
    validate_against_schema,
    validate_object_meta,
)

SUBDOMAIN_MSG = ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and "
                 "must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is "
                 r"'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')")

POD: dict[str, Any] = {
    "apiVersion": "v1", "kind": "Pod",
    "metadata": {"name": "web-1", "namespace": "default", "labels": {"app": "web", "app.kubernetes.io/name": "web"},
                 "annotations": {"example.com/owner": "team-a"}, "creationTimestamp": "2024-01-01T00:00:00Z"},
    "spec": {
        "containers": [{
            "name": "nginx", "image": "nginx:1.27", "imagePullPolicy": "IfNotPresent",
            "ports": [{"containerPort": 80, "protocol": "TCP", "name": "http"}],
            "env": [{"name": "A", "value": "1"},
                    {"name": "B", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
            "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": 1, "memory": "256Mi"}},
            "volumeMounts": [{"name": "data", "mountPath": "/data"}],
            "livenessProbe": {"httpGet": {"path": "/healthz", "port": "http"}, "initialDelaySeconds": 3},
            "readinessProbe": {"tcpSocket": {"port": 80}},
            "securityContext": {"runAsNonRoot": True, "runAsUser": 1000, "capabilities": {"drop": ["ALL"]}},
        }, {"name": "sidecar", "image": "busybox", "command": ["sh", "-c", "sleep 3600"]}],
        "volumes": [{"name": "data", "emptyDir": {}},
                    {"name": "cfg", "configMap": {"name": "web-config", "items": [{"key": "a", "path": "a"}]}}],
        "tolerations": [{"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute",
                         "tolerationSeconds": 300}],
        "nodeSelector": {"kubernetes.io/os": "linux"},
        "affinity": {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 100, "podAffinityTerm": {"labelSelector": {"matchLabels": {"app": "web"}},
                                                "topologyKey": "kubernetes.io/hostname"}}]}},
        "restartPolicy": "Always", "terminationGracePeriodSeconds": 30, "dnsPolicy": "ClusterFirst",
    },
    "status": {"phase": "Pending", "conditions": [
        {"type": "PodScheduled", "status": "True", "lastTransitionTime": "2024-01-01T00:00:00Z"}]},
}


@pytest.fixture(scope="module")
def catalog() -> SchemaCatalog:
    return load_catalog()


def mutated(change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    obj = copy.deepcopy(POD)
    change(obj)
    return obj


def messages(causes: list[Cause]) -> list[str]:
    return [c.to_dict()["message"] for c in causes]


# ---------------------------------------------------------------------------------------------
# schema validation
# ---------------------------------------------------------------------------------------------
def test_valid_pod(catalog: SchemaCatalog) -> None:
    result = validate_against_schema(catalog, "", "v1", "Pod", POD)
    assert result.ok and result.causes == [] and result.warnings == [] and result.decode_error is None
    causes, warnings = result
    assert causes == [] and warnings == []


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(obj: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = obj
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        if isinstance(node, list):
            node[int(last)] = value
        elif value is KeyError:
            del node[last]
        else:
            node[last] = value
    return change


@pytest.mark.parametrize(("change", "field", "reason", "message"), [
    (_set("spec.containers.0.image", 5), "spec.containers[0].image", "FieldValueTypeInvalid",
     'Invalid value: "integer": spec.containers[0].image in body must be of type string: "integer"'),
    (_set("spec.containers.0.ports.0.containerPort", "80"), "spec.containers[0].ports[0].containerPort",
     "FieldValueTypeInvalid", 'in body must be of type integer: "string"'),
    (_set("spec.containers.0.ports.0.containerPort", 2**40), "spec.containers[0].ports[0].containerPort",
     "FieldValueTypeInvalid", "Invalid value: 1099511627776: spec.containers[0].ports[0].containerPort in body must "
                              "be of type int32"),
    (_set("spec.containers.0.ports.0.containerPort", 80.5), "spec.containers[0].ports[0].containerPort",
     "FieldValueTypeInvalid", 'must be of type integer: "number"'),
    (_set("spec.containers.0.securityContext.runAsNonRoot", "yes"), "spec.containers[0].securityContext.runAsNonRoot",
     "FieldValueTypeInvalid", "must be of type boolean"),
    (_set("spec.containers.0.ports.0.containerPort", True), "spec.containers[0].ports[0].containerPort",
     "FieldValueTypeInvalid", 'must be of type integer: "boolean"'),
    (_set("metadata.labels", {"app": 3}), "metadata.labels[app]", "FieldValueTypeInvalid",
     "must be of type string"),
    (_set("spec.containers", {"name": "x"}), "spec.containers", "FieldValueTypeInvalid",
     'must be of type array: "object"'),
    (_set("spec.nodeSelector", "linux"), "spec.nodeSelector", "FieldValueTypeInvalid", "must be of type object"),
    (_set("spec.containers.1.name", KeyError), "spec.containers[1].name", "FieldValueRequired", "Required value"),
    (_set("spec.containers.1.name", None), "spec.containers[1].name", "FieldValueRequired", "Required value"),
    (_set("spec.containers.0.ports.0.containerPort", KeyError), "spec.containers[0].ports[0].containerPort",
     "FieldValueRequired", "Required value"),
    (_set("spec", {}), "spec.containers", "FieldValueRequired", "Required value"),
    (_set("metadata.creationTimestamp", "yesterday"), "metadata.creationTimestamp", "FieldValueInvalid",
     "must be an RFC 3339 date-time"),
    (_set("spec.containers.0.livenessProbe.httpGet.port", [80]), "spec.containers[0].livenessProbe.httpGet.port",
     "FieldValueTypeInvalid", "must be of type string"),
    (_set("spec.containers.0.resources.limits.cpu", {"m": 1}), "spec.containers[0].resources.limits[cpu]",
     "FieldValueTypeInvalid", "must be of type string"),
])
def test_schema_errors(catalog: SchemaCatalog, change: Callable[[dict[str, Any]], None], field: str, reason: str,
                       message: str) -> None:
    result = validate_against_schema(catalog, "", "v1", "Pod", mutated(change))
    matching = [c for c in result.causes if c.field == field]
    assert matching, result.causes
    assert matching[0].reason == reason
    assert message in matching[0].message


def test_nulls_and_flexible_types_are_fine(catalog: SchemaCatalog) -> None:
    obj = mutated(lambda o: o["spec"].update(hostname=None, nodeSelector=None))
    obj["spec"]["containers"][0]["resources"]["limits"]["cpu"] = 0.5  # Quantity: number or string
    obj["spec"]["containers"][0]["readinessProbe"]["tcpSocket"]["port"] = "http"  # IntOrString
    assert validate_against_schema(catalog, "", "v1", "Pod", obj).causes == []


def test_decode_error_wording(catalog: SchemaCatalog) -> None:
    result = validate_against_schema(catalog, "", "v1", "Pod", mutated(_set("spec.containers.0.image", 5)))
    assert result.decode_error == ("json: cannot unmarshal number 5 into Go struct field "
                                   "Container.spec.containers.image of type string")
    assert result.bad_request_message("Pod", "v1") == (
        'Pod in version "v1" cannot be handled as a Pod: json: cannot unmarshal number 5 into Go struct field '
        "Container.spec.containers.image of type string")
    result = validate_against_schema(catalog, "", "v1", "Pod", mutated(_set("spec", "x")))
    assert result.decode_error == "json: cannot unmarshal string into Go struct field Pod.spec of type v1.PodSpec"
    result = validate_against_schema(catalog, "", "v1", "Pod", [])
    assert result.decode_error is not None and "cannot unmarshal array" in result.decode_error


@pytest.mark.parametrize(("mode", "causes", "warnings", "strict"), [
    ("Strict", ["spec.foo: field not declared in schema",
                "spec.containers[0].bar: field not declared in schema"], [],
     'strict decoding error: unknown field "spec.containers[0].bar", unknown field "spec.foo"'),
    ("Warn", [], ['unknown field "spec.containers[0].bar"', 'unknown field "spec.foo"'], None),
    ("Ignore", [], [], None),
])
def test_unknown_fields(catalog: SchemaCatalog, mode: str, causes: list[str], warnings: list[str],
                        strict: str | None) -> None:
    obj = mutated(lambda o: o["spec"]["containers"][0].update(bar=1))
    obj["spec"]["foo"] = {"x": 1}
    obj["metadata"]["annotations"]["free.form/keys"] = "are map keys, not fields"
    result = validate_against_schema(catalog, "", "v1", "Pod", obj, unknown_fields=mode)
    assert sorted(messages(result.causes)) == sorted(causes)
    assert sorted(result.warnings) == sorted(warnings)
    assert sorted(result.unknown_fields) == ["spec.containers[0].bar", "spec.foo"]
    if strict is None:
        assert result.strict_error() is None
    else:
        assert result.strict_error() is not None
        assert sorted(result.strict_error().removeprefix("strict decoding error: ").split(", ")) == sorted(
            strict.removeprefix("strict decoding error: ").split(", "))
        assert result.bad_request_message("Pod", "v1").startswith(  # type: ignore[union-attr]
            'Pod in version "v1" cannot be handled as a Pod: strict decoding error: unknown field ')


def test_free_form_objects_accept_anything(catalog: SchemaCatalog) -> None:
    review = {"type": "ADDED", "object": {"anything": {"goes": [1]}}}
    assert validate_against_schema(catalog, "", "v1", "WatchEvent", review).causes == []


def test_other_kinds(catalog: SchemaCatalog) -> None:
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
                  "spec": {"replicas": "3", "template": {"spec": {"containers": [{"name": "c", "image": "i"}]}}}}
    result = validate_against_schema(catalog, "apps", "v1", "Deployment", deployment)
    assert {(c.field, c.reason) for c in result.causes} == {("spec.selector", "FieldValueRequired"),
                                                            ("spec.replicas", "FieldValueTypeInvalid")}
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "data": {"ok": "aGVsbG8=", "bad": "!!"}}
    result = validate_against_schema(catalog, "", "v1", "Secret", secret)
    assert [c.field for c in result.causes] == ["data[bad]"]
    role = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "r"},
            "rules": [{"apiGroups": [""], "resources": ["pods"]}]}
    result = validate_against_schema(catalog, "rbac.authorization.k8s.io", "v1", "ClusterRole", role)
    assert [(c.field, c.reason) for c in result.causes] == [("rules[0].verbs", "FieldValueRequired")]


def test_required_is_relaxed_for_status_and_booleans(catalog: SchemaCatalog) -> None:
    # controllers omit zero values the OpenAPI lists as required (no omitempty in Go)
    pod = mutated(lambda o: o["status"].update(containerStatuses=[{"name": "nginx", "ready": True}]))
    assert validate_against_schema(catalog, "", "v1", "Pod", pod).causes == []
    rs = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "r"},
          "spec": {"selector": {"matchLabels": {"a": "b"}}}, "status": {"observedGeneration": 1}}
    assert validate_against_schema(catalog, "apps", "v1", "ReplicaSet", rs).causes == []
    rs["status"]["replicas"] = "x"  # types are still checked inside status
    assert [c.field for c in validate_against_schema(catalog, "apps", "v1", "ReplicaSet", rs).causes] == [
        "status.replicas"]
    gvk = ("example.com", "v1", "Flag")
    flags = catalog.with_kinds({gvk: {"type": "object", "required": ["enabled", "name"], "properties": {
        "enabled": {"type": "boolean"}, "name": {"type": "string"}}}})
    causes = validate_against_schema(flags, *gvk, {"metadata": {"name": "f"}}).causes
    assert [(c.field, c.reason) for c in causes] == [("name", "FieldValueRequired")]


def test_apiversion_and_kind_are_left_to_the_caller(catalog: SchemaCatalog) -> None:
    obj = mutated(lambda o: o.update(apiVersion="v2", kind="Pod2"))
    assert validate_against_schema(catalog, "", "v1", "Pod", obj).causes == []


def test_unknown_kind_and_bad_mode(catalog: SchemaCatalog) -> None:
    result = validate_against_schema(catalog, "example.com", "v1", "Widget", {"spec": 1})
    assert result.ok and result.unknown_fields == []
    with pytest.raises(ValueError, match="fieldValidation"):
        validate_against_schema(catalog, "", "v1", "Pod", POD, unknown_fields="strict")


def test_custom_kind_schema(catalog: SchemaCatalog) -> None:
    gvk = ("stable.example.com", "v1", "CronTab")
    extended = catalog.with_kinds({gvk: {"type": "object", "properties": {
        "spec": {"type": "object", "required": ["cronSpec"],
                 "properties": {"cronSpec": {"type": "string"}, "replicas": {"type": "integer"}}}}}})
    obj = {"apiVersion": "stable.example.com/v1", "kind": "CronTab", "metadata": {"name": "c"},
           "spec": {"replicas": "two", "extra": 1}}
    result = validate_against_schema(extended, *gvk, obj)
    assert {(c.field, c.reason) for c in result.causes} == {
        ("spec.replicas", "FieldValueTypeInvalid"), ("spec.cronSpec", "FieldValueRequired"),
        ("spec.extra", "FieldValueInvalid")}


def test_validation_is_fast(catalog: SchemaCatalog) -> None:
    assert 1500 < len(orjson.dumps(POD)) < 2500
    validate_against_schema(catalog, "", "v1", "Pod", POD)  # compile once
    rounds = 300
    start = time.perf_counter()
    for _ in range(rounds):
        validate_against_schema(catalog, "", "v1", "Pod", POD)
    per_call = (time.perf_counter() - start) / rounds
    print(f"validate 2 KB Pod: {per_call * 1e6:.1f} us")
    assert per_call < 0.001  # measured ~45 us; the bound only guards against a pathological regression


# ---------------------------------------------------------------------------------------------
# ObjectMeta
# ---------------------------------------------------------------------------------------------
def meta(**fields: Any) -> dict[str, Any]:
    return {"metadata": fields}


@pytest.mark.parametrize(("obj", "namespaced", "expected"), [
    (meta(name="ok", namespace="default"), True, []),
    (meta(name="a.b-c", labels={"a": "", "example.com/b": "x_y.z"}), False, []),
    (meta(name="Bad_Name", namespace="default"), True,
     [f'metadata.name: Invalid value: "Bad_Name": {SUBDOMAIN_MSG}']),
    (meta(namespace="default"), True, ["metadata.name: Required value: name or generateName is required"]),
    ({}, False, ["metadata.name: Required value: name or generateName is required"]),
    (meta(generateName="web-", namespace="default"), True, []),
    (meta(generateName="Web-", namespace="default"), True,
     [f'metadata.generateName: Invalid value: "Web-": {SUBDOMAIN_MSG}']),
    (meta(name="x"), True, ["metadata.namespace: Required value"]),
    (meta(name="x", namespace="Bad.NS"), True,
     ['metadata.namespace: Invalid value: "Bad.NS": a lowercase RFC 1123 label must consist of lower case '
      "alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or "
      "'123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"]),
    (meta(name="x", namespace="a.b"), True, ['metadata.namespace: Invalid value: "a.b": must not contain dots']),
    (meta(name="x", namespace="default"), False, ["metadata.namespace: Forbidden: not allowed on this type"]),
    (meta(name="x", generation=-1), False,
     ["metadata.generation: Invalid value: -1: must be greater than or equal to 0"]),
    (meta(name="x" * 254), False,
     [f'metadata.name: Invalid value: "{"x" * 254}": must be no more than 253 characters']),
    (meta(name="x", labels={"bad key": "v"}), False,
     ['metadata.labels: Invalid value: "bad key": name part must consist of alphanumeric characters, \'-\', \'_\' '
      "or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', "
      "regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"]),
    (meta(name="x", labels={"k": "-bad"}), False,
     ['metadata.labels: Invalid value: "-bad": a valid label must be an empty string or consist of alphanumeric '
      "characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or "
      "'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
      ]),
    (meta(name="x", annotations={"Example.COM/Key": "ok"}), False, []),
    (meta(name="x", annotations={"a": "x" * (256 * 1024)}), False,
     ["metadata.annotations: Too long: must have at most 262144 bytes"]),
    (meta(name="x", finalizers=["kubernetes.io/pvc-protection", "bad/fin/alizer"]), False,
     ["metadata.finalizers: Invalid value: \"bad/fin/alizer\": a qualified name must consist of alphanumeric "
      "characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or "
      "'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an "
      "optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"]),
    (meta(name="x", ownerReferences=[{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": "1",
                                      "controller": True}]), False, []),
    (meta(name="x", ownerReferences=[{"apiVersion": "", "kind": "ReplicaSet", "name": "rs", "uid": ""}]), False,
     ['metadata.ownerReferences.apiVersion: Invalid value: "": version must not be empty',
      'metadata.ownerReferences.uid: Invalid value: "": must not be empty']),
])
def test_object_meta(obj: dict[str, Any], namespaced: bool, expected: list[str]) -> None:
    assert messages(validate_object_meta(obj, namespaced)) == expected


def test_object_meta_two_controllers() -> None:
    refs = [{"apiVersion": "v1", "kind": "A", "name": "a", "uid": "1", "controller": True},
            {"apiVersion": "v1", "kind": "B", "name": "b", "uid": "2", "controller": True}]
    causes = validate_object_meta(meta(name="x", ownerReferences=refs), False)
    assert len(causes) == 1 and "Only one reference can have Controller set to true" in causes[0].message
    assert "A/a and B/b" in causes[0].message


def test_object_meta_name_rules() -> None:
    assert validate_object_meta(meta(name="my.svc", namespace="d"), True, name_fn=name_is_dns1035_label) != []
    assert validate_object_meta(meta(name="system:admin"), False, name_fn=name_is_path_segment) == []
    assert messages(validate_object_meta(meta(name="a/b"), False, name_fn=name_is_path_segment)) == [
        "metadata.name: Invalid value: \"a/b\": may not contain '/'"]


@pytest.mark.parametrize(("check", "value", "valid"), [
    (is_dns1123_subdomain, "example.com", True),
    (is_dns1123_subdomain, "a", True),
    (is_dns1123_subdomain, "Example.com", False),
    (is_dns1123_subdomain, "-a", False),
    (is_dns1123_subdomain, "a" * 253, True),
    (is_dns1123_subdomain, "a" * 254, False),
    (is_dns1123_label, "my-name", True),
    (is_dns1123_label, "123-abc", True),
    (is_dns1123_label, "a.b", False),
    (is_dns1123_label, "a" * 64, False),
    (is_dns1123_label, "", False),
    (is_dns1035_label, "my-name", True),
    (is_dns1035_label, "1abc", False),
    (is_qualified_name, "app", True),
    (is_qualified_name, "app.kubernetes.io/name", True),
    (is_qualified_name, "MyName", True),
    (is_qualified_name, "/name", False),
    (is_qualified_name, "a/b/c", False),
    (is_qualified_name, "Example.com/name", False),
    (is_qualified_name, "x" * 63, True),
    (is_qualified_name, "x" * 64, False),
    (is_label_value, "", True),
    (is_label_value, "v1.2_3-x", True),
    (is_label_value, "-x", False),
    (is_label_value, "x" * 64, False),
])
def test_helpers(check: Callable[[str], bool], value: str, valid: bool) -> None:
    assert check(value) is valid


def test_helper_messages() -> None:
    assert dns1123_label_errors("a.b") == ["must not contain dots"]
    assert qualified_name_errors("/x") == ["prefix part must be non-empty"]
    assert qualified_name_errors("x" * 64) == ["name part must be no more than 63 characters"]
    assert label_value_errors("x" * 64) == ["must be no more than 63 characters"]
