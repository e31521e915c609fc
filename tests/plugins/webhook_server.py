"""A real admission webhook server for the tests: starlette over TLS on 127.0.0.1 (hypercorn), with a
certificate from ``kapi_certs`` valid for 127.0.0.1 and ``hooks.webhooks.svc``.

Paths: ``/label`` patches in ``metadata.labels.mutated=yes``; ``/count`` bumps the annotation
``calls`` (for reinvocation); ``/deny`` refuses objects labelled ``deny=yes`` (403 "nope") and warns
otherwise; ``/slow`` answers after 1.3 s; ``/baduid`` answers with the wrong uid. Every review
received is recorded in ``Hooks.reviews``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from kapi_certs import pki
from tests.plugins.authn_fakes import tls_server


@dataclass
class Hooks:
    """The running server: its URL, the CA bundle to trust it, what it received."""

    url: str
    ca_bundle: str
    reviews: list[dict[str, Any]] = field(default_factory=list)

    def paths(self) -> list[str]:
        return [r["path"] for r in self.reviews]


def _patch(operations: list[dict[str, Any]]) -> dict[str, Any]:
    return {"patchType": "JSONPatch", "patch": base64.b64encode(orjson.dumps(operations)).decode()}


def _answer(path: str, request: dict[str, Any]) -> dict[str, Any]:
    obj = request.get("object") or request.get("oldObject") or {}
    meta = obj.get("metadata") or {}
    response: dict[str, Any] = {"uid": request["uid"], "allowed": True}
    if path == "/label":
        ops = [] if "labels" in meta else [{"op": "add", "path": "/metadata/labels", "value": {}}]
        response.update(_patch([*ops, {"op": "add", "path": "/metadata/labels/mutated", "value": "yes"}]))
    elif path == "/count":
        calls = int((meta.get("annotations") or {}).get("calls", "0")) + 1
        ops = [] if "annotations" in meta else [{"op": "add", "path": "/metadata/annotations", "value": {}}]
        response.update(_patch([*ops, {"op": "add", "path": "/metadata/annotations/calls", "value": str(calls)}]))
    elif path == "/deny":
        if (meta.get("labels") or {}).get("deny") == "yes":
            response = {"uid": request["uid"], "allowed": False, "status": {"code": 403, "message": "nope"}}
        else:
            response["warnings"] = ["looked at it"]
    elif path == "/baduid":
        response["uid"] = "wrong"
    return response


def make_app(hooks: Hooks) -> Starlette:
    async def handle(request: Request) -> JSONResponse:
        review = orjson.loads(await request.body())
        hooks.reviews.append({"path": request.url.path, "query": request.url.query, **review})
        if request.url.path == "/slow":
            await asyncio.sleep(1.3)
        answer = {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                  "response": _answer(request.url.path, review["request"])}
        return JSONResponse(answer)

    paths = ("/label", "/count", "/deny", "/slow", "/baduid", "/ok")
    return Starlette(routes=[Route(p, handle, methods=["POST"]) for p in paths])


@contextlib.asynccontextmanager
async def webhook_server(folder: Path) -> AsyncIterator[Hooks]:
    """Start the server (certificates written under ``folder``); yields its ``Hooks``."""
    ca, ca_key = pki.make_ca("webhook-ca")
    cert, key = pki.issue(ca, ca_key, cn="webhooks", ips=["127.0.0.1"], dns=["hooks.webhooks.svc"], server=True)
    (folder / "hook.crt").write_bytes(pki.cert_pem(cert))
    (folder / "hook.key").write_bytes(pki.key_pem(key))
    hooks = Hooks(url="", ca_bundle=base64.b64encode(pki.cert_pem(ca)).decode())
    async with tls_server(make_app(hooks), folder / "hook.crt", folder / "hook.key") as url:
        hooks.url = url
        yield hooks
