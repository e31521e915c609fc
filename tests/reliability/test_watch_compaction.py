"""Watch integrity through compactions and a crash.

A list-then-watch client (a reflector, the loop behind client-go's informers) follows ConfigMaps on
the SQLite store while a writer creates, updates and deletes them. The server keeps almost no
history (5 revisions, compacted every 0.1 s; a 5-event watch cache), the client pauses between
watches so that its resourceVersion is often compacted away (410 Gone -> it relists), and the
server is SIGKILLed and restarted on the same port mid-run. Every event must fit the client's view
(ADDED for an unknown name, MODIFIED/DELETED for a known one, resourceVersions strictly increasing
within a stream and after the one it resumed from): no duplicate, no gap, no reordering. At the end
the client's view equals the server's list. The official ``kubernetes`` client gets the same 410
(as ApiException) for a compacted resourceVersion and resumes after a relist.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import orjson
import pytest

from tests.e2e.conftest import Server, serving, start_server
from tests.reliability.support import CM_PATH, client

pytestmark = pytest.mark.e2e

FLAGS = ("--watch-cache-size", "5", "--plugin-option", "storage_sqlite.retention_seconds=0",
         "--plugin-option", "storage_sqlite.retention_revisions=5",
         "--plugin-option", "storage_sqlite.maintenance_interval=0.1",
         "--plugin-option", "storage_sqlite.watch_window=5")


@dataclass
class Reflector:
    """The client: ``state`` maps name -> (resourceVersion, data) as seen through list + watch."""

    server: Server
    state: dict[str, tuple[int, dict[str, str]]] = field(default_factory=dict)
    rv: int = 0
    relists: int = 0
    gone: int = 0
    streams: int = 0
    events: int = 0
    disconnects: int = 0
    stop: threading.Event = field(default_factory=threading.Event)
    failure: BaseException | None = None

    def relist(self, http: httpx.Client) -> None:
        listed = http.get(CM_PATH)
        assert listed.status_code == 200, listed.text
        body = listed.json()
        self.state = {o["metadata"]["name"]: (int(o["metadata"]["resourceVersion"]), o.get("data") or {})
                      for o in body["items"]}
        self.rv = int(body["metadata"]["resourceVersion"])
        self.relists += 1

    def apply(self, event: dict[str, object], last: int) -> int:
        """Check one event against the view and apply it; returns its resourceVersion."""
        obj = event["object"]
        assert isinstance(obj, dict)
        name, rv = obj["metadata"]["name"], int(obj["metadata"]["resourceVersion"])
        assert rv > last, f"{event['type']} {name} at {rv} after {last}: duplicate or out of order"
        known = self.state.get(name)
        if event["type"] == "ADDED":
            assert known is None, f"ADDED {name} at {rv}, already seen at {known}"
            self.state[name] = (rv, obj.get("data") or {})
        elif event["type"] == "MODIFIED":
            assert known is not None and known[0] < rv, f"MODIFIED {name} at {rv}, seen {known}: a gap"
            self.state[name] = (rv, obj.get("data") or {})
        else:
            assert event["type"] == "DELETED" and known is not None, f"{event['type']} {name}: a gap"
            del self.state[name]
        self.events += 1
        return rv

    def watch_once(self, http: httpx.Client) -> None:
        """One watch from ``rv`` for up to 1 s; a 410 relists."""
        params = {"watch": "1", "resourceVersion": str(self.rv), "timeoutSeconds": "1"}
        with http.stream("GET", CM_PATH, params=params) as stream:
            assert stream.status_code == 200, stream.read()
            self.streams += 1
            last = self.rv
            for line in stream.iter_lines():
                if not line.strip():
                    continue
                event = orjson.loads(line)
                if event["type"] == "ERROR":
                    assert event["object"]["code"] == 410, event
                    self.gone += 1
                    self.relist(http)
                    return
                last = self.rv = self.apply(event, last)

    def run(self) -> None:
        try:
            self._follow()
        except BaseException as exc:  # reported by the test's thread
            self.failure = exc

    def _follow(self) -> None:
        while not self.stop.is_set():
            try:
                with client(self.server, timeout=5) as http:
                    if not self.relists:
                        self.relist(http)
                    while not self.stop.is_set():
                        self.watch_once(http)
                        if self.streams % 2 == 0:
                            time.sleep(0.4)  # long enough for compaction to overtake the client
            except httpx.TransportError:
                self.disconnects += 1
                time.sleep(0.2)


def write(http: httpx.Client, step: int) -> None:
    """Step ``step`` of the writer: create, update, and delete ConfigMaps in a rolling window."""
    name = f"c{step % 7}"
    got = http.get(f"{CM_PATH}/{name}")
    if got.status_code == 404:
        resp = http.post(CM_PATH, json={"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name},
                                        "data": {"step": str(step)}})
    elif step % 3 == 0:
        resp = http.delete(f"{CM_PATH}/{name}")
    else:
        obj = got.json()
        obj["data"] = {"step": str(step)}
        resp = http.put(f"{CM_PATH}/{name}", json=obj)
    assert resp.status_code in (200, 201), resp.text


def test_reflector_through_compactions_and_a_crash(tmp_path: Path) -> None:
    data = tmp_path / "data"
    server = start_server(data, *FLAGS)
    reflector = Reflector(server)
    thread = threading.Thread(target=reflector.run, daemon=True)
    thread.start()
    try:
        for step in range(150):
            if step == 75:
                server.process.kill()
                server.process.wait(10)
                server = start_server(data, *FLAGS, port=server.port)
            with client(server) as http:
                write(http, step)
            time.sleep(0.02)
        with client(server) as http:
            listed = http.get(CM_PATH).json()["items"]
        final = {o["metadata"]["name"]: (int(o["metadata"]["resourceVersion"]), o.get("data") or {}) for o in listed}
        deadline = time.monotonic() + 15
        while reflector.state != final and time.monotonic() < deadline and thread.is_alive():
            time.sleep(0.1)
    finally:
        reflector.stop.set()
        thread.join(10)
        server.stop()
    print(f"{reflector.events} events in {reflector.streams} watches, {reflector.gone} x 410 -> "
          f"{reflector.relists} lists, {reflector.disconnects} disconnects")
    if reflector.failure is not None:
        raise reflector.failure
    assert reflector.state == final
    assert reflector.gone > 0, "the test never made a watch fall behind compaction"
    assert reflector.disconnects > 0 or reflector.relists > 1


def test_official_client_gets_410_for_a_compacted_resource_version(tmp_path: Path) -> None:
    """The ``kubernetes`` client's watch raises ApiException 410 for a resourceVersion compaction
    removed (what its callers relist on), and a relist plus watch from the new version works."""
    from kubernetes import client as k8s
    from kubernetes import config, watch

    with serving(tmp_path / "data", *FLAGS) as server:
        core = k8s.CoreV1Api(config.new_client_from_config(config_file=str(server.kubeconfig)))
        first = core.list_namespaced_config_map("default").metadata.resource_version
        with client(server) as http:
            for step in range(40):
                write(http, step)
        time.sleep(0.5)  # compaction runs every 0.1 s and keeps 5 revisions
        with pytest.raises(k8s.ApiException) as gone:
            for _event in watch.Watch().stream(core.list_namespaced_config_map, "default",
                                               resource_version=first, timeout_seconds=5):
                pass
        assert gone.value.status == 410
        listed = core.list_namespaced_config_map("default")
        core.create_namespaced_config_map("default", k8s.V1ConfigMap(metadata=k8s.V1ObjectMeta(name="after")))
        stream, seen = watch.Watch(), []
        for event in stream.stream(core.list_namespaced_config_map, "default",
                                   resource_version=listed.metadata.resource_version, timeout_seconds=5):
            seen.append((event["type"], event["object"].metadata.name))
            stream.stop()
        assert seen == [("ADDED", "after")]
