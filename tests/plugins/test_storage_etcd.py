"""The etcd store against a real etcd over mutual TLS: the storage contract, refused foreign client
certificates, failover in a 3-member cluster, compaction (explicit, by another client, periodic),
leases for TTLs, and the plugin's hooks and option parsing. Skipped when etcd is not installed."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from etcd_server import EtcdCluster, free_ports, require_etcd

import kapi_certs
from kapi import CompactedError, Config, EventType, KeyNotFoundError, KeyValue, Storage, UnavailableError
from kapi.testing.storage_contract import StorageContract, next_event, no_event
from kapi_plugins import storage_etcd
from kapi_plugins.storage_etcd import Endpoints, EtcdStorage, lease_step, parse_duration, prefix_end

# ---------------------------------------------------------------------------------------------
# fixtures


@pytest.fixture(scope="module")
def etcd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EtcdCluster]:
    """One etcd member with client and peer mTLS, shared by the module (tests use distinct keys)."""
    require_etcd()
    with EtcdCluster.started(tmp_path_factory.mktemp("etcd")) as cluster:
        yield cluster


def open_store(cluster: EtcdCluster, **options: Any) -> EtcdStorage:
    return EtcdStorage(cluster.endpoints, **{"compaction_interval": 0, **cluster.client_tls(), **options})


@pytest.fixture
async def store(etcd: EtcdCluster) -> AsyncIterator[EtcdStorage]:
    store = open_store(etcd)
    try:
        yield store
    finally:
        await store.close()


@pytest.fixture
def prefix() -> str:
    return f"/test/{uuid.uuid4().hex}/"


class TestEtcdStorageContract(StorageContract):
    """The contract on a shared etcd: every contract test writes under its own random prefix."""

    @pytest.fixture(autouse=True)
    def _bind_etcd(self, etcd: EtcdCluster) -> None:
        self.cluster = etcd

    async def make_storage(self, tmp_path: Path) -> Storage:
        return open_store(self.cluster)

    async def reopen_storage(self, store: Storage, tmp_path: Path) -> Storage | None:
        await store.close()
        return open_store(self.cluster)


# ---------------------------------------------------------------------------------------------
# TLS


def _write_pair(directory: Path, name: str, cert: Any, key: Any) -> tuple[str, str]:
    cert_path, key_path = directory / f"{name}.crt", directory / f"{name}.key"
    cert_path.write_bytes(kapi_certs.cert_pem(cert))
    key_path.write_bytes(kapi_certs.key_pem(key))
    return str(cert_path), str(key_path)


async def test_client_certificate_from_another_ca_is_refused(etcd: EtcdCluster, tmp_path: Path) -> None:
    rogue_ca, rogue_key = kapi_certs.make_ca("rogue-etcd-ca")
    cert, key = _write_pair(tmp_path, "rogue", *kapi_certs.issue(rogue_ca, rogue_key, cn="kube-apiserver-etcd-client",
                                                                 client=True))
    ca = etcd.client_tls()["ca_file"]
    for tls in ({"cert_file": cert, "key_file": key}, {}):  # a foreign certificate, then none at all
        store = EtcdStorage(etcd.endpoints, ca_file=ca, timeout=0.5, compaction_interval=0, **tls)
        try:
            with pytest.raises(UnavailableError):
                await store.get("/anything")
            assert await store.healthy() is False
        finally:
            await store.close()
    log = etcd.members[0].log_path.read_text(errors="replace")
    assert "certificate signed by unknown authority" in log
    assert "didn't provide a certificate" in log
    good = open_store(etcd)
    try:
        assert await good.healthy() is True
    finally:
        await good.close()


async def test_serving_certificate_from_another_ca_is_refused(etcd: EtcdCluster, tmp_path: Path) -> None:
    rogue_ca, _ = kapi_certs.make_ca("rogue-etcd-ca")
    (tmp_path / "rogue-ca.crt").write_bytes(kapi_certs.cert_pem(rogue_ca))
    store = EtcdStorage(etcd.endpoints, **{**etcd.client_tls(), "ca_file": str(tmp_path / "rogue-ca.crt")},
                        timeout=0.5, compaction_interval=0)
    try:
        with pytest.raises(UnavailableError):
            await store.current_revision()
    finally:
        await store.close()


# ---------------------------------------------------------------------------------------------
# failover


async def _write_retrying(store: EtcdStorage, key: str, budget: float = 15.0) -> KeyValue:
    """A create that an API server client would retry after a 503 (the write may have happened)."""
    deadline = time.monotonic() + budget
    while True:
        try:
            return await store.create(key, b"v")
        except UnavailableError:
            if time.monotonic() > deadline:
                raise
            with contextlib.suppress(KeyNotFoundError):
                return await store.get(key)
            await asyncio.sleep(0.1)


async def test_failover_between_members_of_a_cluster(tmp_path: Path, prefix: str) -> None:
    require_etcd()
    with EtcdCluster.started(tmp_path / "cluster", size=3) as cluster:
        store = open_store(cluster, timeout=2)
        try:
            start = await store.current_revision()
            watch = store.watch(prefix, revision=start)
            written = [await store.create(f"{prefix}a{i:02}", b"v") for i in range(10)]
            leader = cluster.leader()
            cluster.kill(leader)  # writes stall until a new leader is elected, then go on
            written += [await _write_retrying(store, f"{prefix}b{i:02}") for i in range(10)]
            assert len((await store.list(prefix)).items) == 20
            cluster.restart(leader)
            follower = (cluster.leader() + 1) % 3
            cluster.kill(follower)  # requests that went to it move to the others
            written += [await _write_retrying(store, f"{prefix}c{i:02}") for i in range(10)]
            assert [kv.key for kv in (await store.list(prefix)).items] == [kv.key for kv in written]
            events = [await next_event(watch, 15) for _ in written]
            assert [event.kv for event in events] == written  # in order, no gap, no duplicate
            await no_event(watch, 0.2)
            await watch.aclose()
            assert await store.healthy() is True
        finally:
            await store.close()


async def test_unreachable_etcd_is_unavailable(tmp_path: Path) -> None:
    port = free_ports(1)[0]
    store = EtcdStorage([f"http://127.0.0.1:{port}"], timeout=0.5, compaction_interval=0, watch_retry_seconds=0.5)
    try:
        began = time.monotonic()
        with pytest.raises(UnavailableError):
            await store.get("/a")
        with pytest.raises(UnavailableError):
            await store.create("/a", b"1")
        assert time.monotonic() - began < 3
        assert await store.healthy() is False
        with pytest.raises(UnavailableError):
            await asyncio.wait_for(anext(store.watch("/", revision=1)), 5)
    finally:
        await store.close()


# ---------------------------------------------------------------------------------------------
# compaction


async def test_compaction_by_another_client_is_reported(etcd: EtcdCluster, store: EtcdStorage, prefix: str) -> None:
    a = await store.create(prefix + "a", b"1")
    b = await store.update(prefix + "a", b"2", expected_revision=a.revision)
    other = open_store(etcd)
    try:
        await other.compact(b.revision)
    finally:
        await other.close()
    with pytest.raises(CompactedError) as info:
        await store.list(prefix, revision=a.revision)
    assert (info.value.requested, info.value.compacted) == (a.revision, b.revision)
    watch = store.watch(prefix, revision=a.revision)
    with pytest.raises(CompactedError) as info:
        await next_event(watch)
    assert info.value.compacted == b.revision
    await store.compact(a.revision)  # older than the compaction point: a no-op
    await store.compact(b.revision + 10**9)  # a future revision: compacts to the current one
    assert (await store.list(prefix)).items == [b]


async def test_periodic_compaction(etcd: EtcdCluster, prefix: str) -> None:
    store = open_store(etcd, compaction_interval=0.2)
    try:
        first = await store.create(prefix + "a", b"1")
        deadline = time.monotonic() + 5
        while True:
            await store.update(prefix + "a", b"x", expected_revision=(await store.get(prefix + "a")).revision)
            try:
                await store.list(prefix, revision=first.revision)
            except CompactedError:
                break
            assert time.monotonic() < deadline, "the compactor did not compact within 5 s"
            await asyncio.sleep(0.1)
    finally:
        await store.close()


# ---------------------------------------------------------------------------------------------
# TTL and leases


async def test_keys_with_one_expiry_share_a_lease_and_updates_keep_it(store: EtcdStorage, prefix: str) -> None:
    from etcd3aio import _protobuf as pb

    async def leases() -> set[int]:
        response = await store._lease_stub.LeaseLeases(pb.LeaseLeasesRequest(), timeout=5)
        return {lease.ID for lease in response.leases}

    watch = store.watch(prefix, revision=await store.current_revision())
    try:
        existing = await leases()
        kvs = await asyncio.gather(*(store.create(f"{prefix}e{i}", b"1", ttl=1) for i in range(8)))
        assert len(await leases() - existing) in (1, 2)  # 2 only if the creates straddled a second
        updated = await store.update(kvs[0].key, b"2", expected_revision=kvs[0].revision)
        for _ in range(9):
            await next_event(watch)
        deleted = {}
        for _ in kvs:
            event = await next_event(watch, 1 + 5)
            assert event.type is EventType.DELETED
            deleted[event.kv.key] = event.kv.value
        assert deleted == {kv.key: (b"2" if kv.key == updated.key else b"1") for kv in kvs}
        assert (await store.list(prefix)).items == []
    finally:
        await watch.aclose()


def test_lease_buckets() -> None:
    assert [lease_step(t) for t in (1, 10, 30, 100, 3600, 86400)] == [1, 1, 1, 5, 60, 60]


# ---------------------------------------------------------------------------------------------
# hooks, options, pure helpers


def test_hook_kapi_storage_answers_etcd3_and_etcd(etcd: EtcdCluster) -> None:
    tls = etcd.client_tls()
    config = Config(storage_backend="etcd3", etcd_servers=etcd.endpoints, etcd_cafile=tls["ca_file"],
                    etcd_certfile=tls["cert_file"], etcd_keyfile=tls["key_file"],
                    plugin_options={"storage_etcd": {"timeout": "3", "compaction_interval": "0"}})
    assert storage_etcd.kapi_storage(config=config, backend="sqlite") is None
    for backend in ("etcd3", "etcd"):
        store = storage_etcd.kapi_storage(config=config, backend=backend)
        assert isinstance(store, EtcdStorage)
        assert isinstance(store, Storage)
        asyncio.run(store.close())


def test_bad_configuration_is_refused(etcd: EtcdCluster, tmp_path: Path) -> None:
    tls = etcd.client_tls()
    good = Config(etcd_servers=etcd.endpoints, etcd_cafile=tls["ca_file"], etcd_certfile=tls["cert_file"],
                  etcd_keyfile=tls["key_file"])
    for changes, message in (
        ({"etcd_servers": ()}, "empty"),
        ({"etcd_cafile": ""}, "need --etcd-cafile"),
        ({"etcd_keyfile": ""}, "go together"),
        ({"etcd_cafile": str(tmp_path / "missing.crt")}, "cannot read --etcd-cafile"),
        ({"etcd_servers": ("https://127.0.0.1:1", "http://127.0.0.1:2")}, "mixes http"),
        ({"etcd_servers": ("http://127.0.0.1:2379",)}, "uses http://"),
        ({"etcd_servers": ("https://127.0.0.1",)}, "bad etcd URL"),
        ({"plugin_options": {"storage_etcd": {"colour": "red"}}}, "unknown option"),
        ({"plugin_options": {"storage_etcd": {"timeout": "0"}}}, "positive"),
    ):
        with pytest.raises(ValueError, match=message):
            EtcdStorage.from_config(good.with_changes(**changes))


def test_hook_kapi_add_options_and_read_options() -> None:
    parser = argparse.ArgumentParser()
    storage_etcd.kapi_add_options(parser=parser)
    assert storage_etcd.kapi_read_options(args=parser.parse_args([])) is None
    args = parser.parse_args(["--etcd-compaction-interval", "1h30m"])
    assert storage_etcd.kapi_read_options(args=args) == {"compaction_interval": 5400.0}
    with pytest.raises(ValueError, match="--etcd-compaction-interval"):
        storage_etcd.kapi_read_options(args=parser.parse_args(["--etcd-compaction-interval", "5 minutes"]))


@pytest.mark.parametrize(("text", "seconds"), [("5m", 300), ("0", 0), ("90", 90), ("1h30m", 5400), ("1.5s", 1.5),
                                               ("250ms", 0.25), ("2h0m10s", 7210)])
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "m", "5x", "5m junk", "-"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


@pytest.mark.parametrize(("urls", "target", "secure", "name"), [
    (("https://127.0.0.1:2379",), "ipv4:127.0.0.1:2379", True, "127.0.0.1"),
    (("127.0.0.1:2379", "127.0.0.2:2380"), "ipv4:127.0.0.1:2379,127.0.0.2:2380", True, "127.0.0.1"),
    (("http://localhost:2379",), "ipv4:127.0.0.1:2379", False, "localhost"),
    (("https://[::1]:2379", "https://[::1]:2380"), "ipv6:[::1]:2379,[::1]:2380", True, "::1"),
])
def test_endpoints(urls: tuple[str, ...], target: str, secure: bool, name: str) -> None:
    assert Endpoints.parse(urls) == Endpoints(target, secure, name)


def test_prefix_end() -> None:
    assert prefix_end(b"/registry/pods/") == b"/registry/pods0"
    assert prefix_end(b"a\xff\xff") == b"b"
    assert prefix_end(b"") == prefix_end(b"\xff") == b"\x00"
