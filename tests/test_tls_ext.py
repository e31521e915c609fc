"""kapi.tls_ext: hypercorn.asyncio.serve over real TLS hands the verified client certificate to the app.

One hypercorn server (CERT_OPTIONAL, ca_certs=ca.crt, certificates from kapi_certs' layout) runs in
a background thread on a free loopback port for the whole module; clients are httpx (HTTP/1.1 and
HTTP/2) and, when it is on PATH, real kubectl.
"""

from __future__ import annotations

import asyncio
import datetime
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from hypercorn.asyncio import serve
from hypercorn.config import Config as HypercornConfig

from kapi import tls_ext
from kapi_certs import ensure_default_credentials, pki


@dataclass
class Hits:
    """What the app saw: one entry per request."""

    seen: list[dict[str, Any]] = field(default_factory=list)


def make_app(hits: Hits) -> Any:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        cert = tls_ext.client_certificate_from_scope(scope)
        tls = scope.get("extensions", {}).get("tls")
        info = {"user": pki.common_name(pki.load_cert(cert.pem.encode())) if cert else None,
                "tls_version": tls["tls_version"] if tls else None, "http_version": scope["http_version"]}
        hits.seen.append(info)
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": orjson.dumps(info)})

    return app


@dataclass
class Server:
    url: str
    hits: Hits
    files: dict[str, Path]

    def client(self, cert: str | None = None, *, http2: bool = False, max_tls12: bool = False) -> httpx.Client:
        ctx = ssl.create_default_context(cafile=str(self.files["ca"]))
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        if max_tls12:
            ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        if cert:
            ctx.load_cert_chain(self.files[f"{cert}.crt"], self.files[f"{cert}.key"])
        return httpx.Client(verify=ctx, http2=http2, timeout=5.0)

    def get(self, cert: str | None = None, **kwargs: Any) -> dict[str, Any]:
        with self.client(cert, **kwargs) as client:
            response = client.get(self.url + "/whoami")
        response.raise_for_status()
        return dict(response.json())


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _write_pair(directory: Path, name: str, pair: tuple[Any, pki.PrivateKey], files: dict[str, Path]) -> None:
    for suffix, data in (("crt", pki.cert_pem(pair[0])), ("key", pki.key_pem(pair[1]))):
        path = directory / f"{name}.{suffix}"
        path.write_bytes(data)
        files[f"{name}.{suffix}"] = path


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("tls")
    port = _free_port()
    creds = ensure_default_credentials(root, server=f"https://127.0.0.1:{port}")
    ca = pki.load_cert(creds.ca_cert.read_bytes()), pki.load_key((creds.cert_dir / "ca.key").read_bytes())
    files = {"ca": creds.ca_cert, "admin.kubeconfig": creds.admin_kubeconfig_path}
    past = datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=5)
    _write_pair(root, "alice", pki.issue(*ca, cn="alice", orgs=("dev",), client=True), files)
    _write_pair(root, "expired", pki.issue(*ca, cn="old", client=True, days=1, now=past), files)
    _write_pair(root, "foreign", pki.issue(*pki.make_ca("kubernetes"), cn="mallory", client=True), files)

    config = HypercornConfig()
    config.bind = [f"127.0.0.1:{port}"]
    config.certfile, config.keyfile = str(creds.serving_cert), str(creds.serving_key)
    config.ca_certs = str(creds.ca_cert)
    config.verify_mode = ssl.CERT_OPTIONAL
    config.accesslog = None
    config.errorlog = None
    tls_ext.install()
    hits = Hits()
    stop: dict[str, Any] = {}

    async def main() -> None:
        stop["loop"], stop["event"] = asyncio.get_running_loop(), asyncio.Event()
        await serve(make_app(hits), config, shutdown_trigger=stop["event"].wait)  # type: ignore[arg-type]

    thread = threading.Thread(target=asyncio.run, args=(main(),), daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            if time.monotonic() > deadline or not thread.is_alive():
                raise RuntimeError("hypercorn did not start") from None
            time.sleep(0.02)
    yield Server(f"https://127.0.0.1:{port}", hits, files)
    stop["loop"].call_soon_threadsafe(stop["event"].set)
    thread.join(timeout=10)


@pytest.mark.parametrize("http2", [False, True], ids=["http1.1", "http2"])
def test_client_certificate_reaches_the_app(server: Server, http2: bool) -> None:
    seen = server.get("alice", http2=http2)
    assert seen == {"user": "alice", "tls_version": 0x0304, "http_version": "2" if http2 else "1.1"}


@pytest.mark.parametrize("http2", [False, True], ids=["http1.1", "http2"])
def test_no_certificate_means_none(server: Server, http2: bool) -> None:
    assert server.get(None, http2=http2)["user"] is None


@pytest.mark.parametrize("cert", ["foreign", "expired"])
@pytest.mark.parametrize("max_tls12", [False, True], ids=["tls1.3", "tls1.2"])
def test_bad_certificates_are_refused_at_the_handshake(server: Server, cert: str, max_tls12: bool) -> None:
    before = len(server.hits.seen)
    with pytest.raises(httpx.TransportError):
        server.get(cert, max_tls12=max_tls12)
    assert len(server.hits.seen) == before


@pytest.mark.parametrize("http2", [False, True], ids=["http1.1", "http2"])
def test_tls12_client(server: Server, http2: bool) -> None:
    seen = server.get("alice", http2=http2, max_tls12=True)
    assert (seen["user"], seen["tls_version"]) == ("alice", 0x0303)


def test_install_is_idempotent_and_looked_up_per_connection(server: Server) -> None:
    tls_ext.install()
    assert tls_ext.installed()
    try:
        tls_ext.uninstall()
        assert not tls_ext.installed()
        assert server.get("alice")["user"] is None
    finally:
        tls_ext.install()
    assert server.get("alice")["user"] == "alice"


def test_several_requests_on_one_connection(server: Server) -> None:
    with server.client("alice", http2=True) as client:
        users = {client.get(server.url + f"/{i}").json()["user"] for i in range(5)}
    assert users == {"alice"}


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl not on PATH")
def test_kubectl_with_the_admin_kubeconfig(server: Server) -> None:
    result = subprocess.run(["kubectl", "--kubeconfig", str(server.files["admin.kubeconfig"]), "get", "--raw",
                             "/whoami"], capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 0, result.stderr
    assert orjson.loads(result.stdout)["user"] == "kubernetes-admin"


def test_client_certificate_from_scope_shapes() -> None:
    assert tls_ext.client_certificate_from_scope({"type": "http"}) is None
    assert tls_ext.client_certificate_from_scope({"extensions": {"tls": {"client_cert_chain": []}}}) is None
    cert = tls_ext.client_certificate_from_scope({"extensions": {"tls": {"client_cert_chain": ["A", "B"]}}})
    assert cert is not None and (cert.pem, cert.chain) == ("A", ("B",))
