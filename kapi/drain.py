"""Keep HTTP/1.1 connections reusable when a request is answered before its body was read.

A request refused early (401/403/429, a 4xx from validation of the URL ...) leaves its body unread.
hypercorn then closes the connection as soon as the response ends, without saying so; a client
that has already sent its next request on that keep-alive connection sees "server disconnected".
Go's net/http avoids this by reading up to 256 KiB of the leftover body. ``BodyDrain`` does the
same: it watches ``receive``, and before the last response message it reads what is left of a
small body (bounded in bytes and time). When the leftover is large or unknown it announces
``connection: close`` on HTTP/1.x instead, so the client opens a new connection.
"""

from __future__ import annotations

import asyncio
import contextlib

from starlette.types import Message, Receive, Scope, Send

DRAIN_LIMIT = 256 * 1024  # bytes of unread body read to keep the connection (Go's maxPostHandlerReadBytes)
DRAIN_SECONDS = 2.0


class BodyDrain:
    """Wraps one request's ``receive``/``send`` (see the module docstring)."""

    def __init__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = dict(scope.get("headers") or ())
        length = headers.get(b"content-length")
        chunked = b"chunked" in headers.get(b"transfer-encoding", b"").lower()
        self._declared = int(length) if length is not None and length.isdigit() else (-1 if chunked else 0)
        self._pending = self._declared != 0
        self._received = 0
        self._http1 = scope.get("http_version", "1.1") in ("1.0", "1.1")
        self._receive = receive
        self._send = send

    def _small(self) -> bool:
        return 0 <= self._declared <= DRAIN_LIMIT

    async def receive(self) -> Message:
        message = await self._receive()
        if message["type"] == "http.request":
            self._received += len(message.get("body", b""))
            if not message.get("more_body", False):
                self._pending = False
        elif message["type"] == "http.disconnect":
            self._pending = False
        return message

    async def send(self, message: Message) -> None:
        if self._pending:
            if message["type"] == "http.response.start" and self._http1 and not self._small():
                message = {**message, "headers": [*message.get("headers", ()), (b"connection", b"close")]}
            elif message["type"] == "http.response.body" and not message.get("more_body", False) \
                    and self._small():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._drain(), DRAIN_SECONDS)
        await self._send(message)

    async def _drain(self) -> None:
        while self._pending and self._received <= DRAIN_LIMIT:
            await self.receive()
