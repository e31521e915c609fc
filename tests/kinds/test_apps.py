"""Deployments and ReplicaSets: defaults, selector rules, status reset and tables."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from kapi.kinds.apps import DeploymentStrategy, ReplicaSetStrategy

from .helpers import ago, messages

DEPLOY = DeploymentStrategy()
RS = ReplicaSetStrategy()


def workload(kind: str = "Deployment", **spec: Any) -> dict[str, Any]:
    spec.setdefault("selector", {"matchLabels": {"app": "web"}})
    spec.setdefault("template", {"metadata": {"labels": {"app": "web"}},
                                 "spec": {"containers": [{"name": "web", "image": "nginx:1.25"}]}})
    return {"apiVersion": "apps/v1", "kind": kind, "metadata": {"name": "web", "namespace": "default",
                                                                "creationTimestamp": ago(hours=5)}, "spec": spec}


def created(strategy: DeploymentStrategy | ReplicaSetStrategy, obj: dict[str, Any]) -> dict[str, Any]:
    obj["status"] = {"replicas": 99}
    strategy.prepare_for_create(obj)
    strategy.default(obj)
    return obj


def test_deployment_defaults() -> None:
    obj = created(DEPLOY, workload())
    spec = obj["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}}
    assert spec["revisionHistoryLimit"] == 10 and spec["progressDeadlineSeconds"] == 600
    template_spec = spec["template"]["spec"]
    assert template_spec["restartPolicy"] == "Always" and template_spec["dnsPolicy"] == "ClusterFirst"
    assert template_spec["containers"][0]["imagePullPolicy"] == "IfNotPresent"
    assert "enableServiceLinks" not in template_spec and "priority" not in template_spec
    assert obj["status"] == {}
    assert DEPLOY.validate(obj) == []


def test_recreate_strategy_keeps_no_rolling_update() -> None:
    obj = created(DEPLOY, workload(strategy={"type": "Recreate"}))
    assert obj["spec"]["strategy"] == {"type": "Recreate"}
    obj["spec"]["strategy"]["rollingUpdate"] = {"maxSurge": 1}
    assert messages(DEPLOY.validate(obj)) == [
        "spec.strategy.rollingUpdate: Forbidden: may not be specified when strategy `type` is 'Recreate'"]


def test_replicaset_defaults_and_status() -> None:
    obj = created(RS, workload("ReplicaSet"))
    assert obj["spec"]["replicas"] == 1 and obj["status"] == {"replicas": 0}
    assert RS.validate(obj) == []


@pytest.mark.parametrize(("spec", "expected"), [
    ({"selector": {"matchLabels": {"app": "other"}}},
     ['spec.template.metadata.labels: Invalid value: map[string]string{"app":"web"}: `selector` does not match '
      "template `labels`"]),
    ({"selector": None}, ["spec.selector: Required value"]),
    ({"selector": {}}, ["spec.selector: Invalid value: &v1.LabelSelector{MatchLabels:map[string]string(nil), "
                        "MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: empty selector is invalid for "
                        "deployment"]),
    ({"replicas": -1}, ["spec.replicas: Invalid value: -1: must be greater than or equal to 0"]),
    ({"selector": {"matchExpressions": [{"key": "app", "operator": "In", "values": []}]}},
     ["spec.selector.matchExpressions[0].values: Required value: must be specified when `operator` is 'In' or "
      "'NotIn'", "spec.selector: Invalid value: &v1.LabelSelector{MatchLabels:map[string]string(nil), "
      'MatchExpressions:[]v1.LabelSelectorRequirement{v1.LabelSelectorRequirement{Key:"app", Operator:"In", '
      "Values:[]string(nil)}}}: invalid label selector"]),
])
def test_selector_validation(spec: dict[str, Any], expected: list[str]) -> None:
    for strategy, kind in ((DEPLOY, "Deployment"), (RS, "ReplicaSet")):
        obj = created(strategy, workload(kind, **spec))
        assert messages(strategy.validate(obj)) == expected


def test_template_rules() -> None:
    obj = created(DEPLOY, workload())
    obj["spec"]["template"]["spec"]["restartPolicy"] = "Never"
    obj["spec"]["template"]["spec"]["containers"][0]["image"] = ""
    assert messages(DEPLOY.validate(obj)) == [
        "spec.template.spec.containers[0].image: Required value",
        'spec.template.spec.restartPolicy: Unsupported value: "Never": supported values: "Always"']
    surge = created(DEPLOY, workload(strategy={"type": "RollingUpdate",
                                               "rollingUpdate": {"maxSurge": 0, "maxUnavailable": "0%"}}))
    assert messages(DEPLOY.validate(surge)) == [
        'spec.strategy.rollingUpdate.maxUnavailable: Invalid value: "0%": may not be 0 when `maxSurge` is 0']
    bad_percent = created(DEPLOY, workload(strategy={"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "x%"}}))
    assert messages(DEPLOY.validate(bad_percent))[0].startswith(
        "spec.strategy.rollingUpdate.maxSurge: Invalid value: \"x%\": a valid percent string must be")


def test_selector_is_immutable() -> None:
    for strategy, kind in ((DEPLOY, "Deployment"), (RS, "ReplicaSet")):
        old = created(strategy, workload(kind))
        new = copy.deepcopy(old)
        new["spec"]["replicas"] = 3
        assert strategy.validate_update(new, old) == []
        new["spec"]["selector"] = {"matchLabels": {"app": "web", "tier": "x"}}
        new["spec"]["template"]["metadata"]["labels"]["tier"] = "x"
        assert messages(strategy.validate_update(new, old)) == [
            'spec.selector: Invalid value: &v1.LabelSelector{MatchLabels:map[string]string{"app":"web", "tier":"x"}, '
            "MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: field is immutable"]


def test_tables() -> None:
    deploy = created(DEPLOY, workload(replicas=3))
    deploy["status"] = {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2}
    assert [(c.name, c.type, c.priority) for c in DEPLOY.columns()] == [
        ("Ready", "string", 0), ("Up-to-date", "string", 0), ("Available", "string", 0), ("Age", "string", 0),
        ("Containers", "string", 1), ("Images", "string", 1), ("Selector", "string", 1)]
    assert DEPLOY.cells(deploy) == ["2/3", 3, 2, "5h", "web", "nginx:1.25", "app=web"]
    rs = created(RS, workload("ReplicaSet", replicas=2))
    rs["status"] = {"replicas": 2, "readyReplicas": 1}
    assert [(c.name, c.type) for c in RS.columns()][:3] == [("Desired", "integer"), ("Current", "integer"),
                                                           ("Ready", "integer")]
    assert RS.cells(rs) == [2, 2, 1, "5h", "web", "nginx:1.25", "app=web"]
    assert RS.field_values(rs) == {"status.replicas": "2"}
    assert DEPLOY.cells({}) == ["0/0", 0, 0, "<unknown>", "", "", ""]
    assert RS.cells({})[-1] == "<none>"
