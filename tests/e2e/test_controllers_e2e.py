"""``kapi controller-manager`` as a real process against a real ``kapi-apiserver``, driven by kubectl.

The API server runs with ``--authorization-mode=Node,RBAC`` and the service-account authenticator;
the controller manager authenticates with its own client certificate
(``system:kube-controller-manager``) and, with ``--use-service-account-credentials``, writes as one
service account per controller, as kubeadm runs it. There is no scheduler or kubelet: pods stay
Pending, and where a rollout must complete the test plays the kubelet by patching pod status.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pytest

from .conftest import Kubectl, Server, start_server, stop_process

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

NS = "e2e-controllers"
DEPLOYMENT = """
apiVersion: v1
kind: Namespace
metadata: {{name: {ns}}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: web, namespace: {ns}}}
spec:
  replicas: 3
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec: {{containers: [{{name: main, image: "nginx:1.27"}}]}}
"""


def controller_manager_command() -> list[str]:
    """``kapi controller-manager`` when the plugin is installed, else the module's own entry."""
    registered = any(ep.value == "kapi_plugins.command_controller_manager" for ep in entry_points(group="kapi"))
    if registered:
        return [sys.executable, "-m", "kapi.cli", "controller-manager"]
    return [sys.executable, "-m", "kapi.components.controllers.command"]


@dataclass
class Cluster:
    server: Server
    manager: subprocess.Popen[bytes]
    log_path: Path
    kubectl: Kubectl

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def _component_kubeconfig(server: Server) -> Path:
    from kapi_certs import component_kubeconfig, files_of, load_cert, load_key, write_kubeconfig

    ca_path, key_path = files_of(server.data_dir / "pki", "ca")
    config = component_kubeconfig(load_cert(ca_path.read_bytes()), load_key(key_path.read_bytes()),
                                  "kube-controller-manager", server=server.url)
    return write_kubeconfig(server.data_dir / "controller-manager.kubeconfig", config)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:

    server = start_server(tmp_path_factory.mktemp("kapi-controllers"), "--authorization-mode=Node,RBAC",
                          "--authentication-plugins=service-account")
    log_path = server.data_dir / "controller-manager.log"
    with log_path.open("wb") as log:
        manager = subprocess.Popen([*controller_manager_command(), f"--kubeconfig={_component_kubeconfig(server)}",
                                    "--leader-elect", "--use-service-account-credentials"],
                                   stdout=log, stderr=subprocess.STDOUT)
    cluster = Cluster(server, manager, log_path, Kubectl.installed(server.kubeconfig))
    try:
        yield cluster
    finally:
        stop_process(manager, signal.SIGTERM, 15)
        server.stop()


def wait_for(cluster: Cluster, what: str, check: Callable[[], Any], timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        if cluster.manager.poll() is not None:
            raise AssertionError(f"the controller manager exited ({cluster.manager.returncode}):\n{cluster.log()}")
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}\ncontroller manager log:\n{cluster.log()[-4000:]}")


def items(k: Kubectl, *args: str) -> list[dict[str, Any]]:
    result = k.run("get", *args, "-o", "json", check=False)
    if result.returncode != 0:
        return []
    return list(json.loads(result.stdout).get("items") or [])


def live_pods(k: Kubectl) -> list[dict[str, Any]]:
    return [p for p in items(k, "pods", "-n", NS, "-l", "app=web") if not p["metadata"].get("deletionTimestamp")]


class FakeKubelet:
    """Marks the namespace's pending pods Running and Ready (kubectl patch --subresource=status)."""

    def __init__(self, k: Kubectl) -> None:
        self.k = k
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        ready = {"status": {"phase": "Running", "podIP": "10.244.0.10", "conditions": [
            {"type": "Ready", "status": "True"}, {"type": "ContainersReady", "status": "True"}]}}
        while not self.stopping.is_set():
            for pod in live_pods(self.k):
                if pod["status"].get("phase") == "Pending":
                    self.k.run("patch", "pod", pod["metadata"]["name"], "-n", NS, "--subresource=status",
                               "--type=merge", "-p", json.dumps(ready), check=False)
            self.stopping.wait(0.2)

    def __enter__(self) -> FakeKubelet:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        self.thread.join(10)


def test_deployment_scale_image_and_rollout(cluster: Cluster) -> None:
    k = cluster.kubectl
    k("apply", "-f", "-", input=DEPLOYMENT.format(ns=NS))
    wait_for(cluster, "3 pods", lambda: len(live_pods(k)) == 3)
    pods = live_pods(k)
    assert all(p["status"]["phase"] == "Pending" for p in pods)  # no scheduler, no kubelet
    owner = pods[0]["metadata"]["ownerReferences"][0]
    assert owner["kind"] == "ReplicaSet" and owner["controller"] is True
    assert pods[0]["metadata"]["name"].startswith(owner["name"] + "-")

    k("scale", "deployment/web", "-n", NS, "--replicas=5")
    wait_for(cluster, "5 pods", lambda: len(live_pods(k)) == 5)
    k("scale", "deployment/web", "-n", NS, "--replicas=3")
    wait_for(cluster, "3 pods again", lambda: len(live_pods(k)) == 3)

    k("set", "image", "deployment/web", "-n", NS, "main=nginx:1.28")

    def two_replica_sets() -> list[dict[str, Any]] | None:
        sets = items(k, "replicasets", "-n", NS)
        return sets if len(sets) == 2 else None

    sets = wait_for(cluster, "a second ReplicaSet", two_replica_sets)
    newest = max(sets, key=lambda s: int(s["metadata"]["annotations"]["deployment.kubernetes.io/revision"]))
    assert newest["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "2"
    assert newest["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.28"
    assert newest["metadata"]["name"] == f"web-{newest['metadata']['labels']['pod-template-hash']}"

    with FakeKubelet(k):
        k("rollout", "status", "deployment/web", "-n", NS, "--timeout=60s", timeout=70)
    images = {p["spec"]["containers"][0]["image"] for p in live_pods(k)}
    assert images == {"nginx:1.28"}
    listing = k("get", "deployment", "web", "-n", NS)
    assert "3/3" in listing, listing
    described = k("describe", "deployment", "web", "-n", NS)
    assert "ScalingReplicaSet" in described and "NewReplicaSetAvailable" in described


def test_default_service_account_and_root_ca(cluster: Cluster) -> None:
    k = cluster.kubectl
    k("apply", "-f", "-", input="apiVersion: v1\nkind: Namespace\nmetadata: {name: e2e-accounts}\n")
    wait_for(cluster, "the default ServiceAccount", lambda: items(k, "serviceaccounts", "-n", "e2e-accounts"))
    config_map = wait_for(cluster, "kube-root-ca.crt", lambda: items(k, "configmaps", "-n", "e2e-accounts"))
    assert config_map[0]["metadata"]["name"] == "kube-root-ca.crt"
    assert "BEGIN CERTIFICATE" in config_map[0]["data"]["ca.crt"]


def test_namespace_deletion_removes_everything(cluster: Cluster) -> None:
    k = cluster.kubectl
    k("apply", "-f", "-", input=DEPLOYMENT.format(ns="e2e-doomed"))
    wait_for(cluster, "pods", lambda: len(items(k, "pods", "-n", "e2e-doomed")) == 3)
    k("delete", "namespace", "e2e-doomed", "--timeout=60s", timeout=70)
    gone = k.run("get", "namespace", "e2e-doomed", check=False)
    assert gone.returncode != 0 and "NotFound" in gone.stderr
    for kind in ("pods", "replicasets", "deployments", "serviceaccounts", "configmaps"):
        assert items(k, kind, "-n", "e2e-doomed") == []


def test_leader_lease_is_held(cluster: Cluster) -> None:
    lease = json.loads(cluster.kubectl("get", "lease", "kube-controller-manager", "-n", "kube-system", "-o", "json"))
    assert lease["spec"]["holderIdentity"]
