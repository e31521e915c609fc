"""High availability with real processes: a 3-member etcd cluster (peer TLS) and 2 kapi-apiservers.

A write through one API server reaches watchers on the other; a watcher whose API server is killed
resumes on the other from its last resourceVersion with no gap and no duplicate; with one etcd member
killed writes keep working; with etcd down entirely the API server answers 503 quickly, /readyz
fails, and both recover by themselves when etcd returns.
"""

from __future__ import annotations

import json
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import Server, kubeconfig_files, start_server
from tests.etcd_server import EtcdCluster, require_etcd
from tests.reliability.test_lost_updates import etcd_flags

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EtcdCluster]:
    require_etcd()
    with EtcdCluster.started(tmp_path_factory.mktemp("etcd-ha"), size=3) as etcd:
        yield etcd


@pytest.fixture
def servers(tmp_path: Path, cluster: EtcdCluster) -> Iterator[list[Server]]:
    first = start_server(tmp_path / "a", *etcd_flags(cluster))
    second_dir = tmp_path / "b"
    second_dir.mkdir()
    (second_dir / "pki").symlink_to(first.data_dir / "pki")  # one PKI, as behind a load balancer
    try:
        second = start_server(second_dir, *etcd_flags(cluster))
    except BaseException:
        first.stop()
        raise
    yield [first, second]
    second.stop()
    first.stop()


def _ctx(server: Server) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(server.data_dir / "pki" / "ca.crt"))
    ctx.load_cert_chain(*kubeconfig_files(server))
    return ctx


def _create(server: Server, name: str) -> httpx.Response:
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}}
    return httpx.post(f"{server.url}/api/v1/namespaces/default/configmaps", json=body, verify=_ctx(server),
                      timeout=15)


def test_watch_moves_to_the_other_server_without_gaps(servers: list[Server]) -> None:
    first, second = servers
    rv = httpx.get(f"{first.url}/api/v1/namespaces/default/configmaps", verify=_ctx(first)).json()[
        "metadata"]["resourceVersion"]
    seen: list[tuple[str, str]] = []
    last_rv = [rv]

    def watch(server: Server, since: str, want: int) -> None:
        url = f"{server.url}/api/v1/namespaces/default/configmaps?watch=1&resourceVersion={since}&timeoutSeconds=15"
        try:
            with httpx.Client(verify=_ctx(server), timeout=20) as c, c.stream("GET", url) as resp:
                for line in resp.iter_lines():
                    if not line:
                        continue
                    event = json.loads(line)
                    seen.append((event["type"], event["object"]["metadata"]["name"]))
                    last_rv[0] = event["object"]["metadata"]["resourceVersion"]
                    if len(seen) >= want:
                        return
        except httpx.HTTPError:
            return  # the server went away: resume elsewhere

    thread = threading.Thread(target=watch, args=(first, rv, 5))
    thread.start()
    for i in range(5):  # written through the OTHER server
        assert _create(second, f"ha-{i}").status_code == 201
    thread.join(20)
    assert [n for _, n in seen] == [f"ha-{i}" for i in range(5)]
    first.stop()  # the watcher's API server dies
    for i in range(5, 10):
        assert _create(second, f"ha-{i}").status_code == 201
    watch(second, last_rv[0], 10)
    assert seen == [("ADDED", f"ha-{i}") for i in range(10)]


def test_member_loss_and_total_outage(servers: list[Server], cluster: EtcdCluster) -> None:
    first, _second = servers
    acknowledged = [f"m-{i}" for i in range(5) if _create(first, f"m-{i}").status_code == 201]
    cluster.kill(cluster.leader())
    outcomes = [(f"n-{i}", _create(first, f"n-{i}").status_code) for i in range(10)]
    assert all(code in (201, 503, 504) for _, code in outcomes), outcomes
    acknowledged += [name for name, code in outcomes if code == 201]
    assert len(acknowledged) >= 10  # most writes go through with 2 of 3 members
    for index in range(3):
        if cluster.members[index].running:
            cluster.kill(index)
    started = time.monotonic()
    down = _create(first, "while-down")
    assert down.status_code in (503, 504) and down.json()["kind"] == "Status"
    assert time.monotonic() - started < 15
    ready = httpx.get(f"{first.url}/readyz", verify=_ctx(first), timeout=15)
    assert ready.status_code != 200
    cluster.restart_all()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if httpx.get(f"{first.url}/readyz", verify=_ctx(first), timeout=10).status_code == 200:
            break
        time.sleep(0.5)
    else:
        pytest.fail("the API server did not become ready again after etcd returned")
    assert _create(first, "after").status_code == 201
    names = {i["metadata"]["name"] for i in httpx.get(f"{first.url}/api/v1/namespaces/default/configmaps",
                                                       verify=_ctx(first), timeout=15).json()["items"]}
    assert set(acknowledged) <= names and "after" in names
