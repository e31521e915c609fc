"""The process container runtime: real processes, logs, exit codes, graceful stop, pause."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from kapi_plugins import runtime_process

POD = {"metadata": {"name": "p", "uid": "u"}}


def test_hook_kapi_container_runtime_answers_only_process() -> None:
    assert runtime_process.kapi_container_runtime("fake") is None
    assert isinstance(runtime_process.kapi_container_runtime("process"), runtime_process.ProcessRuntime)


async def test_runs_command_with_env_and_logs(tmp_path: Path) -> None:
    runtime = runtime_process.ProcessRuntime()
    assert await runtime.run_sandbox(POD) == "127.0.0.1"
    log = tmp_path / "c" / "0.log"
    container = await runtime.start_container(
        POD, {"name": "c", "image": "busybox", "command": ["sh", "-c"], "args": ["echo out $GREETING; echo err >&2; "
                                                                                "exit 7"]},
        env={"GREETING": "hi"}, log_path=str(log))
    assert container.id.startswith("process://")
    assert await asyncio.wait_for(container.wait(), 5) == 7
    assert log.read_text() == "out hi\nerr\n"


async def test_args_alone_are_the_command(tmp_path: Path) -> None:
    runtime = runtime_process.ProcessRuntime()
    container = await runtime.start_container(POD, {"name": "c", "args": ["echo", "just args"]}, env={},
                                              log_path=str(tmp_path / "0.log"))
    assert await asyncio.wait_for(container.wait(), 5) == 0
    assert (tmp_path / "0.log").read_text() == "just args\n"


async def test_graceful_stop_then_kill(tmp_path: Path) -> None:
    runtime = runtime_process.ProcessRuntime()
    polite = await runtime.start_container(POD, {"name": "c", "command": ["sleep", "30"]}, env={},
                                           log_path=str(tmp_path / "a.log"))
    assert await polite.stop(5) == 128 + 15  # SIGTERM
    stubborn = await runtime.start_container(
        POD, {"name": "c", "command": ["sh", "-c", "trap '' TERM; echo ready; sleep 30 & wait; sleep 30"]}, env={},
        log_path=str(tmp_path / "b.log"))
    for _ in range(100):
        if (tmp_path / "b.log").read_text():
            break
        await asyncio.sleep(0.02)
    started = time.monotonic()
    assert await stubborn.stop(0.3) == 128 + 9  # SIGKILL after the grace period
    assert time.monotonic() - started < 3


async def test_pause_container_and_start_errors(tmp_path: Path) -> None:
    runtime = runtime_process.ProcessRuntime()
    pause = await runtime.start_container(POD, {"name": "p", "image": "k8s.gcr.io/pause"}, env={},
                                          log_path=str(tmp_path / "p.log"))
    waiter = asyncio.create_task(pause.wait())
    await asyncio.sleep(0.01)
    assert not waiter.done()
    assert await pause.stop(1) == 0 and await waiter == 0
    with pytest.raises(RuntimeError, match='exec: "no-such-binary-xyz": executable file not found'):
        await runtime.start_container(POD, {"name": "c", "command": ["no-such-binary-xyz"]}, env={},
                                      log_path=str(tmp_path / "e.log"))
