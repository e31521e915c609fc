"""The container runtime contract between the kubelet and runtime plugins (kapi's small CRI).

A runtime plugin implements the ``kapi_container_runtime(name)`` hook and returns, for its
name, an object shaped like ``ContainerRuntime``; the kubelet then drives every pod through it:

1. ``await runtime.run_sandbox(pod)`` -> the pod's IP (the sandbox holds the pod's network);
2. for each container, in order, ``await runtime.start_container(pod, container, env=...,
   log_path=...)`` -> a ``Container``: ``id`` (``runtime://...``), ``image_id``, ``await wait()``
   returning the exit code when the container ends by itself, and ``await stop(grace)``
   (SIGTERM, then SIGKILL after ``grace`` seconds) returning the exit code;
3. ``await runtime.stop_sandbox(pod)`` once every container stopped.

The runtime writes the container's output to ``log_path`` (plain text, stdout and stderr
interleaved); the kubelet serves that file as ``kubectl logs``. ``env`` is already resolved
(values, field and resource references). Plugins need not import these Protocols: they are
structural.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Mapping
from typing import Any, Protocol, runtime_checkable

import pluggy

from kapi.plugins import make_plugin_manager, plugin_names

Obj = dict[str, Any]


@runtime_checkable
class Container(Protocol):
    """One started container."""

    id: str
    image_id: str

    async def wait(self) -> int:
        """The exit code, once the container has ended (by itself or through ``stop``)."""
        ...

    async def stop(self, grace_seconds: float) -> int:
        """Stop it (gracefully for up to ``grace_seconds``) and return the exit code."""
        ...


@runtime_checkable
class ContainerRuntime(Protocol):
    """What ``kapi_container_runtime`` returns."""

    name: str
    version: str

    async def run_sandbox(self, pod: Mapping[str, Any]) -> str:
        """Prepare the pod's sandbox; returns the pod IP."""
        ...

    async def start_container(self, pod: Mapping[str, Any], container: Mapping[str, Any], *,
                              env: Mapping[str, str], log_path: str) -> Container:
        """Start one container of ``pod``; raise ``RuntimeError`` with a message when it cannot start."""
        ...

    async def stop_sandbox(self, pod: Mapping[str, Any]) -> None:
        """Release the pod's sandbox (its IP) after its containers stopped."""
        ...


class RuntimeNotFound(LookupError):
    """No plugin answers to the runtime name; the message lists the installed ones."""


def plugin_manager(extra_modules: Iterable[str] = ()) -> pluggy.PluginManager:
    """The installed plugins plus modules named by import path (``--plugin``), each once."""
    pm = make_plugin_manager()
    for module_name in extra_modules:
        module = importlib.import_module(module_name)
        if not pm.is_registered(module):
            pm.register(module, name=module_name.rsplit(".", 1)[-1])
    pm.check_pending()
    return pm


def load_runtime(name: str, pm: pluggy.PluginManager) -> ContainerRuntime:
    """The runtime called ``name``. :raises RuntimeNotFound: no plugin returned one."""
    runtime = pm.hook.kapi_container_runtime(name=name)
    if runtime is None:
        offered = sorted(n for n, p in plugin_names(pm).items() if hasattr(p, "kapi_container_runtime"))
        raise RuntimeNotFound(f"no container runtime {name!r}: runtime plugins installed are "
                              f"{', '.join(offered) or 'none'} (install one, or load a module with --plugin)")
    return runtime  # type: ignore[no-any-return]
