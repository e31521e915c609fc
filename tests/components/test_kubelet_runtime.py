"""The container runtime hook and its lookup."""

from __future__ import annotations

from typing import Any

import pytest

from kapi import hookimpl
from kapi.components.kubelet.runtime import ContainerRuntime, RuntimeNotFound, load_runtime
from kapi.plugins import make_plugin_manager
from kapi_plugins import runtime_fake, runtime_process


class Custom:
    name = "custom"
    version = "1"

    async def run_sandbox(self, pod: Any) -> str:
        return "10.9.9.9"

    async def start_container(self, pod: Any, container: Any, *, env: Any, log_path: str) -> Any:
        raise RuntimeError("not today")

    async def stop_sandbox(self, pod: Any) -> None:
        return None


class CustomPlugin:
    @hookimpl
    def kapi_container_runtime(self, name: str) -> Custom | None:
        return Custom() if name == "custom" else None


def test_hook_container_runtime() -> None:
    pm = make_plugin_manager(load_entrypoints=False, extra=[("runtime_fake", runtime_fake),
                                                            ("runtime_process", runtime_process),
                                                            ("custom", CustomPlugin())])
    for name, kind in (("fake", runtime_fake.FakeRuntime), ("process", runtime_process.ProcessRuntime),
                       ("custom", Custom)):
        runtime = load_runtime(name, pm)
        assert isinstance(runtime, kind) and isinstance(runtime, ContainerRuntime)
    with pytest.raises(RuntimeNotFound, match="runtime plugins installed are custom, runtime_fake, runtime_process"):
        load_runtime("docker", pm)
