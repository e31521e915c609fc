"""The plugin manager: a fresh one per app, loaded from the ``kapi`` entry-point group.

Built-in plugins register exactly like third-party ones: each is an entry point in group ``kapi``
whose name is the plugin's name in configuration. A plugin module may also declare
``ALIASES = ("AlwaysAllow", ...)``: the names kube-apiserver's flags use for it
(``--authorization-mode``, ``--enable-admission-plugins``, ``--storage-backend``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import pluggy

from kapi import hookspecs


class PluginConfigError(ValueError):
    """A configured plugin name that no installed plugin answers to; the message names the fix."""


def make_plugin_manager(*, load_entrypoints: bool = True, extra: Iterable[tuple[str, Any]] = (),
                        block: Iterable[str] = ()) -> pluggy.PluginManager:
    """A new ``PluginManager`` with kapi's hookspecs, the installed plugins and ``extra``.

    :param load_entrypoints: load every plugin of the ``kapi`` entry-point group.
    :param extra: ``(name, plugin)`` pairs to register as well (tests, embedders).
    :param block: plugin names not to load.
    Raises ``pluggy.PluginValidationError`` if a plugin implements a hook that has no spec
    (a typo in a ``kapi_`` function name fails loudly).
    """
    pm = pluggy.PluginManager("kapi")
    pm.add_hookspecs(hookspecs)
    for name in block:
        pm.set_blocked(name)
    if load_entrypoints:
        pm.load_setuptools_entrypoints("kapi")
    for name, plugin in extra:
        pm.register(plugin, name=name)
    pm.check_pending()
    return pm


def plugin_names(pm: pluggy.PluginManager) -> dict[str, Any]:
    """Registered plugins by name (the hookspec module excluded)."""
    return {name: plugin for name, plugin in pm.list_name_plugin() if plugin is not None and name is not None}


def alias_table(pm: pluggy.PluginManager) -> dict[str, str]:
    """Every name a plugin answers to (its own name and its ``ALIASES``) -> plugin name."""
    table: dict[str, str] = {}
    for name, plugin in plugin_names(pm).items():
        table[name] = name
        for alias in getattr(plugin, "ALIASES", ()):
            table.setdefault(alias, name)
    return table


def resolve_names(pm: pluggy.PluginManager, names: Sequence[str], *, what: str, flag: str,
                  hook: str) -> tuple[str, ...]:
    """Map configured names (plugin names or aliases) to plugin names, in order.

    Raises ``PluginConfigError`` naming the unknown entry, the flag it came from, the plugins
    that implement ``hook`` and how to install one.
    """
    table = alias_table(pm)
    resolved = []
    for name in names:
        plugin = table.get(name)
        if plugin is None:
            offered = sorted({alias for alias, p in table.items() if _implements(pm, p, hook)})
            raise PluginConfigError(
                f"unknown {what} {name!r} in {flag}: installed ones are {', '.join(offered) or 'none'}; "
                f"install the package that provides it (a plugin registered in the 'kapi' entry-point group) "
                f"or remove it from {flag}")
        resolved.append(plugin)
    return tuple(resolved)


def _implements(pm: pluggy.PluginManager, plugin_name: str, hook: str) -> bool:
    caller = getattr(pm.hook, hook)
    return any(impl.plugin_name == plugin_name for impl in caller.get_hookimpls())
