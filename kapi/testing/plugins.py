"""Helpers to test one plugin in process, without sockets or certificates.

::

    from kapi.testing.plugins import client_for, make_test_app, running
    import my_plugin

    async def test_my_authorizer_denies_interns():
        app = make_test_app(plugins=[("my_authz", my_plugin)], authorizers=("my_authz", "AlwaysAllow"))
        async with running(app), client_for(app, user="intern:interns") as client:
            response = await client.get("/api/v1/namespaces/default/pods")
            assert response.status_code == 403

``make_test_app`` builds an ``App`` on the memory store with the installed plugins, ``plugins``
registered under their names (replacing an installed plugin of the same name, so a plugin's own
tests work before and after it is installed) and a test authenticator first in the chain: the
header ``X-Test-User: NAME[:GROUP,GROUP]`` names the caller. ``client_for`` is an
``httpx.AsyncClient`` on ``httpx.ASGITransport`` that sends that header. Plugins that read
certificates (x509) need a real TLS server: use the ``kapi_server`` pytest fixture instead.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterable
from typing import TYPE_CHECKING, Any

import pluggy

from kapi.app import App
from kapi.config import Config
from kapi.hookspecs import hookimpl
from kapi.plugins import make_plugin_manager
from kapi.storage import Storage
from kapi.types import AuthnRequest, UserInfo

if TYPE_CHECKING:
    import httpx

TEST_AUTHENTICATOR = "test-header"
TEST_USER_HEADER = "x-test-user"


class HeaderAuthenticator:
    """Test-only authenticator: ``X-Test-User: name[:group,group]`` (never enable it in a server)."""

    @hookimpl
    def kapi_authenticate(self, request: AuthnRequest) -> UserInfo | None:
        value = request.headers.get(TEST_USER_HEADER)
        if not value:
            return None
        name, _, groups = value.partition(":")
        return UserInfo(name=name, groups=tuple(g for g in groups.split(",") if g))


def make_test_app(plugins: Iterable[tuple[str, Any]] = (), *, storage: Storage | None = None,
                  load_entrypoints: bool = True, **config: Any) -> App:
    """An ``App`` for plugin tests (see the module docstring).

    :param plugins: ``(name, plugin)`` pairs; name them in the config (``authorizers=(name,)``...).
    :param storage: an open store to use instead of a new memory store.
    :param load_entrypoints: also load the installed plugins (the built-ins among them).
    :param config: ``kapi.Config`` fields; ``authenticators`` are tried after the test header's.
    """
    pm = plugin_manager([(TEST_AUTHENTICATOR, HeaderAuthenticator()), *plugins], load_entrypoints=load_entrypoints)
    authenticators = (TEST_AUTHENTICATOR, *config.pop("authenticators", ()))
    cfg = Config(storage_backend=config.pop("storage_backend", "memory"), authenticators=authenticators, **config)
    return App(cfg, pm, storage=storage)


def plugin_manager(plugins: Iterable[tuple[str, Any]] = (), *, load_entrypoints: bool = True) -> pluggy.PluginManager:
    """A plugin manager with the installed plugins and ``plugins``, each registered under its name
    and replacing an installed plugin of that name (so a plugin's tests work installed or not)."""
    pm = make_plugin_manager(load_entrypoints=load_entrypoints)
    for name, plugin in plugins:
        if pm.get_plugin(name) is not None:
            pm.unregister(name=name)
        pm.register(plugin, name=name)
    pm.check_pending()
    return pm


@contextlib.asynccontextmanager
async def running(app: App) -> AsyncIterator[App]:
    """Start ``app`` (storage, plugins' ``kapi_startup``, caches) for the block, then shut it down."""
    await app.startup()
    try:
        yield app
    finally:
        await app.shutdown()


def client_for(app: App, user: str = "admin:system:masters", **kwargs: Any) -> httpx.AsyncClient:
    """An in-process ``httpx.AsyncClient`` for ``app`` acting as ``user`` (``NAME[:GROUP,...]``;
    ``""`` sends no identity). Start the app first (``running``)."""
    import httpx

    headers = {TEST_USER_HEADER: user} if user else {}
    headers.update(kwargs.pop("headers", {}))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app.asgi()), base_url="https://kapi.test",
                             headers=headers, timeout=kwargs.pop("timeout", 10), **kwargs)


__all__ = ["TEST_AUTHENTICATOR", "TEST_USER_HEADER", "HeaderAuthenticator", "client_for", "make_test_app",
           "plugin_manager", "running"]
