"""``RequestTimeout``: kube-apiserver's ``--request-timeout`` for requests that are not long-running.

A request (not a watch, not ``pods/log?follow=true``) that has not finished after
``--request-timeout`` seconds (default 60), or after its own ``?timeout=`` if shorter (client-go
sends ``timeout=32s`` on discovery), is cancelled and answered with 504 ``Timeout`` - or, when its
response already started, its connection is closed. Watches end after ``timeoutSeconds`` or
``--min-request-timeout`` (handled by the watch endpoint).
"""

from __future__ import annotations

import asyncio
from urllib.parse import parse_qs

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kapi import errors
from kapi.durations import parse_duration
from kapi.requestinfo import RequestInfo


def is_long_running(info: RequestInfo, query: bytes) -> bool:
    return info.verb == "watch" or (info.subresource == "log" and b"follow=true" in query)


class RequestTimeout:
    """See the module docstring. ``seconds <= 0`` disables it."""

    def __init__(self, app: ASGIApp, *, seconds: float) -> None:
        self.app = app
        self.seconds = seconds

    def _limit(self, scope: Scope) -> float:
        query = scope.get("query_string", b"")
        if b"timeout=" not in query:
            return self.seconds
        values = parse_qs(query.decode("latin-1")).get("timeout")
        try:
            asked = parse_duration(values[0]) if values else 0.0
        except ValueError:
            raise errors.bad_request(f'invalid timeout "{values[0] if values else ""}"') from None
        return min(asked, self.seconds) if asked > 0 else self.seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        info = scope.get("kapi.info")
        if scope["type"] != "http" or self.seconds <= 0 or info is None or \
                is_long_running(info, scope.get("query_string", b"")):
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            async with asyncio.timeout(self._limit(scope)):
                await self.app(scope, receive, tracking_send)
        except TimeoutError:
            if started:
                return  # too late for a Status: the connection just ends
            raise errors.APIError(504, "Timeout", "Timeout: request did not complete within the allotted timeout "
                                                  "- context deadline exceeded") from None
