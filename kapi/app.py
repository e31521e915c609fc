"""``App``: one API server instance - configuration, plugins, storage, caches - and its ASGI app.

Nothing here is global: every ``App`` owns a fresh plugin manager, its own storage and its own
watch cache, so several can run in one process. ``App.asgi()`` is a plain ASGI application
(startup and shutdown through the ASGI lifespan) that any ASGI server can host or that can be
mounted inside another Starlette/FastAPI app.

Usage::

    app = kapi.create_app(kapi.Config(storage_backend="memory"))
    asgi = app.asgi()          # serve with hypercorn, uvicorn, or httpx.ASGITransport
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Iterable
from typing import Any, cast

import pluggy
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import BaseRoute

from kapi import hooks
from kapi.config import Config
from kapi.plugins import PluginConfigError, make_plugin_manager, resolve_names
from kapi.resources import DynamicRegistry, ResourceType
from kapi.storage import Storage
from kapi.types import Decision, RequestAttributes
from kapi.watchcache import Dispatcher

log = logging.getLogger("kapi.app")


class Chains:
    """The ordered hook implementations of the request pipeline, resolved once at startup.

    An enabled authorizer plugin that declares ``ALWAYS_ADMIT = True`` (RBAC: its escalation
    checks) runs its admission hooks after the configured admission plugins even when it is not
    named in ``--enable-admission-plugins``.
    """

    def __init__(self, pm: pluggy.PluginManager, config: Config) -> None:
        authenticators = resolve_names(pm, config.authenticators, what="authenticator",
                                       flag="--authentication-plugins", hook="kapi_authenticate")
        if config.anonymous_auth and "authn_anonymous" not in authenticators:
            with contextlib.suppress(PluginConfigError):
                authenticators += resolve_names(pm, ("anonymous",), what="authenticator",
                                                flag="--anonymous-auth", hook="kapi_authenticate")
        authorizers = resolve_names(pm, config.authorizers, what="authorization mode", flag="--authorization-mode",
                                    hook="kapi_authorize")
        admission = resolve_names(pm, config.admission, what="admission plugin", flag="--enable-admission-plugins",
                                  hook="kapi_validate_admission")
        self.authenticate = hooks.resolve_chain(pm, "kapi_authenticate", authenticators)
        self.authorize = hooks.resolve_chain(pm, "kapi_authorize", authorizers)
        admitting = admission + tuple(name for name in authorizers if name not in admission
                                      and getattr(pm.get_plugin(name), "ALWAYS_ADMIT", False))
        self.mutate = hooks.resolve_chain(pm, "kapi_mutate_admission", admitting)
        self.validate = hooks.resolve_chain(pm, "kapi_validate_admission", admitting)
        self.authorizer_names = authorizers
        self.admission_names = admission


class App:
    """One API server. Build with ``create_app``; serve ``asgi()``."""

    def __init__(self, config: Config, pm: pluggy.PluginManager, *, storage: Storage | None = None,
                 resources: Iterable[ResourceType] | None = None) -> None:
        from kapi.kinds import builtin_resources

        self.config = config
        self.pm = pm
        self.registry = DynamicRegistry(resources if resources is not None else builtin_resources())
        self.chains = Chains(pm, config)
        if storage is None:  # an unknown backend fails here, with the fix, not inside the ASGI lifespan
            resolve_names(pm, (config.storage_backend,), what="storage backend", flag="--storage-backend",
                          hook="kapi_storage")
        self.root = config.etcd_prefix.rstrip("/")
        self._given_storage = storage
        self._storage: Storage | None = storage
        self._dispatcher: Dispatcher | None = None
        self._crds: Any = None  # kapi.crds.CRDController, from startup
        self._plugin_state: dict[str, dict[str, Any]] = {}
        self._asgi: Starlette | None = None
        self.state: dict[str, Any] = {}

    # -- accessors ---------------------------------------------------------------------------

    @property
    def storage(self) -> Storage:
        if self._storage is None:
            raise RuntimeError("the app is not started (storage opens in the ASGI lifespan startup)")
        return self._storage

    @property
    def cache(self) -> Dispatcher:
        if self._dispatcher is None:
            raise RuntimeError("the app is not started")
        return self._dispatcher

    @property
    def schema(self) -> Any:
        """The Kubernetes 1.37 schema catalog (loaded once per process; immutable)."""
        from kapi.schema import load_catalog

        return load_catalog()

    async def healthy(self) -> bool:
        """True when storage answers (the /healthz, /livez, /readyz check)."""
        if self._storage is None or self._dispatcher is None:
            return False
        check = getattr(self._storage, "healthy", None)
        try:
            if check is not None:
                return bool(await check())
            await self._storage.current_revision()
        except Exception:
            return False
        return True

    async def authorize(self, attributes: RequestAttributes) -> Decision:
        """The authorizer chain's decision on ``attributes``: ALLOW, or DENY when an authorizer
        denies or none allows (deny by default). For checks beside the request's own
        authorization: impersonation, RBAC's ``escalate``/``bind`` checks, review APIs."""
        from kapi.middleware import authorize

        return await authorize(self, attributes)

    def plugin_state(self, name: str) -> dict[str, Any]:
        """A per-plugin dict for state created in ``kapi_startup`` (never module globals)."""
        return self._plugin_state.setdefault(name, {})

    # -- lifecycle -----------------------------------------------------------------------------

    def _open_storage(self) -> Storage:
        backend = self.config.storage_backend
        names = resolve_names(self.pm, (backend,), what="storage backend", flag="--storage-backend",
                              hook="kapi_storage")
        caller = self.pm.hook.kapi_storage
        for impl in caller.get_hookimpls():
            if impl.plugin_name == names[0]:
                store = impl.function(*[{"config": self.config, "backend": backend}[a] for a in impl.argnames])
                if store is not None:
                    return cast(Storage, store)
        raise PluginConfigError(f"storage plugin {names[0]!r} did not answer for backend {backend!r}")

    async def startup(self) -> None:
        """Open storage, start plugins, fill the watch cache and create the default objects."""
        if self._storage is None:
            self._storage = self._open_storage()
        from kapi.observability import of
        from kapi.observability.storage import instrument

        self._storage = instrument(self._storage, of(self).metrics.etcd, self.root)
        for impl in hooks.all_impls(self.pm, "kapi_startup"):
            try:
                await hooks.await_me_maybe(impl.call({"app": self}))
            except Exception as exc:
                raise RuntimeError(f"plugin {impl.plugin!r} failed to start: {exc}") from exc
        from kapi.crds import CRDController

        self._crds = CRDController(self)
        await self._crds.load()  # stored CRDs' resources are served (and cached) from the start
        prefixes = {rt.key_prefix(self.root) for rt in self.registry}
        self._dispatcher = Dispatcher(self.storage, self.root, prefixes, capacity=self.config.watch_cache_size)
        await self._dispatcher.start()
        self._crds.start()
        from kapi.bootstrap import ensure_defaults

        await ensure_defaults(self)

    async def shutdown(self) -> None:
        """Stop the cache, the plugins and the storage (errors are logged, not raised)."""
        if self._crds is not None:
            await self._crds.stop()
        if self._dispatcher is not None:
            await self._dispatcher.stop()
        for impl in hooks.all_impls(self.pm, "kapi_shutdown"):
            try:
                await hooks.await_me_maybe(impl.call({"app": self}))
            except Exception:
                log.exception("plugin %s failed to shut down", impl.plugin)
        if self._storage is not None and self._given_storage is None:
            await self._storage.close()
            self._storage = None

    @contextlib.asynccontextmanager
    async def lifespan(self, _app: Any = None) -> AsyncIterator[None]:
        await self.startup()
        try:
            yield
        finally:
            await self.shutdown()

    # -- ASGI ----------------------------------------------------------------------------------

    def asgi(self) -> Starlette:
        """The ASGI application (built once)."""
        if self._asgi is None:
            from kapi.middleware import build_middleware
            from kapi.routes import build_routes

            extra: list[BaseRoute] = []
            for impl in hooks.all_impls(self.pm, "kapi_register_routes"):
                extra.extend(impl.call({"app": self}) or [])
            middleware: list[Middleware] = build_middleware(self)
            self._asgi = Starlette(routes=[*extra, *build_routes(self)], middleware=middleware,
                                   lifespan=self.lifespan)
            self._asgi.state.kapi = self
        return self._asgi


def create_app(config: Config | None = None, *, storage: Storage | None = None,
               plugins: Iterable[tuple[str, Any]] = (), load_entrypoints: bool = True,
               resources: Iterable[ResourceType] | None = None) -> App:
    """Build an ``App``.

    :param config: the configuration (defaults: SQLite under the per-user data dir, AlwaysAllow).
    :param storage: an already-open store to use instead of the configured backend (not closed by
        the app).
    :param plugins: extra ``(name, plugin)`` pairs to register (name them in the config lists).
    :param load_entrypoints: load the installed plugins of the ``kapi`` entry-point group.
    :param resources: the resource types to serve (default: the built-in ones).
    """
    config = config or Config()
    pm = make_plugin_manager(load_entrypoints=load_entrypoints, extra=plugins)
    return App(config, pm, storage=storage, resources=resources)
