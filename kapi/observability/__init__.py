"""Observability of an App: metrics, request traces, request IDs and structured logs.

* ``metrics`` / ``prom``: kube-apiserver's metrics, served at ``GET /metrics``;
* ``trace``: the per-request pipeline trace (which authenticator, which authorizer and why, what
  admission changed or rejected), in a ring buffer served at ``GET /debug/kapi/traces`` and, for
  callers allowed ``get`` on ``/debug/kapi/trace``, in the ``X-Kapi-Trace`` response header;
* ``middleware``: the outermost middleware that opens each request's trace, assigns its audit ID
  (the ``Audit-Id`` response header; a sane ``Audit-ID``/``X-Request-Id`` request header is kept),
  counts it and times it;
* ``storage``: the storage wrapper timing every store call;
* ``logs``: JSON log lines carrying the request ID (``--logging-format json``).

All state lives in one ``Observability`` per app (``of(app)``), never in module globals.
Plugin middleware (``kapi_middleware`` hook) reads a request's data with ``request_trace(scope)``
and ``request_attributes(scope)``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kapi.observability.trace import RequestTrace, TraceBuffer, current_trace, trace_note
from kapi.types import RequestAttributes

if TYPE_CHECKING:
    from kapi.app import App
    from kapi.observability.metrics import Metrics

STATE_KEY = "kapi.observability"
TRACE_BUFFER_SIZE = 256


class Observability:
    """The metrics and the recent traces of one app."""

    def __init__(self, app: App, trace_capacity: int = TRACE_BUFFER_SIZE) -> None:
        from kapi.observability.metrics import Metrics

        self.metrics: Metrics = Metrics(app)
        self.traces = TraceBuffer(trace_capacity)


def of(app: App) -> Observability:
    """The app's ``Observability`` (created on first use, kept in ``app.state``)."""
    found = app.state.get(STATE_KEY)
    if found is None:
        found = app.state[STATE_KEY] = Observability(app)
    return found  # type: ignore[no-any-return]


def request_trace(scope: dict[str, Any]) -> RequestTrace | None:
    """The trace of the request whose ASGI ``scope`` this is (None outside kapi's pipeline)."""
    return scope.get("kapi.trace")


def request_attributes(scope: dict[str, Any]) -> RequestAttributes | None:
    """What the request is about and who makes it (``kapi.RequestAttributes``), once the caller is
    authenticated; None before that (middleware at the ``outer`` position, or a 401)."""
    info = scope.get("kapi.info")
    user = scope.get("kapi.user")
    if info is None or user is None:
        return None
    return info.attributes(user)  # type: ignore[no-any-return]


__all__ = ["Observability", "RequestTrace", "current_trace", "of", "request_attributes", "request_trace",
           "trace_note"]
