"""No lost updates: many clients doing read-modify-write increments of one ConfigMap counter with
resourceVersion preconditions (retrying on 409) through real kapi-apiserver processes; the counter
must equal the number of acknowledged updates. Memory, SQLite, etcd, and two API servers sharing one etcd."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from etcd_server import EtcdCluster, require_etcd

from tests.e2e.conftest import Server, serving
from tests.reliability.support import aclient, hammer

pytestmark = pytest.mark.e2e

CLIENTS = 16
#: increments per client: small in the default run, larger under ``pytest -m slow``
ROUNDS = [2, pytest.param(12, marks=pytest.mark.slow)]


def etcd_flags(cluster: EtcdCluster) -> tuple[str, ...]:
    tls = cluster.pki.client_tls()
    return ("--etcd-servers", ",".join(cluster.endpoints), "--etcd-cafile", tls["ca_file"],
            "--etcd-certfile", tls["cert_file"], "--etcd-keyfile", tls["key_file"])


@pytest.fixture(scope="module")
def etcd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EtcdCluster]:
    require_etcd()
    with EtcdCluster.started(tmp_path_factory.mktemp("etcd")) as cluster:
        yield cluster


def run_counter(servers: list[Server], name: str, rounds: int) -> tuple[int, int, int, int]:
    async def go() -> tuple[int, int, int, int]:
        clients = [aclient(s) for s in servers]
        try:
            return (*await hammer(clients, name, CLIENTS, rounds), rounds)
        finally:
            for c in clients:
                await c.aclose()

    return asyncio.run(go())


def check(result: tuple[int, int, int, int]) -> None:
    successes, conflicts, counter, rounds = result
    print(f"counter={counter} successes={successes} expected={CLIENTS * rounds} conflicts={conflicts}")
    assert successes == CLIENTS * rounds
    assert counter == successes


@pytest.mark.parametrize("rounds", ROUNDS)
@pytest.mark.parametrize("backend", ["sqlite", "memory"])
def test_one_server(tmp_path: Path, backend: str, rounds: int) -> None:
    with serving(tmp_path / backend, "--storage-backend", backend) as server:
        check(run_counter([server], f"counter-{rounds}", rounds))


@pytest.mark.slow  # the two-server test below covers etcd in the default run
@pytest.mark.parametrize("rounds", ROUNDS)
def test_etcd(tmp_path: Path, etcd: EtcdCluster, rounds: int) -> None:
    with serving(tmp_path / "one", *etcd_flags(etcd)) as server:
        check(run_counter([server], f"counter-one-{rounds}", rounds))


@pytest.mark.parametrize("rounds", ROUNDS)
def test_two_servers_on_one_etcd(tmp_path: Path, etcd: EtcdCluster, rounds: int) -> None:
    with serving(tmp_path / "a", *etcd_flags(etcd)) as first:
        pki = first.data_dir / "pki"
        # the second server shares the first one's PKI, so the admin credentials work on both
        second_dir = tmp_path / "b"
        second_dir.mkdir()
        (second_dir / "pki").symlink_to(pki)
        with serving(second_dir, *etcd_flags(etcd)) as second:
            check(run_counter([first, second], f"counter-two-{rounds}", rounds))
