"""examples/team_policy.py: a custom authorizer and admission plugin, exercised through the API."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import kapi
from tests.conftest import HeaderAuthenticator, client_for

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "team_policy.py"


def load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("team_policy", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def test_team_policy_authorizes_and_admits() -> None:
    policy = load_example()
    cfg = kapi.Config(storage_backend="memory", authenticators=("test-header",), authorizers=("TeamPolicy",),
                      admission=("TeamPolicy",))
    app = kapi.create_app(cfg, plugins=[("test-header", HeaderAuthenticator()), ("team_policy", policy)])
    await app.startup()
    try:
        async with client_for(app, user="root:system:masters") as root:
            # no authorizer allows root here: TeamPolicy has no opinion, the chain denies
            assert (await root.get("/api/v1/namespaces")).status_code == 403
        setup = kapi.create_app(cfg.with_changes(authorizers=("AlwaysAllow",)), storage=app.storage,
                                plugins=[("test-header", HeaderAuthenticator()), ("team_policy", policy)])
        await setup.startup()
        try:
            async with client_for(setup, user="admin") as admin:
                for ns in ("team-blue", "team-red"):
                    body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}
                    assert (await admin.post("/api/v1/namespaces", json=body)).status_code == 201
        finally:
            await setup.shutdown()
        await app.cache.sync()
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
               "spec": {"containers": [{"name": "c", "image": "busybox"}]}}
        async with client_for(app, user="ann:team:blue") as ann:
            created = await ann.post("/api/v1/namespaces/team-blue/pods", json=pod)
            assert created.status_code == 201, created.text
            assert created.json()["metadata"]["labels"] == {"team": "blue"}
            assert (await ann.get("/api/v1/namespaces/team-red/pods")).status_code == 403
            assert (await ann.get("/api/v1/namespaces")).status_code == 200
            privileged = {**pod, "metadata": {"name": "p2"}, "spec": {"containers": [
                {"name": "c", "image": "busybox", "securityContext": {"privileged": True}}]}}
            denied = await ann.post("/api/v1/namespaces/team-blue/pods", json=privileged)
            assert denied.status_code == 403 and "TeamPolicy" in denied.json()["message"]
    finally:
        await app.shutdown()
