"""Give ASGI apps served by hypercorn the TLS client certificate (the ASGI "tls" extension).

hypercorn 0.18.0 verifies client certificates (``ca_certs`` + ``verify_mode``) but does not pass
them to the application (pgjones/hypercorn#62). After ``install()``, every ``http`` and
``websocket`` scope served over TLS by hypercorn's asyncio (and uvloop) workers carries
``scope["extensions"]["tls"]`` in the shape of the ASGI TLS extension::

    {"client_cert_chain": [PEM of the verified leaf] or [], "client_cert_name": None,
     "client_cert_error": None, "server_cert": None, "tls_version": 0x0303 | 0x0304,
     "cipher_suite": None}

``client_cert_chain`` is empty when the client sent no certificate (``CERT_OPTIONAL``); a
certificate that fails verification never gets this far: the handshake is refused. Plain-HTTP
scopes get no ``tls`` entry. Python 3.11's ``ssl`` exposes only the leaf, so the chain holds one
entry.

How: hypercorn creates one ``TCPServer`` per connection, looked up at call time as the global
``TCPServer`` of ``hypercorn.asyncio.run``, from ``worker_serve``, which both the ``hypercorn``
command and the embedding API ``hypercorn.asyncio.serve`` use. ``install`` replaces that global
with a subclass that reads the peer certificate once per connection and wraps the connection's
app so each scope gets a copy of the extension dict. The same subclass bounds how long a connection
closed for idleness may linger: hypercorn's idle close (``keep_alive_timeout``, which also bounds
the time a client may take to send a request's headers) sends TLS ``close_notify`` and then waits
up to 30 s for the peer's, reading and discarding whatever a slowloris client keeps dripping; the
transport is aborted ``CLOSE_GRACE`` seconds after the close instead. Pinned to hypercorn 0.18 (it touches
internals; another version gets a warning). Call ``install()`` in every process that serves,
before serving: with ``workers > 1`` hypercorn spawns fresh interpreters, so call it where the
app is built. The trio worker is not covered.
"""

from __future__ import annotations

import ssl
import warnings
from collections.abc import Callable, Mapping
from importlib import metadata
from typing import Any

import hypercorn.asyncio.run as _hypercorn_run
from hypercorn.asyncio.tcp_server import TCPServer
from hypercorn.typing import AppWrapper, ASGIReceiveCallable, ASGISendCallable, Scope

from kapi.types import ClientCertificate

TLS_VERSIONS = {"TLSv1.2": 0x0303, "TLSv1.3": 0x0304}
SUPPORTED_HYPERCORN = "0.18."
CLOSE_GRACE = 1.0


class _TLSScopeApp:
    """Wraps hypercorn's per-connection app wrapper; adds the tls extension to each scope."""

    __slots__ = ("_app", "_tls")

    def __init__(self, app: AppWrapper, tls: Mapping[str, Any]) -> None:
        self._app = app
        self._tls = tls

    async def __call__(self, scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable,
                       sync_spawn: Callable[..., Any], call_soon: Callable[..., Any]) -> None:
        if scope["type"] == "http" or scope["type"] == "websocket":
            tls = dict(self._tls)
            tls["client_cert_chain"] = list(tls["client_cert_chain"])
            extensions = scope.get("extensions")
            if extensions is None:
                scope["extensions"] = {"tls": tls}
            else:
                extensions["tls"] = tls
        await self._app(scope, receive, send, sync_spawn, call_soon)


def tls_extension(ssl_object: ssl.SSLObject) -> dict[str, Any]:
    """The ASGI tls extension dict for one established TLS connection."""
    der = ssl_object.getpeercert(binary_form=True)
    return {
        "server_cert": None,
        "client_cert_chain": [ssl.DER_cert_to_PEM_cert(der)] if der else [],
        "client_cert_name": None,
        "client_cert_error": None,
        "tls_version": TLS_VERSIONS.get(ssl_object.version() or ""),
        "cipher_suite": None,
    }


class TLSInfoTCPServer(TCPServer):
    """hypercorn's per-connection server, plus the ASGI tls extension in every scope, and an idle
    close that cannot be held open by the peer."""

    async def run(self) -> None:
        ssl_object = self.writer.get_extra_info("ssl_object")
        if ssl_object is not None:
            self.app = _TLSScopeApp(self.app, tls_extension(ssl_object))
        await super().run()

    async def _initiate_server_close(self) -> None:
        transport = self.writer.transport
        self.loop.call_later(CLOSE_GRACE, transport.abort)  # a no-op once the transport closed
        await super()._initiate_server_close()

    async def _close(self) -> None:
        try:
            await super()._close()
        except ssl.SSLError:
            pass  # the peer sent data after our close_notify (asyncio's ssl shutdown raises it)


def installed() -> bool:
    """True when hypercorn currently uses ``TLSInfoTCPServer``."""
    return _hypercorn_run.TCPServer is TLSInfoTCPServer


def install() -> None:
    """Make hypercorn's asyncio workers add the tls extension to every scope. Idempotent."""
    if installed():
        return
    version = metadata.version("hypercorn")
    if not version.startswith(SUPPORTED_HYPERCORN):
        warnings.warn(f"kapi.tls_ext was written for hypercorn {SUPPORTED_HYPERCORN}x, found {version}: "
                      "check that client certificates still reach the app", RuntimeWarning, stacklevel=2)
    _hypercorn_run.TCPServer = TLSInfoTCPServer  # type: ignore[misc]


def uninstall() -> None:
    """Restore hypercorn's own ``TCPServer`` (for tests)."""
    _hypercorn_run.TCPServer = TCPServer  # type: ignore[misc]


def client_certificate_from_scope(scope: Mapping[str, Any]) -> ClientCertificate | None:
    """The verified client certificate of a request, or None (no TLS, no certificate, or the shim
    not installed). The first PEM of the chain is the leaf."""
    tls = (scope.get("extensions") or {}).get("tls")
    chain = tls.get("client_cert_chain") if tls else None
    if not chain:
        return None
    return ClientCertificate(pem=chain[0], chain=tuple(chain[1:]))
