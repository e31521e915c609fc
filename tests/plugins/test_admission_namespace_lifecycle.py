"""admission_namespace_lifecycle: missing and terminating namespaces, immortal namespaces."""

from __future__ import annotations

from kapi_plugins import admission_namespace_lifecycle as plugin
from tests.plugins.admission_fakes import create_namespace, make_admission_app, running

CM = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "1"}}


def test_aliases() -> None:
    assert plugin.ALIASES == ("NamespaceLifecycle",)


async def test_hook_kapi_mutate_admission() -> None:
    async with running("NamespaceLifecycle") as (_app, client):
        resp = await client.post("/api/v1/namespaces/nope/configmaps", json=CM)
        assert resp.status_code == 404
        assert resp.json()["message"] == 'namespaces "nope" not found'
        await create_namespace(client, "live")
        assert (await client.post("/api/v1/namespaces/live/configmaps", json=CM)).status_code == 201
        # cluster-scoped objects are not checked
        node = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"}}
        assert (await client.post("/api/v1/nodes", json=node)).status_code == 201


async def test_terminating_namespace_refuses_creates_but_allows_updates_and_deletes() -> None:
    async with running("NamespaceLifecycle") as (_app, client):
        await create_namespace(client, "doomed")
        assert (await client.post("/api/v1/namespaces/doomed/configmaps", json=CM)).status_code == 201
        assert (await client.delete("/api/v1/namespaces/doomed")).status_code == 200
        resp = await client.post("/api/v1/namespaces/doomed/configmaps", json={**CM, "metadata": {"name": "d"}})
        assert resp.status_code == 403
        body = resp.json()
        assert body["message"] == ('configmaps "d" is forbidden: unable to create new content in namespace doomed '
                                   'because it is being terminated')
        assert body["details"]["causes"][0]["reason"] == "NamespaceTerminating"
        patch = await client.patch("/api/v1/namespaces/doomed/configmaps/c", json={"data": {"a": "2"}},
                                   headers={"content-type": "application/merge-patch+json"})
        assert patch.status_code == 200
        assert (await client.delete("/api/v1/namespaces/doomed/configmaps/c")).status_code == 200


async def test_hook_kapi_validate_admission() -> None:
    async with running("NamespaceLifecycle") as (_app, client):
        for name in ("default", "kube-system", "kube-public"):
            resp = await client.delete(f"/api/v1/namespaces/{name}")
            assert resp.status_code == 403
            assert resp.json()["message"] == f'namespaces "{name}" is forbidden: this namespace may not be deleted'
        await create_namespace(client, "mortal")
        assert (await client.delete("/api/v1/namespaces/mortal")).status_code == 200


async def test_without_the_plugin_nothing_is_checked() -> None:
    app = make_admission_app()
    await app.startup()
    try:
        from tests.plugins.admission_fakes import client_for

        async with client_for(app) as client:
            assert (await client.post("/api/v1/namespaces/ghost/configmaps", json=CM)).status_code == 201
    finally:
        await app.shutdown()
        await app.storage.close()
