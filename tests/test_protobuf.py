"""kapi.protobuf: Kubernetes protobuf request bodies decode to the dicts the JSON path produces.

Bodies are built by hand with the small wire helpers below (and, for bigger objects, by a table-driven
test encoder), plus bodies captured from real kubectl 1.37 (``tests/data/protobuf/kubectl_*.pb``,
recorded by pointing kubectl at a throwaway TLS server that saved each POST body).
"""

from __future__ import annotations

import base64
import datetime
import json
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kapi import protobuf
from kapi.protobuf_gen import POINTER_FIELDS, build_table, parse_proto

DATA = Path(__file__).parent / "data" / "protobuf"
TABLE: dict[str, Any] = json.loads((Path(protobuf.__file__).parent / "data" / "k8s_proto_fields.json").read_text())
META = "k8s.io.apimachinery.pkg.apis.meta.v1."


# --- wire helpers -------------------------------------------------------------------------------

def varint(value: int) -> bytes:
    value &= (1 << 64) - 1
    out = bytearray()
    while True:
        low, value = value & 0x7F, value >> 7
        out.append(low | (0x80 if value else 0))
        if not value:
            return bytes(out)


def vfield(number: int, value: int) -> bytes:
    return varint(number << 3) + varint(value)


def bfield(number: int, payload: bytes | str) -> bytes:
    data = payload.encode() if isinstance(payload, str) else payload
    return varint(number << 3 | 2) + varint(len(data)) + data


def envelope(api_version: str, kind: str, raw: bytes, content_type: str = "") -> bytes:
    type_meta = bfield(1, api_version) + bfield(2, kind)
    return protobuf.MAGIC + bfield(1, type_meta) + bfield(2, raw) + bfield(3, b"") + bfield(4, content_type)


def _seconds(text: str) -> tuple[int, int]:
    moment = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return int(moment.timestamp()), moment.microsecond


def encode_value(number: int, type_name: str, value: Any) -> bytes:
    """One field occurrence, encoded from its JSON form (the inverse of the decoder, for tests)."""
    if type_name in ("string",):
        return bfield(number, value)
    if type_name == "bytes":
        return bfield(number, base64.b64decode(value))
    if type_name in ("int32", "int64", "uint32", "uint64"):
        return vfield(number, value)
    if type_name == "bool":
        return vfield(number, int(value))
    if type_name in (META + "Time", META + "MicroTime"):
        seconds, micros = _seconds(value)
        return bfield(number, vfield(1, seconds) + (vfield(2, micros * 1000) if micros else b""))
    if type_name == "k8s.io.apimachinery.pkg.api.resource.Quantity":
        return bfield(number, bfield(1, value))
    if type_name == "k8s.io.apimachinery.pkg.util.intstr.IntOrString":
        inner = vfield(1, 1) + vfield(2, 0) + bfield(3, value) if isinstance(value, str) else \
            vfield(1, 0) + vfield(2, value) + bfield(3, "")
        return bfield(number, inner)
    if type_name in ("k8s.io.apimachinery.pkg.runtime.RawExtension", META + "FieldsV1"):
        return bfield(number, bfield(1, json.dumps(value).encode()))
    if type_name in TABLE["list_wrappers"]:
        return bfield(number, b"".join(bfield(1, item) for item in value))
    return bfield(number, encode_message(type_name, value))


def encode_message(name: str, obj: dict[str, Any]) -> bytes:
    """A message from its JSON form, fields in number order, driven by the generated table."""
    out = bytearray()
    for number, (json_name, type_name, cardinality, _keep) in TABLE["messages"][name].items():
        if cardinality == "inline":
            out += bfield(int(number), encode_message(type_name, obj))
        elif json_name not in obj:
            continue
        elif cardinality == "*":
            for item in obj[json_name]:
                out += encode_value(int(number), type_name, item)
        elif cardinality.startswith("map:"):
            for key, item in obj[json_name].items():
                out += bfield(int(number), encode_value(1, cardinality[4:], key) + encode_value(2, type_name, item))
        else:
            out += encode_value(int(number), type_name, obj[json_name])
    return bytes(out)


def encode_object(obj: dict[str, Any]) -> bytes:
    """A whole ``k8s\\x00`` body for a JSON object, like client-go would send it."""
    message = protobuf.message_for(obj["apiVersion"], obj["kind"])
    body = {key: value for key, value in obj.items() if key not in ("apiVersion", "kind")}
    return envelope(obj["apiVersion"], obj["kind"], encode_message(message.name, body))


# --- a realistic ~1 KB object ---------------------------------------------------------------------

DEPLOYMENT: dict[str, Any] = {
    "apiVersion": "apps/v1", "kind": "Deployment",
    "metadata": {"name": "web", "namespace": "shop", "labels": {"app": "web", "tier": "frontend"},
                 "annotations": {"deployment.kubernetes.io/revision": "3", "team": "payments"},
                 "creationTimestamp": "2025-06-01T12:30:45Z", "generation": 7, "uid": "6f1e4a9c-1d2b-4c3d-9e8f"},
    "spec": {
        "replicas": 0, "selector": {"matchLabels": {"app": "web"}},
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 0}},
        "revisionHistoryLimit": 10, "progressDeadlineSeconds": 600,
        "template": {
            "metadata": {"labels": {"app": "web", "tier": "frontend"}},
            "spec": {
                "terminationGracePeriodSeconds": 0, "serviceAccountName": "web", "dnsPolicy": "ClusterFirst",
                "securityContext": {"runAsNonRoot": True, "runAsUser": 1000, "fsGroup": 2000},
                "volumes": [{"name": "cache", "emptyDir": {}}, {"name": "conf", "configMap": {"name": "web-conf"}}],
                "containers": [{
                    "name": "web", "image": "registry.example.com/shop/web:1.4.2", "imagePullPolicy": "IfNotPresent",
                    "args": ["--port=8080", "--log-level=info"],
                    "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}],
                    "env": [{"name": "MODE", "value": "production"},
                            {"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}}],
                    "resources": {"limits": {"cpu": "500m", "memory": "256Mi"},
                                  "requests": {"cpu": "100m", "memory": "128Mi"}},
                    "readinessProbe": {"httpGet": {"path": "/healthz", "port": "http", "scheme": "HTTP"},
                                       "periodSeconds": 5, "failureThreshold": 3},
                    "volumeMounts": [{"name": "cache", "mountPath": "/var/cache/web"},
                                     {"name": "conf", "mountPath": "/etc/web", "readOnly": True}],
                    "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True},
                }, {
                    "name": "log-shipper", "image": "registry.example.com/infra/fluent-bit:3.1",
                    "command": ["/fluent-bit/bin/fluent-bit", "-c", "/etc/fluent/fluent.conf"],
                    "env": [{"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
                            {"name": "FLUSH_SECONDS", "value": "5"}],
                    "resources": {"limits": {"memory": "64Mi"}, "requests": {"cpu": "10m", "memory": "32Mi"}},
                    "volumeMounts": [{"name": "cache", "mountPath": "/var/cache/web", "readOnly": True}],
                }],
            },
        },
    },
    "status": {},
}


# --- is_protobuf ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("content_type", "expected"), [
    ("application/vnd.kubernetes.protobuf", True),
    ("Application/VND.Kubernetes.Protobuf; charset=binary", True),
    ("application/vnd.kubernetes.protobuf;stream=watch", True),
    ("application/json", False),
    ("", False),
    ("application/vnd.kubernetes.protobuf.extra", False),
])
def test_is_protobuf(content_type: str, expected: bool) -> None:
    assert protobuf.is_protobuf(content_type) is expected


# --- hand-built bodies ----------------------------------------------------------------------------

def test_namespace_by_hand() -> None:
    metadata = bfield(1, "foo") + bfield(11, bfield(1, "team") + bfield(2, "a")) + bfield(8, b"")
    body = envelope("v1", "Namespace", bfield(1, metadata) + bfield(2, b"") + bfield(3, b""))
    assert protobuf.decode_object(body) == {
        "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "foo", "labels": {"team": "a"}},
        "spec": {}, "status": {}}


def test_configmap_data_binary_data_and_pointer_false() -> None:
    metadata = bfield(1, "cm") + bfield(3, "default") + vfield(7, 0)
    raw = (bfield(1, metadata) + vfield(4, 0)
           + bfield(2, bfield(1, "a") + bfield(2, "1")) + bfield(2, bfield(1, "b") + bfield(2, ""))
           + bfield(3, bfield(1, "bin") + bfield(2, b"\x00\xff")))
    assert protobuf.decode_object(envelope("v1", "ConfigMap", raw)) == {
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm", "namespace": "default"},
        "immutable": False, "data": {"a": "1", "b": ""}, "binaryData": {"bin": "AP8="}}


def test_secret_bytes_are_base64() -> None:
    raw = bfield(1, bfield(1, "s")) + bfield(2, bfield(1, "password") + bfield(2, b"s3cr\xe9t")) + bfield(3, "Opaque")
    assert protobuf.decode_object(envelope("v1", "Secret", raw)) == {
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
        "data": {"password": base64.b64encode(b"s3cr\xe9t").decode()}, "type": "Opaque"}


def test_deployment_by_hand_keeps_pointer_zero_and_decodes_special_types() -> None:
    created = 1748781045  # 2025-06-01T12:30:45Z
    metadata = bfield(1, "web") + bfield(8, vfield(1, created) + vfield(2, 5))
    container = (bfield(1, "web") + bfield(2, "nginx")
                 + bfield(8, bfield(1, bfield(1, "cpu") + bfield(2, bfield(1, "500m")))))
    template = bfield(1, b"") + bfield(2, bfield(2, container) + vfield(4, 0) + vfield(11, 0))
    strategy = bfield(1, "RollingUpdate") + bfield(2, bfield(1, vfield(1, 0) + vfield(2, 0) + bfield(3, ""))
                                                  + bfield(2, vfield(1, 1) + vfield(2, 0) + bfield(3, "25%")))
    spec = vfield(1, 0) + bfield(3, template) + bfield(4, strategy) + vfield(5, 0) + vfield(7, 0)
    decoded = protobuf.decode_object(envelope("apps/v1", "Deployment", bfield(1, metadata) + bfield(2, spec)))
    assert decoded == {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "creationTimestamp": "2025-06-01T12:30:45Z"},
        "spec": {
            "replicas": 0,
            "template": {"metadata": {}, "spec": {
                "containers": [{"name": "web", "image": "nginx", "resources": {"limits": {"cpu": "500m"}}}],
                "terminationGracePeriodSeconds": 0}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": "25%"}}}}


def test_self_subject_access_review() -> None:
    attributes = bfield(1, "default") + bfield(2, "create") + bfield(3, "") + bfield(5, "pods")
    raw = bfield(1, b"") + bfield(2, bfield(1, attributes)) + bfield(3, vfield(1, 0))
    assert protobuf.decode_object(envelope("authorization.k8s.io/v1", "SelfSubjectAccessReview", raw)) == {
        "apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview", "metadata": {},
        "spec": {"resourceAttributes": {"namespace": "default", "verb": "create", "resource": "pods"}},
        "status": {"allowed": False}}


def test_list_wrapper_and_renamed_fields() -> None:
    extra = bfield(5, bfield(1, "scopes") + bfield(2, bfield(1, "a") + bfield(1, "b")))
    raw = bfield(2, bfield(3, "alice") + extra)
    assert protobuf.decode_object(envelope("authorization.k8s.io/v1", "SubjectAccessReview", raw))["spec"] == {
        "user": "alice", "extra": {"scopes": ["a", "b"]}}
    bound = bfield(3, bfield(1, "Pod") + bfield(2, "v1") + bfield(4, "uid-1"))  # proto names aPIVersion / uID
    token = protobuf.decode_object(envelope("authentication.k8s.io/v1", "TokenRequest", bfield(2, bound)))
    assert token["spec"] == {"boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "uid": "uid-1"}}


def test_inline_embedded_structs_and_empty_pointer_structs() -> None:
    key_ref = bfield(4, bfield(1, bfield(1, "db")) + bfield(2, "password"))  # secretKeyRef, name inline
    container = bfield(1, "c") + bfield(7, bfield(1, "P") + bfield(3, key_ref))
    volume = bfield(1, "scratch") + bfield(2, bfield(2, b""))  # volumeSource inline, emptyDir {}
    probe = bfield(1, bfield(3, bfield(1, vfield(1, 0) + vfield(2, 8080) + bfield(3, ""))))  # handler inline
    spec = bfield(1, volume) + bfield(2, container + bfield(11, probe))
    pod = protobuf.decode_object(envelope("v1", "Pod", bfield(2, spec)))
    assert pod["spec"] == {
        "volumes": [{"name": "scratch", "emptyDir": {}}],
        "containers": [{"name": "c", "env": [{"name": "P", "valueFrom": {"secretKeyRef": {
            "name": "db", "key": "password"}}}], "readinessProbe": {"tcpSocket": {"port": 8080}}}]}


def test_negative_and_packed_integers() -> None:
    security = vfield(2, -1) + bfield(4, varint(5) + varint(6)) + vfield(4, 7)  # packed, then unpacked
    pod = protobuf.decode_object(envelope("v1", "Pod", bfield(2, bfield(14, security))))
    assert pod["spec"]["securityContext"] == {"runAsUser": -1, "supplementalGroups": [5, 6, 7]}


def test_micro_time_duration_raw_extension_and_fields_v1() -> None:
    lease = bfield(2, bfield(1, "me") + bfield(3, vfield(1, 1748781045) + vfield(2, 123456789)))
    assert protobuf.decode_object(envelope("coordination.k8s.io/v1", "Lease", lease))["spec"] == {
        "holderIdentity": "me", "acquireTime": "2025-06-01T12:30:45.123456Z"}
    managed = bfield(17, bfield(1, "kubectl") + bfield(6, "FieldsV1") + bfield(7, bfield(1, b'{"f:data":{}}')))
    meta = protobuf.decode_object(envelope("v1", "ConfigMap", bfield(1, managed)))["metadata"]
    assert meta["managedFields"] == [{"manager": "kubectl", "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {}}}]
    revision = bfield(2, bfield(1, b'{"spec":{"replicas":2}}')) + vfield(3, 4)
    assert protobuf.decode_object(envelope("apps/v1", "ControllerRevision", revision))["data"] == {
        "spec": {"replicas": 2}}
    nested = envelope("v1", "Namespace", bfield(1, bfield(1, "inner")))
    listed = protobuf.decode_object(envelope("v1", "List", bfield(2, bfield(1, nested))))
    assert listed["items"] == [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "inner"}}]


@pytest.mark.parametrize(("nanoseconds", "text"), [
    (0, "0s"), (1, "1ns"), (1500, "1.5µs"), (250_000_000, "250ms"), (1_500_000_000, "1.5s"),
    (60_000_000_000, "1m0s"), (3_600_000_000_000, "1h0m0s"), (5_430_000_000_000, "1h30m30s"),
    (-120_000_000_000, "-2m0s"), (90_000_000_001, "1m30.000000001s"),
])
def test_go_duration(nanoseconds: int, text: str) -> None:
    assert protobuf.go_duration(nanoseconds) == text


def test_zero_time_is_omitted_and_unknown_fields_are_skipped() -> None:
    metadata = bfield(1, "n") + bfield(8, b"") + bfield(9, vfield(1, -62135596800)) + bfield(99, "later")
    raw = bfield(1, metadata) + vfield(50, 7) + bfield(51, b"\x01\x02")
    assert protobuf.decode_object(envelope("v1", "Namespace", raw)) == {
        "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "n"}}


@pytest.mark.parametrize("api_version", ["meta.k8s.io/v1", "v1", "apps/v1"])
def test_delete_options_under_any_group(api_version: str) -> None:
    raw = vfield(1, 0) + bfield(4, "Foreground") + bfield(5, "All")
    assert protobuf.decode_object(envelope(api_version, "DeleteOptions", raw)) == {
        "apiVersion": api_version, "kind": "DeleteOptions", "gracePeriodSeconds": 0,
        "propagationPolicy": "Foreground", "dryRun": ["All"]}


def test_json_inside_the_envelope() -> None:
    body = envelope("v1", "ConfigMap", b'{"metadata":{"name":"j"}}', content_type="application/json")
    assert protobuf.decode_object(body) == {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "j"}}


# --- malformed bodies -----------------------------------------------------------------------------

def _nested_lists(levels: int) -> bytes:
    body = envelope("v1", "Namespace", b"")
    for _ in range(levels):
        body = envelope("v1", "List", bfield(2, bfield(1, body)))
    return body


@pytest.mark.parametrize(("body", "message"), [
    (b'{"kind":"Namespace"}', "prefix"),
    (protobuf.MAGIC + b"\x0a\x05\x0a\x02v1", "truncated"),
    (protobuf.MAGIC + b"\x0a\xff\xff", "truncated varint"),
    (envelope("v1", "Namespace", b"\x0a\x80\x80"), "truncated"),
    (envelope("v1", "Namespace", b"\x0a\x05ab"), "truncated length-delimited"),
    (envelope("v1", "Namespace", vfield(1, 3)), r"wrong wire type 0 for field 1 \(metadata\)"),
    (envelope("v1", "Namespace", b"\x4b\x0c"), "unsupported wire type 3"),
    (envelope("v1", "Namespace", b"\x0b\x0c"), r"wrong wire type 3 for field 1 \(metadata\)"),
    (envelope("v1", "Namespace", b"\x00\x01"), "field number 0"),
    (envelope("v1", "Namespace", b"\x48" + b"\xff" * 11), "longer than 10 bytes"),
    (envelope("v1", "Frobnicator", b""), "no protobuf schema for kind 'Frobnicator'"),
    (envelope("example.com/v1", "Widget", b""), "no protobuf schema"),
    (protobuf.MAGIC + bfield(2, b""), "no apiVersion and kind"),
    (envelope("v1", "Namespace", bfield(1, bfield(1, b"\xff\xfe"))), "UTF-8"),
    (protobuf.MAGIC + bfield(1, bfield(1, "v1") + bfield(2, "Namespace")) + bfield(3, "gzip"), "encoding"),
    (envelope("v1", "Namespace", b"", content_type="application/yaml"), "content type"),
    (envelope("apps/v1", "ControllerRevision", bfield(2, bfield(1, b"{nope"))), "embedded JSON"),
    (envelope("apps/v1", "Deployment", bfield(2, bfield(4, bfield(2, bfield(1, vfield(1, 7)))))), "IntOrString"),
    (_nested_lists(60), "nested more than 100 levels"),
])
def test_malformed_bodies_raise_value_error(body: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        protobuf.decode_object(body)


@pytest.mark.parametrize("body", [
    envelope("v1", "Frobnicator", b""),
    envelope("v1", "Namespace", b"", content_type="application/yaml"),
    protobuf.MAGIC + bfield(1, bfield(1, "v1") + bfield(2, "Namespace")) + bfield(3, "gzip"),
])
def test_unsupported_bodies_are_told_apart_for_415(body: bytes) -> None:
    with pytest.raises(protobuf.UnsupportedProtobuf):
        protobuf.decode_object(body)


def test_malformed_is_not_unsupported() -> None:
    with pytest.raises(ValueError) as caught:
        protobuf.decode_object(envelope("v1", "Namespace", b"\x0a\x05ab"))
    assert not isinstance(caught.value, protobuf.UnsupportedProtobuf)


def test_memoryview_input() -> None:
    body = envelope("v1", "Namespace", bfield(1, bfield(1, "m")))
    assert protobuf.decode_object(memoryview(body))["metadata"] == {"name": "m"}


def test_deep_nesting_below_the_limit_is_fine() -> None:
    assert protobuf.decode_object(_nested_lists(40))["kind"] == "List"


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes_never_crash(tail: bytes) -> None:
    try:
        assert isinstance(protobuf.decode_object(protobuf.MAGIC + tail), dict)
    except ValueError:
        pass


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=0), st.integers(min_value=0, max_value=255))
def test_corrupted_real_bodies_never_crash(position: int, byte: int) -> None:
    body = bytearray(encode_object(DEPLOYMENT))
    body[4 + position % (len(body) - 4)] = byte
    for candidate in (bytes(body), bytes(body[: 4 + position % (len(body) - 4)])):
        try:
            protobuf.decode_object(candidate)
        except ValueError:
            pass


# --- real kubectl 1.37 bodies ---------------------------------------------------------------------

KUBECTL_BODIES: dict[str, dict[str, Any]] = {
    "namespace": {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "foo"}, "spec": {}, "status": {}},
    "configmap": {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm1", "namespace": "default"},
                  "data": {"a": "1", "b": "two"}},
    "secret": {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s1", "namespace": "default"},
               "data": {"user": "YWRtaW4=", "pass": "czNjcjN0"}},
    "deployment": {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}}, "strategy": {},
                 "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [
                     {"name": "nginx", "image": "nginx:1.27", "resources": {}}]}}},
        "status": {}},
    "serviceaccount": {"apiVersion": "v1", "kind": "ServiceAccount",
                       "metadata": {"name": "robot", "namespace": "default"}},
    "role": {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
             "metadata": {"name": "reader", "namespace": "default"},
             "rules": [{"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]}]},
    "ssar": {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview", "metadata": {},
             "spec": {"resourceAttributes": {"namespace": "default", "verb": "create", "resource": "pods"}},
             "status": {"allowed": False}},
    "job": {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j1", "namespace": "default"},
            "spec": {"template": {"metadata": {}, "spec": {"restartPolicy": "Never", "containers": [
                {"name": "j1", "image": "busybox", "command": ["echo", "hi"], "resources": {}}]}}},
            "status": {}},
    "token": {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "metadata": {},
              "spec": {"expirationSeconds": 3600}, "status": {}},
    "whoami": {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview", "metadata": {},
               "status": {"userInfo": {}}},
}


@pytest.mark.parametrize("name", sorted(KUBECTL_BODIES))
def test_bodies_captured_from_kubectl(name: str) -> None:
    assert protobuf.decode_object((DATA / f"kubectl_{name}.pb").read_bytes()) == KUBECTL_BODIES[name]


# --- table and encoder round trip -----------------------------------------------------------------

def test_round_trip_of_a_realistic_deployment() -> None:
    assert protobuf.decode_object(encode_object(DEPLOYMENT)) == DEPLOYMENT


@pytest.mark.parametrize(("api_version", "kind", "message"), [
    ("v1", "Namespace", "k8s.io.api.core.v1.Namespace"),
    ("apps/v1", "Deployment", "k8s.io.api.apps.v1.Deployment"),
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", "k8s.io.api.rbac.v1.ClusterRoleBinding"),
    ("authorization.k8s.io/v1", "SelfSubjectAccessReview", "k8s.io.api.authorization.v1.SelfSubjectAccessReview"),
    ("autoscaling/v1", "Scale", "k8s.io.api.autoscaling.v1.Scale"),
    ("policy/v1", "Eviction", "k8s.io.api.policy.v1.Eviction"),
    ("meta.k8s.io/v1", "Status", META + "Status"),
])
def test_message_for(api_version: str, kind: str, message: str) -> None:
    assert protobuf.message_for(api_version, kind).name == message


def test_table_is_consistent() -> None:
    messages = TABLE["messages"]
    scalars = {"string", "bytes", "bool", "int32", "int64", "uint32", "uint64", "double", "float"}
    for name, fields in messages.items():
        for json_name, type_name, cardinality, keep in fields.values():
            assert type_name in scalars or type_name in messages, (name, json_name)
            assert cardinality in ("1", "*", "inline") or cardinality.startswith("map:"), (name, json_name)
            assert keep in (0, 1)
    for name, pointers in POINTER_FIELDS.items():
        assert pointers <= {entry[0] for entry in messages[name].values()}, name
    for kind in ("Namespace", "ConfigMap", "Secret", "ServiceAccount", "Pod", "Service", "Event", "Node"):
        assert f"k8s.io.api.core.v1.{kind}" in messages


def test_generator_parses_proto_text() -> None:
    text = """
syntax = "proto2";
package k8s.io.api.example.v1;
// +protobuf.nullable=true
message Names {
  repeated string items = 1;
}
message Thing {
  // a comment
  optional .k8s.io.apimachinery.pkg.apis.meta.v1.ObjectMeta metadata = 1;
  repeated Names names = 2;
  map<string, bytes> blobs = 3;
  optional int32 count = 4;
}
"""
    table = build_table(parse_proto(text))
    assert table["list_wrappers"] == ["k8s.io.api.example.v1.Names"]
    assert table["messages"]["k8s.io.api.example.v1.Thing"] == {
        "1": ["metadata", META + "ObjectMeta", "1", 0], "2": ["names", "k8s.io.api.example.v1.Names", "*", 0],
        "3": ["blobs", "bytes", "map:string", 0], "4": ["count", "int32", "1", 0]}
    with pytest.raises(ValueError, match="cannot parse"):
        parse_proto("package a.b;\nmessage X {\n  oneof y { string z = 1; }\n}\n")


def test_decoding_a_1kb_object_is_fast() -> None:
    body = encode_object(DEPLOYMENT)
    assert 800 <= len(body) <= 1400
    protobuf.decode_object(body)
    rounds = 300
    started = time.perf_counter()
    for _ in range(rounds):
        protobuf.decode_object(body)
    per_decode = (time.perf_counter() - started) / rounds
    assert per_decode < 0.002, f"{per_decode * 1e3:.3f} ms per decode"  # target 0.2 ms; loose for slow CI
