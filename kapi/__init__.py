"""kapi: a Kubernetes-compatible control plane in Python, built as a pluggable framework.

Public API (plugins import only these names):

* ``hookimpl`` - the marker for plugin hook implementations;
* data crossing hook boundaries: ``UserInfo``, ``AuthnRequest``, ``ClientCertificate``,
  ``RequestAttributes``, ``AdmissionRequest``, ``Decision``, ``Operation``;
* errors: ``APIError``, ``AuthenticationError``, ``AdmissionDenied``, ``Cause``;
* storage: ``Storage`` and its data and error types;
* embedding: ``Config``, ``App``, ``create_app``, ``serve``, ``TLSFiles``;
* observability: ``trace_note`` (explain a plugin's answer in the request trace) and, for
  plugin middleware, ``request_trace(scope)`` and ``request_attributes(scope)``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kapi import storagekit, webhookconfig
from kapi.config import Config
from kapi.durations import parse_duration
from kapi.errors import AdmissionDenied, APIError, AuthenticationError, Cause
from kapi.hookspecs import hookimpl
from kapi.storage import (
    CompactedError,
    ConflictError,
    EventType,
    KeyExistsError,
    KeyNotFoundError,
    KeyValue,
    ListResult,
    Storage,
    StorageError,
    StorageEvent,
    UnavailableError,
)
from kapi.types import (
    ANONYMOUS,
    AUTHENTICATED,
    MASTERS,
    UNAUTHENTICATED,
    AdmissionRequest,
    AuthnRequest,
    ClientCertificate,
    Decision,
    Operation,
    RequestAttributes,
    UserInfo,
)

if TYPE_CHECKING:
    from kapi.app import App, create_app
    from kapi.observability import request_attributes, request_trace, trace_note
    from kapi.server import TLSFiles, serve

__all__ = [
    "ANONYMOUS", "AUTHENTICATED", "MASTERS", "UNAUTHENTICATED",
    "APIError", "AdmissionDenied", "AdmissionRequest", "App", "AuthenticationError", "AuthnRequest",
    "Cause", "ClientCertificate", "CompactedError", "Config", "ConflictError", "Decision", "EventType",
    "KeyExistsError", "KeyNotFoundError", "KeyValue", "ListResult", "Operation", "RequestAttributes",
    "Storage", "StorageError", "StorageEvent", "TLSFiles", "UnavailableError", "UserInfo", "create_app", "hookimpl",
    "parse_duration", "request_attributes", "request_trace", "serve", "storagekit", "trace_note", "webhookconfig",
]

_LAZY = {"App": "kapi.app", "create_app": "kapi.app", "serve": "kapi.server", "TLSFiles": "kapi.server",
         "request_attributes": "kapi.observability", "request_trace": "kapi.observability",
         "trace_note": "kapi.observability"}


def __getattr__(name: str) -> Any:
    """Import the web-facing names on first use, so plugins importing ``kapi`` stay light."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'kapi' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
