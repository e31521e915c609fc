"""Real kubectl 1.37 against a real kapi-apiserver process over TLS (client-certificate admin)."""

from __future__ import annotations

import json
import subprocess
import time

import pytest

from tests.e2e.conftest import Kubectl

pytestmark = pytest.mark.e2e

POD = """
apiVersion: v1
kind: Pod
metadata:
  name: web
  namespace: {ns}
  labels: {{app: web}}
spec:
  containers:
  - name: nginx
    image: nginx:1.27
    ports: [{{containerPort: 80}}]
    env: [{{name: A, value: "1"}}]
"""

CONFIGMAP = """
apiVersion: v1
kind: ConfigMap
metadata: {{name: settings, namespace: {ns}}}
data: {{color: blue}}
"""

DEPLOYMENT = """
apiVersion: apps/v1
kind: Deployment
metadata: {{name: api, namespace: {ns}}}
spec:
  replicas: 2
  selector: {{matchLabels: {{app: api}}}}
  template:
    metadata: {{labels: {{app: api}}}}
    spec:
      containers: [{{name: api, image: "example/api:v1"}}]
"""


@pytest.fixture(scope="module")
def ns(kubectl: Kubectl) -> str:
    kubectl("create", "namespace", "e2e")
    return "e2e"


def test_namespaces_listed(kubectl: Kubectl) -> None:
    out = kubectl("get", "namespaces")
    for name in ("default", "kube-system", "kube-public", "kube-node-lease"):
        assert name in out
    assert out.splitlines()[0].split() == ["NAME", "STATUS", "AGE"]


def test_apply_and_get(kubectl: Kubectl, ns: str) -> None:
    for manifest in (POD, CONFIGMAP, DEPLOYMENT):
        out = kubectl("apply", "-f", "-", input=manifest.format(ns=ns))
        assert "created" in out
    pods = kubectl("get", "pods", "-n", ns)
    assert pods.splitlines()[0].split() == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert "web" in pods and "Pending" in pods
    wide = kubectl("get", "pods", "-n", ns, "-o", "wide")
    assert "NODE" in wide.splitlines()[0]
    pod = json.loads(kubectl("get", "pod", "web", "-n", ns, "-o", "json"))
    assert pod["spec"]["restartPolicy"] == "Always"
    assert pod["spec"]["containers"][0]["imagePullPolicy"] == "IfNotPresent"
    assert pod["metadata"]["uid"] and pod["metadata"]["resourceVersion"]
    assert "kind: Pod" in kubectl("get", "pod", "web", "-n", ns, "-o", "yaml")
    assert kubectl("get", "pod", "web", "-n", ns, "-o", "jsonpath={.spec.containers[0].image}") == "nginx:1.27"
    deploy = json.loads(kubectl("get", "deploy", "api", "-n", ns, "-o", "json"))
    assert deploy["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": "25%", "maxUnavailable": "25%"}
    assert deploy["metadata"]["generation"] == 1
    # re-applying the same manifest changes nothing
    assert "unchanged" in kubectl("apply", "-f", "-", input=CONFIGMAP.format(ns=ns))
    changed = CONFIGMAP.format(ns=ns).replace("blue", "green")
    assert "configured" in kubectl("apply", "-f", "-", input=changed)
    assert kubectl("get", "cm", "settings", "-n", ns, "-o", "jsonpath={.data.color}") == "green"


def test_label_and_selectors(kubectl: Kubectl, ns: str) -> None:
    kubectl("apply", "-f", "-", input=CONFIGMAP.format(ns=ns))
    kubectl("label", "configmap", "settings", "-n", ns, "tier=backend")
    assert "settings" in kubectl("get", "cm", "-n", ns, "-l", "tier=backend")
    assert "settings" in kubectl("get", "cm", "-n", ns, "-l", "tier in (backend,frontend)")
    assert "settings" not in kubectl("get", "cm", "-n", ns, "-l", "tier!=backend")
    assert "settings" in kubectl("get", "cm", "-n", ns, "--field-selector", "metadata.name=settings")
    bad = kubectl.run("get", "cm", "-n", ns, "-l", "tier in (", check=False)
    assert bad.returncode != 0


def test_three_patch_types(kubectl: Kubectl, ns: str) -> None:
    kubectl("apply", "-f", "-", input=POD.format(ns=ns))
    kubectl("patch", "pod", "web", "-n", ns, "-p",
            '{"spec":{"containers":[{"name":"nginx","image":"nginx:1.28"}]}}')
    pod = json.loads(kubectl("get", "pod", "web", "-n", ns, "-o", "json"))
    assert pod["spec"]["containers"][0]["image"] == "nginx:1.28"
    assert pod["spec"]["containers"][0]["env"] == [{"name": "A", "value": "1"}]  # strategic merge kept env
    kubectl("patch", "pod", "web", "-n", ns, "--type", "merge", "-p", '{"metadata":{"labels":{"m":"1"}}}')
    kubectl("patch", "pod", "web", "-n", ns, "--type", "json",
            "-p", '[{"op":"add","path":"/metadata/annotations","value":{"j":"2"}}]')
    pod = json.loads(kubectl("get", "pod", "web", "-n", ns, "-o", "json"))
    assert pod["metadata"]["labels"]["m"] == "1" and pod["metadata"]["annotations"]["j"] == "2"


def test_unknown_fields(kubectl: Kubectl, ns: str) -> None:
    """``kubectl patch`` sends no fieldValidation: the server's default (Warn) answers with a
    warning and drops the undeclared field, as kube-apiserver's typed decoding does; ``kubectl
    replace`` validates strictly (400 naming the field)."""
    kubectl("create", "configmap", "typo", "-n", ns, "--from-literal=a=b")
    patched = kubectl.run("patch", "configmap", "typo", "-n", ns, "--type", "merge",
                          "-p", '{"dta":{"a":"c"},"data":{"d":"e"}}')
    assert patched.returncode == 0 and 'Warning: unknown field "dta"' in patched.stderr, patched.stderr
    stored = json.loads(kubectl("get", "configmap", "typo", "-n", ns, "-o", "json"))
    assert stored["data"] == {"a": "b", "d": "e"} and "dta" not in stored
    stored["dta"] = {"x": "y"}
    replaced = kubectl.run("replace", "-f", "-", input=json.dumps(stored), check=False)
    assert replaced.returncode != 0 and 'unknown field "dta"' in replaced.stderr, replaced.stderr


def test_explain(kubectl: Kubectl) -> None:
    out = kubectl("explain", "pods.spec.containers.image")
    assert "FIELD: image" in out or "image" in out
    out = kubectl("explain", "deployment.spec.strategy")
    assert "rollingUpdate" in out


def test_delete(kubectl: Kubectl, ns: str) -> None:
    kubectl("create", "configmap", "doomed", "-n", ns, "--from-literal=a=b")
    assert 'configmap "doomed" deleted' in kubectl("delete", "configmap", "doomed", "-n", ns)
    missing = kubectl.run("get", "configmap", "doomed", "-n", ns, check=False)
    assert missing.returncode != 0 and "NotFound" in missing.stderr


def test_errors_404_409_422(kubectl: Kubectl, ns: str) -> None:
    missing = kubectl.run("get", "pod", "nope", "-n", ns, check=False)
    assert 'pods "nope" not found' in missing.stderr
    kubectl("create", "configmap", "twice", "-n", ns)
    again = kubectl.run("create", "configmap", "twice", "-n", ns, check=False)
    assert "AlreadyExists" in again.stderr or "already exists" in again.stderr
    invalid = kubectl.run("create", "configmap", "Bad_Name", "-n", ns, check=False)
    assert invalid.returncode != 0 and "Invalid value" in invalid.stderr
    no_ns = kubectl.run("create", "configmap", "x", "-n", "no-such-ns", check=False)
    assert 'namespaces "no-such-ns" not found' in no_ns.stderr


def test_pagination_over_100_objects(kubectl: Kubectl) -> None:
    kubectl("create", "namespace", "many")
    items = [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"cm-{i:03d}", "namespace": "many"}}
             for i in range(120)]
    kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": items}), timeout=120)
    out = kubectl("get", "configmaps", "-n", "many", "--chunk-size=25", "-o", "name")
    names = [line for line in out.splitlines() if line.startswith("configmap/cm-")]
    assert len(names) == 120 and len(set(names)) == 120
    raw = json.loads(kubectl("get", "--raw", "/api/v1/namespaces/many/configmaps?limit=50"))
    assert len(raw["items"]) == 50 and raw["metadata"]["continue"]
    assert raw["metadata"]["remainingItemCount"] >= 70


def test_get_watch_streams_changes(kubectl: Kubectl, server) -> None:  # type: ignore[no-untyped-def]
    kubectl("create", "namespace", "watched")
    proc = subprocess.Popen([kubectl.binary, "--kubeconfig", str(kubectl.kubeconfig), "get", "configmaps", "-n",
                             "watched", "--watch", "-o", "name"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        time.sleep(1.0)
        kubectl("create", "configmap", "live-one", "-n", "watched")
        deadline = time.monotonic() + 15
        seen = ""
        assert proc.stdout is not None
        while time.monotonic() < deadline and "live-one" not in seen:
            seen += proc.stdout.readline()
        assert "configmap/live-one" in seen
    finally:
        proc.terminate()
        proc.wait(5)


def test_auth_can_i(kubectl: Kubectl) -> None:
    assert kubectl("auth", "can-i", "create", "pods").strip() == "yes"


def test_version_and_api_resources(kubectl: Kubectl) -> None:
    assert "Server Version" in kubectl("version")
    resources = kubectl("api-resources")
    for line in ("pods", "deployments", "configmaps", "leases", "clusterroles"):
        assert line in resources
    assert "po" in kubectl("api-resources", "--namespaced=true", "-o", "wide")


def test_get_all_and_describe(kubectl: Kubectl, ns: str) -> None:
    kubectl("apply", "-f", "-", input=DEPLOYMENT.format(ns=ns))
    out = kubectl("get", "all", "-n", ns)
    assert "deployment.apps/api" in out
    described = kubectl("describe", "deployment", "api", "-n", ns)
    assert "RollingUpdate" in described


def test_typed_create_commands_send_protobuf(kubectl: Kubectl, ns: str, server) -> None:  # type: ignore[no-untyped-def]
    """kubectl's typed clients POST Kubernetes protobuf; kapi decodes it."""
    kubectl("create", "secret", "generic", "pw", "-n", ns, "--from-literal=password=s3cret")
    secret = json.loads(kubectl("get", "secret", "pw", "-n", ns, "-o", "json"))
    assert secret["type"] == "Opaque" and secret["data"] == {"password": "czNjcmV0"}
    kubectl("create", "deployment", "pb", "-n", ns, "--image=nginx:1.27", "--replicas=3")
    deploy = json.loads(kubectl("get", "deployment", "pb", "-n", ns, "-o", "json"))
    assert deploy["spec"]["replicas"] == 3 and deploy["spec"]["template"]["spec"]["containers"][0]["image"] == \
        "nginx:1.27"
    kubectl("create", "serviceaccount", "robot", "-n", ns)
    token = kubectl("create", "token", "robot", "-n", ns).strip()
    assert token.count(".") == 2
    token_only = subprocess.run([kubectl.binary, "--kubeconfig", "/dev/null", "--server", server.url,
                                 "--certificate-authority", str(server.data_dir / "pki" / "ca.crt"), "--token", token,
                                 "auth", "whoami"], capture_output=True, text=True, timeout=30)
    assert f"system:serviceaccount:{ns}:robot" in token_only.stdout, token_only.stderr
    assert "kubernetes-admin" in kubectl("auth", "whoami")
