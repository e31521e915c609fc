"""Watch integrity through a server crash: a client watching ConfigMaps on SQLite sees events, the
API server is killed (SIGKILL) and restarted on the same data, more writes happen, and the client
resumes from the last resourceVersion it saw: together its two streams hold every acknowledged
write exactly once, in resourceVersion order (SQLite keeps the history the new watch cache needs)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests.e2e.conftest import Server, start_server
from tests.reliability.support import CM_PATH, client

pytestmark = pytest.mark.e2e


def create(http: httpx.Client, name: str) -> tuple[str, int]:
    resp = http.post(CM_PATH, json={"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}})
    assert resp.status_code == 201, resp.text
    return name, int(resp.json()["metadata"]["resourceVersion"])


def read_events(lines: Iterator[str], count: int | None) -> list[tuple[str, int]]:
    """``count`` events of a stream's lines (or all until it ends), as (name, resourceVersion)."""
    got: list[tuple[str, int]] = []
    for line in lines:
        if not line.strip():
            continue
        event = orjson.loads(line)
        assert event["type"] != "ERROR", event
        meta = event["object"]["metadata"]
        got.append((meta["name"], int(meta["resourceVersion"])))
        if count is not None and len(got) == count:
            break
    return got


def watch(http: httpx.Client, rv: int, seconds: int) -> Any:
    return http.stream("GET", CM_PATH, params={"watch": "1", "resourceVersion": str(rv),
                                               "timeoutSeconds": str(seconds)}, timeout=30)


def test_watch_resumes_after_restart_without_gaps(tmp_path: Path) -> None:
    data = tmp_path / "data"
    server: Server = start_server(data)
    acked: list[tuple[str, int]] = []
    seen: list[tuple[str, int]] = []
    try:
        with client(server) as http:
            start = int(http.get(CM_PATH).json()["metadata"]["resourceVersion"])
            acked += [create(http, f"w-{i}") for i in range(10)]
            with watch(http, start, 30) as stream:
                assert stream.status_code == 200
                lines = stream.iter_lines()
                seen += read_events(lines, 10)
                acked += [create(http, f"w-{i}") for i in range(10, 15)]
                seen += read_events(lines, 5)
        server.process.kill()
        server.process.wait(10)
        server = start_server(data)  # a new port: the client reconnects like after a failover
        with client(server) as http:
            acked += [create(http, f"w-{i}") for i in range(15, 25)]
            with watch(http, seen[-1][1], 2) as stream:
                assert stream.status_code == 200
                seen += read_events(stream.iter_lines(), None)
    finally:
        server.stop()
    ours = [event for event in seen if event[0].startswith("w-")]
    rvs = [rv for _, rv in seen]
    assert rvs == sorted(set(rvs)), "events out of order or duplicated"
    assert ours == acked
