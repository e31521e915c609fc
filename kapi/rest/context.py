"""Per-request context shared by the REST handlers, and response helpers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from kapi import errors
from kapi.requestinfo import RequestInfo
from kapi.resources import ResourceType
from kapi.types import UserInfo

if TYPE_CHECKING:
    from kapi.app import App

JSON = "application/json"


@dataclass
class Ctx:
    """Everything a handler needs about one resource request."""

    app: App
    rt: ResourceType
    info: RequestInfo
    user: UserInfo
    request: Request

    @property
    def namespace(self) -> str:
        return self.info.namespace if self.rt.namespaced else ""

    @property
    def name(self) -> str:
        return self.info.name

    def query(self, key: str, default: str = "") -> str:
        return self.request.query_params.get(key, default)

    def flag(self, key: str) -> bool:
        return self.request.query_params.get(key, "") in ("1", "true", "True")

    @property
    def dry_run(self) -> bool:
        values = self.request.query_params.getlist("dryRun")
        for value in values:
            if value != "All":
                raise errors.bad_request(f'unsupported dryRun value "{value}"; the only supported value is "All"')
        return bool(values)

    def key(self, name: str | None = None) -> str:
        return self.rt.key(self.app.root, self.namespace, name if name is not None else self.name)

    def prefix(self) -> str:
        return self.rt.key_prefix(self.app.root, self.namespace)

    def not_found(self, name: str | None = None) -> errors.APIError:
        return errors.not_found(self.rt.group, self.rt.plural, name if name is not None else self.name)


def json_response(body: bytes | dict[str, Any], status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A JSON response from bytes or a dict."""
    data = body if isinstance(body, bytes) else orjson.dumps(body)
    return Response(data, status_code=status, media_type=JSON, headers=headers)


def int_param(ctx: Ctx, name: str, default: int = 0) -> int:
    raw = ctx.query(name)
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise errors.bad_request(f'invalid value for {name}: "{raw}" is not an integer') from None
    if value < 0:
        raise errors.bad_request(f"invalid value for {name}: must be zero or positive")
    return value
