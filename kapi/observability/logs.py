"""Log lines that carry the request ID, as text or JSON (``--logging-format text|json``).

Every record logged while a request is served gets ``record.request_id`` = the request's audit ID
(the ``Audit-Id`` response header), so all lines of one request can be found together, and
matched with its audit events and its trace (``/debug/kapi/traces``).

JSON lines: ``{"ts": "...Z", "level": "INFO", "logger": "kapi.request", "msg": "...",
"request_id": "..."}`` plus ``"exc"`` with the traceback when there is one.
"""

from __future__ import annotations

import datetime
import logging
from typing import IO, Any

import orjson

from kapi.observability.trace import current_trace

FORMATS = ("text", "json")
TEXT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class RequestIdFilter(logging.Filter):
    """Sets ``record.request_id`` from the request being served ("" outside requests)."""

    def filter(self, record: logging.LogRecord) -> bool:
        trace = current_trace()
        record.request_id = trace.audit_id if trace is not None else ""
        return True


class TextFormatter(logging.Formatter):
    """The classic text line, with `` request_id=ID`` appended inside requests."""

    def __init__(self) -> None:
        super().__init__(TEXT)

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        request_id = getattr(record, "request_id", "")
        return f"{line} request_id={request_id}" if request_id else line


class JSONFormatter(logging.Formatter):
    """One JSON object per line (see the module docstring)."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "ts": datetime.datetime.fromtimestamp(record.created, datetime.UTC).isoformat(timespec="microseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname, "logger": record.name, "msg": record.getMessage()}
        request_id = getattr(record, "request_id", "")
        if request_id:
            data["request_id"] = request_id
        if record.exc_info:
            data["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(data, default=str).decode()


def make_handler(fmt: str = "text", stream: IO[str] | None = None) -> logging.Handler:
    """A stream handler (stderr by default) in ``fmt`` with the request-ID filter."""
    if fmt not in FORMATS:
        raise ValueError(f"--logging-format {fmt!r}: use one of {', '.join(FORMATS)}")
    handler = logging.StreamHandler(stream)
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(JSONFormatter() if fmt == "json" else TextFormatter())
    return handler


def configure_logging(fmt: str = "text", level: int = logging.INFO, stream: IO[str] | None = None) -> None:
    """Configure the process's root logger (what ``kapi-apiserver`` does; an embedding program
    keeps its own logging and may add ``make_handler(...)`` or just ``RequestIdFilter``)."""
    logging.basicConfig(level=level, handlers=[make_handler(fmt, stream)], force=True)
