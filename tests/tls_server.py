"""A real kapi API server over mutual TLS inside the test's event loop (memory store).

Not a test module: component tests import it (``from tls_server import tls_server``)::

    async with tls_server(tmp_path) as srv:
        client = Client.from_kubeconfig(srv.admin_kubeconfig)

The PKI and the admin kubeconfig come from ``kapi_certs.ensure_default_credentials``; client
certificates authenticate through the x509 plugin; authorization is AlwaysAllow unless
``authorizers`` is given.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kapi
from kapi.server import TLSFiles, serve
from kapi_certs import component_kubeconfig, files_of, load_cert, load_key, write_kubeconfig


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class TLSServer:
    """A running in-loop server: its App, URL and credential files."""

    app: kapi.App
    url: str
    data_dir: Path

    @property
    def admin_kubeconfig(self) -> Path:
        return self.data_dir / "admin.kubeconfig"

    @property
    def pki(self) -> Path:
        return self.data_dir / "pki"

    def kubeconfig_for(self, component: Any, node_name: str = "") -> Path:
        """Write (once) and return a component kubeconfig (``kube-scheduler``, ``kubelet``, ...)."""
        path = self.data_dir / f"{component}{'-' + node_name if node_name else ''}.kubeconfig"
        if not path.exists():
            ca_path, ca_key_path = files_of(self.pki, "ca")
            config = component_kubeconfig(load_cert(ca_path.read_bytes()), load_key(ca_key_path.read_bytes()),
                                          component, server=self.url, node_name=node_name)
            write_kubeconfig(path, config)
        return path


@contextlib.asynccontextmanager
async def tls_server(data_dir: Path, **config: Any) -> AsyncIterator[TLSServer]:
    """Serve a fresh memory-store App on a free loopback port until the block ends."""
    from kapi_certs import ensure_default_credentials

    port = free_port()
    url = f"https://127.0.0.1:{port}"
    creds = ensure_default_credentials(data_dir, server=url)
    cfg = kapi.Config(storage_backend="memory", data_dir=str(data_dir), secure_port=port,
                      client_ca_file=str(creds.ca_cert), authenticators=("x509",), **config)
    app = kapi.create_app(cfg)
    ready = asyncio.Event()
    stop = asyncio.Event()
    task = asyncio.create_task(serve(app, port=port, tls=TLSFiles(str(creds.serving_cert), str(creds.serving_key),
                                                                  str(creds.ca_cert)),
                                     shutdown_trigger=stop.wait, ready=ready.set))
    try:
        await asyncio.wait_for(ready.wait(), 10)
        yield TLSServer(app, url, Path(data_dir))
    finally:
        stop.set()
        try:
            await asyncio.wait_for(task, 10)
        except (TimeoutError, asyncio.CancelledError):
            task.cancel()
