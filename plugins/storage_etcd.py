"""etcd v3 storage: kube-apiserver's backend (``--storage-backend=etcd3``, the default when
``--etcd-servers`` is given).

Keys and values map one to one onto etcd keys and values (the API server already puts
``--etcd-prefix`` in front of every key), and the store-wide revision *is* etcd's revision, so a
kapi server and a kube-apiserver can share one etcd. It implements the whole ``kapi.Storage``
contract and passes ``kapi.testing.storage_contract``:

* ``create`` is a transaction ``create_revision(key) == 0 -> put``; ``update`` is
  ``mod_revision(key) == expected -> put`` whose failure branch reads the current value (one round
  trip for ``ConflictError``); ``delete`` returns the last value (``prev_kv``);
* ``list`` is one range read at a revision with ``limit``; the response's ``count`` gives
  ``remaining``; ``start_after`` pages continue from ``start_after + "\\0"``;
* ``watch`` is one etcd watch stream (``prev_kv``) started at the requested revision. It resumes
  after the last delivered revision when a member fails, and raises ``CompactedError`` (HTTP 410)
  when etcd reports the history as compacted. A watch that cannot reconnect for
  ``watch_retry_seconds`` raises ``UnavailableError``;
* ``create(..., ttl=N)`` attaches the key to an etcd lease. Keys that expire in the same time
  bucket share one lease (buckets of 1 s, or 5 % of the TTL up to 60 s for long TTLs such as
  ``--event-ttl``), so a key lives between N and N + bucket + 1 seconds. Updates keep the lease;
* ``compact(rev)`` is etcd's compaction. A background task (started on first use) compacts every
  ``--etcd-compaction-interval`` (default 5m) to the revision seen one interval earlier, with
  kube-apiserver's ``compact_rev_key`` protocol, so several API servers (and kube-apiservers)
  sharing the etcd compact once per interval between them;
* ``healthy()`` is a linearizable read with a short deadline (the ``/healthz`` check).

Connection: ``--etcd-servers`` lists the client URLs; requests are spread over every member
(gRPC round-robin), and a member that fails is skipped until it is back. Reads that fail with
UNAVAILABLE are retried until ``timeout``; writes are not (the write may have happened), they
raise ``UnavailableError`` (HTTP 503), as do deadlines. ``https://`` URLs need ``--etcd-cafile``;
``--etcd-certfile``/``--etcd-keyfile`` add the client certificate (mutual TLS). Several URLs must
name the same scheme; host names are resolved once at start-up, and TLS checks every member's
certificate against the first URL's host unless ``tls_server_name`` says otherwise.

Options (``--plugin-option storage_etcd.KEY=VALUE``):

========================  ==========  ============================================================
``timeout``               10          seconds: deadline of one request (reads: of all retries)
``compaction_interval``   300         seconds between compactions; 0 turns the compactor off (also
                                      ``--etcd-compaction-interval``, a Go duration such as ``5m``)
``watch_retry_seconds``   30          how long a broken watch keeps reconnecting
``tls_server_name``       (1st host)  the name every member's serving certificate must carry
``max_receive_bytes``     2147483647  largest gRPC response accepted (big lists)
========================  ==========  ============================================================

The client library (etcd3aio, which brings gRPC) is imported when the first store is created,
so loading the plugin stays cheap. This module holds the whole backend (requests, watch
streams, leases, the compactor) because they share the connection and its error handling;
it is longer than most plugins for that reason.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import ipaddress
import logging
import math
import socket
import time
import weakref
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlsplit

from kapi import (
    CompactedError,
    Config,
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
    hookimpl,
    parse_duration,
)

ALIASES = ("etcd3", "etcd")

_log = logging.getLogger(__name__)

COMPACT_REV_KEY = b"compact_rev_key"  # kube-apiserver's key: API servers sharing an etcd agree on it
_HEALTH_KEY = b"health"  # the key kube-apiserver's etcd health check reads
_REVISION_KEY = b"\x00"  # a single-key range that answers the current revision cheaply
_HEALTH_TIMEOUT = 2.0
_BACKOFF_FIRST, _BACKOFF_MAX = 0.05, 1.0
_MAX_INT32 = 2**31 - 1
_UTF8, _RAW = "utf-8", "surrogateescape"  # keys: UTF-8 text; foreign non-UTF-8 bytes round-trip


@functools.cache
def _lib() -> SimpleNamespace:
    """gRPC, etcd3aio's connection manager and etcd's protobuf messages, imported on first use."""
    import grpc
    import grpc.aio
    from etcd3aio import _protobuf as pb  # the library's single module of etcd's generated messages
    from etcd3aio.connections import ConnectionManager

    rpc = pb.rpc_pb2
    return SimpleNamespace(
        grpc=grpc, RpcError=grpc.aio.AioRpcError, UsageError=grpc.aio.UsageError, Code=grpc.StatusCode,
        EOF=grpc.aio.EOF, ConnectionManager=ConnectionManager, KVStub=pb.KVStub, WatchStub=pb.WatchStub,
        LeaseStub=pb.LeaseStub, Compare=rpc.Compare, RequestOp=rpc.RequestOp, TxnRequest=rpc.TxnRequest,
        PutRequest=rpc.PutRequest, RangeRequest=rpc.RangeRequest, DeleteRangeRequest=rpc.DeleteRangeRequest,
        CompactionRequest=rpc.CompactionRequest, LeaseGrantRequest=rpc.LeaseGrantRequest,
        WatchRequest=rpc.WatchRequest, WatchCreateRequest=rpc.WatchCreateRequest,
        EQUAL=rpc.Compare.EQUAL, CREATE=rpc.Compare.CREATE, MOD=rpc.Compare.MOD, VERSION=rpc.Compare.VERSION,
        DELETE=pb.kv_pb2.Event.DELETE,
        TRANSIENT=frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED,
                             grpc.StatusCode.CANCELLED}),
    )


# ---------------------------------------------------------------------------------------------
# configuration helpers (pure)




def prefix_end(prefix: bytes) -> bytes:
    """etcd's ``range_end`` for every key starting with ``prefix`` (``b"\\0"``: no upper bound)."""
    stripped = prefix.rstrip(b"\xff")
    return stripped[:-1] + bytes([stripped[-1] + 1]) if stripped else b"\x00"


@dataclass(frozen=True)
class Endpoints:
    """Where and how to connect: the gRPC target, whether TLS is on, the TLS name to verify."""

    target: str
    secure: bool
    server_name: str

    @classmethod
    def parse(cls, urls: Sequence[str]) -> Endpoints:
        """``--etcd-servers`` URLs (``https://host:port``; a bare ``host:port`` means https) -> one
        round-robin gRPC target. Host names are resolved here, once.

        :raises ValueError: no URL, mixed schemes, a URL without a port, or mixed address families.
        """
        if not urls:
            raise ValueError("storage_etcd: --etcd-servers is empty; give at least one etcd client URL")
        schemes, hosts = set(), []
        for url in urls:
            parts = urlsplit(url if "://" in url else f"https://{url}")
            if parts.scheme not in ("http", "https") or not parts.hostname or parts.port is None:
                raise ValueError(f"storage_etcd: bad etcd URL {url!r}; expected https://HOST:PORT")
            schemes.add(parts.scheme)
            hosts.append((parts.hostname, parts.port))
        if len(schemes) > 1:
            raise ValueError("storage_etcd: --etcd-servers mixes http:// and https:// URLs")
        addresses = [(_address(host, port), port) for host, port in hosts]
        families = {ip.version for ip, _ in addresses}
        if len(families) > 1:
            raise ValueError("storage_etcd: --etcd-servers mixes IPv4 and IPv6 members; use one family")
        if families == {6}:
            target = "ipv6:" + ",".join(f"[{ip}]:{port}" for ip, port in addresses)
        else:
            target = "ipv4:" + ",".join(f"{ip}:{port}" for ip, port in addresses)
        return cls(target, schemes == {"https"}, hosts[0][0])


def _address(host: str, port: int) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    if host == "localhost":
        return ipaddress.IPv4Address("127.0.0.1")
    with contextlib.suppress(ValueError):
        return ipaddress.ip_address(host)
    try:
        info = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as err:
        raise ValueError(f"storage_etcd: cannot resolve etcd host {host!r}: {err}") from err
    infos = sorted(info, key=lambda i: i[0] != socket.AF_INET)  # prefer IPv4
    return ipaddress.ip_address(infos[0][4][0])


def _read(path: str, what: str) -> bytes | None:
    if not path:
        return None
    try:
        return Path(path).read_bytes()
    except OSError as err:
        raise ValueError(f"storage_etcd: cannot read {what} {path!r}: {err}") from err


# ---------------------------------------------------------------------------------------------
# leases


def lease_step(ttl: int) -> int:
    """Seconds of one expiry bucket for ``ttl``: 1 s, or 5 % of the TTL for long ones, at most 60 s."""
    return min(60, max(1, ttl // 20))


class _Leases:
    """One etcd lease per expiry bucket, shared by every key created for that bucket.

    A key asked to live ``ttl`` seconds from ``now`` falls in the bucket ending at
    ``ceil((now + ttl) / step) * step``; the bucket's lease is granted (once, even for concurrent
    callers) to live until the bucket's end, so it outlives every key attached to it by at most
    one step.
    """

    def __init__(self, grant: Callable[[int], Awaitable[int]]) -> None:
        self._grant = grant
        self._buckets: dict[int, asyncio.Future[int]] = {}

    async def lease_for(self, ttl: int) -> int:
        """The lease ID for a key that must live ``ttl`` seconds from now."""
        ttl = max(1, ttl)
        step = lease_step(ttl)
        now = time.monotonic()
        end = math.ceil((now + ttl) / step) * step
        future = self._buckets.get(end)
        if future is None:
            if len(self._buckets) > 64:
                self._prune(now)
            future = asyncio.ensure_future(self._grant(math.ceil(end - now)))
            self._buckets[end] = future
        try:
            return await asyncio.shield(future)
        except Exception:
            if self._buckets.get(end) is future and future.done():
                del self._buckets[end]
            raise

    def forget(self, lease: int) -> None:
        """Stop handing out ``lease`` (etcd no longer knows it)."""
        for end, future in list(self._buckets.items()):
            if future.done() and not future.cancelled() and future.exception() is None and future.result() == lease:
                del self._buckets[end]

    def _prune(self, now: float) -> None:
        for end in [end for end in self._buckets if end < now]:
            del self._buckets[end]

    def close(self) -> None:
        for future in self._buckets.values():
            future.cancel()
        self._buckets.clear()


class _NotFound(StorageError):
    """etcd answered NOT_FOUND (a lease that expired or was revoked)."""


class _RevisionError(StorageError):
    """etcd answered OUT_OF_RANGE: the revision is compacted (``compacted``) or in the future."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.compacted = "compacted" in message


# ---------------------------------------------------------------------------------------------
# the store


class EtcdStorage:
    """A ``kapi.Storage`` on an etcd v3 cluster. See the module docstring."""

    def __init__(self, endpoints: Sequence[str], *, ca_file: str = "", cert_file: str = "", key_file: str = "",
                 tls_server_name: str = "", timeout: float = 10.0, compaction_interval: float = 300.0,
                 watch_retry_seconds: float = 30.0, max_receive_bytes: int = _MAX_INT32) -> None:
        if timeout <= 0 or watch_retry_seconds < 0 or compaction_interval < 0 or max_receive_bytes < 1:
            raise ValueError("storage_etcd: timeout must be positive; intervals and sizes not negative")
        self.endpoints = Endpoints.parse(endpoints)
        ca, cert, key = _read(ca_file, "--etcd-cafile"), _read(cert_file, "--etcd-certfile"), \
            _read(key_file, "--etcd-keyfile")
        if bool(cert) != bool(key):
            raise ValueError("storage_etcd: --etcd-certfile and --etcd-keyfile go together")
        if self.endpoints.secure and ca is None:
            raise ValueError("storage_etcd: https:// etcd URLs need --etcd-cafile (the CA of etcd's serving "
                             "certificate)")
        if not self.endpoints.secure and (cert or ca):
            raise ValueError("storage_etcd: TLS files were given but --etcd-servers uses http://")
        self._tls = (ca, key, cert, tls_server_name or self.endpoints.server_name)
        self._timeout = timeout
        self._compaction_interval = compaction_interval
        self._watch_retry = watch_retry_seconds
        self._max_receive = max_receive_bytes
        self._lib = _lib()
        self._channel: Any = None
        self._kv: Any = None
        self._watch_stub: Any = None
        self._lease_stub: Any = None
        self._leases = _Leases(self._grant)
        self._watches: weakref.WeakSet[_EtcdWatch] = weakref.WeakSet()
        self._compactor: asyncio.Task[None] | None = None
        self._compacted = 0  # the highest compaction point this store has seen
        self._closed = False

    @classmethod
    def from_config(cls, config: Config) -> EtcdStorage:
        """The store for ``config.etcd_servers`` and the TLS files, with the ``storage_etcd`` options."""
        options: Mapping[str, Any] = config.options_for("storage_etcd")
        floats = ("timeout", "compaction_interval", "watch_retry_seconds")
        kwargs: dict[str, Any] = {name: float(options[name]) for name in floats if name in options}
        if "max_receive_bytes" in options:
            kwargs["max_receive_bytes"] = int(options["max_receive_bytes"])
        if "tls_server_name" in options:
            kwargs["tls_server_name"] = str(options["tls_server_name"])
        unknown = set(options) - set(kwargs)
        if unknown:
            raise ValueError(f"storage_etcd: unknown option(s) {', '.join(sorted(unknown))}")
        return cls(config.etcd_servers, ca_file=config.etcd_cafile, cert_file=config.etcd_certfile,
                   key_file=config.etcd_keyfile, **kwargs)

    @property
    def closed(self) -> bool:
        """Whether ``close()`` was called."""
        return self._closed

    # ------------------------------------------------------------------ the Storage contract

    async def create(self, key: str, value: bytes, *, ttl: int | None = None) -> KeyValue:
        """Store ``value`` if ``key`` is absent (else ``KeyExistsError``); expire it after ``ttl`` s."""
        if ttl is None:
            response = await self._create(key, value, 0)
        else:
            lease = await self._leases.lease_for(ttl)
            try:
                response = await self._create(key, value, lease)
            except _NotFound:  # the lease is gone (revoked by someone else): take a new one
                self._leases.forget(lease)
                response = await self._create(key, value, await self._leases.lease_for(ttl))
        if not response.succeeded:
            raise KeyExistsError(key)
        revision = response.header.revision
        return KeyValue(key, value, revision, revision)

    async def get(self, key: str) -> KeyValue:
        """The current value of ``key``, or ``KeyNotFoundError``."""
        kv, lib = self._use(), self._lib
        response = await self._unary(kv.Range, lib.RangeRequest(key=key.encode(_UTF8, _RAW)), "get", read=True)
        if not response.kvs:
            raise KeyNotFoundError(key)
        item = response.kvs[0]
        return KeyValue(key, item.value, item.mod_revision, item.create_revision)

    async def list(self, prefix: str, *, revision: int = 0, limit: int = 0, start_after: str = "") -> ListResult:
        """Keys under ``prefix`` after ``start_after`` at ``revision`` (0 or a future one = latest),
        at most ``limit``; ``remaining`` is always known."""
        kv, lib = self._use(), self._lib
        p = prefix.encode(_UTF8, _RAW)
        start = (start_after + "\x00").encode(_UTF8, _RAW) if start_after >= prefix else p or b"\x00"
        request = lib.RangeRequest(key=start, range_end=prefix_end(p), revision=max(revision, 0),
                                   limit=max(limit, 0))
        try:
            response = await self._unary(kv.Range, request, "list", read=True)
        except _RevisionError as err:
            if err.compacted:
                raise CompactedError(revision, await self._compaction_point(revision)) from None
            request.revision = 0  # a future revision: read the latest, as the other stores do
            response = await self._unary(kv.Range, request, "list", read=True)
        items = [KeyValue(item.key.decode(_UTF8, _RAW), item.value, item.mod_revision, item.create_revision)
                 for item in response.kvs]
        at = response.header.revision if request.revision == 0 else request.revision
        remaining = response.count - len(items) if response.more else 0
        return ListResult(items, at, response.more, remaining)

    async def update(self, key: str, value: bytes, *, expected_revision: int) -> KeyValue:
        """Replace ``key``'s value if its revision is ``expected_revision`` (else ``ConflictError``
        with the current value, or ``KeyNotFoundError``). The key keeps its lease."""
        kv, lib = self._use(), self._lib
        if expected_revision <= 0:  # mod_revision == 0 would match a missing key
            raise ConflictError(key, await self.get(key))
        k = key.encode(_UTF8, _RAW)
        request = lib.TxnRequest(
            compare=[lib.Compare(result=lib.EQUAL, target=lib.MOD, key=k, mod_revision=expected_revision)],
            success=[lib.RequestOp(request_put=lib.PutRequest(key=k, value=value, prev_kv=True, ignore_lease=True))],
            failure=[lib.RequestOp(request_range=lib.RangeRequest(key=k))])
        response = await self._unary(kv.Txn, request, "update")
        if not response.succeeded:
            raise self._mismatch(key, response)
        prev = response.responses[0].response_put.prev_kv
        return KeyValue(key, value, response.header.revision, prev.create_revision)

    async def delete(self, key: str, *, expected_revision: int = 0) -> KeyValue:
        """Delete ``key`` (guarded when ``expected_revision`` is non-zero); returns its last value
        with the deletion's revision."""
        kv, lib = self._use(), self._lib
        k = key.encode(_UTF8, _RAW)
        if not expected_revision:
            response = await self._unary(kv.DeleteRange, lib.DeleteRangeRequest(key=k, prev_kv=True), "delete")
            if not response.prev_kvs:
                raise KeyNotFoundError(key)
            prev = response.prev_kvs[0]
        else:
            request = lib.TxnRequest(
                compare=[lib.Compare(result=lib.EQUAL, target=lib.MOD, key=k, mod_revision=expected_revision)],
                success=[lib.RequestOp(request_delete_range=lib.DeleteRangeRequest(key=k, prev_kv=True))],
                failure=[lib.RequestOp(request_range=lib.RangeRequest(key=k))])
            response = await self._unary(kv.Txn, request, "delete")
            if not response.succeeded:
                raise self._mismatch(key, response)
            prev = response.responses[0].response_delete_range.prev_kvs[0]
        return KeyValue(key, prev.value, response.header.revision, prev.create_revision)

    def watch(self, prefix: str, *, revision: int) -> _EtcdWatch:
        """Every change under ``prefix`` after ``revision``; close the iterator with ``aclose()``."""
        if self._closed:
            raise UnavailableError("storage_etcd: the store is closed")
        watch = _EtcdWatch(self, prefix.encode(_UTF8, _RAW), revision)
        self._watches.add(watch)
        return watch

    async def current_revision(self) -> int:
        """etcd's current revision (one cheap linearizable read)."""
        kv, lib = self._use(), self._lib
        response = await self._unary(kv.Range, lib.RangeRequest(key=_REVISION_KEY, count_only=True),
                                     "current_revision", read=True)
        return int(response.header.revision)

    async def compact(self, revision: int) -> None:
        """Compact etcd's history before ``revision`` (capped at the current revision; compacting
        to an already compacted revision is a no-op)."""
        kv, lib = self._use(), self._lib
        try:
            await self._unary(kv.Compact, lib.CompactionRequest(revision=revision), "compact")
        except _RevisionError as err:
            if not err.compacted:  # a future revision
                await self.compact(await self.current_revision())
            return
        self._compacted = max(self._compacted, revision)

    async def healthy(self) -> bool:
        """Whether etcd answers a linearizable read within 2 seconds (the health check)."""
        if self._closed:
            return False
        kv, lib = self._use(), self._lib
        try:
            await kv.Range(lib.RangeRequest(key=_HEALTH_KEY, count_only=True), timeout=_HEALTH_TIMEOUT)
        except (lib.RpcError, lib.UsageError):
            return False
        return True

    async def close(self) -> None:
        """Stop the compactor, end every watch and close the connection."""
        if self._closed:
            return
        self._closed = True
        if self._compactor is not None:
            self._compactor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._compactor
        for watch in list(self._watches):
            watch.close()
        self._leases.close()
        channel, self._channel, self._kv = self._channel, None, None
        if channel is not None:
            await channel.close()

    # ------------------------------------------------------------------ internals

    def _use(self) -> Any:
        """The KV stub; connects (and starts the compactor) on first use; refuses after close."""
        if self._kv is None:
            if self._closed:
                raise UnavailableError("storage_etcd: the store is closed")
            self._connect()
        return self._kv

    def _connect(self) -> None:
        lib = self._lib
        manager = lib.ConnectionManager([self.endpoints.target])
        manager.target = self.endpoints.target  # ours handles IPv6 and resolved host names
        manager.grpc_options.append(("grpc.max_receive_message_length", self._max_receive))
        ca, key, cert, name = self._tls
        if self.endpoints.secure:
            self._channel = manager.get_channel(ca_cert=ca, cert_key=key, cert_chain=cert, tls_server_name=name)
        else:
            self._channel = manager.get_channel()
        self._kv = lib.KVStub(self._channel)
        self._watch_stub = lib.WatchStub(self._channel)
        self._lease_stub = lib.LeaseStub(self._channel)
        if self._compaction_interval > 0:
            self._compactor = asyncio.get_running_loop().create_task(self._compact_periodically(),
                                                                     name="kapi-etcd-compactor")

    async def _unary(self, method: Any, request: Any, op: str, *, read: bool = False) -> Any:
        """One request with the store's deadline; reads are retried on UNAVAILABLE until then.
        Raises ``UnavailableError``, ``_NotFound`` (a missing lease),
        ``_RevisionError`` (OUT_OF_RANGE) or ``StorageError``."""
        lib = self._lib
        deadline = time.monotonic() + self._timeout
        backoff = _BACKOFF_FIRST
        while True:
            try:
                return await method(request, timeout=max(deadline - time.monotonic(), 0.001))
            except lib.RpcError as err:
                code = err.code()
                if read and code is lib.Code.UNAVAILABLE and not self._closed \
                        and time.monotonic() + backoff < deadline:
                    await asyncio.sleep(backoff)
                    backoff = min(2 * backoff, _BACKOFF_MAX)
                    continue
                raise self._error(err, op) from None
            except lib.UsageError:
                raise UnavailableError(f"storage_etcd: {op}: the store is closed") from None

    def _error(self, err: Any, op: str) -> StorageError:
        """An etcd/gRPC error as a kapi storage error."""
        code, details = err.code(), err.details() or ""
        lib = self._lib
        if code in lib.TRANSIENT:
            reason = "the store is closed" if self._closed else f"{code.name}: {details}"
            return UnavailableError(f"storage_etcd: {op}: {reason}")
        if code is lib.Code.OUT_OF_RANGE:
            return _RevisionError(details)
        if code is lib.Code.NOT_FOUND:
            return _NotFound(f"storage_etcd: {op}: {details}")
        return StorageError(f"storage_etcd: {op}: {code.name}: {details}")

    @staticmethod
    def _mismatch(key: str, response: Any) -> StorageError:
        """The error of a guarded write whose compare failed (the failure branch read the key)."""
        kvs = response.responses[0].response_range.kvs
        if not kvs:
            return KeyNotFoundError(key)
        item = kvs[0]
        return ConflictError(key, KeyValue(key, item.value, item.mod_revision, item.create_revision))

    async def _create(self, key: str, value: bytes, lease: int) -> Any:
        kv, lib = self._use(), self._lib
        k = key.encode(_UTF8, _RAW)
        request = lib.TxnRequest(
            compare=[lib.Compare(result=lib.EQUAL, target=lib.CREATE, key=k, create_revision=0)],
            success=[lib.RequestOp(request_put=lib.PutRequest(key=k, value=value, lease=lease))])
        return await self._unary(kv.Txn, request, "create")

    async def _grant(self, ttl: int) -> int:
        self._use()
        response = await self._unary(self._lease_stub.LeaseGrant, self._lib.LeaseGrantRequest(TTL=ttl), "lease")
        return int(response.ID)

    async def _compaction_point(self, requested: int) -> int:
        """etcd's compacted revision (learnt from a watch below it), or the best lower bound known."""
        watch = self._watch_stub.Watch(timeout=_HEALTH_TIMEOUT)
        try:
            await watch.write(self._lib.WatchRequest(create_request=self._lib.WatchCreateRequest(
                key=_REVISION_KEY, start_revision=1)))
            while True:
                response = await watch.read()
                if response is self._lib.EOF:
                    break
                if response.compact_revision:
                    self._compacted = max(self._compacted, int(response.compact_revision))
                    break
        except (self._lib.RpcError, self._lib.UsageError):
            pass
        finally:
            watch.cancel()
        return max(self._compacted, requested + 1)

    async def _compact_periodically(self) -> None:
        """kube-apiserver's compactor: every interval, the API server that bumps ``compact_rev_key``
        from the version it last saw compacts to the revision it saw one interval earlier."""
        version, revision = 0, 0
        while True:
            await asyncio.sleep(self._compaction_interval)
            try:
                version, revision = await self._compact_step(version, revision)
            except StorageError as err:
                _log.warning("storage_etcd: periodic compaction failed: %s", err)
            except Exception:
                _log.exception("storage_etcd: periodic compaction failed")

    async def _compact_step(self, version: int, revision: int) -> tuple[int, int]:
        lib = self._lib
        request = lib.TxnRequest(
            compare=[lib.Compare(result=lib.EQUAL, target=lib.VERSION, key=COMPACT_REV_KEY, version=version)],
            success=[lib.RequestOp(request_put=lib.PutRequest(key=COMPACT_REV_KEY, value=str(revision).encode()))],
            failure=[lib.RequestOp(request_range=lib.RangeRequest(key=COMPACT_REV_KEY))])
        response = await self._unary(self._use().Txn, request, "compact")
        current = int(response.header.revision)
        if not response.succeeded:
            return int(response.responses[0].response_range.kvs[0].version), current
        if revision:
            await self.compact(revision)
            _log.info("storage_etcd: compacted history before revision %d", revision)
        return version + 1, current


def _events_of(response: Any, after: int, delete: int) -> list[StorageEvent]:
    """The events of an etcd watch response with a revision above ``after``, as kapi events
    (``delete``: etcd's DELETE event type)."""
    events = []
    for event in response.events:
        kv = event.kv
        revision = kv.mod_revision
        if revision <= after:
            continue
        key = kv.key.decode(_UTF8, _RAW)
        has_prev = event.HasField("prev_kv")
        prev = event.prev_kv
        before = KeyValue(key, prev.value, prev.mod_revision, prev.create_revision) if has_prev else None
        if event.type == delete:
            gone = KeyValue(key, prev.value, revision, prev.create_revision) if has_prev \
                else KeyValue(key, b"", revision, 0)
            events.append(StorageEvent(EventType.DELETED, gone, before))
        elif kv.version == 1:
            events.append(StorageEvent(EventType.ADDED, KeyValue(key, kv.value, revision, kv.create_revision)))
        else:
            events.append(StorageEvent(EventType.MODIFIED, KeyValue(key, kv.value, revision, kv.create_revision),
                                       before))
    return events


class _EtcdWatch:
    """One watch: an async iterator of events read from one etcd watch stream.

    The stream starts at ``position`` (not ``position + 1``) so that etcd refuses a position below
    its compaction point, exactly the contract's rule; events at or below ``position`` are dropped.
    ``position`` then follows the queued events (only: etcd 3.4's progress notifications are not
    trusted to resume from); a broken stream is reopened from there.
    """

    __slots__ = ("__weakref__", "_call", "_closed", "_end", "_failing_since", "_failures", "_pending", "_prefix",
                 "_store", "position")

    def __init__(self, store: EtcdStorage, prefix: bytes, revision: int) -> None:
        self._store = store
        self._prefix = prefix or b"\x00"
        self._end = prefix_end(prefix)
        self.position = revision
        self._pending: deque[StorageEvent] = deque()
        self._call: Any = None
        self._failing_since: float | None = None
        self._failures = 0
        self._closed = False

    def __aiter__(self) -> _EtcdWatch:
        return self

    async def __anext__(self) -> StorageEvent:
        store, lib = self._store, self._store._lib
        while True:
            if self._pending:
                return self._pending.popleft()
            if self._closed:
                raise StopAsyncIteration
            if store.closed:
                self.close()
                continue
            try:
                if self._call is None:
                    await self._open()
                response = await self._call.read()
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if self._closed and (task is None or not task.cancelling()):
                    continue  # closed under us: end the iteration
                raise
            except lib.RpcError as err:
                if not (self._closed or store.closed):
                    await self._broken(err)
                continue
            except lib.UsageError:  # the channel is closed: so is the store
                self.close()
                continue
            if response is lib.EOF:
                if not self._closed:
                    await self._broken(None)
                continue
            self._receive(response)

    async def _open(self) -> None:
        lib = self._store._lib
        self._store._use()
        call = self._store._watch_stub.Watch()
        self._call = call
        await call.write(lib.WatchRequest(create_request=lib.WatchCreateRequest(
            key=self._prefix, range_end=self._end, start_revision=max(self.position, 1), prev_kv=True)))

    def _receive(self, response: Any) -> None:
        if response.compact_revision:
            self._store._compacted = max(self._store._compacted, int(response.compact_revision))
            self.close()
            raise CompactedError(self.position, int(response.compact_revision))
        if response.canceled:
            self.close()
            raise StorageError(f"storage_etcd: etcd cancelled the watch: {response.cancel_reason}")
        self._failing_since, self._failures = None, 0
        if response.created or not response.events:
            return
        self._pending.extend(_events_of(response, self.position, self._store._lib.DELETE))
        self.position = max(self.position, int(response.events[-1].kv.mod_revision))

    async def _broken(self, err: Any) -> None:
        """Drop the broken stream and wait before reopening it; give up (and close) after
        ``watch_retry_seconds`` of failures or on an error that retrying cannot fix."""
        store = self._store
        self._drop_call()
        now = time.monotonic()
        if self._failing_since is None:
            self._failing_since = now
        if err is not None and err.code() not in store._lib.TRANSIENT:
            self.close()
            raise store._error(err, "watch")
        if now - self._failing_since > store._watch_retry:
            self.close()
            reason = f"{err.code().name}: {err.details()}" if err is not None else "stream ended"
            raise UnavailableError(f"storage_etcd: watch: cannot reach etcd for {store._watch_retry:g}s ({reason})")
        _log.debug("storage_etcd: watch stream broken (%s); reopening after revision %d", err, self.position)
        await asyncio.sleep(min(_BACKOFF_MAX, _BACKOFF_FIRST * 2 ** self._failures))
        self._failures = min(self._failures + 1, 10)

    def _drop_call(self) -> None:
        call, self._call = self._call, None
        if call is not None:
            call.cancel()

    def close(self) -> None:
        """Stop the watch: pending and future iterations end."""
        if self._closed:
            return
        self._closed = True
        self._pending.clear()
        self._drop_call()
        self._store._watches.discard(self)

    async def aclose(self) -> None:
        """Stop the watch (the async-iterator way)."""
        self.close()


# ---------------------------------------------------------------------------------------------
# hooks


@hookimpl
def kapi_storage(config: Config, backend: str) -> Storage | None:
    """Answer for ``etcd3`` (and ``etcd``): a store on ``config.etcd_servers``."""
    if backend not in ALIASES:
        return None
    return EtcdStorage.from_config(config)


@hookimpl
def kapi_add_options(parser: argparse.ArgumentParser) -> None:
    """``--etcd-compaction-interval`` (kube-apiserver's flag)."""
    parser.add_argument("--etcd-compaction-interval", default=None, metavar="DURATION",
                        help="how often the etcd store compacts its history (Go duration, default 5m; 0 = never)")


@hookimpl
def kapi_read_options(args: argparse.Namespace) -> dict[str, Any] | None:
    """``{"compaction_interval": seconds}`` when ``--etcd-compaction-interval`` was given."""
    value = getattr(args, "etcd_compaction_interval", None)
    if value is None:
        return None
    try:
        seconds = parse_duration(value)
    except ValueError as err:
        raise ValueError(f"--etcd-compaction-interval: {err}") from None
    if seconds < 0:
        raise ValueError("--etcd-compaction-interval: must not be negative")
    return {"compaction_interval": seconds}
