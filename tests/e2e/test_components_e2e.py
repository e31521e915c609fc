"""The pod's journey with real processes: ``kapi up`` (API server, scheduler, controller manager
when installed, two process-runtime kubelets), real TLS, real kubectl.

Covers: pods scheduled over both nodes and Running; ``kubectl logs`` (plain, --tail, -f) showing
the process runtime's output; an oversized pod staying Pending with the scheduler's reason in
``kubectl describe``; graceful deletion stopping the process; a Deployment rolled out when the
controller manager is there; components refused outside their role (RBAC + Node authorizer);
and ``kapi up`` stopping everything on SIGINT.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from .conftest import Kubectl, free_port, stop_process

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]


@dataclass
class Cluster:
    process: subprocess.Popen[bytes]
    data_dir: Path
    output: Path

    @property
    def kubeconfig(self) -> Path:
        return self.data_dir / "admin.kubeconfig"

    def component_kubeconfig(self, name: str) -> Path:
        return self.data_dir / "kubeconfigs" / f"{name}.kubeconfig"

    def text(self) -> str:
        return self.output.read_text(errors="replace")


def _children_of(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    data_dir = tmp_path_factory.mktemp("kapi-up")
    output = data_dir / "up.out"
    with output.open("wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "kapi.components", "up", f"--data-dir={data_dir}",
                                    f"--secure-port={free_port()}", "--nodes=2", "--timeout=60"],
                                   stdout=out, stderr=subprocess.STDOUT)
    cluster = Cluster(process, data_dir, output)
    deadline = time.monotonic() + 90
    while "The cluster is up" not in cluster.text():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"kapi up failed:\n{cluster.text()}")
        time.sleep(0.1)
    cluster.ready_at = time.monotonic()  # type: ignore[attr-defined]
    try:
        yield cluster
    finally:
        stop_process(process, signal.SIGINT, 30)


@pytest.fixture(scope="module")
def k(cluster: Cluster) -> Kubectl:

    return Kubectl.installed(cluster.kubeconfig)


def pods(k: Kubectl, selector: str) -> list[dict[str, object]]:
    return json.loads(k("get", "pods", "-l", selector, "-o", "json"))["items"]  # type: ignore[no-any-return]


def wait_until(check: object, timeout: float = 30, what: str = "") -> object:
    deadline = time.monotonic() + timeout
    while True:
        result = check()  # type: ignore[operator]
        if result:
            return result
        assert time.monotonic() < deadline, f"timed out: {what}"
        time.sleep(0.2)


TALKER = """
apiVersion: v1
kind: Pod
metadata: {name: talker, labels: {app: talker}}
spec:
  terminationGracePeriodSeconds: 5
  containers:
  - name: main
    image: busybox
    env: [{name: WHO, valueFrom: {fieldRef: {fieldPath: spec.nodeName}}}]
    command: ["sh", "-c", "echo hello from $WHO; i=0; while true; do i=$((i+1)); echo tick $i; sleep 0.2; done"]
"""


def spread_pods(count: int) -> str:
    docs = []
    for i in range(count):
        docs.append(f"""apiVersion: v1
kind: Pod
metadata: {{name: spread-{i}, labels: {{app: spread}}}}
spec:
  terminationGracePeriodSeconds: 2
  containers: [{{name: main, image: pause}}]
""")
    return "---\n".join(docs)


GREEDY = """
apiVersion: v1
kind: Pod
metadata: {name: greedy}
spec:
  containers:
  - {name: main, image: busybox, resources: {requests: {cpu: "100000"}}}
"""


def test_first_pod_runs_quickly_after_up(cluster: Cluster, k: Kubectl) -> None:
    k("apply", "-f", "-", input=TALKER)

    def running() -> bool:
        pod = json.loads(k("get", "pod", "talker", "-o", "json"))
        return bool(pod["status"].get("phase") == "Running")

    wait_until(running, 10, "talker Running")
    took = time.monotonic() - cluster.ready_at  # type: ignore[attr-defined]
    assert took < 10, f"first pod Running {took:.1f}s after kapi up finished"


def test_pods_spread_over_both_nodes_and_run(k: Kubectl) -> None:
    k("apply", "-f", "-", input=spread_pods(4))

    def all_running() -> list[str] | None:
        items = pods(k, "app=spread")
        if len(items) == 4 and all(p["status"].get("phase") == "Running" for p in items):  # type: ignore[index]
            return [p["spec"]["nodeName"] for p in items]  # type: ignore[index]
        return None

    nodes = wait_until(all_running, 30, "spread pods Running")
    assert set(nodes) == {"kapi-node-0", "kapi-node-1"}  # type: ignore[arg-type]
    wide = k("get", "pods", "-l", "app=spread", "-o", "wide")
    assert "127.0.0.1" in wide and "kapi-node-" in wide


def test_logs_show_the_process_output(k: Kubectl) -> None:
    def has_ticks() -> bool:
        return "tick 3" in k("logs", "talker")

    wait_until(has_ticks, 15, "talker logs")
    logs = k("logs", "talker")
    assert logs.startswith("hello from kapi-node-")
    tail = k("logs", "talker", "--tail=1").strip().splitlines()
    assert len(tail) == 1 and tail[0].startswith("tick ")
    follow = subprocess.Popen([k.binary, "--kubeconfig", str(k.kubeconfig), "logs", "-f", "talker", "--tail=1"],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert follow.stdout is not None
        first = follow.stdout.readline()
        second = follow.stdout.readline()
        assert first.startswith("tick ") and second.startswith("tick ")
        assert int(second.split()[1]) == int(first.split()[1]) + 1
    finally:
        follow.kill()
        follow.wait(5)


def test_oversized_pod_stays_pending_with_the_reason(k: Kubectl) -> None:
    k("apply", "-f", "-", input=GREEDY)

    def described() -> str | None:
        text = k("describe", "pod", "greedy")
        return text if "FailedScheduling" in text else None

    text = wait_until(described, 20, "FailedScheduling event")
    assert "0/2 nodes are available: 2 Insufficient cpu." in text  # type: ignore[operator]
    pod = json.loads(k("get", "pod", "greedy", "-o", "json"))
    condition = next(c for c in pod["status"]["conditions"] if c["type"] == "PodScheduled")
    assert condition["status"] == "False" and condition["reason"] == "Unschedulable"
    assert pod["status"]["phase"] == "Pending"


def test_graceful_deletion_stops_the_process(cluster: Cluster, k: Kubectl) -> None:
    pid_before = _talker_processes()
    assert pid_before, "the talker's shell should be running"
    started = time.monotonic()
    k("delete", "pod", "talker", "--wait=true", timeout=60)
    assert time.monotonic() - started < 15
    wait_until(lambda: not _talker_processes(), 10, "talker process gone")


def _talker_processes() -> list[int]:
    out = subprocess.run(["pgrep", "-f", "echo hello from"], capture_output=True, text=True).stdout
    return [int(p) for p in out.split() if int(p) != os.getpid()]


def _has_command(cluster: Cluster, command: str) -> bool:
    """Whether ``kapi up`` started this component (it logs to ``logs/kube-COMMAND.log``)."""
    return (cluster.data_dir / "logs" / f"kube-{command}.log").exists()


def test_deployment_rolls_out_when_the_controller_manager_runs(cluster: Cluster, k: Kubectl) -> None:
    if not _has_command(cluster, "controller-manager"):
        pytest.skip("kapi controller-manager is not installed")
    k("apply", "-f", "-", input="""
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 3
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: main, image: pause}]
      # spread over the nodes whatever earlier tests left on them (resource scores alone may tie)
      affinity:
        podAntiAffinity:
          preferredDuringSchedulingIgnoredDuringExecution:
          - weight: 100
            podAffinityTerm:
              labelSelector: {matchLabels: {app: web}}
              topologyKey: kubernetes.io/hostname
""")
    k("rollout", "status", "deployment/web", "--timeout=60s", timeout=70)
    items = pods(k, "app=web")
    assert len(items) == 3 and all(p["status"]["phase"] == "Running" for p in items)  # type: ignore[index]
    assert {p["spec"]["nodeName"] for p in items} == {"kapi-node-0", "kapi-node-1"}  # type: ignore[index]


def test_components_are_refused_outside_their_role(cluster: Cluster, k: Kubectl) -> None:
    scheduler = Kubectl(cluster.component_kubeconfig("kube-scheduler"), k.binary)
    denied = scheduler.run("get", "secrets", "-A", check=False)
    assert denied.returncode != 0 and "Forbidden" in denied.stderr
    assert scheduler.run("get", "nodes", check=False).returncode == 0
    kubelet = Kubectl(cluster.component_kubeconfig("kubelet-kapi-node-0"), k.binary)
    other = kubelet.run("annotate", "node", "kapi-node-1", "kapi.test/x=y", check=False)
    assert other.returncode != 0 and "Forbidden" in other.stderr
    assert kubelet.run("annotate", "node", "kapi-node-0", "kapi.test/x=y", "--overwrite", check=False).returncode == 0


def test_up_stops_everything_on_sigint(cluster: Cluster, k: Kubectl) -> None:
    children = _children_of(cluster.process.pid)
    assert len(children) >= 4  # apiserver, scheduler, two kubelets (+ controller manager)
    cluster.process.send_signal(signal.SIGINT)
    assert cluster.process.wait(30) == 0
    assert "kapi up: stopped" in cluster.text()
    for pid in children:
        assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text().lower()
    assert not _spread_processes()


def _spread_processes() -> list[int]:
    out = subprocess.run(["pgrep", "-f", "tick \\$i"], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]
