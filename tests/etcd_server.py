"""Real etcd servers for tests: one member or a 3-member cluster on free loopback ports, mutual TLS.

Not a test module: tests import it (``from etcd_server import EtcdCluster, require_etcd``)::

    with EtcdCluster.started(tmp_path, size=3) as cluster:
        store = EtcdStorage(cluster.endpoints, **cluster.client_tls())
        leader = cluster.leader()  # index of the member that leads (etcdctl endpoint status)
        cluster.kill(leader)       # SIGKILL one member
        cluster.restart(leader)    # start it again on its data, wait until it is healthy

Certificates come from ``kapi_certs.ensure_pki`` in kubeadm's layout: clients must present a
certificate of ``etcd/ca`` (``--client-cert-auth``); members serve ``etcd/server`` and talk to
each other over TLS with ``etcd/peer`` (``--peer-client-cert-auth``). Every member's data and log
live under the given directory. Each wait is bounded; processes get SIGKILL when the test process
dies (``setpriv --pdeathsig``, where util-linux has it) and are always stopped by ``close()``/the context manager.
``require_etcd()`` skips the calling test (``pytest.skip``) when no ``etcd`` binary is on PATH.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import shutil
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

import pytest

import kapi_certs

START_TIMEOUT = 20.0  # seconds for a cluster (or a restarted member) to become healthy
STOP_TIMEOUT = 5.0  # seconds between SIGTERM and SIGKILL


def require_etcd() -> str:
    """The path of the ``etcd`` binary; skips the current test (or module) when there is none."""
    path = shutil.which("etcd")
    if path is None:
        pytest.skip("etcd is not installed (apt-get install etcd-server)", allow_module_level=True)
    return path


def free_ports(count: int) -> list[int]:
    """``count`` distinct TCP ports free on 127.0.0.1 right now (held open together while picked)."""
    with contextlib.ExitStack() as stack:
        ports = []
        for _ in range(count):
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind(("127.0.0.1", 0))
            ports.append(sock.getsockname()[1])
        return ports


def _die_with_parent(argv: list[str]) -> list[str]:
    """``argv`` run so that the child gets SIGKILL when the test process dies (util-linux ``setpriv``
    sets the parent-death signal, which survives ``exec``; without it, only ``close()`` stops it).
    A ``preexec_fn`` would do the same, but forking a process whose gRPC threads run is unsafe."""
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "KILL", "--", *argv] if setpriv else argv


@dataclass(frozen=True)
class EtcdPKI:
    """Paths of the etcd certificates in a kubeadm-layout directory made by ``kapi_certs``."""

    cert_dir: Path

    @classmethod
    def create(cls, cert_dir: Path) -> EtcdPKI:
        kapi_certs.ensure_pki(cert_dir, kapi_certs.PKIOptions(node_name="etcd-test"))
        return cls(cert_dir)

    def pair(self, name: str) -> tuple[Path, Path]:
        """``(cert, key)`` of a layout entry: ``etcd-server``, ``etcd-peer``, ``apiserver-etcd-client`` ..."""
        return kapi_certs.files_of(self.cert_dir, name)

    @property
    def ca(self) -> Path:
        return kapi_certs.files_of(self.cert_dir, "etcd-ca")[0]

    def client_tls(self) -> dict[str, str]:
        """Keyword arguments for ``EtcdStorage``: the API server's etcd client certificate."""
        cert, key = self.pair("apiserver-etcd-client")
        return {"ca_file": str(self.ca), "cert_file": str(cert), "key_file": str(key)}

    def ssl_context(self, name: str = "etcd-healthcheck-client") -> ssl.SSLContext:
        """A client ``SSLContext`` trusting etcd's CA and presenting the named client certificate."""
        context = ssl.create_default_context(cafile=str(self.ca))
        cert, key = self.pair(name)
        context.load_cert_chain(str(cert), str(key))
        return context


@dataclass
class EtcdMember:
    """One etcd process of a cluster (its ports, directories and, while running, its process)."""

    name: str
    client_port: int
    peer_port: int
    data_dir: Path
    log_path: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def client_url(self) -> str:
        return f"https://127.0.0.1:{self.client_port}"

    @property
    def peer_url(self) -> str:
        return f"https://127.0.0.1:{self.peer_port}"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def argv(self, binary: str, pki: EtcdPKI, initial_cluster: str, state: str) -> list[str]:
        server_cert, server_key = pki.pair("etcd-server")
        peer_cert, peer_key = pki.pair("etcd-peer")
        return [
            binary, "--name", self.name, "--data-dir", str(self.data_dir),
            "--listen-client-urls", self.client_url, "--advertise-client-urls", self.client_url,
            "--listen-peer-urls", self.peer_url, "--initial-advertise-peer-urls", self.peer_url,
            "--initial-cluster", initial_cluster, "--initial-cluster-state", state,
            "--initial-cluster-token", "kapi-test",
            "--client-cert-auth", "--trusted-ca-file", str(pki.ca),
            "--cert-file", str(server_cert), "--key-file", str(server_key),
            "--peer-client-cert-auth", "--peer-trusted-ca-file", str(pki.ca),
            "--peer-cert-file", str(peer_cert), "--peer-key-file", str(peer_key),
        ]

    def start(self, argv: list[str]) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(_die_with_parent(argv), stdin=subprocess.DEVNULL, stdout=log,
                                            stderr=subprocess.STDOUT, start_new_session=True)

    def kill(self) -> None:
        """SIGKILL (a crash) and reap."""
        if self.process is not None:
            if self.process.poll() is None:
                self.process.kill()
            self.process.wait(STOP_TIMEOUT)
            self.process = None

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after ``STOP_TIMEOUT`` seconds."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                pass
        self.kill()

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


@dataclass
class EtcdCluster:
    """``size`` etcd members with mutual TLS for clients and peers, under ``base_dir``."""

    base_dir: Path
    size: int = 1
    binary: str = field(default_factory=require_etcd)
    pki: EtcdPKI = field(init=False)
    members: list[EtcdMember] = field(init=False)

    def __post_init__(self) -> None:
        self.base_dir.mkdir(parents=True, exist_ok=True)
        self.pki = EtcdPKI.create(self.base_dir / "pki")
        ports = free_ports(2 * self.size)
        self.members = [EtcdMember(f"m{i}", ports[2 * i], ports[2 * i + 1], self.base_dir / f"m{i}.etcd",
                                   self.base_dir / f"m{i}.log") for i in range(self.size)]

    @classmethod
    @contextlib.contextmanager
    def started(cls, base_dir: Path, size: int = 1) -> Iterator[EtcdCluster]:
        """A running cluster for the ``with`` block; every member is stopped afterwards."""
        cluster = cls(base_dir, size)
        try:
            cluster.start()
            yield cluster
        finally:
            cluster.close()

    @property
    def endpoints(self) -> tuple[str, ...]:
        """Every member's client URL (``https://127.0.0.1:PORT``)."""
        return tuple(m.client_url for m in self.members)

    def client_tls(self) -> dict[str, str]:
        """``ca_file``/``cert_file``/``key_file`` of the API server's etcd client certificate."""
        return self.pki.client_tls()

    def _initial_cluster(self) -> str:
        return ",".join(f"{m.name}={m.peer_url}" for m in self.members)

    def start(self, timeout: float = START_TIMEOUT) -> None:
        """Start every member and wait until each one reports healthy."""
        for member in self.members:
            member.start(member.argv(self.binary, self.pki, self._initial_cluster(), "new"))
        self.wait_healthy(self.members, timeout)

    def kill(self, index: int) -> None:
        """SIGKILL member ``index``."""
        self.members[index].kill()

    def restart(self, index: int, timeout: float = START_TIMEOUT) -> None:
        """Start member ``index`` again on its data directory and wait until it is healthy."""
        member = self.members[index]
        member.stop()
        member.start(member.argv(self.binary, self.pki, self._initial_cluster(), "existing"))
        self.wait_healthy([member], timeout)

    def restart_all(self, timeout: float = START_TIMEOUT) -> None:
        """Start every member again on its data directory (after a total outage) and wait until all
        are healthy (one member alone has no quorum, so they must come back together)."""
        for member in self.members:
            member.stop()
            member.start(member.argv(self.binary, self.pki, self._initial_cluster(), "existing"))
        self.wait_healthy(self.members, timeout)

    def wait_healthy(self, members: list[EtcdMember], timeout: float) -> None:
        """Poll each member's ``/health`` (with a client certificate) until all say healthy."""
        context = self.pki.ssl_context()
        deadline = time.monotonic() + timeout
        pending = list(members)
        while pending:
            member = pending[0]
            if not member.running:
                raise RuntimeError(f"etcd member {member.name} exited:\n{member.log_tail()}")
            if _healthy(member.client_port, context):
                pending.pop(0)
                continue
            if time.monotonic() > deadline:
                raise TimeoutError(f"etcd member {member.name} not healthy after {timeout}s:\n{member.log_tail()}")
            time.sleep(0.05)

    def leader(self) -> int:
        """The index of the current leader, as the running members report it (``etcdctl``)."""
        etcdctl = shutil.which("etcdctl")
        if etcdctl is None:
            pytest.skip("etcdctl is not installed (apt-get install etcd-client)")
        tls = self.client_tls()
        running = [m.client_url for m in self.members if m.running]
        result = subprocess.run([etcdctl, "--endpoints", ",".join(running), "--cacert", tls["ca_file"],
                                 "--cert", tls["cert_file"], "--key", tls["key_file"], "--command-timeout", "5s",
                                 "endpoint", "status", "-w", "json"],
                                capture_output=True, text=True, timeout=10, env={"ETCDCTL_API": "3"}, check=True)
        statuses = json.loads(result.stdout)
        leader = next(s["Status"]["leader"] for s in statuses if s["Status"]["leader"])
        url = next(s["Endpoint"] for s in statuses if s["Status"]["header"]["member_id"] == leader)
        return self.endpoints.index(url)

    def close(self) -> None:
        """Stop every member (idempotent)."""
        for member in self.members:
            member.stop()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _healthy(port: int, context: ssl.SSLContext) -> bool:
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=2)
    try:
        conn.request("GET", "/health")
        response = conn.getresponse()
        return response.status == 200 and b'"true"' in response.read()
    except (OSError, http.client.HTTPException):
        return False
    finally:
        conn.close()
