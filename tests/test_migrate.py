"""``kapi.migrate``: copying stores (sqlite -> memory -> sqlite, sqlite <-> etcd) and the command."""

from __future__ import annotations

import argparse
import asyncio
import shutil
from pathlib import Path

import pluggy
import pytest

import kapi.migrate
from kapi import KeyValue, Storage
from kapi.migrate import MigrationError, migrate, store_config
from kapi.plugins import make_plugin_manager
from kapi_plugins import command_migrate
from kapi_plugins.storage_memory import MemoryStorage
from kapi_plugins.storage_sqlite import SQLiteStorage

PREFIX = "/registry"  # the command copies PREFIX/...; migrate() takes the literal prefix


async def fill(store: Storage, count: int = 1234) -> list[tuple[str, bytes]]:
    """``count`` keys under /registry (binary and empty values among them) plus keys outside it."""
    wanted = [(f"{PREFIX}/configmaps/ns{i % 7}/cm-{i:05}", b'{"n":%d}' % i) for i in range(count)]
    wanted += [(f"{PREFIX}/secrets/default/bin", bytes(range(256))), (f"{PREFIX}/events/default/e1", b"")]
    for start in range(0, len(wanted), 200):
        await asyncio.gather(*(store.create(k, v) for k, v in wanted[start:start + 200]))
    await store.create("/registryx/not-copied", b"x")
    await store.create("/other/not-copied", b"x")
    return sorted(wanted)


async def contents(store: Storage, prefix: str = PREFIX + "/") -> list[tuple[str, bytes]]:
    return [(kv.key, kv.value) for kv in (await store.list(prefix)).items]


async def test_sqlite_to_memory_to_sqlite_round_trip(tmp_path: Path) -> None:
    source = SQLiteStorage(tmp_path / "a" / "kapi.db")
    middle = MemoryStorage()
    back = SQLiteStorage(tmp_path / "b" / "kapi.db")
    try:
        wanted = await fill(source)
        assert await migrate(source, middle, PREFIX + "/", page_size=100) == len(wanted)
        assert await contents(middle) == wanted
        assert await contents(middle, "/") == wanted  # nothing outside the prefix
        assert await migrate(middle, back, PREFIX + "/") == len(wanted)
        assert await contents(back) == wanted
    finally:
        for store in (source, middle, back):
            await store.close()


async def test_non_empty_target_is_refused_unless_forced() -> None:
    source, target = MemoryStorage(), MemoryStorage()
    await source.create(f"{PREFIX}/a", b"new")
    await source.create(f"{PREFIX}/b", b"new")
    await target.create(f"{PREFIX}/a", b"old")
    await target.create(f"{PREFIX}/only-target", b"old")
    with pytest.raises(MigrationError, match="already holds keys"):
        await migrate(source, target, PREFIX + "/")
    assert await contents(target) == [(f"{PREFIX}/a", b"old"), (f"{PREFIX}/only-target", b"old")]
    assert await migrate(source, target, PREFIX + "/", force=True) == 2
    assert await contents(target) == [(f"{PREFIX}/a", b"new"), (f"{PREFIX}/b", b"new"),
                                      (f"{PREFIX}/only-target", b"old")]


async def test_snapshot_and_ttl_for() -> None:
    source, target = MemoryStorage(), MemoryStorage()
    for i in range(10):
        await source.create(f"{PREFIX}/events/ns/e{i}", b"e")
    await source.create(f"{PREFIX}/pods/ns/p", b"p")
    ttls: dict[str, int | None] = {}
    create = target.create

    async def recording_create(key: str, value: bytes, *, ttl: int | None = None) -> KeyValue:
        ttls[key] = ttl
        return await create(key, value, ttl=ttl)

    target.create = recording_create  # type: ignore[method-assign]
    list_ = source.list
    revisions: list[int] = []

    async def writing_list(prefix: str, **kwargs: int | str) -> object:  # writes between pages are not copied
        revisions.append(int(kwargs.get("revision", 0)))
        page = await list_(prefix, **kwargs)  # type: ignore[arg-type]
        await source.create(f"{PREFIX}/late/{len(revisions)}", b"late")
        return page

    source.list = writing_list  # type: ignore[method-assign,assignment]
    count = await migrate(source, target, PREFIX + "/", page_size=3,
                          ttl_for=lambda key: 60 if "/events/" in key else None)
    assert count == 11
    assert revisions[0] == 0 and len(set(revisions[1:])) == 1
    assert ttls == {**{f"{PREFIX}/events/ns/e{i}": 60 for i in range(10)}, f"{PREFIX}/pods/ns/p": None}
    await target.close()


def test_store_specs() -> None:
    assert store_config("sqlite:/var/lib/kapi").sqlite_path == Path("/var/lib/kapi/kapi.db")
    assert store_config("sqlite:/var/lib/kapi/kapi.db").data_dir == "/var/lib/kapi"
    config = store_config("etcd:https://a:1, https://b:2", etcd_cafile="ca")
    assert (config.storage_backend, config.etcd_servers, config.etcd_cafile) == ("etcd", ("https://a:1",
                                                                                          "https://b:2"), "ca")
    assert store_config("memory:").storage_backend == "memory"
    for bad in ("sqlite", "sqlite:", "sqlite:/x/other.db", "etcd3:", "memory:x", ":x"):
        with pytest.raises(ValueError):
            store_config(bad)


def run_command(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="kapi")
    command_migrate.kapi_register_commands(subparsers=parser.add_subparsers(dest="command"))
    args = parser.parse_args(["migrate", *argv])
    return int(args.func(args))


def test_hook_kapi_register_commands_migrate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    async def seed() -> list[tuple[str, bytes]]:
        store = SQLiteStorage(tmp_path / "src" / "kapi.db")
        try:
            return await fill(store, 50)
        finally:
            await store.close()

    wanted = asyncio.run(seed())
    assert run_command("--from", f"sqlite:{tmp_path / 'src'}", "--to", f"sqlite:{tmp_path / 'dst' / 'kapi.db'}") == 0
    assert f"copied {len(wanted)} keys" in capsys.readouterr().out
    assert run_command("--from", f"sqlite:{tmp_path / 'src'}", "--to", f"sqlite:{tmp_path / 'dst'}") == 1
    assert "already holds keys" in capsys.readouterr().err
    assert run_command("--from", f"sqlite:{tmp_path / 'missing'}", "--to", "memory:") == 2
    assert "no SQLite store" in capsys.readouterr().err
    assert run_command("--from", f"sqlite:{tmp_path / 'src'}", "--to", "nosuch:") == 2
    assert "unknown storage backend 'nosuch'" in capsys.readouterr().err

    async def check() -> list[tuple[str, bytes]]:
        store = SQLiteStorage(tmp_path / "dst" / "kapi.db")
        try:
            return await contents(store)
        finally:
            await store.close()

    assert asyncio.run(check()) == wanted


@pytest.fixture
def with_etcd_plugin(monkeypatch: pytest.MonkeyPatch) -> None:
    """Plugin managers that hold storage_etcd even before its entry point is installed."""
    from kapi_plugins import storage_etcd

    def make() -> pluggy.PluginManager:
        pm = make_plugin_manager()
        if not pm.has_plugin("storage_etcd"):
            pm.register(storage_etcd, name="storage_etcd")
        return pm

    monkeypatch.setattr(kapi.migrate, "make_plugin_manager", make)


@pytest.mark.skipif(shutil.which("etcd") is None, reason="etcd is not installed")
@pytest.mark.usefixtures("with_etcd_plugin")
def test_sqlite_to_etcd_and_back(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from etcd_server import EtcdCluster

    async def seed() -> list[tuple[str, bytes]]:
        store = SQLiteStorage(tmp_path / "src" / "kapi.db")
        try:
            return await fill(store, 300)
        finally:
            await store.close()

    wanted = asyncio.run(seed())
    with EtcdCluster.started(tmp_path / "etcd") as cluster:
        tls = cluster.client_tls()
        flags = ["--etcd-cafile", tls["ca_file"], "--etcd-certfile", tls["cert_file"], "--etcd-keyfile",
                 tls["key_file"]]
        etcd = "etcd:" + ",".join(cluster.endpoints)
        assert run_command("--from", f"sqlite:{tmp_path / 'src'}", "--to", etcd, *flags) == 0
        assert run_command("--from", etcd, "--to", f"sqlite:{tmp_path / 'back'}", *flags) == 0
        assert "copied 302 keys" in capsys.readouterr().out

    async def check() -> list[tuple[str, bytes]]:
        store = SQLiteStorage(tmp_path / "back" / "kapi.db")
        try:
            return await contents(store, "/")
        finally:
            await store.close()

    assert asyncio.run(check()) == wanted
