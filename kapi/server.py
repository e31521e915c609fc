"""Serving an App over HTTPS with hypercorn (HTTP/1.1 and HTTP/2, client certificates).

``serve(app, ...)`` runs inside an existing asyncio loop and returns when ``shutdown_trigger``
completes (hypercorn's embedding API). ``run(config)`` is what ``kapi-apiserver`` calls: one
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
from typing import Any

from hypercorn.asyncio import serve as hypercorn_serve
from hypercorn.config import Config as HypercornConfig

from kapi import tls_ext
from kapi.app import App, create_app
from kapi.config import Config

log = logging.getLogger("kapi.server")


@dataclass(frozen=True)
class TLSFiles:
    """The serving certificate and key, and the CA that client certificates must chain to."""

    cert_file: str
    key_file: str
    client_ca_file: str = ""


def hypercorn_config(bind: list[str], tls: TLSFiles | None) -> HypercornConfig:
    """hypercorn settings for an API server."""
    cfg = HypercornConfig()
    cfg.bind = bind
    cfg.keep_alive_max_requests = 1_000_000_000
    cfg.keep_alive_timeout = 75
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


async def serve(app: App, *, host: str = "127.0.0.1", port: int = 6443, tls: TLSFiles | None = None,
                shutdown_trigger: Callable[[], Awaitable[Any]] | None = None, sockets: list[str] | None = None,
                ready: Callable[[], None] | None = None) -> None:
    """Serve ``app`` in the running loop until ``shutdown_trigger`` completes (or forever).

    ``sockets`` (``["fd://N"]``) replaces host/port with already-bound sockets. ``ready`` is called
    once the app's startup finished and the server is listening.
    """
    tls_ext.install()
    bind = sockets or [f"[{host}]:{port}" if ":" in host else f"{host}:{port}"]
    cfg = hypercorn_config(bind, tls)
    asgi = app.asgi()
    if ready is not None:
        original = asgi.router.lifespan_context

        def announce(inner: Any) -> Any:
            import contextlib

            @contextlib.asynccontextmanager
            async def wrapper(scope_app: Any) -> Any:
                async with original(scope_app) as state:
                    loop = asyncio.get_running_loop()
                    loop.call_later(0.01, ready)
                    yield state

            return wrapper

        asgi.router.lifespan_context = announce(original)
    trigger = shutdown_trigger or (lambda: asyncio.Future())
    await hypercorn_serve(asgi, cfg, shutdown_trigger=trigger)  # type: ignore[arg-type]


def _install_uvloop() -> None:
    try:
        import uvloop
    except ImportError:
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def _bound_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if hasattr(socket, "SO_REUSEPORT"):
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
