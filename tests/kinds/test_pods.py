"""Pods: defaults, QoS, validation, update rules, binding, field selectors and the table."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from kapi.errors import APIError
from kapi.kinds.pods import PodStrategy, bind_pod, qos_class
from kapi.kinds.podspec import image_pull_policy

from .helpers import ago, messages

STRATEGY = PodStrategy()


def pod(**spec: Any) -> dict[str, Any]:
    spec.setdefault("containers", [{"name": "c", "image": "nginx"}])
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "default",
                                                            "creationTimestamp": ago(minutes=5)}, "spec": spec}


def created(**spec: Any) -> dict[str, Any]:
    obj = pod(**spec)
    STRATEGY.prepare_for_create(obj)
    STRATEGY.default(obj)
    return obj


def test_defaults_match_kube() -> None:
    obj = created(containers=[{"name": "c", "image": "nginx:1.25", "ports": [{"containerPort": 80}],
                               "env": [{"name": "N", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
                               "readinessProbe": {"httpGet": {"port": 80}}}],
                  volumes=[{"name": "v"}, {"name": "cm", "configMap": {"name": "x"}}])
    spec = obj["spec"]
    assert {k: spec[k] for k in ("dnsPolicy", "restartPolicy", "securityContext", "terminationGracePeriodSeconds",
                                 "schedulerName", "enableServiceLinks", "priority", "preemptionPolicy")} == {
        "dnsPolicy": "ClusterFirst", "restartPolicy": "Always", "securityContext": {},
        "terminationGracePeriodSeconds": 30, "schedulerName": "default-scheduler", "enableServiceLinks": True,
        "priority": 0, "preemptionPolicy": "PreemptLowerPriority"}
    container = spec["containers"][0]
    assert container["imagePullPolicy"] == "IfNotPresent"
    assert container["terminationMessagePath"] == "/dev/termination-log"
    assert container["terminationMessagePolicy"] == "File"
    assert container["resources"] == {}
    assert container["ports"] == [{"containerPort": 80, "protocol": "TCP"}]
    assert container["env"][0]["valueFrom"]["fieldRef"]["apiVersion"] == "v1"
    assert container["readinessProbe"] == {"httpGet": {"port": 80, "path": "/", "scheme": "HTTP"}, "timeoutSeconds": 1,
                                           "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3}
    assert spec["volumes"] == [{"name": "v", "emptyDir": {}},
                               {"name": "cm", "configMap": {"name": "x", "defaultMode": 420}}]
    assert obj["status"] == {"phase": "Pending", "qosClass": "BestEffort"}


def test_defaults_are_idempotent_and_sync_service_account() -> None:
    obj = created(serviceAccountName="builder")
    again = copy.deepcopy(obj)
    STRATEGY.default(again)
    assert again == obj
    assert obj["spec"]["serviceAccount"] == "builder"
    legacy = created(serviceAccount="old")
    assert legacy["spec"]["serviceAccountName"] == "old"


@pytest.mark.parametrize(("image", "policy"), [
    ("nginx", "Always"), ("nginx:latest", "Always"), ("nginx:1.25", "IfNotPresent"),
    ("nginx@sha256:abcd", "IfNotPresent"), ("localhost:5000/app", "Always"), ("localhost:5000/app:v2", "IfNotPresent"),
    ("registry.k8s.io/pause:3.10", "IfNotPresent"), ("Upper", "IfNotPresent"), ("UPPER/case", "Always"),
])
def test_image_pull_policy(image: str, policy: str) -> None:
    assert image_pull_policy(image) == policy


def resources(requests: dict[str, str] | None = None, limits: dict[str, str] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if requests is not None:
        out["requests"] = requests
    if limits is not None:
        out["limits"] = limits
    return {"name": "c", "image": "i", "resources": out}


@pytest.mark.parametrize(("containers", "qos"), [
    ([resources()], "BestEffort"),
    ([resources(requests={"cpu": "100m"})], "Burstable"),
    ([resources(limits={"cpu": "1", "memory": "1Gi"})], "Guaranteed"),
    ([resources(requests={"cpu": "1000m", "memory": "1024Mi"}, limits={"cpu": "1", "memory": "1Gi"})], "Guaranteed"),
    ([resources(requests={"cpu": "500m"}, limits={"cpu": "1", "memory": "1Gi"})], "Burstable"),
    ([resources(limits={"cpu": "1", "memory": "1Gi"}), resources()], "Burstable"),
    ([resources(requests={"ephemeral-storage": "1Gi"})], "BestEffort"),
])
def test_qos_class(containers: list[dict[str, Any]], qos: str) -> None:
    assert qos_class(pod(containers=containers)) == qos


def test_requests_default_from_limits() -> None:
    obj = created(containers=[resources(requests={"cpu": "100m"}, limits={"cpu": "1", "memory": "64Mi"})])
    assert obj["spec"]["containers"][0]["resources"]["requests"] == {"cpu": "100m", "memory": "64Mi"}


def test_scheduling_gates_condition() -> None:
    obj = created(schedulingGates=[{"name": "wait"}])
    [condition] = obj["status"]["conditions"]
    assert condition["reason"] == "SchedulingGated" and condition["status"] == "False"
    assert STRATEGY.cells(obj)[1] == "SchedulingGated"


@pytest.mark.parametrize(("spec", "expected"), [
    ({"containers": []}, ["spec.containers: Required value"]),
    ({"containers": [{"name": "", "image": "i"}]}, ["spec.containers[0].name: Required value"]),
    ({"containers": [{"name": "c"}]}, ["spec.containers[0].image: Required value"]),
    ({"containers": [{"name": "Bad_Name", "image": "i"}]},
     ['spec.containers[0].name: Invalid value: "Bad_Name": a lowercase RFC 1123 label must consist of lower case '
      "alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or "
      "'123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"]),
    ({"containers": [{"name": "c", "image": "i"}, {"name": "c", "image": "j"}]},
     ['spec.containers[1].name: Duplicate value: "c"']),
    ({"containers": [{"name": "c", "image": "i"}], "initContainers": [{"name": "c", "image": "j"}]},
     ['spec.initContainers[0].name: Duplicate value: "c"']),
    ({"containers": [{"name": "c", "image": "i", "ports": [{"containerPort": 70000}]}]},
     ["spec.containers[0].ports[0].containerPort: Invalid value: 70000: must be between 1 and 65535, inclusive"]),
    ({"containers": [{"name": "c", "image": "i", "ports": [{"containerPort": 80, "protocol": "HTTP"}]}]},
     ['spec.containers[0].ports[0].protocol: Unsupported value: "HTTP": supported values: "SCTP", "TCP", "UDP"']),
    ({"restartPolicy": "Sometimes"},
     ['spec.restartPolicy: Unsupported value: "Sometimes": supported values: "Always", "OnFailure", "Never"']),
    ({"containers": [{"name": "c", "image": "i", "imagePullPolicy": "Maybe"}]},
     ['spec.containers[0].imagePullPolicy: Unsupported value: "Maybe": supported values: "Always", "IfNotPresent", '
      '"Never"']),
    ({"containers": [{"name": "c", "image": "i", "volumeMounts": [{"name": "data", "mountPath": "/d"}]}]},
     ['spec.containers[0].volumeMounts[0].name: Not found: "data"']),
    ({"containers": [{"name": "c", "image": "i", "resources": {"requests": {"cpu": "2"}, "limits": {"cpu": "1"}}}]},
     ['spec.containers[0].resources.requests: Invalid value: "2": must be less than or equal to cpu limit of 1']),
    ({"tolerations": [{"operator": "Equal", "value": "x"}]},
     ['spec.tolerations[0].operator: Invalid value: "Equal": operator must be Exists when `key` is empty, which '
      'means "match all values and all keys"']),
])
def test_validation_causes(spec: dict[str, Any], expected: list[str]) -> None:
    obj = created(**spec)
    assert messages(STRATEGY.validate(obj)) == expected


def test_valid_pod_has_no_causes() -> None:
    obj = created(volumes=[{"name": "data"}],
                  containers=[{"name": "c", "image": "i", "volumeMounts": [{"name": "data", "mountPath": "/d"}],
                               "ports": [{"name": "http", "containerPort": 8080}]}])
    assert STRATEGY.validate(obj) == []


def test_update_rules() -> None:
    old = created(tolerations=[{"key": "k", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 10}])
    new = copy.deepcopy(old)
    new["spec"]["containers"][0]["image"] = "nginx:2"
    new["spec"]["activeDeadlineSeconds"] = 100
    new["spec"]["tolerations"][0]["tolerationSeconds"] = 5
    new["spec"]["tolerations"].append({"key": "other", "operator": "Exists"})
    assert STRATEGY.validate_update(new, old) == []

    changed = copy.deepcopy(old)
    changed["spec"]["restartPolicy"] = "Never"
    [cause] = STRATEGY.validate_update(changed, old)
    assert cause.field == "spec" and cause.reason == "FieldValueForbidden"
    assert cause.message.startswith("Forbidden: pod updates may not change fields other than `spec.containers[*]."
                                    "image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,"
                                    "`spec.tolerations` (only additions to existing tolerations),"
                                    "`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was "
                                    "previously negative)\n")
    assert 'restartPolicy: "Always"' in cause.message and 'restartPolicy: "Never"' in cause.message

    removed = copy.deepcopy(old)
    removed["spec"]["tolerations"] = []
    assert messages(STRATEGY.validate_update(removed, old)) == [
        "spec.tolerations: Forbidden: existing toleration can not be modified except its tolerationSeconds"]

    more = copy.deepcopy(old)
    more["spec"]["containers"].append({"name": "d", "image": "x"})
    STRATEGY.default(more)
    assert messages(STRATEGY.validate_update(more, old)) == [
        "spec.containers: Forbidden: pod updates may not add or remove containers"]

    with_deadline = copy.deepcopy(new)
    longer = copy.deepcopy(new)
    longer["spec"]["activeDeadlineSeconds"] = 200
    assert messages(STRATEGY.validate_update(longer, with_deadline)) == [
        "spec.activeDeadlineSeconds: Invalid value: 200: must be less than or equal to previous value"]


def test_status_is_kept_on_update() -> None:
    old = created()
    old["status"]["phase"] = "Running"
    new = pod()
    new["status"] = {"phase": "Failed"}
    STRATEGY.prepare_for_update(new, old)
    assert new["status"]["phase"] == "Running"


def test_bind_pod() -> None:
    obj = created()
    bind_pod(obj, {"target": {"kind": "Node", "name": "n1"}, "metadata": {"annotations": {"a": "b"}}})
    assert obj["spec"]["nodeName"] == "n1"
    assert obj["metadata"]["annotations"] == {"a": "b"}
    assert obj["status"]["conditions"][0]["type"] == "PodScheduled"
    with pytest.raises(APIError) as err:
        bind_pod(obj, {"target": {"name": "n2"}})
    assert err.value.code == 409 and 'is already assigned to node "n1"' in err.value.message
    with pytest.raises(APIError) as err:
        bind_pod(created(), {"target": {}})
    assert err.value.code == 422


def test_field_values() -> None:
    obj = created(nodeName="n1", hostNetwork=True)
    obj["status"]["podIPs"] = [{"ip": "10.0.0.5"}]
    assert STRATEGY.field_values(obj) == {
        "spec.nodeName": "n1", "spec.restartPolicy": "Always", "spec.schedulerName": "default-scheduler",
        "spec.serviceAccountName": "", "spec.hostNetwork": "true", "status.phase": "Pending",
        "status.podIP": "10.0.0.5", "status.nominatedNodeName": ""}
    assert set(STRATEGY.field_values({})) == set(STRATEGY.field_values(obj))


def test_columns() -> None:
    columns = STRATEGY.columns()
    assert [(c.name, c.type, c.priority) for c in columns] == [
        ("Ready", "string", 0), ("Status", "string", 0), ("Restarts", "string", 0), ("Age", "string", 0),
        ("IP", "string", 1), ("Node", "string", 1), ("Nominated Node", "string", 1), ("Readiness Gates", "string", 1)]


def running_status(**extra: Any) -> dict[str, Any]:
    status = {"phase": "Running", "podIPs": [{"ip": "10.1.2.3"}],
              "conditions": [{"type": "Ready", "status": "True"}],
              "containerStatuses": [{"name": "c", "ready": True, "restartCount": 0,
                                     "state": {"running": {"startedAt": ago(minutes=5)}}}]}
    status.update(extra)
    return status


def test_cells_running() -> None:
    obj = created(nodeName="node-1")
    obj["status"] = running_status()
    assert STRATEGY.cells(obj) == ["1/1", "Running", "0", "5m", "10.1.2.3", "node-1", "<none>", "<none>"]


def test_cells_crash_loop_with_restarts() -> None:
    obj = created()
    obj["status"] = running_status(containerStatuses=[{
        "name": "c", "ready": False, "restartCount": 3,
        "state": {"waiting": {"reason": "CrashLoopBackOff"}},
        "lastState": {"terminated": {"exitCode": 1, "finishedAt": ago(minutes=2, seconds=10)}}}])
    ready, status, restarts = STRATEGY.cells(obj)[:3]
    assert (ready, status) == ("0/1", "CrashLoopBackOff")
    assert restarts in ("3 (2m10s ago)", "3 (2m11s ago)")


@pytest.mark.parametrize(("statuses", "reason"), [
    ([{"name": "i", "state": {"waiting": {"reason": "PodInitializing"}}}], "Init:0/1"),
    ([{"name": "i", "state": {"terminated": {"exitCode": 2}}}], "Init:ExitCode:2"),
    ([{"name": "i", "state": {"terminated": {"exitCode": 1, "reason": "Error"}}}], "Init:Error"),
    ([{"name": "i", "state": {"waiting": {"reason": "ImagePullBackOff"}}}], "Init:ImagePullBackOff"),
])
def test_cells_init_containers(statuses: list[dict[str, Any]], reason: str) -> None:
    obj = created(initContainers=[{"name": "i", "image": "busybox"}])
    obj["status"] = {"phase": "Pending", "initContainerStatuses": statuses}
    assert STRATEGY.cells(obj)[1] == reason


def test_cells_completed_terminating_and_gates() -> None:
    done = created()
    done["status"] = {"phase": "Succeeded", "containerStatuses": [
        {"name": "c", "ready": False, "restartCount": 0, "state": {"terminated": {"exitCode": 0,
                                                                                  "reason": "Completed"}}}]}
    assert STRATEGY.cells(done)[:2] == ["0/1", "Completed"]
    deleting = created()
    deleting["status"] = running_status()
    deleting["metadata"]["deletionTimestamp"] = ago(seconds=1)
    assert STRATEGY.cells(deleting)[1] == "Terminating"
    gated = created(readinessGates=[{"conditionType": "x"}, {"conditionType": "y"}])
    gated["status"] = running_status(conditions=[{"type": "x", "status": "True"}, {"type": "y", "status": "False"}])
    assert STRATEGY.cells(gated)[-1] == "1/2"


def test_cells_tolerate_empty_objects() -> None:
    assert STRATEGY.cells({}) == ["0/0", "", "0", "<unknown>", "<none>", "<none>", "<none>", "<none>"]
