"""The API through the in-process ASGI app (memory store): REST semantics, watch, tables, discovery."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

import kapi
from tests.conftest import client_for, make_app

CM = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}, "data": {"k": "v"}}


async def test_create_get_update_delete(client: httpx.AsyncClient) -> None:
    resp = await client.post("/api/v1/namespaces/default/configmaps", json=CM)
    assert resp.status_code == 201, resp.text
    created = resp.json()
    meta = created["metadata"]
    assert meta["namespace"] == "default" and meta["uid"] and meta["creationTimestamp"] and meta["resourceVersion"]
    got = (await client.get("/api/v1/namespaces/default/configmaps/a")).json()
    assert got == created
    got["data"]["k"] = "w"
    updated = (await client.put("/api/v1/namespaces/default/configmaps/a", json=got)).json()
    assert updated["data"]["k"] == "w" and int(updated["metadata"]["resourceVersion"]) > int(meta["resourceVersion"])
    stale = await client.put("/api/v1/namespaces/default/configmaps/a", json=got)
    assert stale.status_code == 409 and stale.json()["reason"] == "Conflict"
    same = await client.put("/api/v1/namespaces/default/configmaps/a", json=updated)
    assert same.json()["metadata"]["resourceVersion"] == updated["metadata"]["resourceVersion"]  # no-op update
    deleted = await client.delete("/api/v1/namespaces/default/configmaps/a")
    assert deleted.status_code == 200
    assert (await client.get("/api/v1/namespaces/default/configmaps/a")).status_code == 404


async def test_errors_are_status_objects(client: httpx.AsyncClient) -> None:
    resp = await client.post("/api/v1/namespaces/default/configmaps", json=CM)
    again = await client.post("/api/v1/namespaces/default/configmaps", json=CM)
    assert again.status_code == 409
    status = again.json()
    assert status["kind"] == "Status" and status["reason"] == "AlreadyExists"
    assert status["details"] == {"name": "a", "kind": "configmaps"}
    assert resp.status_code == 201
    wrong_kind = await client.post("/api/v1/namespaces/default/configmaps", json={**CM, "kind": "Secret"})
    assert wrong_kind.status_code == 400
    bad_name = await client.post("/api/v1/namespaces/default/configmaps",
                                 json={**CM, "metadata": {"name": "Not_Valid"}})
    assert bad_name.status_code == 422
    causes = bad_name.json()["details"]["causes"]
    assert causes[0]["field"] == "metadata.name"
    unknown = await client.get("/apis/nothing.example.com/v1/things")
    assert unknown.status_code == 404 and unknown.json()["kind"] == "Status"


async def test_strict_field_validation(client: httpx.AsyncClient) -> None:
    body = {**CM, "metadata": {"name": "strict"}, "bogus": 1}
    strict = await client.post("/api/v1/namespaces/default/configmaps?fieldValidation=Strict", json=body)
    assert strict.status_code == 400 and 'unknown field "bogus"' in strict.json()["message"]
    warn = await client.post("/api/v1/namespaces/default/configmaps?fieldValidation=Warn", json=body)
    assert warn.status_code == 201 and "bogus" in warn.headers.get("warning", "")


@pytest.mark.parametrize(("ctype", "patch"), [
    ("application/merge-patch+json", {"bogus": 2, "metadata": {"bogus": 3}, "data": {"y": "2"}}),
    ("application/strategic-merge-patch+json", {"bogus": 2, "metadata": {"bogus": 3}, "data": {"y": "2"}}),
    ("application/json-patch+json", [{"op": "add", "path": "/bogus", "value": 2},
                                     {"op": "add", "path": "/metadata/bogus", "value": 3},
                                     {"op": "add", "path": "/data/y", "value": "2"}]),
])
async def test_unknown_fields_of_built_in_kinds_are_dropped(client: httpx.AsyncClient, ctype: str,
                                                            patch: object) -> None:
    """kube-apiserver decodes built-in kinds into typed structs: undeclared fields never reach storage
    (a warning under Warn, nothing under Ignore), whether they came in a create, a put or a patch."""
    path = "/api/v1/namespaces/default/configmaps"
    created = await client.post(path, json={**CM, "metadata": {"name": "u", "bogus": 1}, "bogus": 1})
    assert created.status_code == 201 and "bogus" not in created.json()
    assert created.headers["warning"].count("unknown field") == 2
    patched = await client.patch(f"{path}/u", json=patch, headers={"content-type": ctype})
    assert patched.status_code == 200, patched.text
    assert patched.headers["warning"].count("unknown field") == 2
    put = await client.put(f"{path}/u?fieldValidation=Ignore", json={**patched.json(), "spec": {}})
    assert put.status_code == 200 and "warning" not in put.headers
    stored = (await client.get(f"{path}/u")).json()
    assert stored["data"] == {"k": "v", "y": "2"}
    assert "bogus" not in stored and "spec" not in stored and "bogus" not in stored["metadata"]
    assert "bogus" not in str(stored["metadata"]["managedFields"])


async def test_dry_run_stores_nothing(client: httpx.AsyncClient) -> None:
    resp = await client.post("/api/v1/namespaces/default/configmaps?dryRun=All", json=CM)
    assert resp.status_code == 201
    assert (await client.get("/api/v1/namespaces/default/configmaps/a")).status_code == 404


async def test_list_paging_and_selectors(client: httpx.AsyncClient) -> None:
    for i in range(7):
        body = {**CM, "metadata": {"name": f"c{i}", "labels": {"even": str(i % 2 == 0).lower()}}}
        assert (await client.post("/api/v1/namespaces/default/configmaps", json=body)).status_code == 201
    page = (await client.get("/api/v1/namespaces/default/configmaps?limit=3")).json()
    names = [i["metadata"]["name"] for i in page["items"]]
    while page["metadata"].get("continue"):
        page = (await client.get(f"/api/v1/namespaces/default/configmaps?limit=3&continue="
                                 f"{page['metadata']['continue']}")).json()
        names += [i["metadata"]["name"] for i in page["items"]]
    assert names == [f"c{i}" for i in range(7)]
    even = (await client.get("/api/v1/configmaps?labelSelector=even%3Dtrue")).json()
    assert [i["metadata"]["name"] for i in even["items"]] == ["c0", "c2", "c4", "c6"]
    limited = (await client.get("/api/v1/configmaps?labelSelector=even%3Dtrue&limit=2")).json()
    assert [i["metadata"]["name"] for i in limited["items"]] == ["c0", "c2"] and limited["metadata"]["continue"]


async def test_table_output(client: httpx.AsyncClient) -> None:
    await client.post("/api/v1/namespaces/default/configmaps", json=CM)
    resp = await client.get("/api/v1/namespaces/default/configmaps",
                            headers={"accept": "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"})
    table = resp.json()
    assert table["kind"] == "Table"
    assert [c["name"] for c in table["columnDefinitions"]][:2] == ["Name", "Data"]
    assert table["rows"][0]["cells"][:2] == ["a", 1]
    assert table["rows"][0]["object"]["kind"] == "PartialObjectMetadata"


async def test_watch_from_resource_version(app: kapi.App) -> None:
    async with client_for(app) as c:
        rv = (await c.get("/api/v1/namespaces/default/configmaps")).json()["metadata"]["resourceVersion"]
        await c.post("/api/v1/namespaces/default/configmaps", json=CM)
        await c.patch("/api/v1/namespaces/default/configmaps/a", content=json.dumps({"data": {"k": "2"}}),
                      headers={"content-type": "application/merge-patch+json"})
        await c.delete("/api/v1/namespaces/default/configmaps/a")
        events = []
        async with c.stream("GET", f"/api/v1/namespaces/default/configmaps?watch=1&resourceVersion={rv}"
                                   f"&timeoutSeconds=1") as stream:
            async for line in stream.aiter_lines():
                if line:
                    events.append(json.loads(line))
                if len(events) == 3:
                    break
        assert [e["type"] for e in events] == ["ADDED", "MODIFIED", "DELETED"]
        rvs = [int(e["object"]["metadata"]["resourceVersion"]) for e in events]
        assert rvs == sorted(rvs) and rvs[0] > int(rv)


async def test_watch_send_initial_events(app: kapi.App) -> None:
    async with client_for(app) as c:
        await c.post("/api/v1/namespaces/default/configmaps", json=CM)
        lines = []
        url = ("/api/v1/namespaces/default/configmaps?watch=1&sendInitialEvents=true&allowWatchBookmarks=true"
               "&resourceVersionMatch=NotOlderThan&timeoutSeconds=1")
        async with c.stream("GET", url) as stream:
            async for line in stream.aiter_lines():
                if line:
                    lines.append(json.loads(line))
                if len(lines) == 2:
                    break
        assert lines[0]["type"] == "ADDED"
        assert lines[1]["type"] == "BOOKMARK"
        assert lines[1]["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}


async def test_discovery_documents(client: httpx.AsyncClient) -> None:
    api = (await client.get("/api")).json()
    assert api["kind"] == "APIVersions" and api["versions"] == ["v1"]
    agg = await client.get("/apis", headers={"accept": "application/json;g=apidiscovery.k8s.io;v=v2;"
                                                       "as=APIGroupDiscoveryList,application/json"})
    assert agg.json()["kind"] == "APIGroupDiscoveryList"
    assert "apidiscovery.k8s.io" in agg.headers["content-type"]
    v1 = (await client.get("/api/v1")).json()
    pods = next(r for r in v1["resources"] if r["name"] == "pods")
    assert "po" in pods["shortNames"] and pods["namespaced"]
    version = (await client.get("/version")).json()
    assert version["major"] == "1"


async def test_two_apps_do_not_share_state() -> None:
    first, second = make_app(), make_app()
    await first.startup()
    await second.startup()
    try:
        async with client_for(first) as a, client_for(second) as b:
            assert (await a.post("/api/v1/namespaces/default/configmaps", json=CM)).status_code == 201
            assert (await b.get("/api/v1/namespaces/default/configmaps/a")).status_code == 404
    finally:
        await first.shutdown()
        await second.shutdown()


async def test_authentication_and_authorization_chain() -> None:
    app = make_app(authorizers=("AlwaysDeny",))
    await app.startup()
    try:
        async with client_for(app, user="") as anon, client_for(app, user="bob") as bob:
            assert (await anon.get("/api/v1/pods")).status_code == 401
            denied = await bob.get("/api/v1/namespaces/default/pods")
            assert denied.status_code == 403
            assert denied.json()["message"].startswith('pods is forbidden: User "bob" cannot list resource "pods"')
    finally:
        await app.shutdown()


async def test_concurrent_updates_lose_nothing(app: kapi.App) -> None:
    async with client_for(app) as c:
        await c.post("/api/v1/namespaces/default/configmaps", json={**CM, "data": {"n": "0"}})

        async def bump() -> int:
            done = 0
            for _ in range(10):
                while True:
                    cur = (await c.get("/api/v1/namespaces/default/configmaps/a")).json()
                    cur["data"]["n"] = str(int(cur["data"]["n"]) + 1)
                    resp = await c.put("/api/v1/namespaces/default/configmaps/a", json=cur)
                    if resp.status_code == 200:
                        done += 1
                        break
                    assert resp.status_code == 409
            return done

        total = sum(await asyncio.gather(*(bump() for _ in range(16))))
        final = (await c.get("/api/v1/namespaces/default/configmaps/a")).json()
        assert int(final["data"]["n"]) == total == 160


@pytest.mark.parametrize("ctype", ["application/json-patch+json", "application/merge-patch+json",
                                   "application/strategic-merge-patch+json"])
async def test_patch_types(client: httpx.AsyncClient, ctype: str) -> None:
    await client.post("/api/v1/namespaces/default/configmaps", json=CM)
    body = ([{"op": "add", "path": "/data/x", "value": "1"}] if ctype == "application/json-patch+json"
            else {"data": {"x": "1"}})
    resp = await client.patch("/api/v1/namespaces/default/configmaps/a", content=json.dumps(body),
                              headers={"content-type": ctype})
    assert resp.status_code == 200, resp.text
    assert resp.json()["data"] == {"k": "v", "x": "1"}


async def test_finalizers_delay_deletion(client: httpx.AsyncClient) -> None:
    body = {**CM, "metadata": {"name": "fin", "finalizers": ["example.com/hold"]}}
    await client.post("/api/v1/namespaces/default/configmaps", json=body)
    first = (await client.delete("/api/v1/namespaces/default/configmaps/fin")).json()
    assert first["metadata"]["deletionTimestamp"]
    still = (await client.get("/api/v1/namespaces/default/configmaps/fin")).json()
    still["metadata"]["finalizers"] = []
    await client.put("/api/v1/namespaces/default/configmaps/fin", json=still)
    assert (await client.get("/api/v1/namespaces/default/configmaps/fin")).status_code == 404


async def test_namespace_rules_come_from_namespace_lifecycle() -> None:
    """Missing namespaces and immortal ones are the NamespaceLifecycle admission plugin's rules, as in
    kube-apiserver: with it, 404 and 403; without it (the embedder's default), nothing is checked."""
    app = make_app(admission=("NamespaceLifecycle",))
    await app.startup()
    try:
        async with client_for(app) as client:
            missing_ns = await client.post("/api/v1/namespaces/nope/configmaps", json=CM)
            assert missing_ns.status_code == 404 and missing_ns.json()["message"] == 'namespaces "nope" not found'
            assert (await client.delete("/api/v1/namespaces/default")).status_code == 403
    finally:
        await app.shutdown()


async def test_self_subject_access_review(client: httpx.AsyncClient) -> None:
    review = {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
              "spec": {"resourceAttributes": {"verb": "get", "resource": "pods", "namespace": "default"}}}
    resp = await client.post("/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", json=review)
    assert resp.status_code == 201 and resp.json()["status"]["allowed"] is True
