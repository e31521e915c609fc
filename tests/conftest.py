"""Shared fixtures: an in-process App on the memory store, reached through httpx's ASGITransport.

Requests authenticate with the ``X-Test-User`` header (a throwaway authenticator registered only
here: ``user`` or ``user:group1,group2``); authorization is whatever the test configures
(AlwaysAllow by default).

The pytest kit's fixtures (``kapi_server`` ...) are imported here too, so the kit's own tests use
them whether or not its ``pytest11`` entry point is installed yet (a conftest fixture of the same
name takes precedence over the plugin's).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

import kapi
from kapi import AuthnRequest, UserInfo, hookimpl
from kapi.testing.pytest_plugin import (  # noqa: F401
    kapi_async_client,
    kapi_client,
    kapi_components,
    kapi_config,
    kapi_kubeconfig,
    kapi_pki,
    kapi_plugins,
    kapi_server,
)


class HeaderAuthenticator:
    """Test-only authenticator: ``X-Test-User: name[:group,group]``."""

    @hookimpl
    def kapi_authenticate(self, request: AuthnRequest) -> UserInfo | None:
        value = request.headers.get("x-test-user")
        if not value:
            return None
        name, _, groups = value.partition(":")
        return UserInfo(name=name, groups=tuple(g for g in groups.split(",") if g))


def make_app(**config: Any) -> kapi.App:
    """An App on the memory store with the test authenticator first."""
    authenticators = ("test-header", *config.pop("authenticators", ()))
    cfg = kapi.Config(storage_backend=config.pop("storage_backend", "memory"), authenticators=authenticators,
                      **config)
    return kapi.create_app(cfg, plugins=[("test-header", HeaderAuthenticator())])


@pytest.fixture
async def app() -> AsyncIterator[kapi.App]:
    instance = make_app()
    await instance.startup()
    try:
        yield instance
    finally:
        await instance.shutdown()


def client_for(instance: kapi.App, user: str = "admin:system:masters") -> httpx.AsyncClient:
    headers = {"x-test-user": user} if user else {}
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=instance.asgi()), base_url="https://kapi.test",
                             headers=headers, timeout=10)


@pytest.fixture
async def client(app: kapi.App) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(app) as c:
        yield c
