"""Fake container runtime (``kapi kubelet --runtime fake``): containers "run" without running.

For scale tests, like KWOK: starting a container costs a few microseconds and no process, so one
``kapi kubelet --fake-nodes 500`` process can carry thousands of pods. Every container is Running
from the moment it starts and keeps running until the pod is deleted, unless the pod asks to end:

``fake.kapi.io/exit-after: "SECONDS"`` (pod annotation)
    each container exits on its own that many seconds after it started (Jobs can complete);
``fake.kapi.io/exit-code: "N"`` (pod annotation, default 0)
    the exit code it then reports.

Pod IPs come from 10.244.0.0/16 (then 10.245..., and so on), unique within the process and
reused once a pod's sandbox is stopped. Nothing is written to the log path: ``kubectl logs``
shows an empty log. Container IDs are ``fake://<hex>``; the image ID is derived from the name.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
from collections.abc import Mapping
from typing import Any

from kapi import hookimpl

NAME = "fake"
EXIT_AFTER = "fake.kapi.io/exit-after"
EXIT_CODE = "fake.kapi.io/exit-code"


def image_id(image: str) -> str:
    """A stable stand-in for an image digest: ``IMAGE@sha256:<hash of the name>``."""
    return f"{image}@sha256:{hashlib.sha256(image.encode()).hexdigest()}"


class FakeContainer:
    """A container that is only a state: running until stopped (or until its exit timer fires)."""

    def __init__(self, container_id: str, image: str, exit_after: float | None, exit_code: int) -> None:
        self.id = container_id
        self.image_id = image_id(image)
        self._done = asyncio.Event()
        self._code = 0
        self._timer: asyncio.TimerHandle | None = None
        if exit_after is not None:
            self._timer = asyncio.get_running_loop().call_later(max(0.0, exit_after), self._finish, exit_code)

    def _finish(self, code: int) -> None:
        if not self._done.is_set():
            self._code = code
            self._done.set()

    async def wait(self) -> int:
        await self._done.wait()
        return self._code

    async def stop(self, grace_seconds: float) -> int:
        if self._timer is not None:
            self._timer.cancel()
        self._finish(0)
        return self._code


def _float(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


class FakeRuntime:
    """See the module docstring."""

    name = NAME
    version = "0.1.0"

    def __init__(self) -> None:
        self._ips: dict[str, str] = {}  # pod uid -> IP
        self._free: list[str] = []
        self._next = itertools.count(1)
        self._ids = itertools.count(1)

    def _new_ip(self) -> str:
        if self._free:
            return self._free.pop()
        n = next(self._next)
        block, host = divmod(n, 254)
        return f"10.{244 + block // 256}.{block % 256}.{host + 1}"

    async def run_sandbox(self, pod: Mapping[str, Any]) -> str:
        uid = str((pod.get("metadata") or {}).get("uid") or id(pod))
        if uid not in self._ips:
            self._ips[uid] = self._new_ip()
        return self._ips[uid]

    async def start_container(self, pod: Mapping[str, Any], container: Mapping[str, Any], *,
                              env: Mapping[str, str], log_path: str) -> FakeContainer:
        annotations = (pod.get("metadata") or {}).get("annotations") or {}
        code = _float(annotations.get(EXIT_CODE))
        return FakeContainer(f"fake://{next(self._ids):012x}", str(container.get("image") or ""),
                             _float(annotations.get(EXIT_AFTER)), int(code or 0))

    async def stop_sandbox(self, pod: Mapping[str, Any]) -> None:
        ip = self._ips.pop(str((pod.get("metadata") or {}).get("uid") or id(pod)), None)
        if ip is not None:
            self._free.append(ip)


@hookimpl
def kapi_container_runtime(name: str) -> FakeRuntime | None:
    """A new FakeRuntime for ``fake``."""
    return FakeRuntime() if name == NAME else None
