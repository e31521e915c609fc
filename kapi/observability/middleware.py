"""``Telemetry``: the outermost middleware. Per HTTP request it

1. assigns the audit ID (kept from a sane ``Audit-ID`` or ``X-Request-Id`` request header, else a
   new UUID) and returns it in the ``Audit-Id`` response header, as kube-apiserver does;
2. opens the request's ``RequestTrace`` and makes it current (plugin calls record into it; log
   lines carry its ID);
3. counts the request in flight (``apiserver_current_inflight_requests``, or
   ``apiserver_longrunning_requests`` for watches) and, when it ends, in
   ``apiserver_request_total`` / ``apiserver_request_duration_seconds`` with the status code sent;
4. adds ``X-Kapi-Trace`` (the trace as JSON) to the response when the request asked for it with
   ``X-Kapi-Trace: 1`` and the caller may ``get`` the non-resource path ``/debug/kapi/trace``;
5. keeps the finished trace in the app's ring buffer.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from typing import TYPE_CHECKING

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kapi.errors import APIError
from kapi.middleware import LONG_RUNNING_VERBS, authorize, request_info
from kapi.observability import of
from kapi.observability.metrics import MUTATING, request_labels
from kapi.observability.trace import RequestTrace, activate, deactivate
from kapi.types import Decision, RequestAttributes

if TYPE_CHECKING:
    from kapi.app import App

log = logging.getLogger("kapi.httplog")

TRACE_PERMISSION_PATH = "/debug/kapi/trace"
MAX_TRACE_HEADER = 8192
_SANE_ID = re.compile(rb"^[A-Za-z0-9._:-]{1,128}$")


def trace_header(trace: RequestTrace) -> bytes:
    """The ``X-Kapi-Trace`` value: the trace as ASCII JSON, patches elided past 8 KiB."""
    data = trace.to_dict()
    value = json.dumps(data, separators=(",", ":"))
    if len(value) > MAX_TRACE_HEADER:
        for step in data["steps"]:
            if "patch" in step:
                step["patch"] = f"{len(step['patch'])} operations; see {TRACE_PERMISSION_PATH}s"
        value = json.dumps(data, separators=(",", ":"))[:MAX_TRACE_HEADER]
    return value.encode("ascii")


class Telemetry:
    """See the module docstring."""

    def __init__(self, app: ASGIApp, *, kapi_app: App) -> None:
        self.app = app
        self.kapi = kapi_app
        self.observability = of(kapi_app)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        info = request_info(scope)
        audit_id = b""
        wants_trace = False
        content_type = ""
        for key, value in scope["headers"]:
            if key in (b"audit-id", b"x-request-id") and not audit_id and _SANE_ID.match(value):
                audit_id = value
            elif key == b"x-kapi-trace":
                wants_trace = value.strip() in (b"1", b"true")
            elif key == b"content-type":
                content_type = value.decode("latin-1")
        audit_id = audit_id or str(uuid.uuid4()).encode()
        metrics = self.observability.metrics
        trace = RequestTrace(audit_id.decode(), scope["method"], info.path, observer=metrics.plugin_call)
        scope["kapi.trace"] = trace
        labels = request_labels(info, b"dryRun=" in scope.get("query_string", b""), content_type)
        if info.verb in LONG_RUNNING_VERBS:
            gauge, gauge_key = metrics.longrunning, labels
        else:
            gauge, gauge_key = metrics.inflight, ("mutating" if info.verb in MUTATING else "readOnly",)
        gauge.inc(gauge_key)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                trace.code = message["status"]
                extra = [(b"audit-id", audit_id)]
                if wants_trace and await self._may_see_traces(scope):
                    extra.append((b"x-kapi-trace", trace_header(trace)))
                message = {**message, "headers": [*message.get("headers", ()), *extra]}
            await send(message)

        token = activate(trace)
        started = time.perf_counter()
        try:
            await self.app(scope, receive, send_with_headers)
        finally:
            trace.seconds = time.perf_counter() - started
            trace.code = trace.code or 500
            gauge.dec(gauge_key)
            metrics.request_done(labels, trace.code, trace.seconds, trace)
            self.observability.traces.add(trace)
            if log.isEnabledFor(logging.DEBUG):
                log.debug("%s %s %d %.1fms user=%r", scope["method"], info.path, trace.code, trace.seconds * 1000,
                          trace.user)
            deactivate(token)

    async def _may_see_traces(self, scope: Scope) -> bool:
        user = scope.get("kapi.user")
        if user is None:
            return False
        attributes = RequestAttributes(verb="get", path=TRACE_PERMISSION_PATH, is_resource_request=False, user=user)
        token = activate(None)  # the check itself is not part of the request's trace
        try:
            return await authorize(self.kapi, attributes) is Decision.ALLOW
        except APIError:
            return False
        finally:
            deactivate(token)
