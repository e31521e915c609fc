"""kapi.client against a real in-loop API server over mutual TLS: requests, errors, watches,
informers (incl. resume and relist) and leader election."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from tls_server import TLSServer, tls_server

from kapi.client import ApiError, Client, Informer, LeaderElector, object_key, path_for

pytestmark = pytest.mark.timeout(30)

CM = path_for("", "v1", "configmaps", "default")


def cm(name: str, **data: str) -> dict[str, object]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": {"app": "x"}}, "data": data}


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[TLSServer]:
    async with tls_server(tmp_path) as srv:
        yield srv


@pytest.fixture
async def client(server: TLSServer) -> AsyncIterator[Client]:
    async with Client.from_kubeconfig(server.admin_kubeconfig) as c:
        yield c


@pytest.mark.parametrize(("args", "expected"), [
    (("", "v1", "pods"), "/api/v1/pods"),
    (("", "v1", "pods", "ns"), "/api/v1/namespaces/ns/pods"),
    (("", "v1", "pods", "ns", "p", "binding"), "/api/v1/namespaces/ns/pods/p/binding"),
    (("apps", "v1", "deployments", "", "d"), "/apis/apps/v1/deployments/d"),
    (("coordination.k8s.io", "v1", "leases", "kube-system", "x"),
     "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/x"),
])
def test_path_for(args: tuple[str, ...], expected: str) -> None:
    assert path_for(*args) == expected


def test_object_key() -> None:
    assert object_key({"metadata": {"name": "a", "namespace": "b"}}) == "b/a"
    assert object_key({"metadata": {"name": "n1"}}) == "n1"


async def test_crud_over_mutual_tls(client: Client) -> None:
    created = await client.create(CM, cm("a", k="1"))
    assert created["metadata"]["uid"]
    assert (await client.get(f"{CM}/a"))["data"] == {"k": "1"}
    created["data"] = {"k": "2"}
    updated = await client.update(f"{CM}/a", created)
    assert updated["data"] == {"k": "2"}
    with pytest.raises(ApiError) as stale:
        await client.update(f"{CM}/a", created)
    assert stale.value.code == 409 and stale.value.conflict
    patched = await client.patch(f"{CM}/a", {"data": {"j": "3"}})
    assert patched["data"] == {"k": "2", "j": "3"}
    patched = await client.patch(f"{CM}/a", [{"op": "remove", "path": "/data/j"}], type="json")
    assert patched["data"] == {"k": "2"}
    patched = await client.patch(f"{CM}/a", {"metadata": {"labels": {"y": "z"}}}, type="strategic")
    assert patched["metadata"]["labels"] == {"app": "x", "y": "z"}
    listed = await client.list(CM, labelSelector="y=z")
    assert [o["metadata"]["name"] for o in listed["items"]] == ["a"]
    with pytest.raises(ApiError) as wrong_uid:
        await client.delete(f"{CM}/a", options={"preconditions": {"uid": "nope"}})
    assert wrong_uid.value.code == 409
    await client.delete(f"{CM}/a", options={"preconditions": {"uid": created["metadata"]["uid"]}})
    with pytest.raises(ApiError) as missing:
        await client.get(f"{CM}/a")
    assert missing.value.not_found and missing.value.reason == "NotFound"


async def test_identity_is_the_client_certificate(tmp_path: Path) -> None:
    async with tls_server(tmp_path, authorizers=("AlwaysDeny",)) as srv:
        client = Client.from_kubeconfig(srv.kubeconfig_for("kube-scheduler"))
        async with client:
            with pytest.raises(ApiError) as denied:
                await client.list(path_for("", "v1", "pods"))
    assert denied.value.code == 403 and "system:kube-scheduler" in denied.value.message


async def test_connection_error_is_api_error() -> None:
    async with Client("https://127.0.0.1:1", timeout=2) as c:
        with pytest.raises(ApiError) as err:
            await c.get("/version")
    assert err.value.code == 0 and err.value.reason == "ConnectionError"


async def test_watch_events_and_gone(client: Client) -> None:
    first = await client.create(CM, cm("w1"))
    rv = first["metadata"]["resourceVersion"]
    await client.create(CM, cm("w2"))
    await client.delete(f"{CM}/w1")
    seen: list[tuple[str, str]] = []
    async for event in client.watch(CM, rv, timeoutSeconds=1):
        if event["type"] != "BOOKMARK":
            seen.append((event["type"], event["object"]["metadata"]["name"]))
        if len(seen) == 2:
            break
    assert seen == [("ADDED", "w2"), ("DELETED", "w1")]


async def _eventually(check: object, timeout: float = 5) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():  # type: ignore[operator]
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def test_informer_store_handlers_and_selector(client: Client) -> None:
    await client.create(CM, cm("pre"))
    await client.create(CM, {**cm("other"), "metadata": {"name": "other", "labels": {"app": "y"}}})
    events: list[tuple[str, str]] = []
    informer = Informer(client, CM, label_selector="app=x", page_size=1)
    informer.add_handler(on_add=lambda o: events.append(("add", o["metadata"]["name"])),
                         on_update=lambda old, new: events.append(("update", new["metadata"]["name"])))

    async def deleted(obj: dict[str, object]) -> None:
        events.append(("delete", obj["metadata"]["name"]))  # type: ignore[index]

    informer.add_handler(on_delete=deleted)
    informer.start()
    try:
        assert await informer.wait_synced(5)
        assert informer.has_synced and set(informer.store) == {"default/pre"}
        await client.create(CM, cm("live"))
        await client.patch(f"{CM}/live", {"data": {"a": "b"}})
        await client.delete(f"{CM}/pre")
        await _eventually(lambda: len(events) == 4)
        assert events == [("add", "pre"), ("add", "live"), ("update", "live"), ("delete", "pre")]
        assert informer.store["default/live"]["data"] == {"a": "b"}
    finally:
        informer.stop()


async def test_informer_relists_on_gone_and_reports_the_difference(client: Client) -> None:
    await client.create(CM, cm("stays"))
    await client.create(CM, cm("goes"))
    events: list[tuple[str, str]] = []
    informer = Informer(client, CM)
    informer.add_handler(on_add=lambda o: events.append(("add", o["metadata"]["name"])),
                         on_delete=lambda o: events.append(("delete", o["metadata"]["name"])))
    await informer._list()
    # Pretend we were disconnected for long: the server no longer has our revision.
    informer.resource_version = "1"
    informer.store["default/ghost"] = cm("ghost") | {"metadata": {"name": "ghost", "namespace": "default"}}
    await client.delete(f"{CM}/goes")
    calls = {"n": 0}
    real_watch = client.watch

    def expiring_watch(path: str, rv: str = "", **params: object):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 1:
            async def gone():  # type: ignore[no-untyped-def]
                raise ApiError({"code": 410, "reason": "Expired", "message": "too old"})
                yield  # pragma: no cover
            return gone()
        return real_watch(path, rv, **params)

    client.watch = expiring_watch  # type: ignore[method-assign]
    informer.start()
    try:
        await _eventually(lambda: ("delete", "goes") in events and ("delete", "ghost") in events)
        assert set(informer.store) == {"default/stays"}
        await client.create(CM, cm("after"))
        await _eventually(lambda: "default/after" in informer.store)
    finally:
        informer.stop()


async def test_informer_resumes_after_the_watch_ends(client: Client) -> None:
    informer = Informer(client, CM, watch_timeout=1)
    informer.start()
    try:
        assert await informer.wait_synced(5)
        await asyncio.sleep(2.2)  # at least one watch renewal, resumed from the last resourceVersion
        await client.create(CM, cm("late"))
        await _eventually(lambda: "default/late" in informer.store)
    finally:
        informer.stop()


async def test_leader_election_single_leader_and_handover(client: Client) -> None:
    started: list[str] = []
    stopped: list[str] = []

    def candidate(name: str) -> LeaderElector:
        return LeaderElector(client, "default", "lock", name, lease_duration=3, renew_deadline=2,
                             retry_period=0.1)

    a, b = candidate("a"), candidate("b")

    async def work(name: str) -> None:
        started.append(name)
        await asyncio.Event().wait()

    task_a = asyncio.create_task(a.run(lambda: work("a"), lambda: stopped.append("a")))
    await _eventually(lambda: started == ["a"])
    task_b = asyncio.create_task(b.run(lambda: work("b"), lambda: stopped.append("b")))
    await asyncio.sleep(0.5)
    assert started == ["a"] and a.is_leader and not b.is_leader
    lease = await client.get(path_for("coordination.k8s.io", "v1", "leases", "default", "lock"))
    assert lease["spec"]["holderIdentity"] == "a"
    a.stop()
    assert await task_a is False
    await _eventually(lambda: started == ["a", "b"])
    assert stopped == ["a"] and b.is_leader
    lease = await client.get(path_for("coordination.k8s.io", "v1", "leases", "default", "lock"))
    assert lease["spec"]["holderIdentity"] == "b" and lease["spec"]["leaseTransitions"] == 1
    b.stop()
    assert await task_b is False


async def test_leader_takes_over_an_expired_lease(client: Client) -> None:
    stale = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "old"},
             "spec": {"holderIdentity": "gone", "leaseDurationSeconds": 1,
                      "renewTime": "2020-01-01T00:00:00.000000Z"}}
    await client.create(path_for("coordination.k8s.io", "v1", "leases", "default"), stale)
    elector = LeaderElector(client, "default", "old", "new", lease_duration=30, renew_deadline=2, retry_period=0.1)
    assert await elector.try_acquire_or_renew()
