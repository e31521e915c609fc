"""Calling hooks in configured order, sync or async: the one place that awaits plugins.

pluggy orders implementations LIFO and does not await coroutines, so the request path resolves,
once at startup, the ordered implementations of each hook for the configured plugin names
(``resolve_chain``) and calls them itself:

* ``call_first`` - first non-None result wins (authenticate, authorize);
* ``call_each`` - every implementation in order, awaited (startup, validating admission);
* ``invoke`` - one implementation (mutating admission threads the object through the chain).

Only the argument names an implementation declares are passed (``HookImpl.argnames``). A plugin
that raises an ``APIError`` fails the request with that error; any other exception becomes
``PluginFailure`` naming the plugin (HTTP 500), never a decision.
"""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pluggy

from kapi.errors import APIError
from kapi.observability.trace import current_trace

log = logging.getLogger("kapi.hooks")


class PluginFailure(APIError):
    """A plugin raised an unexpected exception: the request fails with 500 naming the plugin."""

    def __init__(self, hook: str, plugin: str) -> None:
        super().__init__(500, "InternalError", f'plugin "{plugin}" failed in {hook}; see the server log')
        self.plugin = plugin


async def await_me_maybe(value: Any) -> Any:
    """``value`` itself, or its result if it is awaitable (so impls may be sync or async)."""
    if inspect.isawaitable(value):
        return await value
    return value


@dataclass(frozen=True)
class Impl:
    """One plugin's implementation of one hook, ready to call."""

    plugin: str
    function: Any
    argnames: tuple[str, ...]

    def call(self, kwargs: dict[str, Any]) -> Any:
        return self.function(*[kwargs[name] for name in self.argnames])


def resolve_chain(pm: pluggy.PluginManager, hook_name: str, plugin_names: Sequence[str]) -> tuple[Impl, ...]:
    """The implementations of ``hook_name`` by the named plugins, in the given order.

    Plugins that do not implement the hook are skipped. Unknown plugin names are the caller's
    concern (``kapi.plugins.resolve_names`` reports them with a fix).
    """
    caller = getattr(pm.hook, hook_name)
    by_plugin: dict[str, pluggy.HookImpl] = {impl.plugin_name: impl for impl in caller.get_hookimpls()}
    chain = []
    for name in plugin_names:
        impl = by_plugin.get(name)
        if impl is None:
            continue
        if impl.wrapper or impl.hookwrapper:
            raise TypeError(f"plugin {name}: hook wrappers are not supported for {hook_name}")
        chain.append(Impl(plugin=name, function=impl.function, argnames=tuple(impl.argnames)))
    return tuple(chain)


def all_impls(pm: pluggy.PluginManager, hook_name: str) -> tuple[Impl, ...]:
    """Every registered implementation of a broadcast hook, in registration order."""
    caller = getattr(pm.hook, hook_name)
    return tuple(Impl(plugin=i.plugin_name, function=i.function, argnames=tuple(i.argnames))
                 for i in caller.get_hookimpls())


async def invoke(hook_name: str, impl: Impl, kwargs: dict[str, Any]) -> Any:
    """Call one implementation, awaiting its result; unexpected errors become ``PluginFailure``.

    Inside a request the call is timed and recorded in the request's trace (``kapi.observability``).
    """
    trace = current_trace()
    if trace is None:
        try:
            return await await_me_maybe(impl.call(kwargs))
        except APIError:
            raise
        except Exception as exc:
            log.exception("plugin %s raised in %s", impl.plugin, hook_name)
            raise PluginFailure(hook_name, impl.plugin) from exc
    trace.before_call()
    started = time.perf_counter()
    try:
        result = await await_me_maybe(impl.call(kwargs))
    except APIError as err:
        trace.record_call(hook_name, impl.plugin, kwargs, None, err, time.perf_counter() - started)
        raise
    except Exception as exc:
        log.exception("plugin %s raised in %s", impl.plugin, hook_name)
        trace.record_call(hook_name, impl.plugin, kwargs, None, exc, time.perf_counter() - started)
        raise PluginFailure(hook_name, impl.plugin) from exc
    trace.record_call(hook_name, impl.plugin, kwargs, result, None, time.perf_counter() - started)
    return result


async def call_first(hook_name: str, chain: Sequence[Impl], **kwargs: Any) -> tuple[str, Any] | tuple[None, None]:
    """Call ``chain`` in order; return ``(plugin, result)`` for the first non-None result."""
    for impl in chain:
        result = await invoke(hook_name, impl, kwargs)
        if result is not None:
            return impl.plugin, result
    return None, None


async def call_each(hook_name: str, chain: Sequence[Impl], **kwargs: Any) -> None:
    """Call every implementation in order, awaiting each; the first exception stops the chain."""
    for impl in chain:
        await invoke(hook_name, impl, kwargs)


