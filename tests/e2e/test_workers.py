"""Several worker processes on one SQLite file: every write reaches every worker's watch cache."""

from __future__ import annotations

import json
import ssl
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import Server, kubeconfig_files, start_server

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def workers(tmp_path_factory: pytest.TempPathFactory) -> Server:
    srv = start_server(tmp_path_factory.mktemp("kapi-workers"), "--workers", "2")
    yield srv
    srv.stop()


def _ctx(server: Server) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(Path(server.data_dir) / "pki" / "ca.crt"))
    ctx.load_cert_chain(*kubeconfig_files(server))
    return ctx


def test_writes_through_any_worker_reach_every_watch(workers: Server) -> None:
    ctx = _ctx(workers)
    time.sleep(1.0)  # let the second worker bind its socket
    rv = httpx.get(f"{workers.url}/api/v1/namespaces/default/configmaps", verify=ctx).json()["metadata"][
        "resourceVersion"]
    seen: list[list[str]] = [[], [], []]

    def watch(slot: int) -> None:
        url = f"{workers.url}/api/v1/namespaces/default/configmaps?watch=1&resourceVersion={rv}&timeoutSeconds=8"
        with httpx.Client(verify=ctx, timeout=15) as c, c.stream("GET", url) as resp:
            for line in resp.iter_lines():
                if line:
                    seen[slot].append(json.loads(line)["object"]["metadata"]["name"])
                if len(seen[slot]) == 20:
                    return

    threads = [threading.Thread(target=watch, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for i in range(20):  # a new connection each time: the kernel spreads them over the workers
        body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"w{i:02d}"}}
        resp = httpx.post(f"{workers.url}/api/v1/namespaces/default/configmaps", json=body, verify=ctx)
        assert resp.status_code == 201, resp.text
    for t in threads:
        t.join(20)
    expected = [f"w{i:02d}" for i in range(20)]
    assert seen == [expected, expected, expected]
    listed = httpx.get(f"{workers.url}/api/v1/namespaces/default/configmaps", verify=ctx).json()
    assert [i["metadata"]["name"] for i in listed["items"]] == expected
