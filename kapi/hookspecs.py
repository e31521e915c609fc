"""Hook specifications: the plugin API of kapi. Each docstring is the contract.

A plugin is a module (or object) with functions marked ``@kapi.hookimpl`` and named after these
specs; it may accept any subset of a spec's arguments. Plugins are registered through the
``kapi`` entry-point group; the entry-point name is the plugin's name in configuration.

pluggy runs implementations in LIFO registration order, which cannot express a configured
chain, so kapi calls the request-path hooks itself (``kapi.hooks``): only the plugins named in the
configuration, in the configured order, awaiting results that are awaitable. So every hook
below except ``kapi_storage``, ``kapi_add_options`` and ``kapi_register_commands`` may be
``async def``.
"""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

import pluggy

from kapi.types import AdmissionRequest, AuthnRequest, Decision, RequestAttributes, UserInfo

if TYPE_CHECKING:
    from starlette.routing import BaseRoute
    from starlette.types import ASGIApp

    from kapi.app import App
    from kapi.config import Config
    from kapi.storage import Storage

hookspec = pluggy.HookspecMarker("kapi")
hookimpl = pluggy.HookimplMarker("kapi")

# ---------------------------------------------------------------------------------------------
# request pipeline hooks


@hookspec
def kapi_authenticate(request: AuthnRequest, app: App) -> UserInfo | Awaitable[UserInfo | None] | None:
    """Identify the caller of a request.

    :param request: headers, verified client certificate and remote address of the request.
    :param app: the running ``kapi.App`` (config, storage, per-plugin state).
    :returns: a ``UserInfo`` if the plugin recognises the credentials, or ``None`` ("not mine":
        the next authenticator is tried).

    Called for every request, in ``config.authenticators`` order; the first non-None result wins
    and the rest are skipped. Raise ``kapi.AuthenticationError`` when the credential is the
    plugin's kind but wrong (bad token, expired or badly signed JWT): the request fails with 401 at
    once and never falls through to anonymous. The core adds ``system:authenticated`` to the
    groups of every identified user. When every authenticator returns None the request is
    anonymous if ``--anonymous-auth`` allows it, else 401. Any other exception is a 500 naming
    the plugin. Never put a credential in an error message or log.
    """


@hookspec
def kapi_authorize(attributes: RequestAttributes, app: App) -> Decision | Awaitable[Decision | None] | None:
    """Decide whether ``attributes.user`` may do ``attributes.verb`` on the resource or path.

    :returns: ``Decision.ALLOW`` or ``Decision.DENY`` to decide, ``None`` or
        ``Decision.NO_OPINION`` to pass to the next authorizer.

    Called in ``config.authorizers`` order; the first ALLOW or DENY decides and stops the chain.
    If no authorizer decides, the request is denied with 403 (deny by default). An authorizer that
    raises fails the request with a 500 Status naming it; it is never taken as an allow.
    """


@hookspec
def kapi_mutate_admission(request: AdmissionRequest, app: App) -> Mapping[str, Any] | Awaitable[Any] | None:
    """Change an object before it is validated and stored (mutating admission).

    :param request: the operation, the incoming object (``request.obj``) and the stored one.
    :returns: the new object (a dict) to continue with, or ``None`` to leave it unchanged.

    Called on create and update (and subresource writes), in ``config.admission`` order, before
    every validating plugin; each sees the previous one's result. Deletes run only the validating
    chain (``request.obj`` None, ``request.old_obj`` the stored object). Raise
    ``kapi.AdmissionDenied`` to reject the request (403, or the code given), naming the plugin.
    To warn without rejecting, append a sentence to ``request.warnings``: the client gets it in a
    ``Warning: 299 - "..."`` response header (the list is shared by every plugin of the request).
    """


@hookspec
def kapi_validate_admission(request: AdmissionRequest, app: App) -> Awaitable[None] | None:
    """Accept or reject an object after mutation and schema validation (validating admission).

    :returns: ``None``. Reject by raising ``kapi.AdmissionDenied`` (403 by default, or 422 with
        field causes); the message names the plugin. Must not change ``request.obj``.

    Called after all mutating plugins, in ``config.admission`` order; the first rejection stops
    the chain and nothing is stored. Also called for deletes. Append to ``request.warnings`` to
    warn the client without rejecting (``Warning`` response header).
    """


# ---------------------------------------------------------------------------------------------
# storage


@hookspec(firstresult=True)
def kapi_storage(config: Config, backend: str) -> Storage | None:
    """Create the storage backend named ``backend`` (``config.storage_backend``).

    :returns: a ``kapi.Storage`` if this plugin implements ``backend``, else ``None``.

    Synchronous and first-result: the plugin that answers for the name is used. The store is
    opened here and closed by the core at shutdown (``Storage.close``); it must pass the contract
    suite in ``kapi.testing.storage_contract``.
    """


# ---------------------------------------------------------------------------------------------
# lifecycle and extension


@hookspec
def kapi_startup(app: App) -> Awaitable[None] | None:
    """Prepare a plugin's state when the app starts (ASGI lifespan startup), e.g. load a file.

    Called for every registered plugin, awaited, after the storage is open and before the first
    request. Keep state in ``app.plugin_state(name)``, never in module globals. Raising aborts
    startup with an error that names the plugin.
    """


@hookspec
def kapi_shutdown(app: App) -> Awaitable[None] | None:
    """Release a plugin's resources when the app stops (ASGI lifespan shutdown). Called for every
    registered plugin and awaited; errors are logged and do not stop the others."""


@hookspec
def kapi_register_routes(app: App) -> list[BaseRoute] | None:
    """Extra HTTP routes (starlette ``Route`` objects) to serve beside the Kubernetes API.

    :returns: a list of routes, or ``None``. All plugins' lists are merged. Requests to these
    routes pass authentication and authorization as non-resource requests first.
    """


@hookspec
def kapi_middleware(app: App) -> list[tuple[Callable[[ASGIApp], ASGIApp], str]] | None:
    """Pure-ASGI middleware to wrap around the request pipeline (audit logs, rate limits, tracing).

    :param app: the ``kapi.App`` whose ASGI app is being built (its config and ``plugin_state``;
        storage is not open yet).
    :returns: ``(factory, position)`` pairs, or ``None`` (e.g. when the plugin is not configured).
        ``factory(asgi_app)`` returns the ASGI app that wraps ``asgi_app``; ``position`` is one of
        ``"outer"`` (before authentication: sees every request, 401s included, no user yet),
        ``"authenticated"`` (after authentication and impersonation, before authorization: where
        audit logging sits) or ``"authorized"`` (after authorization, before the REST handler).

    Called once per app, synchronously, when ``App.asgi()`` builds the stack, for every registered
    plugin; within a position, middleware of plugins registered first sits outside. An unknown
    position stops startup with an error naming the plugin. Inside, ``kapi.request_trace(scope)``
    is the request's trace (audit ID, plugin steps, authorization decision) and, from
    ``"authenticated"`` on, ``kapi.request_attributes(scope)`` says who asks for what. A
    ``kapi.APIError`` raised by the middleware becomes a Status response; errors from inner layers
    propagate through it as exceptions (re-raise them).
    """


@hookspec
def kapi_add_options(parser: argparse.ArgumentParser) -> None:
    """Add a plugin's own command-line flags to ``kapi-apiserver`` (and ``kapi serve``).

    Use a prefix with the plugin's name. Values reach the plugin as
    ``app.config.options_for(plugin_name)`` when the plugin also implements
    ``kapi_read_options``.
    """


@hookspec
def kapi_read_options(args: argparse.Namespace) -> Mapping[str, Any] | None:
    """Turn parsed flags into the plugin's settings section (``config.plugin_options[name]``).

    :returns: the section, or ``None`` for none. Raise ``ValueError`` with a message naming the
        flag and the fix for a bad value: the server then refuses to start.
    """


@hookspec(firstresult=True)
def kapi_container_runtime(name: str) -> Any | None:
    """Create the kubelet's container runtime called ``name`` (``kapi kubelet --runtime NAME``).

    :param name: the runtime the kubelet was asked for (``fake``, ``process``, or a plugin's own).
    :returns: a runtime object if this plugin implements ``name``, else ``None``. The object is
        structural (see ``kapi.components.kubelet.runtime.ContainerRuntime``): attributes ``name``
        and ``version``; ``async run_sandbox(pod) -> pod IP``; ``async start_container(pod,
        container, *, env, log_path) -> Container`` (``id``, ``image_id``, ``async wait() -> exit
        code``, ``async stop(grace_seconds) -> exit code``); ``async stop_sandbox(pod)``.

    Synchronous and first-result: the first plugin answering for the name is used; none ->
    the kubelet refuses to start, listing the runtime plugins installed. Called once per kubelet
    process (one runtime object serves every node of ``--fake-nodes``). The runtime writes each
    container's output to ``log_path``; ``start_container`` raises ``RuntimeError`` for a
    container that cannot start (reported as the container's waiting reason).
    """


@hookspec
def kapi_register_commands(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add sub-commands to the ``kapi`` CLI (``kapi certs ...`` is one).

    Each command's parser must set ``func`` (``parser.set_defaults(func=...)``) to a callable that
    takes the parsed ``argparse.Namespace`` and returns an exit code.
    """
