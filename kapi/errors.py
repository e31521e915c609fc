"""Kubernetes ``Status`` errors.

Every failure the API server reports is an ``APIError``: it carries the HTTP code, the
``reason`` (``NotFound``, ``AlreadyExists``, ``Conflict``, ``Invalid``, ...) and optional
``details``, and renders as a ``meta.k8s.io/v1`` Status object. Code anywhere in the request
path raises one; the error middleware turns it into the response. Messages must be actionable
and must never contain credentials.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson


@dataclass(frozen=True)
class Cause:
    """One entry of ``details.causes``: a field path and what is wrong with it."""

    field: str
    message: str
    reason: str = "FieldValueInvalid"

    def to_dict(self) -> dict[str, str]:
        return {"reason": self.reason, "message": f"{self.field}: {self.message}" if self.field else self.message,
                "field": self.field}


class APIError(Exception):
    """An error with a Kubernetes Status shape. ``code`` is the HTTP status."""

    def __init__(self, code: int, reason: str, message: str, *, group: str = "", kind: str = "",
                 name: str = "", causes: tuple[Cause, ...] = (), retry_after: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.group = group
        self.kind = kind
        self.name = name
        self.causes = causes
        self.retry_after = retry_after

    def status(self) -> dict[str, Any]:
        """The Status object for this error."""
        out: dict[str, Any] = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                               "message": self.message, "reason": self.reason, "code": self.code}
        details: dict[str, Any] = {}
        if self.name:
            details["name"] = self.name
        if self.group:
            details["group"] = self.group
        if self.kind:
            details["kind"] = self.kind
        if self.causes:
            details["causes"] = [c.to_dict() for c in self.causes]
        if self.retry_after is not None:
            details["retryAfterSeconds"] = self.retry_after
        if details:
            out["details"] = details
        return out

    def body(self) -> bytes:
        return orjson.dumps(self.status())


def _qualified(group: str, resource: str) -> str:
    return f"{resource}.{group}" if group else resource


def not_found(group: str, resource: str, name: str) -> APIError:
    return APIError(404, "NotFound", f'{_qualified(group, resource)} "{name}" not found',
                    group=group, kind=resource, name=name)


def already_exists(group: str, resource: str, name: str) -> APIError:
    return APIError(409, "AlreadyExists", f'{_qualified(group, resource)} "{name}" already exists',
                    group=group, kind=resource, name=name)


def conflict(group: str, resource: str, name: str, why: str) -> APIError:
    return APIError(409, "Conflict", f'Operation cannot be fulfilled on {_qualified(group, resource)} "{name}": {why}',
                    group=group, kind=resource, name=name)


def invalid(group: str, kind: str, name: str, causes: tuple[Cause, ...]) -> APIError:
    summary = ", ".join(c.to_dict()["message"] for c in causes) or "invalid object"
    return APIError(422, "Invalid", f'{kind}{"." + group if group else ""} "{name}" is invalid: {summary}',
                    group=group, kind=kind, name=name, causes=causes)


def not_found_path(path: str) -> APIError:
    """404 for a path that serves nothing (kube-apiserver answers "the server could not find the
    requested resource")."""
    return APIError(404, "NotFound", "the server could not find the requested resource", name=path.rsplit("/", 1)[-1])


def bad_request(message: str) -> APIError:
    return APIError(400, "BadRequest", message)


def unauthorized(message: str = "Unauthorized") -> APIError:
    return APIError(401, "Unauthorized", message)


def forbidden(message: str) -> APIError:
    return APIError(403, "Forbidden", message)


def method_not_allowed(message: str) -> APIError:
    return APIError(405, "MethodNotAllowed", message)


def not_acceptable(message: str) -> APIError:
    return APIError(406, "NotAcceptable", message)


def gone(message: str) -> APIError:
    return APIError(410, "Expired", message)


def too_large(message: str) -> APIError:
    return APIError(413, "RequestEntityTooLarge", message)


def unsupported_media_type(message: str) -> APIError:
    return APIError(415, "UnsupportedMediaType", message)


def too_many_requests(message: str, retry_after: int = 1) -> APIError:
    return APIError(429, "TooManyRequests", message, retry_after=retry_after)


def internal(message: str) -> APIError:
    return APIError(500, "InternalError", message)


def unavailable(message: str) -> APIError:
    return APIError(503, "ServiceUnavailable", message)


def timeout(message: str) -> APIError:
    return APIError(504, "Timeout", message)


class AuthenticationError(APIError):
    """Raised by an authenticator whose kind of credential is present but wrong (HTTP 401).

    The message is shown to the client: say what is wrong, never echo the credential.
    """

    def __init__(self, message: str = "Unauthorized") -> None:
        super().__init__(401, "Unauthorized", message)


class AdmissionDenied(APIError):
    """Raised by an admission plugin to reject a request (403 Forbidden by default, or 422 Invalid
    when ``causes`` name the offending fields)."""

    def __init__(self, message: str, *, code: int = 403, causes: tuple[Cause, ...] = ()) -> None:
        super().__init__(code, "Invalid" if code == 422 else "Forbidden", message, causes=causes)
