"""An async API client for kapi's own components (scheduler, kubelet, controller manager).

Every component talks only to the API server, over mutual TLS with the client certificate of
its kubeconfig (or a bearer token). This module is that client, made for components rather than
for people: plain dicts in and out (orjson), one ``httpx.AsyncClient`` per ``Client`` (keep-alive
pool, HTTP/2 optional), and errors as ``ApiError`` carrying the server's ``Status``::

    client = Client.from_kubeconfig("scheduler.kubeconfig")
    pod = await client.get(path_for("", "v1", "pods", "default", "web-0"))
    async for event in client.watch(path_for("", "v1", "pods"), pod["metadata"]["resourceVersion"]):
        ...

``Informer`` (list+watch into a local store with handlers, resuming after disconnects and
relisting on 410) and ``LeaderElector`` (coordination.k8s.io/v1 Lease) are exported from here
too; they live in ``kapi.informer`` and ``kapi.leaderelection``.
"""

from __future__ import annotations

import asyncio
import base64
import os
import ssl
import tempfile
from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import quote

import httpx
import orjson

if TYPE_CHECKING:
    from kapi.informer import Informer
    from kapi.leaderelection import LeaderElector

__all__ = ["ApiError", "Client", "Informer", "LeaderElector", "PatchType", "object_key", "path_for"]

Obj = dict[str, Any]
PatchType = Literal["merge", "strategic", "json", "apply"]

PATCH_CONTENT_TYPES: Mapping[str, str] = {
    "merge": "application/merge-patch+json",
    "strategic": "application/strategic-merge-patch+json",
    "json": "application/json-patch+json",
    "apply": "application/apply-patch+yaml",
}
JSON = "application/json"
USER_AGENT = "kapi-component/0.1"


class ApiError(Exception):
    """A request the API server answered with an error ``Status`` (or a connection-level failure
    turned into one: code 0, reason ``ConnectionError``).

    ``status`` is the Status dict; ``code`` its HTTP code, ``reason`` its reason
    (``NotFound``, ``AlreadyExists``, ``Conflict``, ``Expired``, ``Gone``, ...), ``message`` its text.
    """

    def __init__(self, status: Mapping[str, Any]) -> None:
        self.status: dict[str, Any] = dict(status)
        self.code: int = int(self.status.get("code") or 0)
        self.reason: str = str(self.status.get("reason") or "")
        self.message: str = str(self.status.get("message") or "")
        super().__init__(f"{self.code} {self.reason}: {self.message}")

    @property
    def not_found(self) -> bool:
        return self.code == 404

    @property
    def conflict(self) -> bool:
        return self.code == 409

    @property
    def gone(self) -> bool:
        """The resourceVersion is too old (410 Expired/Gone): relist."""
        return self.code == 410


def path_for(group: str, version: str, plural: str, namespace: str = "", name: str = "",
             subresource: str = "") -> str:
    """The REST path of a collection or object: ``/api/v1/namespaces/NS/pods/NAME/status`` for the
    core group (``group=""``), ``/apis/GROUP/VERSION/...`` otherwise. ``namespace=""`` gives the
    cluster-scoped or all-namespaces path."""
    parts = ["/api", version] if not group else ["/apis", group, version]
    if namespace:
        parts += ["namespaces", quote(namespace, safe="")]
    parts.append(plural)
    if name:
        parts.append(quote(name, safe=""))
        if subresource:
            parts.append(subresource)
    return "/".join(parts)


def object_key(obj: Mapping[str, Any]) -> str:
    """The store key of an object: ``namespace/name``, or ``name`` for a cluster-scoped object."""
    meta = obj.get("metadata") or {}
    namespace = meta.get("namespace") or ""
    return f"{namespace}/{meta.get('name', '')}" if namespace else str(meta.get("name", ""))


def _status_of(response: httpx.Response) -> Obj:
    try:
        data = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        data = None
    if isinstance(data, dict) and data.get("kind") == "Status":
        data.setdefault("code", response.status_code)
        return data
    text = response.content.decode("utf-8", "replace")[:500]
    return {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": response.status_code,
            "reason": response.reason_phrase.replace(" ", "") or "Unknown", "message": text}


def _connection_error(exc: Exception) -> ApiError:
    return ApiError({"kind": "Status", "status": "Failure", "code": 0, "reason": "ConnectionError",
                     "message": f"{type(exc).__name__}: {exc}"})


def _params(params: Mapping[str, Any]) -> dict[str, str]:
    """Query parameters with Python values made Kubernetes-style (bools lower case, None dropped)."""
    out: dict[str, str] = {}
    for key, value in params.items():
        if value is None or value == "":
            continue
        out[key] = ("true" if value else "false") if isinstance(value, bool) else str(value)
    return out


def ssl_context(ca_pem: bytes | None, cert_pem: bytes | None = None, key_pem: bytes | None = None) -> ssl.SSLContext:
    """A client TLS context trusting ``ca_pem`` (system CAs when None) and presenting the client
    certificate when given. The key is written to a private temporary file only for as long as
    ``load_cert_chain`` needs it (the ssl module reads keys from files only)."""
    ctx = ssl.create_default_context(cadata=ca_pem.decode("ascii") if ca_pem else None)
    if cert_pem and key_pem:
        with tempfile.TemporaryDirectory(prefix="kapi-client-") as tmp:
            cert_path, key_path = os.path.join(tmp, "tls.crt"), os.path.join(tmp, "tls.key")
            for path, data in ((cert_path, cert_pem), (key_path, key_pem)):
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "wb") as fh:
                    fh.write(data)
            ctx.load_cert_chain(cert_path, key_path)
    return ctx


def _kubeconfig_parts(config: Mapping[str, Any]) -> tuple[str, Mapping[str, Any], Mapping[str, Any]]:
    """``(server, cluster entry, user entry)`` of the current context. :raises ValueError:"""
    try:
        context = next(c["context"] for c in config.get("contexts") or [] if c["name"] == config.get("current-context"))
        cluster = next(c["cluster"] for c in config.get("clusters") or [] if c["name"] == context["cluster"])
        user = next(u["user"] for u in config.get("users") or [] if u["name"] == context["user"])
    except (StopIteration, KeyError, TypeError):
        raise ValueError("kubeconfig has no usable current context (cluster and user)") from None
    return str(cluster.get("server") or ""), cluster, user


def _data_or_file(entry: Mapping[str, Any], data_key: str, file_key: str) -> bytes | None:
    if entry.get(data_key):
        return base64.b64decode(str(entry[data_key]))
    if entry.get(file_key):
        with open(str(entry[file_key]), "rb") as fh:
            return fh.read()
    return None


class Client:
    """An async client for one API server and one identity. Use ``async with`` or ``aclose()``.

    :param server: ``https://host:port``.
    :param tls: the TLS context (trusted CA and, for mutual TLS, the client certificate).
    :param token: a bearer token, when the identity is not a client certificate.
    :param http2: multiplex every request and watch over one connection (needs ``h2``).
    :param timeout: seconds for ordinary requests (watches have no read timeout).
    :param max_connections: ordinary requests in flight; more wait for a free connection (client
        back-pressure, like client-go's QPS limit: a burst of thousands of writes must not open
        thousands of TLS connections). Watches and other streams use their own, unbounded pool.
    """

    def __init__(self, server: str, *, tls: ssl.SSLContext | None = None, token: str = "", http2: bool = False,
                 timeout: float = 30.0, max_connections: int = 32) -> None:
        headers = {"user-agent": USER_AGENT, "accept": JSON}
        if token:
            headers["authorization"] = f"Bearer {token}"
        self.server = server.rstrip("/")
        self.timeout = timeout
        verify: ssl.SSLContext | bool = tls if tls is not None else True
        self._http = httpx.AsyncClient(base_url=self.server, verify=verify, http2=http2, headers=headers,
                                       timeout=httpx.Timeout(timeout, pool=None),
                                       limits=httpx.Limits(max_connections=max_connections,
                                                           max_keepalive_connections=max_connections))
        # queue here, not in httpcore's pool (its queue handling is quadratic in the waiting requests)
        self._slots = asyncio.Semaphore(max_connections)
        self._streams = httpx.AsyncClient(base_url=self.server, verify=verify, http2=http2, headers=headers,
                                          timeout=httpx.Timeout(timeout, read=None),
                                          limits=httpx.Limits(max_connections=None, max_keepalive_connections=8))

    @classmethod
    def from_kubeconfig(cls, path: str | os.PathLike[str], *, http2: bool = False, timeout: float = 30.0,
                        max_connections: int = 32) -> Client:
        """A client for the current context of a kubeconfig file: server, CA
        (``certificate-authority-data`` or ``certificate-authority``), and client certificate
        (``client-certificate[-data]`` + ``client-key[-data]``) or ``token``.

        :raises OSError, ValueError: unreadable file or no usable context.
        """
        from kapi_certs import load_kubeconfig

        return cls.from_config(load_kubeconfig(path), http2=http2, timeout=timeout, max_connections=max_connections)

    @classmethod
    def from_config(cls, config: Mapping[str, Any], *, http2: bool = False, timeout: float = 30.0,
                    max_connections: int = 32) -> Client:
        """Like ``from_kubeconfig`` for an already parsed kubeconfig dict."""
        server, cluster, user = _kubeconfig_parts(config)
        if not server:
            raise ValueError("kubeconfig cluster has no server")
        ca = _data_or_file(cluster, "certificate-authority-data", "certificate-authority")
        cert = _data_or_file(user, "client-certificate-data", "client-certificate")
        key = _data_or_file(user, "client-key-data", "client-key")
        tls = ssl_context(ca, cert, key) if server.startswith("https") else None
        return cls(server, tls=tls, token=str(user.get("token") or ""), http2=http2, timeout=timeout,
                   max_connections=max_connections)

    async def aclose(self) -> None:
        """Close every pooled connection (open watches end)."""
        await self._http.aclose()
        await self._streams.aclose()

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- plain requests ------------------------------------------------------------------------

    async def request(self, method: str, path: str, *, params: Mapping[str, Any] | None = None,
                      body: Any = None, content_type: str = JSON) -> Obj:
        """One request; the decoded JSON answer. :raises ApiError: a non-2xx answer or no connection."""
        headers = None
        content = None
        if body is not None:
            content = body if isinstance(body, bytes) else orjson.dumps(body)
            headers = {"content-type": content_type}
        try:
            async with self._slots:
                response = await self._http.request(method, path, params=_params(params or {}), content=content,
                                                    headers=headers)
        except httpx.TransportError as exc:
            raise _connection_error(exc) from exc
        if response.status_code >= 400:
            raise ApiError(_status_of(response))
        if not response.content:
            return {}
        data = orjson.loads(response.content)
        return data if isinstance(data, dict) else {"items": data}

    async def get(self, path: str, **params: Any) -> Obj:
        """GET an object (or any JSON path such as ``/version``)."""
        return await self.request("GET", path, params=params)

    async def list(self, path: str, **params: Any) -> Obj:
        """GET a collection; params are query parameters (``labelSelector``, ``fieldSelector``,
        ``limit``, ``continue``, ``resourceVersion``)."""
        return await self.request("GET", path, params=params)

    async def create(self, path: str, obj: Mapping[str, Any], **params: Any) -> Obj:
        """POST ``obj`` to the collection ``path`` (or a subresource such as ``pods/NAME/binding``)."""
        return await self.request("POST", path, params=params, body=obj)

    async def update(self, path: str, obj: Mapping[str, Any], **params: Any) -> Obj:
        """PUT ``obj`` at ``path``; guarded by ``metadata.resourceVersion`` when it is set (409 on
        conflict)."""
        return await self.request("PUT", path, params=params, body=obj)

    async def patch(self, path: str, patch: Any, type: PatchType = "merge", **params: Any) -> Obj:
        """PATCH with a JSON merge patch (``merge``), a strategic merge patch (``strategic``), a JSON
        patch (``json``, a list of operations) or server-side apply (``apply``, needs
        ``fieldManager=``)."""
        return await self.request("PATCH", path, params=params, body=patch, content_type=PATCH_CONTENT_TYPES[type])

    async def delete(self, path: str, *, options: Mapping[str, Any] | None = None, **params: Any) -> Obj:
        """DELETE ``path``. ``options`` is a DeleteOptions body (``preconditions``,
        ``gracePeriodSeconds``, ``propagationPolicy``); simple ones can be query params too."""
        body = None
        if options is not None:
            body = {"kind": "DeleteOptions", "apiVersion": "v1", **options}
        return await self.request("DELETE", path, params=params, body=body)

    # -- streams -------------------------------------------------------------------------------

    async def stream(self, path: str, **params: Any) -> AsyncIterator[bytes]:
        """GET ``path`` and yield the body in chunks as they arrive (no read timeout).

        :raises ApiError: the answer is an error, or the connection fails before it starts.
        """
        try:
            async with self._streams.stream("GET", path, params=_params(params)) as response:
                if response.status_code >= 400:
                    await response.aread()
                    raise ApiError(_status_of(response))
                async for chunk in response.aiter_bytes():
                    yield chunk
        except httpx.TransportError as exc:
            raise _connection_error(exc) from exc

    async def watch(self, path: str, resource_version: str = "", **params: Any) -> AsyncIterator[Obj]:
        """Watch the collection ``path`` from ``resource_version`` (``""``: from now, after the
        current state as ADDED events); yields event dicts ``{"type", "object"}`` with types
        ADDED, MODIFIED, DELETED and BOOKMARK (bookmarks are requested). The iterator ends when the
        server closes the watch (``timeoutSeconds``).

        :raises ApiError: an error answer, or an ERROR event (410 Expired: relist), or a broken
            connection (code 0).
        """
        query: dict[str, Any] = {"watch": True, "allowWatchBookmarks": True, **params}
        if resource_version:
            query["resourceVersion"] = resource_version
        buffer = b""
        async for chunk in self.stream(path, **query):
            buffer += chunk
            while True:
                line, sep, rest = buffer.partition(b"\n")
                if not sep:
                    break
                buffer = rest
                if not line.strip():
                    continue
                event = orjson.loads(line)
                if event.get("type") == "ERROR":
                    raise ApiError(event.get("object") or {"code": 500, "reason": "InternalError"})
                yield event


def __getattr__(name: str) -> Any:
    """``Informer`` and ``LeaderElector`` are defined in their own modules and re-exported here."""
    if name == "Informer":
        from kapi.informer import Informer

        return Informer
    if name == "LeaderElector":
        from kapi.leaderelection import LeaderElector

        return LeaderElector
    raise AttributeError(f"module 'kapi.client' has no attribute {name!r}")
