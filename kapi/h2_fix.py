"""A fix for hypercorn 0.18.0's HTTP/2 protocol: body data for a finished stream kills the connection.

When the application answers before it has read the whole request body (a 404, 401 or 413 on a
POST), hypercorn closes the stream; the client's remaining DATA frames then hit
``self.streams[event.stream_id]`` and the ``KeyError`` tears down the whole connection - with every
other stream multiplexed on it, such as a client-go watch. ``install()`` makes such frames be
acknowledged (so connection flow control keeps moving) and dropped. Pinned to hypercorn 0.18.0,
like ``kapi.tls_ext``; idempotent.
"""

from __future__ import annotations

from typing import Any

import h2.events
from hypercorn.protocol.h2 import H2Protocol

_ORIGINAL = H2Protocol._handle_events


async def _handle_events(self: Any, events: list[h2.events.Event]) -> None:
    # One at a time: handling an event may close a stream that a later event of the batch names.
    for event in events:
        if isinstance(event, h2.events.DataReceived) and event.stream_id not in self.streams:
            self.connection.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            await self._flush()
            continue
        await _ORIGINAL(self, [event])


def install() -> None:
    """Patch hypercorn's H2Protocol (once)."""
    H2Protocol._handle_events = _handle_events  # type: ignore[method-assign]
