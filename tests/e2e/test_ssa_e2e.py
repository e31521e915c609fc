"""Server-side apply with the real kubectl 1.37: two managers, a conflict, a forced takeover, mixing
server-side and client-side apply, and managedFields in ``get --show-managed-fields``."""

from __future__ import annotations

import json

import pytest

from tests.e2e.conftest import Kubectl

pytestmark = pytest.mark.e2e

NAMESPACE = "apiVersion: v1\nkind: Namespace\nmetadata: {name: ssa}\n"

CONFIGMAP = """
apiVersion: v1
kind: ConfigMap
metadata: {{name: shared, namespace: ssa}}
data: {{{data}}}
"""

DEPLOYMENT = """
apiVersion: apps/v1
kind: Deployment
metadata: {{name: web, namespace: ssa}}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      containers: [{{name: web, image: "{image}"}}]
"""


@pytest.fixture(scope="module")
def ns(kubectl: Kubectl) -> str:
    kubectl("apply", "-f", "-", input=NAMESPACE)
    return "ssa"


def managers(kubectl: Kubectl, *what: str) -> dict[str, str]:
    obj = json.loads(kubectl("get", *what, "-n", "ssa", "-o", "json", "--show-managed-fields"))
    return {e["manager"]: e["operation"] for e in obj["metadata"].get("managedFields", [])}


def test_two_managers_conflict_and_force(kubectl: Kubectl, ns: str) -> None:
    first = kubectl("apply", "--server-side", "--field-manager=a", "-f", "-", input=CONFIGMAP.format(data="x: '1'"))
    assert "serverside-applied" in first
    clash = kubectl.run("apply", "--server-side", "--field-manager=b", "-f", "-",
                        input=CONFIGMAP.format(data="x: '2'"), check=False)
    assert clash.returncode != 0
    assert 'conflict with "a"' in clash.stderr and ".data.x" in clash.stderr, clash.stderr
    forced = kubectl("apply", "--server-side", "--field-manager=b", "--force-conflicts", "-f", "-",
                     input=CONFIGMAP.format(data="x: '2'"))
    assert "serverside-applied" in forced
    assert kubectl("get", "cm", "shared", "-n", ns, "-o", "jsonpath={.data.x}") == "2"
    assert managers(kubectl, "cm", "shared") == {"b": "Apply"}  # a owned only data.x
    yaml_out = kubectl("get", "cm", "shared", "-n", ns, "-o", "yaml", "--show-managed-fields")
    assert "managedFields:" in yaml_out and "f:x: {}" in yaml_out and "manager: b" in yaml_out
    assert "managedFields" not in kubectl("get", "cm", "shared", "-n", ns, "-o", "yaml")


def test_server_side_then_client_side_apply(kubectl: Kubectl, ns: str) -> None:
    out = kubectl("apply", "--server-side", "-f", "-", input=DEPLOYMENT.format(replicas=1, image="nginx:1.26"))
    assert "serverside-applied" in out
    assert managers(kubectl, "deploy", "web") == {"kubectl": "Apply"}
    again = kubectl("apply", "--server-side", "-f", "-", input=DEPLOYMENT.format(replicas=1, image="nginx:1.26"))
    assert "serverside-applied" in again
    client_side = kubectl.run("apply", "-f", "-", input=DEPLOYMENT.format(replicas=3, image="nginx:1.27"))
    assert "configured" in client_side.stdout, client_side.stderr
    deploy = json.loads(kubectl("get", "deploy", "web", "-n", ns, "-o", "json"))
    assert deploy["spec"]["replicas"] == 3
    assert deploy["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.27"
    assert "kubectl.kubernetes.io/last-applied-configuration" in deploy["metadata"]["annotations"]
    assert managers(kubectl, "deploy", "web").get("kubectl-client-side-apply") == "Update"
    unchanged = kubectl("apply", "-f", "-", input=DEPLOYMENT.format(replicas=3, image="nginx:1.27"))
    assert "unchanged" in unchanged


def test_client_side_then_server_side_apply(kubectl: Kubectl, ns: str) -> None:
    """kubectl migrates the client-side owner to its server-side manager, so no conflict arises."""
    manifest = CONFIGMAP.replace("name: shared", "name: migrated")
    assert "created" in kubectl("apply", "-f", "-", input=manifest.format(data="color: blue"))
    assert managers(kubectl, "cm", "migrated") == {"kubectl-client-side-apply": "Update"}
    out = kubectl.run("apply", "--server-side", "-f", "-", input=manifest.format(data="color: green"))
    assert "serverside-applied" in out.stdout, out.stderr
    assert kubectl("get", "cm", "migrated", "-n", ns, "-o", "jsonpath={.data.color}") == "green"
    assert managers(kubectl, "cm", "migrated").get("kubectl") == "Apply"
