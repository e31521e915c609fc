"""kapi started inside another program's asyncio event loop, stopped by that program.

The host program here does its own work (a heartbeat task) and runs an API server beside it in
the same loop. It stops everything when someone creates the ConfigMap ``default/shutdown`` -
noticed by a tiny in-code admission plugin, so the shutdown trigger comes from the API itself::

    python examples/embed_loop.py --port 8443 --data-dir /tmp/kapi-loop
    kubectl --kubeconfig /tmp/kapi-loop/admin.kubeconfig get namespaces
    kubectl --kubeconfig /tmp/kapi-loop/admin.kubeconfig apply -f - <<'YAML'
    {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "shutdown", "namespace": "default"}}
    YAML

The pattern: ``kapi.serve(app, ..., shutdown_trigger=stop.wait)`` is a coroutine; run it as a task
of your loop and set ``stop`` when you want it to end (hypercorn finishes in-flight requests, then
the app's shutdown closes its storage). A plugin object registered in code (``plugins=[(name,
obj)]``) is enabled by naming it in the configuration, here in ``admission``.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from collections.abc import Sequence

import kapi
from kapi.server import Listening


class StopOnConfigMap:
    """Admission plugin: sets ``stop`` when ConfigMap ``default/shutdown`` is created."""

    def __init__(self, stop: asyncio.Event) -> None:
        self.stop = stop

    @kapi.hookimpl
    def kapi_validate_admission(self, request: kapi.AdmissionRequest) -> None:
        if (request.operation is kapi.Operation.CREATE and request.resource == "configmaps"
                and request.namespace == "default" and request.name == "shutdown" and not request.dry_run):
            asyncio.get_running_loop().call_later(0.2, self.stop.set)  # answer the request first


async def heartbeat(stop: asyncio.Event, every: float = 1.0) -> int:
    """The host program's own work: count beats until stopped."""
    beats = 0
    while not stop.is_set():
        beats += 1
        try:
            await asyncio.wait_for(stop.wait(), every)
        except TimeoutError:
            pass
    return beats


async def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--port", type=int, default=8443, help="0 picks a free port")
    parser.add_argument("--data-dir", default="./kapi-loop", help="where the PKI and admin.kubeconfig go")
    args = parser.parse_args(argv)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    app = kapi.create_app(kapi.Config(storage_backend="memory", authenticators=("x509",),
                                      admission=("stop-on-configmap",)),
                          plugins=[("stop-on-configmap", StopOnConfigMap(stop))])

    def announce(where: Listening) -> None:
        print(f"serving on {where.url}\nkubeconfig: {where.kubeconfig}", flush=True)

    server = asyncio.create_task(kapi.serve(app, port=args.port, credentials_dir=args.data_dir,
                                            shutdown_trigger=stop.wait, on_listening=announce))
    beats = await heartbeat(stop)
    await server
    print(f"stopped after {beats} heartbeats", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
