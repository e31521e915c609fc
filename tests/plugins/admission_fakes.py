"""Helpers for the admission plugin tests: an in-process App on memory storage with the named
admission plugins (registered explicitly, so the tests do not depend on installed entry points)
and an httpx client speaking to it as a chosen user.

Users are given as ``name|group,group`` (``X-Admission-Test-User``): node identities such as
``system:node:n1`` contain colons, which the suite-wide ``X-Test-User`` format cannot carry.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx

from kapi import App, AuthnRequest, Config, UserInfo, create_app, hookimpl
from kapi.kinds import builtin_resources
from kapi_plugins.storage_memory import MemoryStorage

ADMIN = "admin|system:masters"

#: kube plugin name -> kapi plugin module
MODULES = {
    "NamespaceLifecycle": "admission_namespace_lifecycle",
    "ServiceAccount": "admission_service_account",
    "NodeRestriction": "admission_node_restriction",
    "LimitRanger": "admission_limit_ranger",
    "ResourceQuota": "admission_resource_quota",
    "PodSecurity": "admission_pod_security",
    "DefaultTolerationSeconds": "admission_default_toleration_seconds",
    "Priority": "admission_priority",
    "TaintNodesByCondition": "admission_taint_nodes_by_condition",
    "AlwaysPullImages": "admission_always_pull_images",
    "MutatingAdmissionWebhook": "admission_mutating_webhook",
    "ValidatingAdmissionWebhook": "admission_validating_webhook",
    "ValidatingAdmissionPolicy": "admission_validating_admission_policy",
}


class UserHeader:
    """Test-only authenticator: ``X-Admission-Test-User: name|group,group``."""

    @hookimpl
    def kapi_authenticate(self, request: AuthnRequest) -> UserInfo | None:
        value = request.headers.get("x-admission-test-user")
        if not value:
            return None
        name, _, groups = value.partition("|")
        return UserInfo(name=name, groups=tuple(g for g in groups.split(",") if g))


def make_admission_app(*admission: str, options: dict[str, dict[str, Any]] | None = None, **config: Any) -> App:
    """An App (not started) on memory storage with the test header authenticator and the given
    admission plugins (kube names), in that order."""
    allow = importlib.import_module("kapi_plugins.authz_always_allow")
    plugins: list[tuple[str, Any]] = [("test-user", UserHeader()), ("authz_always_allow", allow)]
    for name in admission:
        module = MODULES[name]
        plugins.append((module, importlib.import_module(f"kapi_plugins.{module}")))
    cfg = Config(storage_backend="memory", authenticators=("test-user",), admission=admission,
                 plugin_options=options or {}, **config)
    return create_app(cfg, storage=MemoryStorage(), plugins=plugins, load_entrypoints=False,
                      resources=builtin_resources())


def client_for(app: App, user: str = ADMIN) -> httpx.AsyncClient:
    """A client of ``app`` authenticated as ``user`` (``name|group,group``)."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app.asgi()), base_url="https://kapi.test",
                             headers={"x-admission-test-user": user}, timeout=10)


@contextlib.asynccontextmanager
async def running(*admission: str, options: dict[str, dict[str, Any]] | None = None,
                  **config: Any) -> AsyncIterator[tuple[App, httpx.AsyncClient]]:
    """A started app with the admission plugins, and an admin client."""
    app = make_admission_app(*admission, options=options, **config)
    await app.startup()
    try:
        async with client_for(app) as client:
            yield app, client
    finally:
        await app.shutdown()
        await app.storage.close()


async def eventually(check: Callable[[], Any], timeout: float = 3.0) -> Any:
    """Poll ``check`` (sync or async) until it returns a truthy value; the value, or AssertionError."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = check()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


def pod(name: str, *containers: dict[str, Any], **spec: Any) -> dict[str, Any]:
    """A minimal Pod manifest (one ``nginx`` container unless containers are given)."""
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"containers": list(containers) or [{"name": "c", "image": "nginx"}], **spec}}


async def create_namespace(client: httpx.AsyncClient, name: str, labels: dict[str, str] | None = None) -> None:
    resp = await client.post("/api/v1/namespaces", json={"apiVersion": "v1", "kind": "Namespace",
                                                         "metadata": {"name": name, "labels": labels or {}}})
    assert resp.status_code == 201, resp.text
