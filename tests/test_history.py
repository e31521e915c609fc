"""resourceVersions older than the kept history: watches get a 410 Expired event, continue tokens a 410."""

from __future__ import annotations

import json

from tests.conftest import client_for, make_app

CM = {"apiVersion": "v1", "kind": "ConfigMap"}


async def test_too_old_watch_and_continue_are_gone() -> None:
    app = make_app(watch_cache_size=5, plugin_options={"storage_memory": {"history": 10}})
    await app.startup()
    try:
        async with client_for(app) as c:
            for i in range(5):
                await c.post("/api/v1/namespaces/default/configmaps", json={**CM, "metadata": {"name": f"a{i}"}})
            first = (await c.get("/api/v1/namespaces/default/configmaps?limit=2")).json()
            token = first["metadata"]["continue"]
            old_rv = first["metadata"]["resourceVersion"]
            for i in range(40):
                await c.post("/api/v1/namespaces/default/configmaps", json={**CM, "metadata": {"name": f"b{i}"}})
            expired = await c.get(f"/api/v1/namespaces/default/configmaps?limit=2&continue={token}")
            assert expired.status_code == 410 and expired.json()["reason"] == "Expired"
            events = []
            url = f"/api/v1/namespaces/default/configmaps?watch=1&resourceVersion={old_rv}&timeoutSeconds=2"
            async with c.stream("GET", url) as stream:
                async for line in stream.aiter_lines():
                    if line:
                        events.append(json.loads(line))
                        break
            assert events[0]["type"] == "ERROR"
            assert events[0]["object"]["code"] == 410 and events[0]["object"]["reason"] == "Expired"
            # a fresh list and a watch from its resourceVersion work again
            rv = (await c.get("/api/v1/namespaces/default/configmaps")).json()["metadata"]["resourceVersion"]
            async with c.stream("GET", f"/api/v1/namespaces/default/configmaps?watch=1&resourceVersion={rv}"
                                       f"&timeoutSeconds=1") as stream:
                assert stream.status_code == 200
    finally:
        await app.shutdown()


async def test_inflight_limit_answers_429_with_retry_after() -> None:
    import asyncio

    import kapi
    from kapi import hookimpl
    from tests.conftest import HeaderAuthenticator

    release = asyncio.Event()

    class Slow:
        @hookimpl
        async def kapi_validate_admission(self) -> None:
            await release.wait()

    cfg = kapi.Config(storage_backend="memory", authenticators=("test-header",), admission=("slow",),
                      max_mutating_requests_inflight=1)
    app = kapi.create_app(cfg, plugins=[("test-header", HeaderAuthenticator()), ("slow", Slow())])
    await app.startup()
    try:
        async with client_for(app) as c:
            first = asyncio.ensure_future(c.post("/api/v1/namespaces/default/configmaps",
                                                 json={**CM, "metadata": {"name": "held"}}))
            await asyncio.sleep(0.2)
            second = await c.post("/api/v1/namespaces/default/configmaps", json={**CM, "metadata": {"name": "x"}})
            assert second.status_code == 429
            assert second.headers["retry-after"] == "1" and second.json()["reason"] == "TooManyRequests"
            assert (await c.get("/api/v1/namespaces/default/configmaps")).status_code == 200  # reads not limited
            release.set()
            assert (await first).status_code == 201
    finally:
        await app.shutdown()
