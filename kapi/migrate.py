"""Copy a cluster's data from one store to another: ``kapi migrate`` (SQLite <-> etcd, and back).

``migrate(source, target, prefix)`` reads every key under ``prefix`` from ``source`` at one
snapshot (pages of ``page_size`` at the first page's revision) and creates it in ``target`` with
the same value, bytes for bytes. The target gets new revisions, so every object's
``resourceVersion`` changes: stop the API servers first, and let clients relist afterwards (as
after an etcd restore). The target must hold nothing under ``prefix`` unless ``force`` is given;
then existing keys are overwritten and keys only the target has are kept. TTLs cannot be read
from a store; ``ttl_for(key)`` gives the TTL to set on the copy (the command gives Events
``--event-ttl``, as kube-apiserver does when it writes them).

Command line::

    kapi migrate --from sqlite:DATA_DIR --to etcd:https://127.0.0.1:2379 \\
        --etcd-cafile etcd/ca.crt --etcd-certfile apiserver-etcd-client.crt \\
        --etcd-keyfile apiserver-etcd-client.key [--prefix /registry] [--force]
    kapi migrate --from etcd:https://10.0.0.1:2379,https://10.0.0.2:2379 --to sqlite:DATA_DIR ...

A store is ``BACKEND:ARGUMENT``: ``sqlite:`` takes the data directory (or its ``kapi.db``),
``etcd:``/``etcd3:`` comma-separated client URLs (the ``--etcd-*`` TLS flags apply to both sides);
any other installed storage plugin is opened by its name with an empty argument. The stores are
opened through the ``kapi_storage`` hook, so the plugins do the work.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from kapi.config import Config
from kapi.plugins import PluginConfigError, make_plugin_manager, resolve_names
from kapi.storage import (
    ConflictError,
    KeyExistsError,
    KeyNotFoundError,
    KeyValue,
    ListResult,
    Storage,
    StorageError,
)

EVENT_TTL_SECONDS = 3600  # kube-apiserver's --event-ttl default
_SQLITE_FILE = "kapi.db"
_ETCD_BACKENDS = ("etcd", "etcd3")


class MigrationError(StorageError):
    """The migration cannot start (non-empty target) or was cut short."""


async def migrate(source: Storage, target: Storage, prefix: str, *, force: bool = False, page_size: int = 500,
                  concurrency: int = 64, ttl_for: Callable[[str], int | None] | None = None) -> int:
    """Copy every key under ``prefix`` from ``source`` into ``target``; returns how many.

    :param force: copy into a target that already holds keys under ``prefix`` (overwriting them).
    :param page_size: keys read per ``list`` call (all at the first page's revision).
    :param concurrency: writes in flight at once.
    :param ttl_for: the TTL (seconds) to give a key's copy, or None for none.
    :raises MigrationError: the target is not empty under ``prefix`` and ``force`` is false.
    :raises CompactedError: the source compacted the snapshot away while it was being read.
    """
    if page_size < 1 or concurrency < 1:
        raise ValueError("page_size and concurrency must be positive")
    existing = await target.list(prefix, limit=1)
    if existing.items and not force:
        raise MigrationError(f"the target already holds keys under {prefix!r} (e.g. {existing.items[0].key}); "
                             f"migrate into an empty store, or force it to overwrite")
    gate = asyncio.Semaphore(concurrency)

    async def copy(kv: KeyValue) -> None:
        async with gate:
            await _put(target, kv, None if ttl_for is None else ttl_for(kv.key), force)

    copied = 0
    page = await source.list(prefix, limit=page_size)
    while True:
        following: asyncio.Task[ListResult] | None = None
        if page.more and page.items:  # read the next page while this one is written
            following = asyncio.ensure_future(source.list(prefix, revision=page.revision, limit=page_size,
                                                          start_after=page.items[-1].key))
        writes = [asyncio.ensure_future(copy(kv)) for kv in page.items]
        try:
            await asyncio.gather(*writes)
        except BaseException:
            for task in (*writes, following):
                if task is not None:
                    task.cancel()
            raise
        copied += len(page.items)
        if following is None:
            return copied
        page = await following


async def _put(target: Storage, kv: KeyValue, ttl: int | None, force: bool) -> None:
    """Create ``kv``'s key in ``target``; with ``force``, overwrite whatever is there."""
    try:
        await target.create(kv.key, kv.value, ttl=ttl)
        return
    except KeyExistsError:
        if not force:
            raise
    while True:
        try:
            current = await target.get(kv.key)
            await target.update(kv.key, kv.value, expected_revision=current.revision)
            return
        except ConflictError:
            continue
        except KeyNotFoundError:
            try:
                await target.create(kv.key, kv.value, ttl=ttl)
                return
            except KeyExistsError:
                continue


# ---------------------------------------------------------------------------------------------
# the command


def store_config(spec: str, *, etcd_cafile: str = "", etcd_certfile: str = "", etcd_keyfile: str = "") -> Config:
    """The ``Config`` that opens the store named by ``spec`` (``BACKEND:ARGUMENT``, see the module
    docstring). Raises ``ValueError`` for a malformed spec."""
    backend, colon, argument = spec.partition(":")
    if not backend or not colon:
        raise ValueError(f"store {spec!r}: expected BACKEND:ARGUMENT, e.g. sqlite:/var/lib/kapi or "
                         f"etcd:https://127.0.0.1:2379")
    if backend == "sqlite":
        if not argument:
            raise ValueError(f"store {spec!r}: sqlite: needs the data directory")
        path = Path(argument)
        if path.suffix == ".db":
            if path.name != _SQLITE_FILE:
                raise ValueError(f"store {spec!r}: the SQLite store is DATA_DIR/{_SQLITE_FILE}; pass DATA_DIR")
            path = path.parent
        return Config(storage_backend=backend, data_dir=str(path))
    if backend in _ETCD_BACKENDS:
        servers = tuple(url.strip() for url in argument.split(",") if url.strip())
        if not servers:
            raise ValueError(f"store {spec!r}: {backend}: needs client URLs, e.g. {backend}:https://127.0.0.1:2379")
        return Config(storage_backend=backend, etcd_servers=servers, etcd_cafile=etcd_cafile,
                      etcd_certfile=etcd_certfile, etcd_keyfile=etcd_keyfile)
    if argument:
        raise ValueError(f"store {spec!r}: only sqlite: and etcd: stores take an argument")
    return Config(storage_backend=backend)


def open_store(config: Config, *, flag: str, must_exist: bool = False) -> Storage:
    """Open ``config.storage_backend`` through the installed plugins (``kapi_storage``)."""
    if must_exist and config.storage_backend == "sqlite" and not config.sqlite_path.exists():
        raise ValueError(f"{flag}: no SQLite store at {config.sqlite_path}")
    pm = make_plugin_manager()
    resolve_names(pm, (config.storage_backend,), what="storage backend", flag=flag, hook="kapi_storage")
    store = pm.hook.kapi_storage(config=config, backend=config.storage_backend)
    if store is None:
        raise PluginConfigError(f"{flag}: no storage plugin answered for {config.storage_backend!r}")
    return store  # type: ignore[no-any-return]


def _event_ttl(prefix: str, seconds: int) -> Callable[[str], int | None] | None:
    if seconds <= 0:
        return None
    events = prefix + "events/"
    return lambda key: seconds if key.startswith(events) else None


async def _run(args: argparse.Namespace) -> int:
    tls = {"etcd_cafile": args.etcd_cafile, "etcd_certfile": args.etcd_certfile, "etcd_keyfile": args.etcd_keyfile}
    prefix = args.prefix.rstrip("/") + "/"  # --prefix /registry copies /registry/..., not /registryx
    source = open_store(store_config(args.source, **tls), flag="--from", must_exist=True)
    try:
        target = open_store(store_config(args.target, **tls), flag="--to")
        try:
            began = time.monotonic()
            count = await migrate(source, target, prefix, force=args.force, page_size=args.page_size,
                                  ttl_for=_event_ttl(prefix, args.event_ttl))
            print(f"copied {count} keys under {prefix} from {args.source} to {args.target} "
                  f"in {time.monotonic() - began:.1f}s")
            return 0
        finally:
            await target.close()
    finally:
        await source.close()


def cmd_migrate(args: argparse.Namespace) -> int:
    """``kapi migrate``: exit code 0 on success, 1 when the copy failed, 2 for bad arguments."""
    try:
        return asyncio.run(_run(args))
    except (ValueError, PluginConfigError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except StorageError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1


def add_command(subparsers: Any) -> None:
    """Register ``kapi migrate`` on the ``kapi`` CLI's sub-command parsers."""
    parser = subparsers.add_parser(
        "migrate", help="copy every key from one store to another (sqlite <-> etcd)",
        description="Copy every key under --prefix from one store to another, values byte for byte, from one "
                    "snapshot of the source. Stop the API servers first: the copies get new revisions "
                    "(resourceVersions). The target must hold nothing under the prefix unless --force is given.")
    parser.add_argument("--from", dest="source", required=True, metavar="STORE",
                        help="sqlite:DATA_DIR, etcd:URL[,URL...] or another storage plugin's name followed by ':'")
    parser.add_argument("--to", dest="target", required=True, metavar="STORE", help="where to copy (same forms)")
    parser.add_argument("--prefix", default="/registry", help="copy the keys under this path (default /registry: "
                        "the keys under /registry/)")
    parser.add_argument("--force", action="store_true", help="copy into a non-empty target, overwriting keys")
    parser.add_argument("--etcd-cafile", default="", help="CA of etcd's serving certificate")
    parser.add_argument("--etcd-certfile", default="", help="client certificate for etcd")
    parser.add_argument("--etcd-keyfile", default="", help="client key for etcd")
    parser.add_argument("--event-ttl", type=int, default=EVENT_TTL_SECONDS, metavar="SECONDS",
                        help="TTL given to copied Events (keys under PREFIX/events/); 0 = none (default 3600)")
    parser.add_argument("--page-size", type=int, default=500, help="keys read per request (default 500)")
    parser.set_defaults(func=cmd_migrate)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m kapi.migrate ...`` (the same as ``kapi migrate ...``)."""
    parser = argparse.ArgumentParser(prog="kapi")
    add_command(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["migrate", *(sys.argv[1:] if argv is None else argv)])
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
