"""Services: defaults, validation, kept allocations, immutable cluster IPs and the table."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from kapi.kinds.services import ServiceStrategy

from .helpers import ago, messages

STRATEGY = ServiceStrategy()


def service(**spec: Any) -> dict[str, Any]:
    spec.setdefault("ports", [{"port": 80}])
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "default",
                                                                "creationTimestamp": ago(days=3)}, "spec": spec}


def created(**spec: Any) -> dict[str, Any]:
    obj = service(**spec)
    obj["status"] = {"loadBalancer": {"ingress": [{"ip": "1.2.3.4"}]}}
    STRATEGY.prepare_for_create(obj)
    STRATEGY.default(obj)
    return obj


def test_defaults() -> None:
    obj = created(selector={"app": "web"})
    assert obj["spec"] == {"ports": [{"port": 80, "protocol": "TCP", "targetPort": 80}], "selector": {"app": "web"},
                           "sessionAffinity": "None", "type": "ClusterIP", "internalTrafficPolicy": "Cluster",
                           "ipFamilyPolicy": "SingleStack", "ipFamilies": ["IPv4"]}
    assert obj["status"] == {"loadBalancer": {}}
    node_port = created(type="NodePort", clusterIP="10.96.0.10")
    assert node_port["spec"]["externalTrafficPolicy"] == "Cluster"
    assert node_port["spec"]["clusterIPs"] == ["10.96.0.10"]
    lb = created(type="LoadBalancer")
    assert lb["spec"]["allocateLoadBalancerNodePorts"] is True
    affinity = created(sessionAffinity="ClientIP")
    assert affinity["spec"]["sessionAffinityConfig"] == {"clientIP": {"timeoutSeconds": 10800}}
    external = created(type="ExternalName", externalName="example.com", ports=[])
    assert "ipFamilies" not in external["spec"] and "internalTrafficPolicy" not in external["spec"]


@pytest.mark.parametrize(("spec", "expected"), [
    ({"ports": []}, ["spec.ports: Required value"]),
    ({"ports": [], "clusterIP": "None"}, []),
    ({"type": "ExternalName", "ports": []}, ["spec.externalName: Required value"]),
    ({"type": "Magic"},
     ['spec.type: Unsupported value: "Magic": supported values: "ClusterIP", "ExternalName", "LoadBalancer", '
      '"NodePort"']),
    ({"ports": [{"port": 0}]}, ["spec.ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive",
                                "spec.ports[0].targetPort: Invalid value: 0: must be between 1 and 65535, inclusive"]),
    ({"ports": [{"port": 80}, {"port": 81}]},
     ["spec.ports[0].name: Required value", "spec.ports[1].name: Required value"]),
    ({"ports": [{"port": 80, "nodePort": 30080}]},
     ["spec.ports[0].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'"]),
    ({"clusterIP": "not-an-ip"},
     ['spec.clusterIPs[0]: Invalid value: "not-an-ip": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)']),
])
def test_validation(spec: dict[str, Any], expected: list[str]) -> None:
    assert messages(STRATEGY.validate(created(**spec))) == expected


def test_update_keeps_allocations_and_forbids_changes() -> None:
    old = created(type="NodePort", clusterIP="10.96.0.10", ports=[{"name": "http", "port": 80, "nodePort": 30080}])
    new = service(type="NodePort", ports=[{"name": "http", "port": 80}])
    STRATEGY.prepare_for_update(new, old)
    STRATEGY.default(new)
    assert new["spec"]["clusterIP"] == "10.96.0.10" and new["spec"]["clusterIPs"] == ["10.96.0.10"]
    assert new["spec"]["ports"][0]["nodePort"] == 30080
    assert new["status"] == old["status"]
    assert STRATEGY.validate_update(new, old) == []
    moved = copy.deepcopy(new)
    moved["spec"]["clusterIP"] = "10.96.0.11"
    moved["spec"]["clusterIPs"] = ["10.96.0.11"]
    assert messages(STRATEGY.validate_update(moved, old)) == [
        'spec.clusterIPs[0]: Invalid value: []string{"10.96.0.11"}: may not change once set']


def test_table_and_fields() -> None:
    assert [(c.name, c.priority) for c in STRATEGY.columns()] == [
        ("Type", 0), ("Cluster-IP", 0), ("External-IP", 0), ("Port(s)", 0), ("Age", 0), ("Selector", 1)]
    obj = created(type="NodePort", clusterIP="10.96.0.10", selector={"app": "web"},
                  ports=[{"name": "a", "port": 80, "nodePort": 30080}, {"name": "b", "port": 53, "protocol": "UDP"}])
    assert STRATEGY.cells(obj) == ["NodePort", "10.96.0.10", "<none>", "80:30080/TCP,53/UDP", "3d", "app=web"]
    lb = created(type="LoadBalancer", clusterIP="10.96.0.12")
    assert STRATEGY.cells(lb)[2] == "<pending>"
    lb["status"] = {"loadBalancer": {"ingress": [{"ip": "5.6.7.8"}, {"hostname": "lb.example.com"}]}}
    assert STRATEGY.cells(lb)[2] == "5.6.7.8,lb.example.com"
    headless = created(clusterIP="None", ports=[])
    assert STRATEGY.cells(headless)[1:4] == ["None", "<none>", "<none>"]
    assert STRATEGY.field_values(obj) == {"spec.clusterIP": "10.96.0.10", "spec.type": "NodePort"}
    assert STRATEGY.cells({})[:4] == ["", "<none>", "<unknown>", "<none>"]
