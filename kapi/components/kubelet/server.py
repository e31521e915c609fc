"""The kubelet's HTTPS endpoint (port 10250): container logs for the API server, health.

Routes:

* ``GET /healthz`` - ``ok`` (no client certificate needed);
* ``GET /containerLogs/NAMESPACE/POD/CONTAINER?follow=&tailLines=&limitBytes=&previous=`` - the
  container's log as text, streamed while it runs with ``follow=true``;
* ``GET /pods`` - a PodList of the pods this process runs.

Every route but ``/healthz`` needs a client certificate issued by ``--client-ca-file`` whose
user (CN) is in ``authorized_users`` (default: ``kube-apiserver-kubelet-client``, the API
server's kubelet-client certificate) or whose groups (O) meet ``authorized_groups`` (default
``system:masters``): 401 without a certificate, 403 for anyone else. One server serves every
kubelet of the process (``--fake-nodes``): pods are found by namespace and name.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

import orjson
from cryptography import x509
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from kapi.components.kubelet.logs import follow_log, read_log
from kapi.components.kubelet.podstatus import RUNNING, WAITING
from kapi.components.kubelet.worker import PodWorker

log = logging.getLogger("kapi.kubelet")

Lookup = Callable[[str, str], PodWorker | None]
AUTHORIZED_USERS = ("kube-apiserver-kubelet-client",)
AUTHORIZED_GROUPS = ("system:masters",)


def peer_identity(scope: Scope) -> tuple[str, tuple[str, ...]] | None:
    """``(CN, Os)`` of the verified client certificate of the connection, or None."""
    chain = ((scope.get("extensions") or {}).get("tls") or {}).get("client_cert_chain") or []
    if not chain:
        return None
    pem = chain[0]
    cert = x509.load_pem_x509_certificate(pem.encode() if isinstance(pem, str) else pem)
    subject = cert.subject
    cn = [a.value for a in subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)]
    orgs = tuple(str(a.value) for a in subject.get_attributes_for_oid(x509.NameOID.ORGANIZATION_NAME))
    return (str(cn[0]) if cn else "", orgs)


class ClientCertAuth:
    """Pure-ASGI guard: every path except ``/healthz`` needs an authorized client certificate."""

    def __init__(self, app: ASGIApp, users: Iterable[str], groups: Iterable[str]) -> None:
        self.app = app
        self.users = frozenset(users)
        self.groups = frozenset(groups)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") == "/healthz":
            await self.app(scope, receive, send)
            return
        identity = peer_identity(scope)
        if identity is None:
            await PlainTextResponse("Unauthorized", 401)(scope, receive, send)
            return
        user, groups = identity
        if user not in self.users and not self.groups.intersection(groups):
            await PlainTextResponse(f"Forbidden (user={user}, verb=get, resource=nodes, subresource=log)",
                                    403)(scope, receive, send)
            return
        await self.app(scope, receive, send)


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except ValueError:
        return None


def _flag(value: str | None) -> bool:
    return (value or "").lower() in ("true", "1")


@dataclass
class KubeletServer:
    """Routes over the pod workers of one process (``lookup(namespace, name)``)."""

    lookup: Lookup
    list_pods: Callable[[], list[dict[str, Any]]]

    async def healthz(self, request: Request) -> Response:
        return PlainTextResponse("ok")

    async def pods(self, request: Request) -> Response:
        body = {"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": self.list_pods()}
        return Response(orjson.dumps(body), media_type="application/json")

    async def container_logs(self, request: Request) -> Response:
        params = request.path_params
        namespace, pod, container = params["namespace"], params["pod"], params["container"]
        worker = self.lookup(namespace, pod)
        if worker is None:
            return PlainTextResponse(f'pod "{pod}" not found', 404)
        record = worker.records.get(container)
        if record is None:
            return PlainTextResponse(f'container "{container}" in pod "{pod}" not found', 404)
        query = request.query_params
        restart = record.restart_count
        if _flag(query.get("previous")):
            if record.restart_count == 0 and record.last_terminated is None:
                return PlainTextResponse(f'previous terminated container "{container}" in pod "{pod}" not found',
                                         400)
            restart -= 1
        elif record.state == WAITING and not record.container_id:
            return PlainTextResponse(f'container "{container}" in pod "{pod}" is waiting to start: {record.reason}',
                                     400)
        path = worker.log_path(container, restart)
        tail, limit = _int(query.get("tailLines")), _int(query.get("limitBytes"))
        if not _flag(query.get("follow")) or _flag(query.get("previous")):
            data = await asyncio.to_thread(read_log, path, tail_lines=tail, limit_bytes=limit)
            return Response(data, media_type="text/plain")
        container_id = record.container_id

        def alive() -> bool:
            return record.state == RUNNING and record.container_id == container_id and not worker.done.is_set()

        return StreamingResponse(follow_log(path, alive, tail_lines=tail, limit_bytes=limit),
                                 media_type="text/plain")

    def asgi(self, *, users: Iterable[str] = AUTHORIZED_USERS, groups: Iterable[str] = AUTHORIZED_GROUPS) -> ASGIApp:
        app = Starlette(routes=[
            Route("/healthz", self.healthz),
            Route("/pods", self.pods),
            Route("/containerLogs/{namespace}/{pod}/{container}", self.container_logs),
        ])
        return ClientCertAuth(app, users, groups)


async def serve_https(app: ASGIApp, *, host: str, port: int, cert_file: str, key_file: str, client_ca_file: str,
                      shutdown: Callable[[], Awaitable[Any]], socket_fd: int | None = None) -> None:
    """Serve ``app`` over TLS with client certificates verified against ``client_ca_file``, on
    ``host:port`` or on the already bound socket ``socket_fd``."""
    from hypercorn.asyncio import serve

    from kapi import tls_ext
    from kapi.server import TLSFiles, hypercorn_config

    tls_ext.install()
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    bind = f"fd://{socket_fd}" if socket_fd is not None else address
    config = hypercorn_config([bind], TLSFiles(cert_file, key_file, client_ca_file))
    await serve(app, config, shutdown_trigger=shutdown)  # type: ignore[arg-type]
