"""Process container runtime (``kapi kubelet --runtime process``): containers are local processes.

A container's ``command`` + ``args`` run as a child process of the kubelet, with the container's
``env`` (plus ``PATH`` and ``HOME`` from the kubelet when the container sets none) in its
``workingDir`` (when it exists). With no ``command`` the ``args`` alone are the command line
(what images without an ENTRYPOINT do). The image is recorded, never pulled: there is no
filesystem isolation, no resource limits and no network namespace - every pod shares the
node's network, so its IP is the node's (127.0.0.1 for ``kapi up``).

A container with neither ``command`` nor ``args`` behaves like a pause container: it "runs"
until stopped, with no process. stdout and stderr go, interleaved, to the log file the kubelet
gives (``kubectl logs``). Stopping sends SIGTERM to the container's process group, then SIGKILL
after the grace period; exit codes are reported as Kubernetes does (128 + signal for a signal).
A command that cannot be executed fails to start with exit code 128 and the reason as message.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import signal
from collections.abc import Mapping
from typing import Any

from kapi import hookimpl

NAME = "process"
START_ERROR_CODE = 128


def image_id(image: str) -> str:
    """A stable stand-in for an image digest: ``IMAGE@sha256:<hash of the name>``."""
    return f"{image}@sha256:{hashlib.sha256(image.encode()).hexdigest()}"


def _exit_code(returncode: int) -> int:
    return 128 - returncode if returncode < 0 else returncode


class ProcessContainer:
    """A running child process (its own session, so the whole process group is signalled)."""

    def __init__(self, process: asyncio.subprocess.Process, image: str) -> None:
        self.process = process
        self.id = f"process://{process.pid}"
        self.image_id = image_id(image)

    async def wait(self) -> int:
        return _exit_code(await self.process.wait())

    def _signal(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, sig)

    async def stop(self, grace_seconds: float) -> int:
        if self.process.returncode is None:
            self._signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.process.wait(), max(0.0, grace_seconds))
            except TimeoutError:
                self._signal(signal.SIGKILL)
        return await self.wait()


class PauseContainer:
    """A container without a command line: running until stopped, like the pause image."""

    def __init__(self, container_id: str, image: str) -> None:
        self.id = container_id
        self.image_id = image_id(image)
        self._stopped = asyncio.Event()

    async def wait(self) -> int:
        await self._stopped.wait()
        return 0

    async def stop(self, grace_seconds: float) -> int:
        self._stopped.set()
        return 0


class ProcessRuntime:
    """See the module docstring."""

    name = NAME
    version = "0.1.0"

    def __init__(self) -> None:
        self._pauses = 0

    async def run_sandbox(self, pod: Mapping[str, Any]) -> str:
        return "127.0.0.1"

    async def start_container(self, pod: Mapping[str, Any], container: Mapping[str, Any], *,
                              env: Mapping[str, str], log_path: str) -> ProcessContainer | PauseContainer:
        argv = [str(a) for a in [*(container.get("command") or []), *(container.get("args") or [])]]
        image = str(container.get("image") or "")
        os.makedirs(os.path.dirname(log_path) or ".", exist_ok=True)
        if not argv:
            self._pauses += 1
            open(log_path, "ab").close()
            return PauseContainer(f"process://pause-{os.getpid()}-{self._pauses}", image)
        full_env = {"PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"), "HOME": "/", **env}
        workdir = str(container.get("workingDir") or "")
        cwd = workdir if workdir and os.path.isdir(workdir) else os.path.dirname(log_path) or None
        with open(log_path, "ab") as log:
            try:
                process = await asyncio.create_subprocess_exec(
                    *argv, stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=asyncio.subprocess.STDOUT,
                    env=full_env, cwd=cwd, start_new_session=True)
            except OSError as exc:
                reason = "executable file not found in $PATH" if isinstance(exc, FileNotFoundError) \
                    else exc.strerror or str(exc)
                raise RuntimeError(f'exec: "{argv[0]}": {reason}') from None
        return ProcessContainer(process, image)

    async def stop_sandbox(self, pod: Mapping[str, Any]) -> None:
        return None


@hookimpl
def kapi_container_runtime(name: str) -> ProcessRuntime | None:
    """A new ProcessRuntime for ``process``."""
    return ProcessRuntime() if name == NAME else None
