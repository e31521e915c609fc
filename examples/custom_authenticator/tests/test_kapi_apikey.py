"""The plugin's own tests: alone, in process, with kapi's testing helpers (no server, no install)."""

from __future__ import annotations

from pathlib import Path

import kapi_apikey

from kapi.testing.plugins import client_for, make_test_app, running


async def test_api_keys_name_the_caller(tmp_path: Path) -> None:
    keys = tmp_path / "keys.csv"
    keys.write_text("# key,user,groups\nsecret-1,ci-robot,deployers|ops\n")
    app = make_test_app(plugins=[("apikey", kapi_apikey)], authenticators=("apikey",),
                        plugin_options={"apikey": {"file": str(keys)}})
    async with running(app), client_for(app, user="") as client:
        review = {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
        me = await client.post("/apis/authentication.k8s.io/v1/selfsubjectreviews", json=review,
                               headers={"X-Api-Key": "secret-1"})
        wrong = await client.get("/api/v1/namespaces", headers={"X-Api-Key": "guess"})
        none = await client.get("/api/v1/namespaces")
    assert me.json()["status"]["userInfo"] == {"username": "ci-robot",
                                               "groups": ["deployers", "ops", "system:authenticated"]}
    assert wrong.status_code == 401 and none.status_code == 401
