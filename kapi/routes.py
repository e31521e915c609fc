"""The HTTP routes of an App: discovery, OpenAPI, health, version, and the resource endpoint.

Discovery and OpenAPI documents are rendered once per version of the app's registry (bytes; a new
version when CRDs change what is served) and served as they are.
Aggregated discovery (apidiscovery.k8s.io/v2) is served when the client's Accept asks for it
first, else the classic APIVersions/APIGroupList documents.
"""

from __future__ import annotations

import platform
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import orjson
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Match, Route
from starlette.types import Receive, Scope, Send

from kapi import errors
from kapi.observability.routes import observability_routes
from kapi.openapi_pb import V2_PROTOBUF, wants_v2_protobuf
from kapi.rest.dispatch import make_endpoint

if TYPE_CHECKING:
    from kapi.app import App

JSON = "application/json"
AGGREGATED = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
KUBE_VERSION = {"major": "1", "minor": "37", "gitVersion": "v1.37.0-kapi", "gitCommit": "kapi",
                "gitTreeState": "clean", "buildDate": "2026-11-28T00:00:00Z", "goVersion": "n/a",
                "compiler": "cpython", "platform": f"{platform.system().lower()}/{platform.machine()}"}


def wants_aggregated(accept: str) -> bool:
    """True when the first acceptable type is aggregated discovery v2."""
    for part in accept.split(","):
        params = {p.split("=", 1)[0].strip(): p.split("=", 1)[-1].strip() for p in part.split(";")[1:]}
        if params.get("as") == "APIGroupDiscoveryList":
            return params.get("g") == "apidiscovery.k8s.io" and params.get("v") == "v2"
        if part.strip():
            return False
    return False


def build_routes(app: App) -> list[BaseRoute]:
    """All routes of ``app`` (plugins' extra routes are added in front by ``App.asgi``)."""
    from kapi.discovery import Discovery
    from kapi.openapi import OpenAPI

    # rebuilt when the served resources change (CRDs): cached per ``app.registry.version``
    built: dict[str, tuple[int, Any]] = {}

    def current(name: str, build: Callable[[], Any]) -> Any:
        version = getattr(app.registry, "version", 0)
        entry = built.get(name)
        if entry is None or entry[0] != version:
            entry = built[name] = (version, build())
        return entry[1]

    def get_discovery() -> Discovery:
        return current("discovery", lambda: Discovery(list(app.registry)))  # type: ignore[no-any-return]

    def get_openapi() -> OpenAPI:
        def build() -> OpenAPI:
            extra = {(rt.group, rt.version, rt.kind): rt.strategy.schema
                     for rt in getattr(app.registry, "custom", ())}
            return OpenAPI(app.schema, list(app.registry), extra_schemas=extra)

        return current("openapi", build)  # type: ignore[no-any-return]

    def doc(data: bytes | None, media: str = JSON) -> Response:
        if data is None:
            raise errors.not_found_path("")
        return Response(data, media_type=media)

    async def api(request: Request) -> Response:
        discovery = get_discovery()
        if wants_aggregated(request.headers.get("accept", "")):
            return Response(discovery.aggregated_api(), media_type=AGGREGATED)
        return doc(discovery.api())

    async def apis(request: Request) -> Response:
        discovery = get_discovery()
        if wants_aggregated(request.headers.get("accept", "")):
            return Response(discovery.aggregated_apis(), media_type=AGGREGATED)
        return doc(discovery.apis())

    async def api_v1(_: Request) -> Response:
        return doc(get_discovery().api_v1())

    async def group(request: Request) -> Response:
        return doc(get_discovery().group(request.path_params["group"]))

    async def group_version(request: Request) -> Response:
        return doc(get_discovery().group_version(request.path_params["group"], request.path_params["version"]))

    async def version(_: Request) -> Response:
        return Response(orjson.dumps(KUBE_VERSION), media_type=JSON)

    async def openapi_v2(request: Request) -> Response:
        accept = request.headers.get("accept", "")
        if wants_v2_protobuf(accept):  # client-go (kubectl validating a kind: List) asks only for this
            return doc(get_openapi().v2_protobuf(), V2_PROTOBUF)
        if accept and "json" not in accept and "*/*" not in accept:
            raise errors.not_acceptable(f"only application/json and {V2_PROTOBUF} are supported for /openapi/v2")
        return doc(get_openapi().v2())

    async def openapi_v3(_: Request) -> Response:
        return doc(get_openapi().v3_index())

    async def openapi_v3_group(request: Request) -> Response:
        return doc(get_openapi().v3_group(request.path_params["path"]))

    async def health(request: Request) -> Response:
        name = request.url.path.strip("/")
        ok = await app.healthy()
        if request.query_params.get("verbose") is not None:
            lines = [f"[{'+' if ok else '-'}]ping ok", f"[{'+' if ok else '-'}]storage {'ok' if ok else 'failed'}",
                     f"{name} {'check passed' if ok else 'check failed'}"]
            return PlainTextResponse("\n".join(lines) + "\n", status_code=200 if ok else 500)
        return PlainTextResponse("ok" if ok else f"{name} check failed", status_code=200 if ok else 500)

    return [
        ResourceRoute(make_endpoint(app)),
        Route("/version", version, methods=["GET"]),
        Route("/healthz", health, methods=["GET"]),
        Route("/livez", health, methods=["GET"]),
        Route("/readyz", health, methods=["GET"]),
        Route("/api", api, methods=["GET"]),
        Route("/api/v1", api_v1, methods=["GET"]),
        Route("/apis", apis, methods=["GET"]),
        Route("/apis/{group}", group, methods=["GET"]),
        Route("/apis/{group}/{version}", group_version, methods=["GET"]),
        Route("/openapi/v2", openapi_v2, methods=["GET"]),
        Route("/openapi/v3", openapi_v3, methods=["GET"]),
        Route("/openapi/v3/{path:path}", openapi_v3_group, methods=["GET"]),
        *observability_routes(app),
    ]


class ResourceRoute(BaseRoute):
    """Matches every resource request in O(1): the request info parsed by the authentication
    middleware already says whether the path is a resource path, so no pattern is tried."""

    def __init__(self, endpoint: Callable[[Request], Awaitable[Response]]) -> None:
        self.endpoint = endpoint

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        info = scope.get("kapi.info")
        if scope["type"] == "http" and info is not None and info.is_resource_request:
            return Match.FULL, {"endpoint": self.endpoint}
        return Match.NONE, {}

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = await self.endpoint(Request(scope, receive))
        await response(scope, receive, send)
