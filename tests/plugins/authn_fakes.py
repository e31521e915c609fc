"""Helpers for the authenticator tests: an in-process App on memory storage, stored objects, request
contexts for REST handlers, and small TLS servers on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import orjson
from hypercorn.asyncio import serve
from hypercorn.config import Config as HypercornConfig
from starlette.requests import Request

from kapi import App, AuthnRequest, Config, UserInfo, create_app, requestinfo
from kapi.kinds import builtin_resources
from kapi.rest.context import Ctx
from kapi_certs import pki
from kapi_plugins.storage_memory import MemoryStorage


def bearer(token: str, **extra: str) -> AuthnRequest:
    """A request carrying ``Authorization: Bearer token``."""
    return AuthnRequest(method="GET", path="/api", headers={"authorization": f"Bearer {token}", **extra})


def make_app(tmp_path: Path, plugins: Iterable[tuple[str, Any]] = (), *, authenticators: tuple[str, ...] = (),
             options: dict[str, dict[str, Any]] | None = None, anonymous: bool = False) -> App:
    """An App on memory storage with the given plugins (not started)."""
    config = Config(storage_backend="memory", data_dir=str(tmp_path), authorizers=(),
                    authenticators=authenticators, anonymous_auth=anonymous, plugin_options=options or {})
    return create_app(config, storage=MemoryStorage(), plugins=plugins, load_entrypoints=False,
                      resources=builtin_resources())


@contextlib.asynccontextmanager
async def started(app: App) -> AsyncIterator[App]:
    """Run the app's startup and shutdown around the block."""
    await app.startup()
    try:
        yield app
    finally:
        await app.shutdown()
        await app.storage.close()


async def put(app: App, resource: str, namespace: str, obj: dict[str, Any]) -> dict[str, Any]:
    """Store ``obj`` (apiVersion v1) as kube-apiserver would, and wait until the watch cache has it."""
    rt = app.registry.lookup("", "v1", resource)
    assert rt is not None
    meta = obj.setdefault("metadata", {})
    meta.setdefault("uid", f"uid-{resource}-{meta['name']}")
    if namespace:
        meta["namespace"] = namespace
    await app.storage.create(rt.key(app.root, namespace, meta["name"]), orjson.dumps(obj))
    with contextlib.suppress(RuntimeError):
        await app.cache.sync()
    return obj


async def remove(app: App, resource: str, namespace: str, name: str) -> None:
    """Delete a stored object and wait until the watch cache forgets it."""
    rt = app.registry.lookup("", "v1", resource)
    assert rt is not None
    await app.storage.delete(rt.key(app.root, namespace, name))
    with contextlib.suppress(RuntimeError):
        await app.cache.sync()


def ctx_for(app: App, method: str, path: str, body: Any, user: UserInfo | None = None) -> Ctx:
    """A handler context for ``method path`` with a JSON ``body``, as the dispatcher builds it."""
    info = requestinfo.parse(method, path, "")
    rt = app.registry.lookup(info.api_group, info.api_version, info.resource)
    assert rt is not None, path
    data = orjson.dumps(body)
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": data, "more_body": False}

    scope = {"type": "http", "method": method, "path": path, "query_string": b"",
             "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]}
    return Ctx(app=app, rt=rt, info=info, user=user or UserInfo(name="admin"), request=Request(scope, receive))


def webhook_pki(folder: Path) -> SimpleNamespace:
    """A CA, a serving certificate for 127.0.0.1 and a client certificate for a TLS webhook under
    ``folder`` (``ca.crt``, ``server.crt/key``, ``client.crt/key``); returns them (``folder``,
    ``ca``, ``client``, ``client_key``) for building the webhook's kubeconfig."""
    ca, ca_key = pki.make_ca("webhook-ca")
    server, server_key = pki.issue(ca, ca_key, cn="webhook", ips=["127.0.0.1"], server=True)
    client, client_key = pki.issue(ca, ca_key, cn="kube-apiserver", client=True)
    for name, data in (("ca.crt", pki.cert_pem(ca)), ("server.crt", pki.cert_pem(server)),
                       ("server.key", pki.key_pem(server_key)), ("client.crt", pki.cert_pem(client)),
                       ("client.key", pki.key_pem(client_key))):
        (folder / name).write_bytes(data)
    return SimpleNamespace(folder=folder, ca=ca, client=client, client_key=client_key)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.asynccontextmanager
async def tls_server(asgi: Any, cert: Path, key: Path, client_ca: Path | None = None) -> AsyncIterator[str]:
    """Serve ``asgi`` over TLS on 127.0.0.1 (requiring a client certificate from ``client_ca`` if
    given); yields the base URL."""
    port = free_port()
    config = HypercornConfig()
    config.bind = [f"127.0.0.1:{port}"]
    config.certfile, config.keyfile = str(cert), str(key)
    if client_ca is not None:
        config.ca_certs = str(client_ca)
        config.verify_mode = ssl.CERT_REQUIRED
    config.accesslog = config.errorlog = None
    stop = asyncio.Event()
    task = asyncio.create_task(serve(asgi, config, shutdown_trigger=stop.wait))  # type: ignore[arg-type]
    for _ in range(200):
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.01)
            continue
        writer.close()
        break
    try:
        yield f"https://127.0.0.1:{port}"
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)
