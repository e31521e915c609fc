"""Serving an App over HTTPS with hypercorn (HTTP/1.1 and HTTP/2, client certificates).

``serve(app, ...)`` runs inside an existing asyncio loop and returns when ``shutdown_trigger``
completes (hypercorn's embedding API). ``app`` is a ``kapi.App`` or any ASGI app that mounts one;
``credentials_dir=`` generates a PKI and an admin kubeconfig for the server's URL, ``port=0``
picks a free port, and ``on_listening`` reports where it listens::

    stop = asyncio.Event()
    app = kapi.create_app(kapi.Config(storage_backend="memory", authenticators=("x509",)))
    await kapi.serve(app, port=0, credentials_dir="./kapi-data", shutdown_trigger=stop.wait,
                     on_listening=lambda where: print(where.url, where.kubeconfig))

``run(config)`` is what ``kapi-apiserver`` calls: one
process, or ``--workers N`` processes that each bind their own SO_REUSEPORT socket (a shared
accept queue balances long-lived watch connections badly; see the README).

Settings that matter (measured, see README "Serving"): ``keep_alive_max_requests`` is raised
from hypercorn's 1000 because the GOAWAY it sends kills live HTTP/2 watches; client
certificates are verified when presented (CERT_OPTIONAL) so tokens keep working.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import signal
import socket
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hypercorn.asyncio import serve as hypercorn_serve
from hypercorn.config import Config as HypercornConfig

from kapi import h2_fix, tls_ext
from kapi.app import App, create_app
from kapi.config import Config

log = logging.getLogger("kapi.server")


@dataclass(frozen=True)
class TLSFiles:
    """The serving certificate and key, and the CA that client certificates must chain to."""

    cert_file: str
    key_file: str
    client_ca_file: str = ""


HEADER_TIMEOUT = 30.0


def hypercorn_config(bind: list[str], tls: TLSFiles | None, *,
                     header_timeout: float = HEADER_TIMEOUT) -> HypercornConfig:
    """hypercorn settings for an API server. ``header_timeout`` bounds both an idle keep-alive
    connection and the time from connecting (or finishing the previous response) to the end of a
    request's headers (kube-apiserver: ReadHeaderTimeout 32 s); hypercorn's idle timer covers both."""
    cfg = HypercornConfig()
    cfg.bind = bind
    cfg.keep_alive_max_requests = 1_000_000_000
    cfg.keep_alive_timeout = header_timeout
    cfg.h2_max_concurrent_streams = 1000
    cfg.graceful_timeout = 2
    cfg.accesslog = None
    cfg.errorlog = logging.getLogger("hypercorn.error")
    if tls is not None:
        cfg.certfile = tls.cert_file
        cfg.keyfile = tls.key_file
        cfg.alpn_protocols = ["h2", "http/1.1"]
        cfg.ciphers = "ECDHE+AESGCM:ECDHE+CHACHA20"
        if tls.client_ca_file:
            cfg.ca_certs = tls.client_ca_file
            cfg.verify_mode = ssl.CERT_OPTIONAL
    return cfg


@dataclass(frozen=True)
class Listening:
    """Where ``serve`` listens, handed to its ``on_listening`` callback.

    ``url`` is ``https://HOST:PORT`` plus ``url_path`` (``http://`` without TLS); ``port`` is the
    bound port (useful with ``port=0``); ``kubeconfig`` is the admin kubeconfig written by
    ``credentials_dir`` (None when the caller brought its own TLS files).
    """

    url: str
    port: int
    kubeconfig: Path | None = None


def local_credentials(directory: str | Path, server_url: str, *,
                      advertise_address: str = "") -> tuple[TLSFiles, Path]:
    """A PKI and an admin kubeconfig for ``server_url`` under ``directory`` (idempotent, kubeadm
    layout: ``directory/pki``, ``directory/admin.kubeconfig``), as ``kapi-apiserver`` makes them
    when started without TLS flags. Returns the serving ``TLSFiles`` (client CA included) and the
    kubeconfig path. The first call takes ~0.3 s (key generation); later ones a few ms."""
    from kapi_certs import ensure_default_credentials

    Path(directory).mkdir(parents=True, exist_ok=True, mode=0o700)
    creds = ensure_default_credentials(directory, server=server_url, advertise_address=advertise_address)
    return (TLSFiles(str(creds.serving_cert), str(creds.serving_key), str(creds.ca_cert)),
            creds.admin_kubeconfig_path)


def _url(host: str, port: int, tls: bool, path: str) -> str:
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    shown = f"[{host}]" if ":" in host else host
    return f"{'https' if tls else 'http'}://{shown}:{port}{path.rstrip('/')}"


class _ReadyOnStartup:
    """ASGI wrapper calling ``ready`` once the wrapped app's lifespan startup completed (or failed:
    an app without lifespan support is served anyway, as hypercorn does)."""

    def __init__(self, app: Any, ready: Callable[[], None]) -> None:
        self.app = app
        self.ready = ready

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return

        async def watching_send(message: Any) -> None:
            await send(message)
            if message["type"] in ("lifespan.startup.complete", "lifespan.startup.failed"):
                self.ready()

        await self.app(scope, receive, watching_send)


def _warn_without_cert_authenticator(app: App) -> None:
    if not any(impl.plugin == "authn_x509" for impl in app.chains.authenticate):
        log.warning("serving with a client CA but the app has no x509 authenticator: client certificates (the "
                    "generated admin kubeconfig) will not authenticate; add authenticators=('x509',) to the Config")


async def serve(app: App | Any, *, host: str = "127.0.0.1", port: int = 6443, tls: TLSFiles | None = None,
                shutdown_trigger: Callable[[], Awaitable[Any]] | None = None, sockets: list[str] | None = None,
                ready: Callable[[], None] | None = None, credentials_dir: str | Path | None = None,
                url_path: str = "", on_listening: Callable[[Listening], None] | None = None,
                header_timeout: float = HEADER_TIMEOUT) -> None:
    """Serve ``app`` in the running loop until ``shutdown_trigger`` completes (or forever).

    :param app: a ``kapi.App``, or any ASGI app (e.g. a Starlette app that mounts ``App.asgi()``).
    :param host: the address to bind; ``port`` the port (``0``: a free one, see ``on_listening``).
        The socket is bound before the app starts, so a port conflict fails fast.
    :param tls: the serving certificate, key and client CA; or give ``credentials_dir``.
    :param credentials_dir: generate (once, idempotently) a PKI and ``admin.kubeconfig`` there
        (see ``local_credentials``); the kubeconfig points at this server's URL (+ ``url_path``).
        The app needs the ``x509`` authenticator for that kubeconfig's client certificate.
    :param url_path: the path the kapi app is mounted under in ``app`` (``"/k8s"``), used in the URL.
    :param sockets: already-bound sockets (``["fd://N"]``) instead of host/port.
    :param ready: called once the app's startup finished and the server accepts connections.
    :param on_listening: called with a ``Listening`` (URL, port, kubeconfig) at the same moment.
    :param shutdown_trigger: an awaitable factory; serving stops (gracefully) when it completes.
    :param header_timeout: seconds a connection may stay idle, or take to send a request's headers,
        before it is closed (a slowloris client dripping header bytes is cut off after this).
    """
    tls_ext.install()
    h2_fix.install()
    asgi = app.asgi() if isinstance(app, App) else app
    sock: socket.socket | None = None
    if sockets is None:
        sock = _bound_socket(host, port, reuse_port=False)
        port = int(sock.getsockname()[1])
        sockets = [f"fd://{os.dup(sock.fileno())}"]  # hypercorn owns (and closes) the duplicate
    try:
        url = _url(host, port, tls is not None or credentials_dir is not None, url_path)
        kubeconfig: Path | None = None
        if tls is None and credentials_dir is not None:
            tls, kubeconfig = await asyncio.to_thread(local_credentials, credentials_dir, url)
        if tls is not None and tls.client_ca_file and isinstance(app, App):
            _warn_without_cert_authenticator(app)
        listening = Listening(url, port, kubeconfig)

        def announce() -> None:
            if on_listening is not None:
                on_listening(listening)
            if ready is not None:
                ready()

        if ready is not None or on_listening is not None:
            asgi = _ReadyOnStartup(asgi, announce)
        trigger = shutdown_trigger or (lambda: asyncio.Future())
        config = hypercorn_config(sockets, tls, header_timeout=header_timeout)
        await hypercorn_serve(asgi, config, shutdown_trigger=trigger)  # type: ignore[arg-type]
    finally:
        if sock is not None:
            sock.close()


def _install_uvloop() -> None:
    try:
        import uvloop
    except ImportError:
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def _bound_socket(host: str, port: int, *, reuse_port: bool = True) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port and hasattr(socket, "SO_REUSEPORT"):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(1024)
    return sock


def _run_one(config: Config, tls: TLSFiles | None, reuse_port: bool, on_ready: Callable[[], None] | None) -> None:
    _install_uvloop()
    app = create_app(config)
    sock = _bound_socket(config.bind_address, config.secure_port) if reuse_port else None
    fd = sock.fileno() if sock is not None else None

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await serve(app, host=config.bind_address, port=config.secure_port, tls=tls,
                    shutdown_trigger=stop.wait, sockets=[f"fd://{fd}"] if fd is not None else None, ready=on_ready)

    asyncio.run(main())


def _worker(config: Config, tls: TLSFiles | None) -> None:
    _run_one(config, tls, True, None)


def run(config: Config, tls: TLSFiles | None, *, on_ready: Callable[[], None] | None = None) -> None:
    """Run the API server in this process (and ``config.workers - 1`` more) until SIGINT/SIGTERM."""
    if config.workers <= 1:
        _run_one(config, tls, False, on_ready)
        return
    if config.storage_backend == "memory":
        raise ValueError("--workers > 1 needs a shared store: use --storage-backend=sqlite or etcd3")
    ctx = multiprocessing.get_context("spawn")
    procs = []
    for _ in range(config.workers - 1):
        proc = ctx.Process(target=_worker, args=(config, tls), daemon=True)
        proc.start()
        procs.append(proc)
    try:
        _run_one(config, tls, True, on_ready)
    finally:
        for proc in procs:
            if proc.pid:
                os.kill(proc.pid, signal.SIGTERM)
        for proc in procs:
            proc.join(5)
