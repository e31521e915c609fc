"""kapi's API server mounted under ``/k8s`` in a Starlette application, next to the host's own routes.

Run it, then point kubectl at the printed kubeconfig (its server URL ends in ``/k8s``)::

    python examples/embed_starlette.py --port 8443 --data-dir /tmp/kapi-embed
    kubectl --kubeconfig /tmp/kapi-embed/admin.kubeconfig get namespaces
    curl --cacert /tmp/kapi-embed/pki/ca.crt https://127.0.0.1:8443/     # the host app's own route

What makes the mount work:

* ``App.asgi()`` is a plain ASGI app: ``Mount("/k8s", app=...)`` routes everything under ``/k8s``
  to it, and kapi strips the mount's ``root_path`` before parsing request paths.
* Starlette does not run the lifespan of mounted apps, so the host app's lifespan runs kapi's
  (``lifespan=kube.lifespan``): storage opens and plugins start before the first request.
* ``kapi.serve`` serves any ASGI app over TLS with kapi's hypercorn settings (client certificates
  included); ``credentials_dir`` generates a PKI and an admin kubeconfig for ``https://HOST:PORT/k8s``.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from collections.abc import Sequence

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route

import kapi
from kapi.server import Listening

MOUNT = "/k8s"


async def hello(_request: Request) -> PlainTextResponse:
    """One of the host application's own routes."""
    return PlainTextResponse("hello from the host application\n")


def build() -> tuple[Starlette, kapi.App]:
    """The host application with a kapi API server (memory store, client-certificate auth) mounted."""
    kube = kapi.create_app(kapi.Config(storage_backend="memory", authenticators=("x509",)))
    host = Starlette(routes=[Route("/", hello), Mount(MOUNT, app=kube.asgi())], lifespan=kube.lifespan)
    return host, kube


def announce(where: Listening) -> None:
    print(f"serving on {where.url}\nkubeconfig: {where.kubeconfig}", flush=True)


async def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--port", type=int, default=8443, help="0 picks a free port")
    parser.add_argument("--data-dir", default="./kapi-embed", help="where the PKI and admin.kubeconfig go")
    args = parser.parse_args(argv)
    host, _kube = build()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await kapi.serve(host, port=args.port, credentials_dir=args.data_dir, url_path=MOUNT,
                     shutdown_trigger=stop.wait, on_listening=announce)


if __name__ == "__main__":
    asyncio.run(main())
