"""SQLite storage: the embedded default (``--storage-backend=sqlite``). One file, zero setup.

The database is ``config.sqlite_path`` (``DATA_DIR/kapi.db``; the directory is created with mode
0700 and the file with 0600, since it holds Secrets). It implements the whole ``kapi.Storage``
contract and passes ``kapi.testing.storage_contract``.

Durability
    Every acknowledged write is committed in WAL mode, so it survives a crash or ``kill -9`` of
    the process. With the default ``synchronous=NORMAL`` a power loss may drop the last commits;
    ``synchronous=FULL`` makes every commit wait for the disk (slower writes).

Revisions and history
    Table ``meta`` holds the store-wide revision and the compaction point; ``kv`` the current
    value of every key; ``log`` one row per write with the new and the previous value. Watches
    that start in the past, and lists at an older revision (``list`` pages at one snapshot), read
    the log: a list at revision R is the rows unchanged since R plus, for keys written after R,
    the value their first later write replaced. A background task (started on first use,
    stopped by ``close()``) compacts the log so it keeps at least ``retention_seconds`` of
    history and at least ``retention_revisions`` revisions; lists and watches below the
    compaction point raise ``CompactedError`` (HTTP 410).

TTL
    ``create(..., ttl=N)`` stores an expiry time; the same background task deletes expired keys
    every ``maintenance_interval`` seconds (DELETED events). Updates keep the expiry.

Threads and speed
    The event loop never touches sqlite3. One writer thread runs every queued write in one
    transaction (group commit: 64 concurrent creates cost about one commit); a reader thread
    serves gets, lists and watch catch-up from its own connection (WAL readers do not block the
    writer). Use a store from one event loop only.

Watches and several processes
    Committed events reach watches of the same store object at once (in-process fan-out; the
    most recent ``watch_window`` events stay in memory for watches starting a little in the
    past). Several processes (API server workers) may share one file: the writer thread polls
    the log every ``poll_interval`` seconds for revisions written by others, and publishes
    every revision in order, so each process's watches see all writes exactly once.

Options (``config.plugin_options["storage_sqlite"]``, or ``--plugin-option storage_sqlite.KEY=V``):

==========================  =========  =========================================================
``synchronous``             NORMAL     SQLite's ``PRAGMA synchronous``: NORMAL, FULL or EXTRA
``poll_interval``           0.15       seconds between polls for other processes' writes
``maintenance_interval``    1.0        seconds between TTL sweeps and compaction checks
``retention_seconds``       300        keep at least this much history ...
``retention_revisions``     10000      ... and at least this many revisions
``watch_window``            1000       recent events kept in memory for late-starting watches
``watch_queue``             10000      undelivered events per watch before it falls back to
                                       re-reading from where it was (bounded memory)
``readers``                 1          reader threads (connections)
==========================  =========  =========================================================

This module is longer than most plugins because it holds the whole backend: thread workers,
SQL, the event fan-out and the watch iterator depend on each other's invariants.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from functools import partial
from itertools import starmap
from pathlib import Path
from typing import Any, TypeVar

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
    storagekit,
)

ALIASES = ("sqlite",)

_log = logging.getLogger(__name__)

_SYNCHRONOUS = ("NORMAL", "FULL", "EXTRA")
_BUSY_TIMEOUT_MS = 10000
_MAX_BATCH = 512  # jobs per transaction
_LOG_PAGE = 1000  # log rows per watch catch-up read
_PURGE_CHUNK = 5000  # log rows deleted per compaction transaction
_READ_SLICE = 0.002  # seconds of reads after which answers are sent and a new snapshot begins
_NO_UPPER_BOUND = b"\xff"  # a BLOB sorts after every TEXT key in SQLite

_SCHEMA = """
BEGIN IMMEDIATE;
CREATE TABLE IF NOT EXISTS meta (
    id INTEGER PRIMARY KEY CHECK (id = 0),
    revision INTEGER NOT NULL,
    compacted INTEGER NOT NULL
);
INSERT OR IGNORE INTO meta VALUES (0, 0, 0);
CREATE TABLE IF NOT EXISTS kv (
    key TEXT PRIMARY KEY,
    value BLOB NOT NULL,
    revision INTEGER NOT NULL,
    create_revision INTEGER NOT NULL,
    expires REAL
);
CREATE INDEX IF NOT EXISTS kv_expires ON kv (expires) WHERE expires IS NOT NULL;
CREATE TABLE IF NOT EXISTS log (
    revision INTEGER PRIMARY KEY,
    key TEXT NOT NULL,
    type INTEGER NOT NULL,
    value BLOB,
    create_revision INTEGER NOT NULL,
    prev_value BLOB,
    prev_revision INTEGER
);
COMMIT;
"""
_META = "SELECT revision, compacted FROM meta"
_GET = "SELECT value, revision, create_revision FROM kv WHERE key = ?"
_INSERT_LOG = "INSERT INTO log VALUES (?, ?, ?, ?, ?, ?, ?)"
_LIST_LATEST = """SELECT key, value, revision, create_revision FROM kv
 WHERE key >= ? AND key < ? AND key > ? ORDER BY key LIMIT ?"""
_LIST_AT = """SELECT key, value, revision, create_revision FROM kv
 WHERE key >= :lo AND key < :hi AND key > :after AND revision <= :rev
UNION ALL
SELECT key, prev_value, prev_revision, create_revision FROM log
 WHERE revision IN (SELECT min(revision) FROM log
                     WHERE revision > :rev AND key >= :lo AND key < :hi AND key > :after GROUP BY key)
   AND prev_revision IS NOT NULL
ORDER BY key LIMIT :n"""
_COUNT_AFTER = "SELECT count(*) FROM kv WHERE key > ? AND key < ?"
_LOG_AFTER = """SELECT * FROM log WHERE revision > ? AND key >= ? AND key < ? ORDER BY revision LIMIT ?"""
_LOG_BETWEEN = "SELECT * FROM log WHERE revision > ? AND revision <= ? ORDER BY revision"

_ADDED, _MODIFIED, _DELETED = 0, 1, 2
_EVENT_TYPES = (EventType.ADDED, EventType.MODIFIED, EventType.DELETED)

_Outcome = tuple["asyncio.Future[Any]", Any, BaseException | None]
_Job = tuple[Callable[..., Any], tuple[Any, ...], "asyncio.Future[Any]"]
_Post = Callable[[Callable[[], None]], None]
_T = TypeVar("_T")


def _prefix_bounds(prefix: str) -> tuple[str, str | bytes]:
    """``(lo, hi)`` such that a key starts with ``prefix`` iff ``lo <= key < hi`` in SQLite."""
    stripped = prefix.rstrip("\U0010ffff")
    if not stripped:
        return prefix, _NO_UPPER_BOUND
    last = ord(stripped[-1]) + 1
    return prefix, stripped[:-1] + chr(0xE000 if last == 0xD800 else last)


def _event(row: tuple[Any, ...]) -> StorageEvent:
    """A ``log`` row as an event (a DELETED event carries the last value)."""
    revision, key, kind, value, create_revision, prev_value, prev_revision = row
    prev = None if prev_revision is None else KeyValue(key, prev_value, prev_revision, create_revision)
    kv = KeyValue(key, prev_value if kind == _DELETED else value, revision, create_revision)
    return StorageEvent(_EVENT_TYPES[kind], kv, prev)


def _settle(outcomes: list[_Outcome]) -> None:
    """On the loop: resolve each job's future (skipping ones the caller cancelled)."""
    for future, result, error in outcomes:
        if not future.done():
            if error is None:
                future.set_result(result)
            else:
                future.set_exception(error)


def _attempt(job: _Job, arg: Any) -> _Outcome:
    """Run one job; a ``StorageError`` is its answer, any other error fails the whole batch."""
    fn, args, future = job
    try:
        return future, fn(arg, *args), None
    except StorageError as err:
        return future, None, err


# ---------------------------------------------------------------------------------------------
# writer-thread jobs: each runs inside the batch's transaction and raises before writing anything


class _Tx:
    """The open write transaction of a batch: its connection, the last revision used, and the
    events of the writes so far."""

    __slots__ = ("conn", "events", "revision")

    def __init__(self, conn: sqlite3.Connection, revision: int) -> None:
        self.conn = conn
        self.revision = revision
        self.events: list[StorageEvent] = []

    def record(self, kind: int, kv: KeyValue, prev: KeyValue | None) -> KeyValue:
        """Log a write that used revision ``kv.revision`` and queue its event."""
        self.revision = kv.revision
        self.conn.execute(_INSERT_LOG, (kv.revision, kv.key, kind, None if kind == _DELETED else kv.value,
                                        kv.create_revision, None if prev is None else prev.value,
                                        None if prev is None else prev.revision))
        self.events.append(StorageEvent(_EVENT_TYPES[kind], kv, prev))
        return kv


def _current(tx: _Tx, key: str) -> KeyValue:
    row = tx.conn.execute(_GET, (key,)).fetchone()
    if row is None:
        raise KeyNotFoundError(key)
    return KeyValue(key, *row)


def _create(tx: _Tx, key: str, value: bytes, expires: float | None) -> KeyValue:
    revision = tx.revision + 1
    inserted = tx.conn.execute("INSERT INTO kv VALUES (?, ?, ?, ?, ?) ON CONFLICT (key) DO NOTHING",
                               (key, value, revision, revision, expires)).rowcount
    if not inserted:
        raise KeyExistsError(key)
    return tx.record(_ADDED, KeyValue(key, value, revision, revision), None)


def _update(tx: _Tx, key: str, value: bytes, expected_revision: int) -> KeyValue:
    prev = _current(tx, key)
    if prev.revision != expected_revision:
        raise ConflictError(key, prev)
    revision = tx.revision + 1
    tx.conn.execute("UPDATE kv SET value = ?, revision = ? WHERE key = ?", (value, revision, key))
    return tx.record(_MODIFIED, KeyValue(key, value, revision, prev.create_revision), prev)


def _remove(tx: _Tx, prev: KeyValue) -> KeyValue:
    tx.conn.execute("DELETE FROM kv WHERE key = ?", (prev.key,))
    return tx.record(_DELETED, KeyValue(prev.key, prev.value, tx.revision + 1, prev.create_revision), prev)


def _delete(tx: _Tx, key: str, expected_revision: int) -> KeyValue:
    prev = _current(tx, key)
    if expected_revision and prev.revision != expected_revision:
        raise ConflictError(key, prev)
    return _remove(tx, prev)


def _expire(tx: _Tx, now: float) -> int:
    """Delete every key whose expiry time has passed; returns how many."""
    rows = tx.conn.execute("SELECT key, value, revision, create_revision FROM kv WHERE expires <= ?",
                           (now,)).fetchall()
    for row in rows:
        _remove(tx, KeyValue(*row))
    return len(rows)


def _mark_compacted(tx: _Tx, revision: int) -> int:
    """Move the compaction point up to ``revision`` (at most the current one); returns it."""
    (compacted,) = tx.conn.execute("SELECT compacted FROM meta").fetchone()
    target = min(revision, tx.revision)
    if target > compacted:
        tx.conn.execute("UPDATE meta SET compacted = ?", (target,))
        return target
    return int(compacted)


def _purge(tx: _Tx, below: int) -> bool:
    """Delete up to ``_PURGE_CHUNK`` log rows older than ``below``; True if more remain."""
    (low,) = tx.conn.execute("SELECT min(revision) FROM log").fetchone()
    if low is None or low >= below:
        return False
    upto: int = min(below, low + _PURGE_CHUNK)
    tx.conn.execute("DELETE FROM log WHERE revision < ?", (upto,))
    return upto < below


# ---------------------------------------------------------------------------------------------
# reader-thread jobs: each batch shares one read transaction (one consistent snapshot)


def _get(conn: sqlite3.Connection, key: str) -> KeyValue:
    row = conn.execute(_GET, (key,)).fetchone()
    if row is None:
        raise KeyNotFoundError(key)
    return KeyValue(key, *row)


def _revision(conn: sqlite3.Connection) -> int:
    return int(conn.execute(_META).fetchone()[0])


def _list(conn: sqlite3.Connection, prefix: str, revision: int, limit: int, start_after: str) -> ListResult:
    current, compacted = conn.execute(_META).fetchone()
    lo, hi = _prefix_bounds(prefix)
    fetch = limit + 1 if limit > 0 else -1
    if revision <= 0 or revision >= current:
        rows = conn.execute(_LIST_LATEST, (lo, hi, start_after, fetch)).fetchall()
        revision = current
    elif revision < compacted:
        raise CompactedError(revision, compacted)
    else:
        params = {"lo": lo, "hi": hi, "after": start_after, "rev": revision, "n": fetch}
        rows = conn.execute(_LIST_AT, params).fetchall()
    more = 0 < limit < len(rows)
    if more:
        del rows[limit:]
    items = list(starmap(KeyValue, rows))
    remaining: int | None = 0
    if more:
        remaining = conn.execute(_COUNT_AFTER, (items[-1].key, hi)).fetchone()[0] if revision == current else None
    return ListResult(items, revision, more, remaining)


def _read_log(conn: sqlite3.Connection, prefix: str, after: int) -> tuple[list[StorageEvent], int]:
    """Events under ``prefix`` after ``after`` (one page), and the revision read through."""
    current, compacted = conn.execute(_META).fetchone()
    if after < compacted:
        raise CompactedError(after, compacted)
    lo, hi = _prefix_bounds(prefix)
    events = [_event(row) for row in conn.execute(_LOG_AFTER, (after, lo, hi, _LOG_PAGE))]
    return events, events[-1].kv.revision if len(events) == _LOG_PAGE else current


def _read_batch(conn: sqlite3.Connection, jobs: list[_Job], post: _Post) -> Callable[[], None]:
    """Run read jobs in shared snapshots. A snapshot (and its answers) ends once it has taken
    ``_READ_SLICE`` seconds, so big lists neither delay small reads nor pin the WAL for long."""
    outcomes: list[_Outcome] = []
    sliced = time.perf_counter() + _READ_SLICE
    conn.execute("BEGIN")
    try:
        for job in jobs:
            outcomes.append(_attempt(job, conn))
            if time.perf_counter() > sliced:
                conn.execute("ROLLBACK")  # read-only: ends the snapshot
                post(partial(_settle, outcomes))
                outcomes = []
                sliced = time.perf_counter() + _READ_SLICE
                conn.execute("BEGIN")
    finally:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
    return partial(_settle, outcomes)


# ---------------------------------------------------------------------------------------------
# threads


class _Worker:
    """Daemon threads, one per connection, that run queued jobs in batches.

    ``run_batch(conn, jobs, post)`` runs in a thread and returns a callable that is then scheduled
    on the event loop (to settle the jobs' futures); it may ``post`` such callables earlier too.
    If it raises, every job of the batch not yet settled fails with ``UnavailableError``.
    ``idle(conn)``, when given, runs in the thread after every batch and at least every
    ``idle_interval`` seconds, and may return such a callable too. Threads start on the first
    ``submit`` and bind to its event loop.
    """

    def __init__(self, name: str, conns: list[sqlite3.Connection],
                 run_batch: Callable[[sqlite3.Connection, list[_Job], _Post], Callable[[], None]],
                 idle: Callable[[sqlite3.Connection], Callable[[], None] | None] | None = None,
                 idle_interval: float = 1.0) -> None:
        self._name = name
        self._conns = conns
        self._run_batch = run_batch
        self._idle = idle
        self._idle_interval = idle_interval
        self._cv = threading.Condition()
        self._jobs: deque[_Job] = deque()
        self._threads: list[threading.Thread] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping = False

    def submit(self, fn: Callable[..., _T], *args: Any) -> asyncio.Future[_T]:
        """Queue ``fn(conn_or_tx, *args)``; the future resolves on the loop with its result."""
        if self._stopping:
            raise UnavailableError("storage_sqlite: the store is closed")
        if self._loop is None:
            self._start()
        assert self._loop is not None
        future: asyncio.Future[_T] = self._loop.create_future()
        with self._cv:
            self._jobs.append((fn, args, future))
            self._cv.notify()
        return future

    def _start(self) -> None:
        self._loop = asyncio.get_running_loop()
        for n, conn in enumerate(self._conns):
            thread = threading.Thread(target=self._run, args=(conn,), name=f"{self._name}-{n}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def _run(self, conn: sqlite3.Connection) -> None:
        try:
            while True:
                with self._cv:
                    if not self._jobs and not self._stopping:
                        self._cv.wait(self._idle_interval)
                    batch = [self._jobs.popleft() for _ in range(min(len(self._jobs), _MAX_BATCH))]
                    finished = self._stopping and not batch
                if batch:
                    self._post(self._guarded(conn, batch))
                if finished:
                    return
                if self._idle is not None:
                    self._post(self._guarded_idle(conn))
        except Exception:  # a bug here must not hang every caller silently
            _log.exception("%s: worker thread failed", self._name)
        finally:
            conn.close()

    def _guarded(self, conn: sqlite3.Connection, batch: list[_Job]) -> Callable[[], None]:
        try:
            return self._run_batch(conn, batch, self._post)
        except Exception as err:
            _log.warning("%s: batch of %d failed: %s", self._name, len(batch), err)
            message = f"storage_sqlite: {err.__class__.__name__}: {err}"
            return partial(_settle, [(future, None, UnavailableError(message)) for _, _, future in batch])

    def _guarded_idle(self, conn: sqlite3.Connection) -> Callable[[], None] | None:
        assert self._idle is not None
        try:
            return self._idle(conn)
        except Exception as err:  # e.g. a transient "database is locked": try again next time
            _log.warning("%s: %s", self._name, err)
            return None

    def _post(self, callback: Callable[[], None] | None) -> None:
        """Schedule ``callback`` on the event loop (from a worker thread)."""
        if callback is not None and self._loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is waiting
                self._loop.call_soon_threadsafe(callback)

    async def stop(self) -> None:
        """Run the jobs already queued, then end the threads and close the connections."""
        with self._cv:
            self._stopping = True
            self._cv.notify_all()
        if not self._threads:
            for conn in self._conns:
                conn.close()
        for thread in self._threads:
            await asyncio.to_thread(thread.join)


class _Committer:
    """The writer thread's side: group commit, and publication of every committed revision to
    the hub in order (this process's writes at once, other processes' by polling the log)."""

    def __init__(self, hub: _Hub, revision: int, compacted: int, poll_interval: float) -> None:
        self._hub = hub
        self._published = revision
        self._compacted = compacted
        self._poll_interval = poll_interval
        self._next_poll = 0.0

    def run_batch(self, conn: sqlite3.Connection, jobs: list[_Job], post: _Post) -> Callable[[], None]:
        """Run ``jobs`` in one IMMEDIATE transaction and commit once."""
        conn.execute("BEGIN IMMEDIATE")
        try:
            start = conn.execute(_META).fetchone()[0]
            tx = _Tx(conn, start)
            outcomes = [_attempt(job, tx) for job in jobs]
            if tx.revision != start:
                conn.execute("UPDATE meta SET revision = ?", (tx.revision,))
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        if not tx.events:
            return partial(_settle, outcomes)
        # Revisions up to `start` are committed: publish any written by other processes first.
        try:
            events = self._between(conn, self._published, start) + tx.events
        except sqlite3.Error as err:  # the next poll publishes all of them, from the log
            _log.warning("storage_sqlite: cannot read the log yet: %s", err)
            return partial(_settle, outcomes)
        self._published = tx.revision
        return partial(self._hub.deliver, events, outcomes)

    def poll(self, conn: sqlite3.Connection) -> Callable[[], None] | None:
        """Every ``poll_interval``: publish revisions other processes committed."""
        now = time.monotonic()
        if now < self._next_poll:
            return None
        self._next_poll = now + self._poll_interval
        current, compacted = conn.execute(_META).fetchone()
        if current <= self._published and compacted == self._compacted:
            return None
        events = self._between(conn, self._published, current)
        self._published = max(self._published, current)
        self._compacted = compacted
        return partial(self._hub.publish, events, compacted)

    @staticmethod
    def _between(conn: sqlite3.Connection, after: int, upto: int) -> list[StorageEvent]:
        if upto <= after:
            return []
        return [_event(row) for row in conn.execute(_LOG_BETWEEN, (after, upto))]


# ---------------------------------------------------------------------------------------------
# event loop side: fan-out and watches


class _Hub:
    """Fans committed events out to live watches, in revision order, and keeps the most recent
    ``window`` of them: every event with revision in ``(base, head]`` is in ``_recent``."""

    def __init__(self, revision: int, compacted: int, window: int) -> None:
        self.head = revision
        self.base = revision
        self.compacted = compacted
        self._window = window
        self._recent: deque[StorageEvent] = deque()
        self._live: dict[str, set[_SQLiteWatch]] = {}

    def publish(self, events: list[StorageEvent], compacted: int = 0) -> None:
        """Append events (in revision order; already seen ones are skipped) and push them to the
        live watches whose prefix they fall under."""
        self.compacted = max(self.compacted, compacted)
        recent, live = self._recent, self._live
        for event in events:
            kv = event.kv
            if kv.revision <= self.head:
                continue
            self.head = kv.revision
            recent.append(event)
            for prefix, group in live.items():
                if kv.key.startswith(prefix):
                    for watch in group:
                        watch.push(event)
        while len(recent) > self._window:
            self.base = recent.popleft().kv.revision

    def deliver(self, events: list[StorageEvent], outcomes: list[_Outcome]) -> None:
        """After a local commit: publish its events, then answer the writers."""
        self.publish(events)
        _settle(outcomes)

    def attach(self, watch: _SQLiteWatch) -> None:
        """Hand ``watch`` the window's events after its position and make it live (atomically:
        nothing can be published in between). Requires ``watch.position >= base``."""
        missed: list[StorageEvent] = []
        for event in reversed(self._recent):
            if event.kv.revision <= watch.position:
                break
            if event.kv.key.startswith(watch.prefix):
                missed.append(event)
        missed.reverse()
        watch.go_live(missed)
        self._live.setdefault(watch.prefix, set()).add(watch)

    def detach(self, watch: _SQLiteWatch) -> None:
        group = self._live.get(watch.prefix)
        if group is not None:
            group.discard(watch)
            if not group:
                del self._live[watch.prefix]

    def close_all(self) -> None:
        """Close every live watch (watches not live notice the closed store themselves)."""
        for group in list(self._live.values()):
            for watch in list(group):
                watch.close()


class _SQLiteWatch(storagekit.QueuedWatch):
    """One watch: catches up from the log table (pages) until its position reaches the hub's
    window, then takes the window's events and goes live (``kapi.storagekit``)."""

    __slots__ = ("_store",)

    def __init__(self, store: SQLiteStorage, prefix: str, revision: int, queue_limit: int) -> None:
        super().__init__(prefix, revision, queue_limit)
        self._store = store

    def _store_closed(self) -> bool:
        return self._store.closed

    async def _resume(self) -> None:
        await self._store._catch_up(self)

    def _detach(self) -> None:
        self._store._hub.detach(self)


def _connect(path: Path, synchronous: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, cached_statements=64)
    conn.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
    conn.execute(f"PRAGMA synchronous = {synchronous}")
    conn.execute("PRAGMA cache_size = -16384")
    return conn


class SQLiteStorage:
    """A ``kapi.Storage`` in one SQLite file. See the module docstring."""

    def __init__(self, path: str | os.PathLike[str], *, synchronous: str = "NORMAL", poll_interval: float = 0.15,
                 maintenance_interval: float = 1.0, retention_seconds: float = 300.0,
                 retention_revisions: int = 10000, watch_window: int = 1000, watch_queue: int = 10000,
                 readers: int = 1) -> None:
        synchronous = synchronous.upper()
        if synchronous not in _SYNCHRONOUS:
            raise ValueError(f"storage_sqlite: synchronous must be one of {', '.join(_SYNCHRONOUS)}, "
                             f"not {synchronous!r}")
        if min(poll_interval, maintenance_interval) <= 0 or min(watch_window, watch_queue, readers) < 1:
            raise ValueError("storage_sqlite: intervals, watch_window, watch_queue and readers must be positive")
        self.path = Path(path)
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600))
        writer = _connect(self.path, synchronous)
        try:
            writer.execute("PRAGMA journal_mode = WAL")
            writer.executescript(_SCHEMA)
            revision, compacted = writer.execute(_META).fetchone()
            readers_conns = [_connect(self.path, synchronous) for _ in range(readers)]
        except sqlite3.Error as err:
            writer.close()
            raise UnavailableError(f"storage_sqlite: cannot open {self.path}: {err}") from err
        self._hub = _Hub(revision, compacted, watch_window)
        committer = _Committer(self._hub, revision, compacted, poll_interval)
        self._writer = _Worker("kapi-sqlite-writer", [writer], committer.run_batch, committer.poll, poll_interval)
        self._reader = _Worker("kapi-sqlite-reader", readers_conns, _read_batch)
        self._watch_queue = watch_queue
        self._maintenance_interval = maintenance_interval
        self._retention_seconds = retention_seconds
        self._retention_revisions = retention_revisions
        self._maintenance: asyncio.Task[None] | None = None
        self._closed = False

    @classmethod
    def from_config(cls, config: Config) -> SQLiteStorage:
        """The store at ``config.sqlite_path`` with the ``storage_sqlite`` options (strings allowed)."""
        options: Mapping[str, Any] = config.options_for("storage_sqlite")
        floats = ("poll_interval", "maintenance_interval", "retention_seconds")
        ints = ("retention_revisions", "watch_window", "watch_queue", "readers")
        kwargs: dict[str, Any] = {name: float(options[name]) for name in floats if name in options}
        kwargs.update({name: int(options[name]) for name in ints if name in options})
        if "synchronous" in options:
            kwargs["synchronous"] = str(options["synchronous"])
        unknown = set(options) - set(kwargs)
        if unknown:
            raise ValueError(f"storage_sqlite: unknown option(s) {', '.join(sorted(unknown))}")
        return cls(config.sqlite_path, **kwargs)

    @property
    def closed(self) -> bool:
        """Whether ``close()`` was called."""
        return self._closed

    # ------------------------------------------------------------------ the Storage contract

    async def create(self, key: str, value: bytes, *, ttl: int | None = None) -> KeyValue:
        """Store ``value`` if ``key`` is absent (else ``KeyExistsError``); expire it after ``ttl`` s."""
        self._use()
        return await self._writer.submit(_create, key, value, None if ttl is None else time.time() + ttl)

    async def get(self, key: str) -> KeyValue:
        """The current value of ``key``, or ``KeyNotFoundError``."""
        self._use()
        return await self._reader.submit(_get, key)

    async def list(self, prefix: str, *, revision: int = 0, limit: int = 0, start_after: str = "") -> ListResult:
        """Keys under ``prefix`` after ``start_after`` at ``revision`` (0 or a future one = latest);
        ``remaining`` is known for pages at the latest revision."""
        self._use()
        return await self._reader.submit(_list, prefix, revision, limit, start_after)

    async def update(self, key: str, value: bytes, *, expected_revision: int) -> KeyValue:
        """Replace ``key``'s value if its revision is ``expected_revision`` (else ``ConflictError``)."""
        self._use()
        return await self._writer.submit(_update, key, value, expected_revision)

    async def delete(self, key: str, *, expected_revision: int = 0) -> KeyValue:
        """Delete ``key`` (guarded when ``expected_revision`` is non-zero); returns its last value
        with the deletion's revision."""
        self._use()
        return await self._writer.submit(_delete, key, expected_revision)

    def watch(self, prefix: str, *, revision: int) -> _SQLiteWatch:
        """Every change under ``prefix`` after ``revision``; close the iterator with ``aclose()``."""
        if self._closed:
            raise UnavailableError("storage_sqlite: the store is closed")
        return _SQLiteWatch(self, prefix, revision, self._watch_queue)

    async def current_revision(self) -> int:
        """The revision of the last write in the file, by any process."""
        self._use()
        return await self._reader.submit(_revision)

    async def compact(self, revision: int) -> None:
        """Forget history before ``revision`` (at most the current revision)."""
        self._use()
        compacted = await self._writer.submit(_mark_compacted, revision)
        self._hub.compacted = max(self._hub.compacted, compacted)
        while await self._writer.submit(_purge, compacted):
            pass

    async def close(self) -> None:
        """Stop the background task, end every watch, finish queued jobs and close the file."""
        if self._closed:
            return
        self._closed = True
        if self._maintenance is not None:
            self._maintenance.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._maintenance
        self._hub.close_all()
        await self._writer.stop()
        await self._reader.stop()

    # ------------------------------------------------------------------ internals

    def _use(self) -> None:
        """Refuse calls after close; start the background task on first use."""
        if self._closed:
            raise UnavailableError("storage_sqlite: the store is closed")
        if self._maintenance is None:
            self._maintenance = asyncio.get_running_loop().create_task(self._maintain(), name="kapi-sqlite-maintenance")

    async def _catch_up(self, watch: _SQLiteWatch) -> None:
        """Bring a watch that is not live closer to live: one page from the log while it is
        behind the hub's window, then attach it to the hub."""
        hub = self._hub
        if watch.position < hub.compacted:
            raise CompactedError(watch.position, hub.compacted)
        if watch.position < hub.base:
            events, through = await self._reader.submit(_read_log, watch.prefix, watch.position)
            watch.extend(events, through)
            if watch.position < hub.base:
                return
        if not (watch.closed or self._closed):
            hub.attach(watch)

    async def _maintain(self) -> None:
        """Every ``maintenance_interval``: delete expired keys, and compact the log when history
        older than both retention limits has piled up."""
        checkpoints: deque[tuple[float, int]] = deque()  # (monotonic time, head revision then)
        step = max(1, self._retention_revisions // 10)
        while True:
            await asyncio.sleep(self._maintenance_interval)
            try:
                await self._writer.submit(_expire, time.time())
                now = time.monotonic()
                checkpoints.append((now, self._hub.head))
                cutoff = now - self._retention_seconds
                while len(checkpoints) > 1 and checkpoints[1][0] <= cutoff:
                    checkpoints.popleft()
                if checkpoints[0][0] <= cutoff:
                    target = min(checkpoints[0][1], self._hub.head - self._retention_revisions)
                    if target >= self._hub.compacted + step:
                        await self.compact(target)
            except UnavailableError as err:
                if self._closed:
                    return
                _log.warning("storage_sqlite: maintenance failed: %s", err)
            except Exception:
                _log.exception("storage_sqlite: maintenance failed")


@hookimpl
def kapi_storage(config: Config, backend: str) -> Storage | None:
    """Answer for ``sqlite``: the store at ``config.sqlite_path``, created if missing."""
    if backend not in ALIASES:
        return None
    return SQLiteStorage.from_config(config)
