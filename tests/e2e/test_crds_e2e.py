"""CustomResourceDefinitions with real clients: kubectl apply/get/explain/watch and CustomObjectsApi."""

from __future__ import annotations

import json
import subprocess
import time

import pytest

from tests.e2e.conftest import Kubectl

pytestmark = pytest.mark.e2e

CRD = """
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: crontabs.e2e.example.com}
spec:
  group: e2e.example.com
  scope: Namespaced
  names: {plural: crontabs, singular: crontab, kind: CronTab, shortNames: [ct]}
  versions:
  - name: v1
    served: true
    storage: true
    subresources: {status: {}}
    selectableFields: [{jsonPath: .spec.image}]
    additionalPrinterColumns:
    - {name: Schedule, type: string, jsonPath: .spec.cronSpec}
    - {name: Replicas, type: integer, jsonPath: .spec.replicas}
    - {name: Age, type: date, jsonPath: .metadata.creationTimestamp}
    schema:
      openAPIV3Schema:
        type: object
        description: A CronTab runs an image on a schedule.
        properties:
          spec:
            type: object
            description: The desired schedule.
            properties:
              cronSpec: {type: string, description: The cron schedule., pattern: '^(\\S+ ){4}\\S+$'}
              image: {type: string}
              replicas: {type: integer, minimum: 1, default: 1}
          status:
            type: object
            properties:
              phase: {type: string}
"""

CRONTAB = """
apiVersion: e2e.example.com/v1
kind: CronTab
metadata: {{name: {name}, namespace: default}}
spec: {{cronSpec: "{spec}", image: busybox}}
"""


@pytest.fixture(scope="module")
def crd(kubectl: Kubectl) -> Kubectl:
    kubectl("apply", "-f", "-", input=CRD)
    return kubectl


def test_apply_then_get_with_printer_columns(crd: Kubectl) -> None:
    crd("apply", "-f", "-", input=CRONTAB.format(name="nightly", spec="0 3 * * *"))
    out = crd("get", "crontabs", "-n", "default")
    header = out.splitlines()[0].split()
    assert header == ["NAME", "SCHEDULE", "REPLICAS", "AGE"], out
    assert "nightly" in out and "0 3 * * *" in out
    assert "nightly" in crd("get", "ct", "-n", "default", "-o", "name")
    got = json.loads(crd("get", "crontab", "nightly", "-n", "default", "-o", "json"))
    assert got["spec"]["replicas"] == 1  # defaulted


def test_invalid_object_is_rejected(crd: Kubectl) -> None:
    result = crd.run("apply", "-f", "-", input=CRONTAB.format(name="bad", spec="never"), check=False)
    assert result.returncode != 0 and "spec.cronSpec" in result.stderr


def test_typo_in_a_field_is_refused_like_kube(crd: Kubectl) -> None:
    """kubectl asks for fieldValidation=Strict: an undeclared field is an error, not silently pruned."""
    typo = CRONTAB.format(name="typo", spec="0 1 * * *").replace("image: busybox", "imgae: busybox")
    result = crd.run("apply", "-f", "-", input=typo, check=False)
    assert result.returncode != 0 and 'unknown field "spec.imgae"' in result.stderr, result.stderr
    assert crd.run("get", "crontab", "typo", "-n", "default", check=False).returncode != 0


def test_explain(crd: Kubectl) -> None:
    out = crd("explain", "crontabs.spec")
    assert "cronSpec" in out and "The cron schedule." in out


def test_watch(crd: Kubectl) -> None:
    watch = subprocess.Popen([crd.binary, "--kubeconfig", str(crd.kubeconfig), "get", "crontabs", "-n", "default",
                              "--watch", "-o", "name", "--request-timeout=20s"], stdout=subprocess.PIPE, text=True)
    try:
        time.sleep(0.5)
        crd("apply", "-f", "-", input=CRONTAB.format(name="watched", spec="*/5 * * * *"))
        assert watch.stdout is not None
        deadline = time.monotonic() + 15
        seen = ""
        while "watched" not in seen and time.monotonic() < deadline:
            seen += watch.stdout.readline()
        assert "crontab.e2e.example.com/watched" in seen
    finally:
        watch.kill()
        watch.wait()


def test_status_subresource_with_custom_objects_api(crd: Kubectl, k8s) -> None:  # type: ignore[no-untyped-def]
    from kubernetes import client

    api = client.CustomObjectsApi(k8s)
    body = {"apiVersion": "e2e.example.com/v1", "kind": "CronTab", "metadata": {"name": "py"},
            "spec": {"cronSpec": "1 * * * *", "image": "x"}}
    api.create_namespaced_custom_object("e2e.example.com", "v1", "default", "crontabs", body)
    api.patch_namespaced_custom_object_status("e2e.example.com", "v1", "default", "crontabs", "py",
                                              {"status": {"phase": "Running"}})
    got = api.get_namespaced_custom_object("e2e.example.com", "v1", "default", "crontabs", "py")
    assert got["status"] == {"phase": "Running"}
    listed = api.list_namespaced_custom_object("e2e.example.com", "v1", "default", "crontabs")
    assert "py" in [i["metadata"]["name"] for i in listed["items"]]
    api.delete_namespaced_custom_object("e2e.example.com", "v1", "default", "crontabs", "py")


def test_field_selector_on_a_selectable_field(crd: Kubectl) -> None:
    crd("apply", "-f", "-", input=CRONTAB.format(name="sel-a", spec="0 4 * * *"))
    crd("apply", "-f", "-", input=CRONTAB.format(name="sel-b", spec="0 5 * * *").replace("busybox", "alpine"))
    out = crd("get", "crontabs", "-n", "default", "--field-selector", "spec.image=alpine", "-o", "name")
    assert out.split() == ["crontab.e2e.example.com/sel-b"]
    refused = crd.run("get", "crontabs", "-n", "default", "--field-selector", "spec.cronSpec=x", check=False)
    assert refused.returncode != 0 and "field label not supported" in refused.stderr


def test_delete_crd_waits_for_object_finalizers(crd: Kubectl) -> None:
    crd("apply", "-f", "-", input=CRONTAB.format(name="held", spec="0 2 * * *"))
    crd("patch", "crontab", "held", "-n", "default", "--type", "merge",
        "-p", '{"metadata":{"finalizers":["e2e.example.com/hold"]}}')
    crd("delete", "crd", "crontabs.e2e.example.com", "--wait=false")
    crd("wait", "--for=condition=Terminating", "crd/crontabs.e2e.example.com", "--timeout=20s")
    late = crd.run("apply", "-f", "-", input=CRONTAB.format(name="late", spec="0 2 * * *"), check=False)
    assert late.returncode != 0 and "custom resource definition is terminating" in late.stderr, late.stderr
    held = json.loads(crd("get", "crontab", "held", "-n", "default", "-o", "json"))
    assert held["metadata"]["deletionTimestamp"]
    crd("patch", "crontab", "held", "-n", "default", "--type", "merge", "-p", '{"metadata":{"finalizers":null}}')
    crd("wait", "--for=delete", "crd/crontabs.e2e.example.com", "--timeout=20s")
    assert "crontabs.e2e.example.com" not in crd("get", "crds", "-o", "name")
    deadline = time.monotonic() + 5  # the server stops serving the resource just after the CRD goes
    while crd.run("get", "crontabs", "-n", "default", check=False).returncode == 0 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert crd.run("get", "crontabs", "-n", "default", check=False).returncode != 0

    assert "crontabs.e2e.example.com" not in crd("get", "crds", "-o", "name")
    result = crd.run("get", "crontabs", "-n", "default", check=False)
    assert result.returncode != 0
