"""The storage contract as a reusable pytest suite: every ``kapi.Storage`` must pass it.

kapi runs it against its memory, SQLite and etcd stores; a third-party store runs it from its own
tests by subclassing ``StorageContract`` in a module pytest collects (a class named ``Test...``)
and saying how to build a store::

    # tests/test_my_store.py
    from kapi.testing.storage_contract import StorageContract
    from my_package import MyStore

    class TestMyStore(StorageContract):
        supports_ttl = False                  # if the store ignores create(..., ttl=)

        async def make_storage(self, tmp_path):
            return MyStore(tmp_path / "data")  # a new store object; the suite closes it

        async def reopen_storage(self, store, tmp_path):
            await store.close()                # optional: enables the durability tests
            return MyStore(tmp_path / "data")

Needs pytest with pytest-asyncio (the tests and the fixture are marked, so strict mode works too).
Every test writes only under its own random key prefix and asserts revisions relative to what it
saw, so stores whose data outlives the store object (clients of one etcd server) work too, as long
as nothing else writes during a test. Tests that compact move the server's compaction point;
``compact_allowed = False`` skips them. Every wait is bounded (``event_timeout`` seconds), so a
broken store fails instead of hanging.

A watch iterator is closed with ``aclose()`` (async generators and kapi's watch objects have it).
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import ClassVar

import pytest
import pytest_asyncio

from kapi.storage import (
    CompactedError,
    ConflictError,
    EventType,
    KeyExistsError,
    KeyNotFoundError,
    KeyValue,
    Storage,
    StorageEvent,
)

__all__ = ["StorageContract", "next_event", "no_event"]


async def next_event(watch: AsyncIterator[StorageEvent], timeout: float = 5.0) -> StorageEvent:
    """The watch's next event, failing the test if none arrives within ``timeout`` seconds."""
    try:
        return await asyncio.wait_for(anext(watch), timeout)
    except TimeoutError:
        pytest.fail(f"no watch event within {timeout} s")


async def no_event(watch: AsyncIterator[StorageEvent], wait: float = 0.3) -> None:
    """Assert that the watch yields nothing for ``wait`` seconds."""
    try:
        event = await asyncio.wait_for(anext(watch), wait)
    except TimeoutError:
        return
    pytest.fail(f"unexpected watch event {event}")


async def _close(watch: AsyncIterator[StorageEvent]) -> None:
    aclose = getattr(watch, "aclose", None)
    if aclose is not None:
        await aclose()


@pytest.mark.asyncio
class StorageContract:
    """The contract tests. Subclass it as ``Test<Store>`` and implement ``make_storage``."""

    #: The store deletes keys created with ``ttl`` (set False if it ignores ``ttl``).
    supports_ttl: ClassVar[bool] = True
    #: Seconds a TTL expiry may take beyond the TTL itself.
    ttl_slack: ClassVar[float] = 5.0
    #: The tests may call ``compact`` (False for a store shared with other users).
    compact_allowed: ClassVar[bool] = True
    #: Seconds to wait for one watch event.
    event_timeout: ClassVar[float] = 5.0

    async def make_storage(self, tmp_path: Path) -> Storage:
        """A store for one test (``tmp_path`` is the test's private directory)."""
        raise NotImplementedError("subclasses of StorageContract implement make_storage()")

    async def reopen_storage(self, store: Storage, tmp_path: Path) -> Storage | None:
        """Close ``store`` and open it again on the same data; None (the default) skips the
        durability tests."""
        return None

    # ------------------------------------------------------------------ fixtures and helpers

    @pytest_asyncio.fixture
    async def store(self, tmp_path: Path) -> AsyncIterator[Storage]:
        store = await self.make_storage(tmp_path)
        try:
            yield store
        finally:
            await store.close()

    @pytest.fixture
    def prefix(self) -> str:
        """A key prefix no other test uses."""
        return f"/contract/{uuid.uuid4().hex}/"

    async def _next(self, watch: AsyncIterator[StorageEvent]) -> StorageEvent:
        return await next_event(watch, self.event_timeout)

    # ------------------------------------------------------------------ create / get

    async def test_create_then_get(self, store: Storage, prefix: str) -> None:
        before = await store.current_revision()
        kv = await store.create(prefix + "a", b'{"x":1}')
        assert kv == KeyValue(prefix + "a", b'{"x":1}', kv.revision, kv.revision)
        assert kv.revision > before
        assert await store.get(prefix + "a") == kv

    async def test_create_existing_key_fails_and_keeps_value(self, store: Storage, prefix: str) -> None:
        kv = await store.create(prefix + "a", b"1")
        with pytest.raises(KeyExistsError) as info:
            await store.create(prefix + "a", b"2")
        assert info.value.key == prefix + "a"
        assert await store.get(prefix + "a") == kv
        assert await store.current_revision() == kv.revision

    async def test_get_missing_key(self, store: Storage, prefix: str) -> None:
        with pytest.raises(KeyNotFoundError) as info:
            await store.get(prefix + "missing")
        assert info.value.key == prefix + "missing"

    async def test_values_are_opaque_bytes(self, store: Storage, prefix: str) -> None:
        value = bytes(range(256)) * 64
        kv = await store.create(prefix + "bin", value)
        assert (await store.get(prefix + "bin")).value == value
        await store.update(kv.key, b"", expected_revision=kv.revision)
        assert (await store.get(prefix + "bin")).value == b""

    # ------------------------------------------------------------------ update / delete

    async def test_update_at_current_revision(self, store: Storage, prefix: str) -> None:
        created = await store.create(prefix + "a", b"1")
        updated = await store.update(prefix + "a", b"2", expected_revision=created.revision)
        assert updated.value == b"2"
        assert updated.revision > created.revision
        assert updated.create_revision == created.revision
        assert await store.get(prefix + "a") == updated

    async def test_update_with_stale_revision_conflicts(self, store: Storage, prefix: str) -> None:
        created = await store.create(prefix + "a", b"1")
        updated = await store.update(prefix + "a", b"2", expected_revision=created.revision)
        revision = await store.current_revision()
        with pytest.raises(ConflictError) as info:
            await store.update(prefix + "a", b"3", expected_revision=created.revision)
        assert info.value.key == prefix + "a"
        assert info.value.current == updated
        assert await store.get(prefix + "a") == updated
        assert await store.current_revision() == revision

    async def test_update_missing_key(self, store: Storage, prefix: str) -> None:
        with pytest.raises(KeyNotFoundError):
            await store.update(prefix + "missing", b"1", expected_revision=1)

    async def test_delete_missing_key(self, store: Storage, prefix: str) -> None:
        with pytest.raises(KeyNotFoundError):
            await store.delete(prefix + "missing")
        with pytest.raises(KeyNotFoundError):
            await store.delete(prefix + "missing", expected_revision=1)

    async def test_unguarded_delete_returns_last_value(self, store: Storage, prefix: str) -> None:
        created = await store.create(prefix + "a", b"1")
        updated = await store.update(prefix + "a", b"2", expected_revision=created.revision)
        deleted = await store.delete(prefix + "a")
        assert deleted.key == prefix + "a"
        assert deleted.value == b"2"
        assert deleted.revision > updated.revision
        assert deleted.create_revision == created.revision
        assert await store.current_revision() == deleted.revision
        with pytest.raises(KeyNotFoundError):
            await store.get(prefix + "a")

    async def test_guarded_delete(self, store: Storage, prefix: str) -> None:
        created = await store.create(prefix + "a", b"1")
        updated = await store.update(prefix + "a", b"2", expected_revision=created.revision)
        with pytest.raises(ConflictError) as info:
            await store.delete(prefix + "a", expected_revision=created.revision)
        assert info.value.current == updated
        deleted = await store.delete(prefix + "a", expected_revision=updated.revision)
        assert (deleted.value, deleted.create_revision) == (b"2", created.revision)
        assert deleted.revision > updated.revision

    async def test_recreate_after_delete_starts_a_new_key(self, store: Storage, prefix: str) -> None:
        first = await store.create(prefix + "a", b"1")
        await store.delete(prefix + "a")
        second = await store.create(prefix + "a", b"2")
        assert second.create_revision == second.revision > first.revision
        with pytest.raises(ConflictError):
            await store.update(prefix + "a", b"3", expected_revision=first.revision)

    # ------------------------------------------------------------------ revisions

    async def test_revisions_increase_store_wide(self, store: Storage, prefix: str) -> None:
        seen = [await store.current_revision()]
        a = await store.create(prefix + "a", b"1")
        seen.append(a.revision)
        seen.append((await store.create(prefix + "b", b"1")).revision)
        seen.append((await store.update(prefix + "a", b"2", expected_revision=a.revision)).revision)
        seen.append((await store.delete(prefix + "b")).revision)
        assert seen == sorted(set(seen)), f"revisions must strictly increase: {seen}"
        assert await store.current_revision() == seen[-1]

    async def test_failed_writes_do_not_bump_the_revision(self, store: Storage, prefix: str) -> None:
        kv = await store.create(prefix + "a", b"1")
        for failing in (
            store.create(prefix + "a", b"x"),
            store.update(prefix + "a", b"x", expected_revision=kv.revision + 1000),
            store.update(prefix + "nope", b"x", expected_revision=1),
            store.delete(prefix + "a", expected_revision=kv.revision + 1000),
            store.delete(prefix + "nope"),
        ):
            with pytest.raises((KeyExistsError, KeyNotFoundError, ConflictError)):
                await failing
        assert await store.current_revision() == kv.revision

    async def test_concurrent_creates_get_distinct_revisions(self, store: Storage, prefix: str) -> None:
        kvs = await asyncio.gather(*(store.create(f"{prefix}k{i:03}", b"v") for i in range(64)))
        assert len({kv.revision for kv in kvs}) == 64
        result = await store.list(prefix)
        assert [kv.key for kv in result.items] == [f"{prefix}k{i:03}" for i in range(64)]
        assert result.revision == max(kv.revision for kv in kvs)

    async def test_concurrent_create_of_one_key_has_one_winner(self, store: Storage, prefix: str) -> None:
        results = await asyncio.gather(*(store.create(prefix + "a", b"%d" % i) for i in range(16)),
                                       return_exceptions=True)
        winners = [r for r in results if isinstance(r, KeyValue)]
        assert len(winners) == 1
        assert all(isinstance(r, KeyExistsError) for r in results if r not in winners)
        assert await store.get(prefix + "a") == winners[0]

    async def test_concurrent_cas_increments_lose_no_update(self, store: Storage, prefix: str) -> None:
        key = prefix + "counter"
        await store.create(key, b"0")

        async def increment(times: int) -> None:
            for _ in range(times):
                kv = await store.get(key)
                while True:
                    try:
                        await store.update(key, b"%d" % (int(kv.value) + 1), expected_revision=kv.revision)
                        break
                    except ConflictError as err:
                        assert err.current is not None
                        kv = err.current

        await asyncio.gather(*(increment(20) for _ in range(16)))
        assert (await store.get(key)).value == b"320"

    # ------------------------------------------------------------------ list

    async def test_list_is_ordered_and_bounded_by_prefix(self, store: Storage, prefix: str) -> None:
        pods = prefix + "registry/pods/"
        for key in ("ns2/b", "ns1/b", "ns1/a", "ns10/a"):
            await store.create(pods + key, key.encode())
        await store.create(prefix + "registry/podsx/ns1/a", b"other")
        await store.create(prefix + "registry/pod", b"other")
        result = await store.list(pods)
        assert [kv.key for kv in result.items] == [pods + k for k in ("ns1/a", "ns1/b", "ns10/a", "ns2/b")]
        assert [kv.value for kv in result.items] == [b"ns1/a", b"ns1/b", b"ns10/a", b"ns2/b"]
        assert result.more is False
        assert result.revision == await store.current_revision()
        assert [kv.key for kv in (await store.list(pods + "ns1/")).items] == [pods + "ns1/a", pods + "ns1/b"]
        assert (await store.list(prefix + "nothing/")).items == []

    async def test_list_items_carry_revisions(self, store: Storage, prefix: str) -> None:
        a = await store.create(prefix + "a", b"1")
        a2 = await store.update(prefix + "a", b"2", expected_revision=a.revision)
        b = await store.create(prefix + "b", b"1")
        assert (await store.list(prefix)).items == [a2, b]

    async def test_list_pages_with_limit_and_start_after(self, store: Storage, prefix: str) -> None:
        keys = [f"{prefix}k{i:02}" for i in range(10)]
        for key in keys:
            await store.create(key, b"v")
        page = await store.list(prefix, limit=4)
        assert [kv.key for kv in page.items] == keys[:4]
        assert page.more is True
        assert page.remaining in (None, 6)
        page = await store.list(prefix, limit=4, start_after=keys[3], revision=page.revision)
        assert [kv.key for kv in page.items] == keys[4:8]
        assert page.more is True
        page = await store.list(prefix, limit=4, start_after=keys[7], revision=page.revision)
        assert [kv.key for kv in page.items] == keys[8:]
        assert page.more is False
        exact = await store.list(prefix, limit=10)
        assert (len(exact.items), exact.more) == (10, False)
        assert [kv.key for kv in (await store.list(prefix, start_after=keys[8])).items] == keys[9:]

    async def test_paged_list_is_one_snapshot_while_writes_continue(self, store: Storage, prefix: str) -> None:
        originals = [await store.create(f"{prefix}k{i:02}", b"old") for i in range(9)]
        first = await store.list(prefix, limit=3)
        pages = [first]
        # Writes between pages: change, delete and add keys on both sides of the cursor.
        await store.update(originals[1].key, b"new", expected_revision=originals[1].revision)
        await store.update(originals[5].key, b"new", expected_revision=originals[5].revision)
        await store.delete(originals[6].key)
        await store.create(prefix + "k04a", b"new")
        await store.create(prefix + "k99", b"new")
        while pages[-1].more:
            last = pages[-1].items[-1].key
            pages.append(await store.list(prefix, limit=3, revision=first.revision, start_after=last))
            await store.update(originals[8].key, b"new%d" % len(pages),
                               expected_revision=(await store.get(originals[8].key)).revision)
        assert all(page.revision == first.revision for page in pages)
        assert [kv for page in pages for kv in page.items] == originals

    async def test_list_at_historical_revision(self, store: Storage, prefix: str) -> None:
        a = await store.create(prefix + "a", b"a1")
        b = await store.create(prefix + "b", b"b1")
        snapshot = await store.current_revision()
        a2 = await store.update(prefix + "a", b"a2", expected_revision=a.revision)
        await store.delete(prefix + "b")
        c = await store.create(prefix + "c", b"c1")
        await store.delete(prefix + "a")
        await store.create(prefix + "a", b"a3")
        await store.create(prefix + "b", b"b3")
        old = await store.list(prefix, revision=snapshot)
        assert old.items == [a, b]
        assert old.revision == snapshot
        middle = await store.list(prefix, revision=c.revision)
        assert middle.items == [a2, c]
        assert (await store.list(prefix, revision=a.revision)).items == [a]
        assert (await store.list(prefix, revision=snapshot, start_after=prefix + "a")).items == [b]
        paged = await store.list(prefix, revision=snapshot, limit=1)
        assert (paged.items, paged.more) == ([a], True)

    async def test_historical_lists_match_a_model(self, store: Storage, prefix: str) -> None:
        """Random writes on a few keys; a list at every revision (whole and paged) must equal the
        model's snapshot at that revision, and a watch must replay the exact history."""
        rng = random.Random(20240607)
        keys = [f"{prefix}{name}" for name in "abcdef"]
        model: dict[str, KeyValue] = {}
        snapshots: dict[int, list[KeyValue]] = {}
        history: list[tuple[EventType, KeyValue]] = []
        start = await store.current_revision()
        for step in range(80):
            key = rng.choice(keys)
            if key not in model:
                kind, kv = EventType.ADDED, await store.create(key, b"%d" % step)
                model[key] = kv
            elif rng.random() < 0.3:
                kind, kv = EventType.DELETED, await store.delete(key, expected_revision=model.pop(key).revision)
            else:
                kind, kv = EventType.MODIFIED, await store.update(key, b"%d" % step,
                                                                  expected_revision=model[key].revision)
                model[key] = kv
            history.append((kind, kv))
            snapshots[kv.revision] = [model[k] for k in sorted(model)]
        for revision, expected in snapshots.items():
            assert (await store.list(prefix, revision=revision)).items == expected, f"at revision {revision}"
            paged: list[KeyValue] = []
            after = ""
            while True:
                page = await store.list(prefix, revision=revision, limit=2, start_after=after)
                paged.extend(page.items)
                if not page.more:
                    break
                after = page.items[-1].key
            assert paged == expected, f"paged at revision {revision}"
        watch = store.watch(prefix, revision=start)
        try:
            for kind, kv in history:
                event = await self._next(watch)
                assert (event.type, event.kv) == (kind, kv)
        finally:
            await _close(watch)

    # ------------------------------------------------------------------ watch

    async def test_watch_sees_every_later_event_in_order(self, store: Storage, prefix: str) -> None:
        start = await store.current_revision()
        watch = store.watch(prefix, revision=start)
        try:
            a = await store.create(prefix + "a", b"1")
            a2 = await store.update(prefix + "a", b"2", expected_revision=a.revision)
            b = await store.create(prefix + "b", b"1")
            gone = await store.delete(prefix + "a")
            events = [await self._next(watch) for _ in range(4)]
            assert events == [
                StorageEvent(EventType.ADDED, a, None),
                StorageEvent(EventType.MODIFIED, a2, a),
                StorageEvent(EventType.ADDED, b, None),
                StorageEvent(EventType.DELETED, gone, a2),
            ]
            assert gone.value == b"2"
            await no_event(watch)
        finally:
            await _close(watch)

    async def test_watch_from_a_past_revision_replays_then_follows(self, store: Storage, prefix: str) -> None:
        a = await store.create(prefix + "a", b"1")
        b = await store.create(prefix + "b", b"1")
        a2 = await store.update(prefix + "a", b"2", expected_revision=a.revision)
        watch = store.watch(prefix, revision=a.revision)
        try:
            assert (await self._next(watch)).kv == b
            assert (await self._next(watch)).kv == a2
            c = await store.create(prefix + "c", b"1")
            assert (await self._next(watch)).kv == c
            await no_event(watch)
        finally:
            await _close(watch)

    async def test_watch_of_a_prefix_excludes_other_keys(self, store: Storage, prefix: str) -> None:
        pods = prefix + "registry/pods/"
        start = await store.current_revision()
        watch = store.watch(pods, revision=start)
        try:
            await store.create(prefix + "registry/podsx/ns/a", b"x")
            await store.create(prefix + "registry/pod", b"x")
            await store.create(prefix + "registry/configmaps/ns/a", b"x")
            mine = await store.create(pods + "ns/a", b"x")
            event = await self._next(watch)
            assert event.kv == mine
            await no_event(watch)
        finally:
            await _close(watch)

    async def test_many_watchers_see_the_same_events(self, store: Storage, prefix: str) -> None:
        start = await store.current_revision()
        watches = [store.watch(prefix, revision=start) for _ in range(5)]
        try:
            written = [await store.create(f"{prefix}k{i}", b"v") for i in range(10)]
            for watch in watches:
                assert [(await self._next(watch)).kv for _ in written] == written
        finally:
            for watch in watches:
                await _close(watch)

    async def test_watch_under_concurrent_writes_has_no_gaps_or_duplicates(self, store: Storage, prefix: str) -> None:
        start = await store.current_revision()
        watch = store.watch(prefix, revision=start)
        try:
            written = await asyncio.gather(*(store.create(f"{prefix}k{i:03}", b"v") for i in range(100)))
            events = [await self._next(watch) for _ in written]
            revisions = [event.kv.revision for event in events]
            assert revisions == sorted(kv.revision for kv in written)
            await no_event(watch)
        finally:
            await _close(watch)

    async def test_closing_a_watch_stops_it(self, store: Storage, prefix: str) -> None:
        watch = store.watch(prefix, revision=await store.current_revision())
        await store.create(prefix + "a", b"1")
        await self._next(watch)
        waiting = asyncio.ensure_future(anext(watch))
        await asyncio.sleep(0.05)
        await _close(watch)
        with pytest.raises(StopAsyncIteration):
            await asyncio.wait_for(waiting, self.event_timeout)
        await store.create(prefix + "b", b"1")
        with pytest.raises(StopAsyncIteration):
            await asyncio.wait_for(anext(watch), self.event_timeout)

    async def test_close_ends_pending_watches(self, tmp_path: Path, prefix: str) -> None:
        store = await self.make_storage(tmp_path)
        try:
            revision = await store.current_revision()
            watch = store.watch(prefix, revision=revision)
            waiting = asyncio.ensure_future(anext(watch))
            await asyncio.sleep(0.05)
            never_started = store.watch(prefix, revision=revision)
        finally:
            await store.close()
        with pytest.raises(StopAsyncIteration):
            await asyncio.wait_for(waiting, self.event_timeout)
        with pytest.raises(StopAsyncIteration):
            await asyncio.wait_for(anext(never_started), self.event_timeout)

    # ------------------------------------------------------------------ compaction

    def _need_compact(self) -> None:
        if not self.compact_allowed:
            pytest.skip("compaction tests disabled for this store (compact_allowed = False)")

    async def test_compaction_keeps_latest_values(self, store: Storage, prefix: str) -> None:
        self._need_compact()
        a = await store.create(prefix + "a", b"1")
        a2 = await store.update(prefix + "a", b"2", expected_revision=a.revision)
        b = await store.create(prefix + "b", b"1")
        await store.compact(b.revision)
        assert await store.get(prefix + "a") == a2
        assert (await store.list(prefix)).items == [a2, b]
        assert (await store.list(prefix, revision=b.revision)).items == [a2, b]
        c = await store.update(prefix + "b", b"2", expected_revision=b.revision)
        assert (await store.list(prefix, revision=b.revision)).items == [a2, b]
        assert (await store.list(prefix)).items == [a2, c]

    async def test_list_below_compaction_fails(self, store: Storage, prefix: str) -> None:
        self._need_compact()
        a = await store.create(prefix + "a", b"1")
        b = await store.update(prefix + "a", b"2", expected_revision=a.revision)
        await store.update(prefix + "a", b"3", expected_revision=b.revision)
        await store.compact(b.revision)
        with pytest.raises(CompactedError) as info:
            await store.list(prefix, revision=a.revision)
        assert info.value.requested == a.revision
        assert info.value.compacted >= b.revision

    async def test_watch_below_compaction_fails(self, store: Storage, prefix: str) -> None:
        self._need_compact()
        a = await store.create(prefix + "a", b"1")
        b = await store.update(prefix + "a", b"2", expected_revision=a.revision)
        c = await store.update(prefix + "a", b"3", expected_revision=b.revision)
        await store.compact(b.revision)
        watch = store.watch(prefix, revision=a.revision)
        try:
            with pytest.raises(CompactedError):
                await asyncio.wait_for(anext(watch), self.event_timeout)
        finally:
            await _close(watch)
        watch = store.watch(prefix, revision=b.revision)
        try:
            assert (await self._next(watch)).kv == c
        finally:
            await _close(watch)

    # ------------------------------------------------------------------ TTL

    async def test_ttl_expires_key_with_a_deleted_event(self, store: Storage, prefix: str) -> None:
        if not self.supports_ttl:
            pytest.skip("the store ignores ttl (supports_ttl = False)")
        watch = store.watch(prefix, revision=await store.current_revision())
        try:
            kv = await store.create(prefix + "event", b"1", ttl=1)
            keep = await store.create(prefix + "keep", b"1")
            assert (await self._next(watch)).kv == kv
            assert (await self._next(watch)).kv == keep
            event = await next_event(watch, 1 + self.ttl_slack)
            assert (event.type, event.kv.key, event.kv.value) == (EventType.DELETED, kv.key, b"1")
            with pytest.raises(KeyNotFoundError):
                await store.get(kv.key)
            assert await store.get(keep.key) == keep
        finally:
            await _close(watch)

    # ------------------------------------------------------------------ durability (optional)

    async def test_reopen_keeps_data_and_revision(self, tmp_path: Path, prefix: str) -> None:
        store = await self.make_storage(tmp_path)
        try:
            a = await store.create(prefix + "a", b"1")
            await store.create(prefix + "b", b"1")
            deleted = await store.delete(prefix + "b")
            reopened = await self.reopen_storage(store, tmp_path)
            if reopened is None:
                pytest.skip("the store cannot be reopened (reopen_storage returns None)")
            store = reopened
            assert await store.current_revision() == deleted.revision
            assert (await store.list(prefix)).items == [a]
            assert (await store.create(prefix + "c", b"1")).revision > deleted.revision
            watch = store.watch(prefix, revision=a.revision)
            try:
                assert (await self._next(watch)).type is EventType.ADDED
                assert (await self._next(watch)).type is EventType.DELETED
            finally:
                await _close(watch)
        finally:
            await store.close()
