"""admission_service_account: default account, token volume, existence check, default SA controller."""

from __future__ import annotations

from typing import Any

import pytest

from kapi_plugins import admission_service_account as plugin
from tests.plugins.admission_fakes import create_namespace, eventually, pod, running


def test_aliases() -> None:
    assert plugin.ALIASES == ("ServiceAccount",)


async def _sa(client: Any, ns: str, name: str = "default") -> bool:
    return (await client.get(f"/api/v1/namespaces/{ns}/serviceaccounts/{name}")).status_code == 200


async def test_hook_kapi_startup() -> None:
    async with running("ServiceAccount") as (_app, client):
        await eventually(lambda: _sa(client, "default"))
        await eventually(lambda: _sa(client, "kube-system"))
        await create_namespace(client, "team")
        await eventually(lambda: _sa(client, "team"))
        # deleted: created again; listed once
        assert (await client.delete("/api/v1/namespaces/team/serviceaccounts/default")).status_code == 200
        await eventually(lambda: _sa(client, "team"))
        items = (await client.get("/api/v1/namespaces/team/serviceaccounts")).json()["items"]
        assert [i["metadata"]["name"] for i in items] == ["default"]


async def test_hook_kapi_shutdown() -> None:
    async with running("ServiceAccount") as (app, _client):
        assert app.plugin_state(plugin.PLUGIN_NAME)["tasks"]
    assert not app.plugin_state(plugin.PLUGIN_NAME).get("tasks")


async def test_hook_kapi_mutate_admission() -> None:
    async with running("ServiceAccount") as (_app, client):
        await create_namespace(client, "apps")
        resp = await client.post("/api/v1/namespaces/apps/pods",
                                 json=pod("p", {"name": "a", "image": "x"}, initContainers=[{"name": "i",
                                                                                             "image": "y"}]))
        assert resp.status_code == 201, resp.text
        spec = resp.json()["spec"]
        assert spec["serviceAccountName"] == spec["serviceAccount"] == "default"
        volume = spec["volumes"][-1]
        assert volume["name"].startswith("kube-api-access-") and len(volume["name"]) == len("kube-api-access-") + 5
        assert volume["projected"] == plugin.token_volume_source()
        for container in (*spec["containers"], *spec["initContainers"]):
            assert container["volumeMounts"] == [{"name": volume["name"], "readOnly": True,
                                                  "mountPath": plugin.MOUNT_PATH}]


async def test_automount_opt_out_and_pull_secrets() -> None:
    async with running("ServiceAccount") as (_app, client):
        await create_namespace(client, "apps")
        account = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "builder"},
                   "automountServiceAccountToken": False, "imagePullSecrets": [{"name": "registry"}]}
        assert (await client.post("/api/v1/namespaces/apps/serviceaccounts", json=account)).status_code == 201
        resp = await client.post("/api/v1/namespaces/apps/pods", json=pod("p", serviceAccountName="builder"))
        spec = resp.json()["spec"]
        assert "volumes" not in spec and spec["imagePullSecrets"] == [{"name": "registry"}]
        # the pod's own setting wins over the account's
        resp = await client.post("/api/v1/namespaces/apps/pods",
                                 json=pod("q", serviceAccountName="builder", automountServiceAccountToken=True))
        assert resp.json()["spec"]["volumes"][0]["name"].startswith("kube-api-access-")


async def test_hook_kapi_validate_admission() -> None:
    async with running("ServiceAccount") as (_app, client):
        await create_namespace(client, "apps")
        resp = await client.post("/api/v1/namespaces/apps/pods", json=pod("p", serviceAccountName="ghost"))
        assert resp.status_code == 403
        assert resp.json()["message"] == ('pods "p" is forbidden: error looking up service account apps/ghost: '
                                          'serviceaccount "ghost" not found')
        mirror = pod("m", serviceAccountName="default")
        mirror["metadata"]["annotations"] = {plugin.MIRROR_ANNOTATION: "x"}
        resp = await client.post("/api/v1/namespaces/apps/pods", json=mirror)
        assert resp.status_code == 403 and "a mirror pod may not reference service accounts" in resp.text


@pytest.mark.parametrize(("secret_ref", "allowed"), [("listed", True), ("other", False)])
async def test_enforce_mountable_secrets(secret_ref: str, allowed: bool) -> None:
    async with running("ServiceAccount") as (_app, client):
        await create_namespace(client, "apps")
        account = {"apiVersion": "v1", "kind": "ServiceAccount",
                   "metadata": {"name": "strict", "annotations": {plugin.ENFORCE_ANNOTATION: "true"}},
                   "secrets": [{"name": "listed"}]}
        assert (await client.post("/api/v1/namespaces/apps/serviceaccounts", json=account)).status_code == 201
        volumes = [{"name": "s", "secret": {"secretName": secret_ref}}]
        manifest = pod("p", serviceAccountName="strict", volumes=volumes)
        resp = await client.post("/api/v1/namespaces/apps/pods", json=manifest)
        assert (resp.status_code == 201) is allowed, resp.text
        if not allowed:
            assert 'volume with secret "other" is not allowed because service account strict' in resp.json()["message"]


def test_mount_token_keeps_existing_mounts() -> None:
    spec: dict[str, Any] = {"containers": [{"name": "a", "volumeMounts": [{"name": "own",
                                                                           "mountPath": plugin.MOUNT_PATH}]}]}
    plugin.mount_token(spec)
    assert "volumes" not in spec and len(spec["containers"][0]["volumeMounts"]) == 1
