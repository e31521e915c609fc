"""The examples in examples/ run as real programs and real kubectl talks to them over TLS.

* ``embed_starlette.py``: kapi mounted under ``/k8s`` beside the host app's own route; kubectl's
  kubeconfig points at ``https://127.0.0.1:PORT/k8s``.
* ``embed_loop.py``: kapi inside another program's loop; creating ConfigMap ``default/shutdown``
  through kubectl makes that program stop (its shutdown trigger), and it exits 0.
"""

from __future__ import annotations

import ssl
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.conftest import Kubectl

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
CONFIGMAP = '{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "%s", "namespace": "default"}, ' \
            '"data": {"color": "blue"}}'


@dataclass
class Example:
    """A running example program and what it printed when it started serving."""

    process: subprocess.Popen[str]
    url: str
    kubeconfig: Path
    data_dir: Path

    def kubectl(self) -> Kubectl:
        return Kubectl.installed(self.kubeconfig)


def start_example(script: str, data_dir: Path, wait: float = 20.0) -> Example:
    """Start ``examples/SCRIPT --port 0 --data-dir DATA_DIR`` and wait for its ``kubeconfig:`` line."""
    process = subprocess.Popen([sys.executable, str(EXAMPLES / script), "--port", "0", "--data-dir", str(data_dir)],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=str(data_dir))
    assert process.stdout is not None
    deadline = time.monotonic() + wait
    url = ""
    lines: list[str] = []
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line)
        if line.startswith("serving on "):
            url = line.split()[-1]
        if line.startswith("kubeconfig: "):
            return Example(process, url, Path(line.split(" ", 1)[1].strip()), data_dir)
    process.kill()
    raise AssertionError(f"{script} did not start:\n{''.join(lines)}")


@pytest.fixture
def running(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Example]:
    example = start_example(request.param, tmp_path)
    try:
        yield example
    finally:
        if example.process.poll() is None:
            example.process.terminate()
            example.process.wait(10)


@pytest.mark.parametrize("running", ["embed_starlette.py"], indirect=True)
def test_starlette_mount_serves_kubectl_and_host_routes(running: Example) -> None:
    assert running.url.endswith("/k8s")
    kubectl = running.kubectl()
    assert "default" in kubectl("get", "namespaces", "-o", "name")
    kubectl("apply", "-f", "-", input=CONFIGMAP % "settings")
    assert kubectl("get", "configmap", "settings", "-o", "jsonpath={.data.color}") == "blue"
    kubectl("apply", "-f", "-", input=(CONFIGMAP % "settings").replace("blue", "green"))
    assert kubectl("get", "configmap", "settings", "-o", "jsonpath={.data.color}") == "green"
    assert "ConfigMap" in kubectl("explain", "configmap")
    ctx = ssl.create_default_context(cafile=str(running.data_dir / "pki" / "ca.crt"))
    host_root = running.url.removesuffix("/k8s") + "/"
    with urllib.request.urlopen(host_root, context=ctx, timeout=5) as resp:
        assert resp.read() == b"hello from the host application\n"


@pytest.mark.parametrize("running", ["embed_loop.py"], indirect=True)
def test_loop_embedding_stops_on_its_trigger(running: Example) -> None:
    kubectl = running.kubectl()
    assert "kube-system" in kubectl("get", "namespaces", "-o", "name")
    kubectl("apply", "-f", "-", input=CONFIGMAP % "shutdown")
    assert running.process.wait(15) == 0
    assert running.process.stdout is not None
    assert "stopped after" in running.process.stdout.read()
