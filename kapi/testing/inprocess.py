"""An API server in a background thread of the test process: real TLS, a free loopback port.

``LocalPKI.create(directory)`` makes a CA, a serving certificate and an admin client certificate
once (a pytest session); ``start_server(app, pki, directory)`` serves an ``App`` over TLS on
``127.0.0.1:0`` in a thread with its own event loop and returns a ``KapiServer`` with the URL, a
kubeconfig for the admin (``CN=kubernetes-admin, O=system:masters``) and file paths for other
clients. Because the server has its own loop, sync tests (the official ``kubernetes`` client,
kubectl) and async tests (any loop) can both talk to it; code that must touch the ``App`` directly
(its storage, its cache) runs on the server's loop through ``KapiServer.call``.

Nothing is global: every server owns its app, loop, thread and socket, so servers can run side by
side (and under pytest-xdist, where each worker is a process with its own temporary directories).
"""

from __future__ import annotations

import asyncio
import threading
import time
import warnings
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from kapi.app import App
from kapi.server import Listening, TLSFiles, serve

if TYPE_CHECKING:
    from kapi.testing.components import Components

T = TypeVar("T")

ADMIN = ("kubernetes-admin", ("system:masters",))


@dataclass(frozen=True)
class LocalPKI:
    """A small PKI in one directory: ``ca.crt``/``ca.key``, the serving pair (SANs 127.0.0.1,
    localhost) and the admin client pair. Make it once with ``create`` and share it."""

    directory: Path

    @property
    def ca_cert(self) -> Path:
        return self.directory / "ca.crt"

    @property
    def tls(self) -> TLSFiles:
        """The serving files, with the CA as the client CA."""
        return TLSFiles(str(self.directory / "serving.crt"), str(self.directory / "serving.key"), str(self.ca_cert))

    @property
    def admin_cert(self) -> Path:
        return self.directory / "admin.crt"

    @property
    def admin_key(self) -> Path:
        return self.directory / "admin.key"

    @classmethod
    def create(cls, directory: str | Path) -> LocalPKI:
        """Generate the PKI under ``directory`` (ECDSA P-256 keys: ~10 ms)."""
        from kapi_certs import cert_pem, issue, key_pem, make_ca

        root = Path(directory)
        root.mkdir(parents=True, exist_ok=True, mode=0o700)
        ca, ca_key = make_ca("kapi-test-ca", days=30)
        serving, serving_key = issue(ca, ca_key, cn="kube-apiserver", dns=("localhost", "kubernetes"),
                                     ips=("127.0.0.1", "::1"), server=True, days=30)
        admin, admin_key = issue(ca, ca_key, cn=ADMIN[0], orgs=ADMIN[1], client=True, days=30)
        for name, data in (("ca.crt", cert_pem(ca)), ("ca.key", key_pem(ca_key)), ("serving.crt", cert_pem(serving)),
                           ("serving.key", key_pem(serving_key)), ("admin.crt", cert_pem(admin)),
                           ("admin.key", key_pem(admin_key))):
            path = root / name
            path.write_bytes(data)
            if name.endswith(".key"):
                path.chmod(0o600)
        return cls(root)

    def kubeconfig(self, server: str, *, user: str = ADMIN[0], groups: tuple[str, ...] = ADMIN[1]) -> dict[str, Any]:
        """A kubeconfig dict for ``server``: the admin's certificate, or a new one for ``user``."""
        from kapi_certs import build_kubeconfig, issue, load_cert, load_key

        ca = load_cert(self.ca_cert.read_bytes())
        if (user, groups) == ADMIN:
            cert, key = load_cert(self.admin_cert.read_bytes()), load_key(self.admin_key.read_bytes())
        else:
            cert, key = issue(ca, load_key((self.directory / "ca.key").read_bytes()), cn=user, orgs=groups,
                              client=True, days=30)
        return build_kubeconfig(server=server, ca_cert=ca, user=user, client_cert=cert, client_key=key)


@dataclass
class KapiServer:
    """A running in-process API server (see the module docstring)."""

    app: App
    url: str
    port: int
    pki: LocalPKI
    directory: Path
    loop: asyncio.AbstractEventLoop
    _stop: Callable[[], None] = field(repr=False)
    _components: list[tuple[asyncio.Event, asyncio.Future[None]]] = field(default_factory=list, repr=False)

    @property
    def kubeconfig(self) -> Path:
        """The admin kubeconfig (``system:masters``) for this server."""
        return self.directory / "admin.kubeconfig"

    @property
    def ca_file(self) -> str:
        return str(self.pki.ca_cert)

    @property
    def client_cert(self) -> tuple[str, str]:
        """The admin's ``(certificate, key)`` files, for clients that take files (httpx, requests)."""
        return str(self.pki.admin_cert), str(self.pki.admin_key)

    def kubeconfig_for(self, user: str, groups: tuple[str, ...] = ()) -> Path:
        """A kubeconfig for ``user`` in ``groups`` (a new client certificate from the test CA)."""
        from kapi_certs import write_kubeconfig

        safe = "".join(c if c.isalnum() else "-" for c in user)
        return write_kubeconfig(self.directory / f"{safe}.kubeconfig", self.pki.kubeconfig(self.url, user=user,
                                                                                           groups=groups))

    def call(self, work: Callable[[], Coroutine[Any, Any, T]] | Coroutine[Any, Any, T], timeout: float = 10) -> T:
        """Run a coroutine on the server's loop (the only place the ``App`` may be used) and return
        its result, e.g. ``server.call(server.app.storage.current_revision())``."""
        coro = work() if callable(work) else work
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def start_components(self, components: Components) -> None:
        """Run controllers, the scheduler and fake kubelets on the server's loop until ``stop``
        (see ``kapi.testing.components``)."""
        from kapi.testing.components import run_components

        async def start() -> tuple[asyncio.Event, asyncio.Future[None]]:
            stop = asyncio.Event()
            return stop, asyncio.ensure_future(run_components(self.kubeconfig, components, stop,
                                                              self.directory / "components"))

        self._components.append(self.call(start()))

    def stop(self) -> None:
        """Stop the components, then serving, and wait for the thread to end (idempotent)."""
        while self._components:
            stop, task = self._components.pop()

            async def finish(stop: asyncio.Event = stop, task: asyncio.Future[None] = task) -> None:
                stop.set()
                await asyncio.wait_for(task, 10)

            try:
                self.call(finish(), timeout=15)
            except Exception as exc:  # a component that does not stop must not hide the test's result
                warnings.warn(f"kapi test components did not stop cleanly: {exc!r}", ResourceWarning, stacklevel=2)
        self._stop()


async def _close_lingering_connections(stop: asyncio.Event, grace: float = 0.2) -> None:
    """After ``stop``, cancel connections that clients keep open (a kept-alive connection in a
    client a test still references): hypercorn would otherwise wait for each one's TLS shutdown,
    and a test server must stop at once. Matches hypercorn 0.18's per-connection task by name."""
    await stop.wait()
    while True:
        await asyncio.sleep(grace)
        for task in asyncio.all_tasks():
            if getattr(task.get_coro(), "__qualname__", "").endswith("_server_callback"):
                task.cancel()


def start_server(app: App, pki: LocalPKI, directory: str | Path, *, timeout: float = 5.0) -> KapiServer:
    """Serve ``app`` over TLS on a free loopback port in a new thread; returns once it accepts
    connections. Raises the app's startup error, or ``TimeoutError``."""
    from kapi_certs import write_kubeconfig

    root = Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    started = threading.Event()
    outcome: dict[str, Any] = {}

    def listening(where: Listening) -> None:
        outcome["where"] = where
        started.set()

    async def main() -> None:
        stop = asyncio.Event()
        outcome["loop"] = asyncio.get_running_loop()
        outcome["stop"] = stop
        reaper = asyncio.create_task(_close_lingering_connections(stop))
        try:
            await serve(app, host="127.0.0.1", port=0, tls=pki.tls, shutdown_trigger=stop.wait,
                        on_listening=listening)
        finally:
            reaper.cancel()

    def run() -> None:
        try:
            asyncio.run(main())
        except BaseException as exc:  # reported to the starting thread
            outcome["error"] = exc
        finally:
            started.set()

    thread = threading.Thread(target=run, name="kapi-test-server", daemon=True)
    thread.start()
    if not started.wait(timeout):
        raise TimeoutError(f"the kapi test server did not start within {timeout}s")
    if "error" in outcome or "where" not in outcome:
        raise RuntimeError(f"the kapi test server failed to start: {outcome.get('error')!r}") from outcome.get("error")
    where: Listening = outcome["where"]
    loop: asyncio.AbstractEventLoop = outcome["loop"]
    write_kubeconfig(root / "admin.kubeconfig", pki.kubeconfig(where.url))

    def stop() -> None:
        if thread.is_alive():
            loop.call_soon_threadsafe(outcome["stop"].set)
            thread.join(timeout)
        if thread.is_alive():
            warnings.warn(f"the kapi test server on port {where.port} did not stop within {timeout}s: a client "
                          f"still holds a connection open (close clients before the server fixture ends)",
                          ResourceWarning, stacklevel=2)

    return KapiServer(app=app, url=where.url, port=where.port, pki=pki, directory=root, loop=loop, _stop=stop)


def wait_until(predicate: Callable[[], bool], timeout: float = 5.0, interval: float = 0.02) -> None:
    """Poll a sync ``predicate`` until it is true, failing with ``TimeoutError`` (for operator
    tests: "eventually the operator has reacted")."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise TimeoutError(f"condition not met within {timeout}s")


__all__ = ["KapiServer", "LocalPKI", "start_server", "wait_until"]
