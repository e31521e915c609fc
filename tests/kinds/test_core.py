"""Namespaces, service accounts, endpoints, configmaps, secrets and nodes."""

from __future__ import annotations

import base64
import copy
from typing import Any

import pytest

from kapi.kinds.configdata import ConfigMapStrategy, SecretStrategy, decode_base64
from kapi.kinds.core import EndpointsStrategy, NamespaceStrategy, ServiceAccountStrategy, format_endpoints
from kapi.kinds.nodes import NodeStrategy

from .helpers import ago, messages

NS = NamespaceStrategy()
CM = ConfigMapStrategy()
SECRET = SecretStrategy()
NODE = NodeStrategy()


def obj(name: str = "x", **fields: Any) -> dict[str, Any]:
    return {"metadata": {"name": name, "creationTimestamp": ago(minutes=7)}, **fields}


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


# -- namespaces ----------------------------------------------------------------------------------


def test_namespace_create() -> None:
    ns = obj("team-a", spec={"finalizers": ["example.com/cleanup"]}, status={"phase": "Terminating"})
    NS.prepare_for_create(ns)
    NS.default(ns)
    assert ns["status"] == {"phase": "Active"}
    assert ns["spec"]["finalizers"] == ["example.com/cleanup", "kubernetes"]
    assert ns["metadata"]["labels"] == {"kubernetes.io/metadata.name": "team-a"}
    assert NS.validate(ns) == []
    assert NS.cells(ns) == ["Active", "7m"]
    assert NS.field_values(ns) == {"status.phase": "Active", "name": "team-a"}


def test_namespace_validation_and_updates() -> None:
    assert NS.name_format == "dns-label"  # the generic metadata validation checks the name
    odd = obj("a", spec={"finalizers": ["weird"]})
    assert messages(NS.validate(odd)) == ['spec.finalizers: Invalid value: "weird": name is neither a standard '
                                          "finalizer name nor is it fully qualified"]
    old = obj("a", spec={"finalizers": ["kubernetes"]}, status={"phase": "Active"})
    new = obj("a", spec={"finalizers": []}, status={"phase": "Terminating"})
    NS.prepare_for_update(new, old)
    assert new["spec"]["finalizers"] == ["kubernetes"] and new["status"] == {"phase": "Active"}
    finalize = obj("a", spec={"finalizers": []}, status={"phase": "X"})
    NS.prepare_for_finalize_update(finalize, old)
    assert finalize["spec"]["finalizers"] == [] and finalize["status"] == {"phase": "Active"}


# -- service accounts and endpoints -------------------------------------------------------------


def test_service_account_table() -> None:
    strategy = ServiceAccountStrategy()
    assert [c.name for c in strategy.columns()] == ["Secrets", "Age"]
    assert strategy.cells(obj(secrets=[{"name": "t"}])) == [1, "7m"]


def test_endpoints() -> None:
    strategy = EndpointsStrategy()
    ep = obj(subsets=[{"addresses": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}], "ports": [{"port": 80}]}])
    strategy.default(ep)
    assert ep["subsets"][0]["ports"][0]["protocol"] == "TCP"
    assert strategy.validate(ep) == []
    assert strategy.cells(ep) == ["10.0.0.1:80,10.0.0.2:80", "7m"]
    assert format_endpoints(obj()) == "<none>"
    many = obj(subsets=[{"addresses": [{"ip": f"10.0.0.{i}"} for i in range(5)], "ports": [{"port": 8080}]}])
    assert format_endpoints(many) == "10.0.0.0:8080,10.0.0.1:8080,10.0.0.2:8080 + 2 more..."
    v6 = obj(subsets=[{"addresses": [{"ip": "fd00::1"}], "ports": [{"port": 53}]}])
    assert format_endpoints(v6) == "[fd00::1]:53"
    bad = obj(subsets=[{"addresses": [{"ip": "nope"}], "ports": [{"port": 80, "protocol": "TCP"}]}])
    assert messages(strategy.validate(bad)) == ['subsets[0].addresses[0].ip: Invalid value: "nope": must be a valid IP '
                                                "address, (e.g. 10.9.8.7 or 2001:db8::ffff)"]


# -- configmaps and secrets ----------------------------------------------------------------------


def test_configmap_validation() -> None:
    assert CM.validate(obj(data={"a.key": "v", "b_key": "w"})) == []
    assert messages(CM.validate(obj(data={"bad key": "v"}))) == [
        'data[bad key]: Invalid value: "bad key": a valid config key must consist of alphanumeric characters, \'-\', '
        "'_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')"]
    assert messages(CM.validate(obj(data={"k": "v"}, binaryData={"k": "dg=="}))) == [
        'data[k]: Invalid value: "k": duplicate of key present in binaryData',
        'binaryData[k]: Invalid value: "k": duplicate of key present in data']
    assert messages(CM.validate(obj(data={"k": "x" * (1024 * 1024 + 1)}))) == [
        "Too long: may not be more than 1048576 bytes"]
    old = obj(data={"k": "v"}, immutable=True)
    new = copy.deepcopy(old)
    new["data"]["k"] = "w"
    assert messages(CM.validate_update(new, old)) == ["data: Forbidden: field is immutable when `immutable` is set"]
    assert CM.cells(obj(data={"a": "1"}, binaryData={"b": "Ag=="})) == [2, "7m"]


def test_secret_defaults_and_validation() -> None:
    secret = obj(stringData={"user": "admin"}, data={"token": b64("t")})
    SECRET.default(secret)
    assert secret["type"] == "Opaque" and "stringData" not in secret
    assert secret["data"] == {"token": b64("t"), "user": b64("admin")}
    assert SECRET.validate(secret) == []
    assert SECRET.cells(secret) == ["Opaque", 2, "7m"]
    assert SECRET.field_values(secret) == {"type": "Opaque"}
    assert messages(SECRET.validate(obj(type="Opaque", data={"k": "not base64!"}))) == [
        'data[k]: Invalid value: "<secret contents redacted>": illegal base64 data at input byte 3']
    assert messages(SECRET.validate(obj(type="kubernetes.io/tls", data={"tls.crt": b64("c")}))) == [
        "data[tls.key]: Required value"]
    assert messages(SECRET.validate(obj(type="kubernetes.io/service-account-token"))) == [
        "metadata.annotations[kubernetes.io/service-account.name]: Required value"]
    assert messages(SECRET.validate(obj(type="kubernetes.io/dockerconfigjson",
                                        data={".dockerconfigjson": b64('{"auths":{}}')}))) == []
    old = obj(type="Opaque", data={})
    changed = obj(type="kubernetes.io/basic-auth", data={"username": b64("u")})
    assert messages(SECRET.validate_update(changed, old)) == [
        'type: Invalid value: "kubernetes.io/basic-auth": field is immutable']


@pytest.mark.parametrize(("text", "decoded"), [("", b""), ("aGk=", b"hi"), ("aG\nk=", b"hi")])
def test_decode_base64(text: str, decoded: bytes) -> None:
    assert decode_base64(text) == decoded


# -- nodes ---------------------------------------------------------------------------------------


def node(**fields: Any) -> dict[str, Any]:
    return obj("n1", **fields)


def test_node_defaults_and_table() -> None:
    n = node(metadata={"name": "n1", "creationTimestamp": ago(days=3),
                       "labels": {"node-role.kubernetes.io/control-plane": "", "kubernetes.io/role": "infra"}},
             spec={"podCIDR": "10.244.0.0/24", "unschedulable": True},
             status={"capacity": {"cpu": "4"}, "conditions": [{"type": "Ready", "status": "True"}],
                     "addresses": [{"type": "InternalIP", "address": "192.168.1.10"}],
                     "nodeInfo": {"kubeletVersion": "v1.37.0", "osImage": "Debian", "kernelVersion": "6.1",
                                  "containerRuntimeVersion": "containerd://2.0"}})
    NODE.prepare_for_create(n)
    NODE.default(n)
    assert n["status"]["allocatable"] == {"cpu": "4"} and n["spec"]["podCIDRs"] == ["10.244.0.0/24"]
    assert [c.name for c in NODE.columns()] == ["Status", "Roles", "Age", "Version", "Internal-IP", "External-IP",
                                                "OS-Image", "Kernel-Version", "Container-Runtime"]
    assert NODE.cells(n) == ["Ready,SchedulingDisabled", "control-plane,infra", "3d", "v1.37.0", "192.168.1.10",
                             "<none>", "Debian", "6.1", "containerd://2.0"]
    assert NODE.field_values(n) == {"spec.unschedulable": "true"}
    assert NODE.cells(node())[:2] == ["Unknown", "<none>"]
    not_ready = node(status={"conditions": [{"type": "Ready", "status": "False"}]})
    assert NODE.cells(not_ready)[0] == "NotReady"


def test_node_validation() -> None:
    tainted = node(spec={"taints": [{"key": "k", "effect": "NoSchedule"}, {"key": "k", "effect": "NoSchedule"},
                                    {"key": "x", "effect": "Sometimes"}, {"key": "y"}]})
    assert messages(NODE.validate(tainted)) == [
        'spec.taints[1]: Duplicate value: core.Taint{Key:"k", Value:"", Effect:"NoSchedule", TimeAdded:<nil>}: '
        "taints must be unique by key and effect pair",
        'spec.taints[2].effect: Unsupported value: "Sometimes": supported values: "NoSchedule", "PreferNoSchedule", '
        '"NoExecute"',
        "spec.taints[3].effect: Required value"]
    old = node(spec={"podCIDRs": ["10.0.0.0/24"], "providerID": "kind://a"})
    new = node(spec={"podCIDRs": ["10.0.1.0/24"], "providerID": "kind://b"})
    assert messages(NODE.validate_update(new, old)) == [
        'spec.podCIDRs: Forbidden: node updates may not change podCIDR except from "" to valid',
        'spec.providerID: Forbidden: node updates may not change providerID except from "" to valid']
    kept = node(status={"capacity": {"cpu": "1"}})
    NODE.prepare_for_update(kept, node(status={"capacity": {"cpu": "8"}}))
    assert kept["status"] == {"capacity": {"cpu": "8"}}
