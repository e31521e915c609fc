"""``InstrumentedStorage``: any ``kapi.Storage`` with each call timed into
``etcd_request_duration_seconds{operation,type}`` (kube-apiserver's name, whatever the backend).

``type`` is the first key segment under the storage root (``/registry/pods/ns/x`` -> ``pods``).
Watches are not timed (they are long-lived). Attributes the wrapper does not define are the
wrapped store's, so optional store abilities keep working.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

from kapi.observability.prom import Histogram
from kapi.storage import KeyValue, ListResult, Storage, StorageEvent


class InstrumentedStorage:
    """Wraps ``inner``; see the module docstring."""

    def __init__(self, inner: Storage, histogram: Histogram, root: str) -> None:
        self.inner = inner
        self.histogram = histogram
        self.root = root.rstrip("/") + "/"

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def _type(self, key: str) -> str:
        rest = key[len(self.root):] if key.startswith(self.root) else key.lstrip("/")
        return rest.split("/", 1)[0]

    def _done(self, operation: str, key: str, started: float) -> None:
        self.histogram.observe((operation, self._type(key)), time.perf_counter() - started)

    async def create(self, key: str, value: bytes, *, ttl: int | None = None) -> KeyValue:
        started = time.perf_counter()
        try:
            return await self.inner.create(key, value, ttl=ttl)
        finally:
            self._done("create", key, started)

    async def get(self, key: str) -> KeyValue:
        started = time.perf_counter()
        try:
            return await self.inner.get(key)
        finally:
            self._done("get", key, started)

    async def list(self, prefix: str, *, revision: int = 0, limit: int = 0, start_after: str = "") -> ListResult:
        started = time.perf_counter()
        try:
            return await self.inner.list(prefix, revision=revision, limit=limit, start_after=start_after)
        finally:
            self._done("list", prefix, started)

    async def update(self, key: str, value: bytes, *, expected_revision: int) -> KeyValue:
        started = time.perf_counter()
        try:
            return await self.inner.update(key, value, expected_revision=expected_revision)
        finally:
            self._done("update", key, started)

    async def delete(self, key: str, *, expected_revision: int = 0) -> KeyValue:
        started = time.perf_counter()
        try:
            return await self.inner.delete(key, expected_revision=expected_revision)
        finally:
            self._done("delete", key, started)

    def watch(self, prefix: str, *, revision: int) -> AsyncIterator[StorageEvent]:
        return self.inner.watch(prefix, revision=revision)

    async def current_revision(self) -> int:
        started = time.perf_counter()
        try:
            return await self.inner.current_revision()
        finally:
            self.histogram.observe(("current_revision", ""), time.perf_counter() - started)

    async def compact(self, revision: int) -> None:
        started = time.perf_counter()
        try:
            await self.inner.compact(revision)
        finally:
            self.histogram.observe(("compact", ""), time.perf_counter() - started)

    async def close(self) -> None:
        await self.inner.close()


def instrument(store: Storage, histogram: Histogram, root: str) -> Storage:
    """``store`` wrapped (a store already wrapped is returned as it is)."""
    if isinstance(store, InstrumentedStorage):
        return store
    return InstrumentedStorage(store, histogram, root)
