"""``GET /metrics`` (Prometheus text format) and ``GET /debug/kapi/traces?limit=N`` (recent traces,
newest first; ``kubectl get --raw /debug/kapi/traces?limit=5``). Both are non-resource paths, so
the authorizers decide who may read them, like every other request."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from kapi import errors
from kapi.observability import of
from kapi.observability.prom import CONTENT_TYPE

if TYPE_CHECKING:
    from kapi.app import App

TRACES_PATH = "/debug/kapi/traces"
DEFAULT_LIMIT = 20


def observability_routes(app: App) -> list[BaseRoute]:
    """The routes of ``app``'s metrics and traces."""
    observability = of(app)

    async def metrics(_: Request) -> Response:
        with contextlib.suppress(Exception):  # object counts as of now; a scrape never fails for it
            await app.cache.sync(timeout=1.0)
        return Response(observability.metrics.render(), media_type=CONTENT_TYPE)

    async def traces(request: Request) -> Response:
        raw = request.query_params.get("limit", str(DEFAULT_LIMIT))
        if not raw.isdigit() or int(raw) < 1:
            raise errors.bad_request(f'invalid value for limit: "{raw}" (a positive integer)')
        items = [t.to_dict() for t in observability.traces.latest(int(raw))]
        body = {"kind": "TraceList", "apiVersion": "kapi.io/v1alpha1", "items": items}
        return Response(orjson.dumps(body), media_type="application/json")

    return [Route("/metrics", metrics, methods=["GET"]), Route(TRACES_PATH, traces, methods=["GET"])]
