"""One pod's life on a node: start it through the runtime, keep it per restartPolicy, report its
status, and stop it when it is deleted.

``PodWorker.run()`` (one task per pod):

1. sandbox (pod IP), then init containers one by one (each must exit 0; a failure is retried
   with back-off unless ``restartPolicy: Never``, which fails the pod), sidecars started in order;
2. the containers, each supervised: when one exits, it restarts (``Always``, or ``OnFailure``
   after a failure) after a back-off that doubles from ``backoff[0]`` to ``backoff[1]`` seconds
   (reset after 10 minutes of running), shown as ``CrashLoopBackOff``; otherwise it stays
   terminated, and once none runs or restarts the pod is Succeeded or Failed;
3. on ``deletionTimestamp`` (or when the pod object vanished): every container is stopped with
   the pod's grace period (``deletionGracePeriodSeconds``, else
   ``terminationGracePeriodSeconds``, else 30 s), the final status is reported, the sandbox
   released, and the pod deleted with ``gracePeriodSeconds=0`` and a uid precondition - the API
   server removes the object only then.

Status is reported by a merge patch of ``pods/NAME/status`` whenever it changed; at most one
patch per pod is in flight, and it always carries the latest state.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kapi.client import ApiError, Client, path_for
from kapi.components.kubelet.env import ConfigError, expanded_container, resolve_env
from kapi.components.kubelet.podstatus import (
    RUNNING,
    TERMINATED,
    WAITING,
    ContainerRecord,
    Records,
    pod_status,
)
from kapi.components.kubelet.runtime import Container, ContainerRuntime
from kapi.timestamps import now_rfc3339

log = logging.getLogger("kapi.kubelet")

Obj = dict[str, Any]
DEFAULT_GRACE = 30
BACKOFF_RESET = 600.0


@dataclass(frozen=True)
class NodeContext:
    """What every pod worker of one node shares."""

    client: Client
    runtime: ContainerRuntime
    node_name: str
    node_ip: str
    root_dir: str
    backoff: tuple[float, float] = (10.0, 300.0)


def pod_key(pod: Mapping[str, Any]) -> str:
    meta = pod.get("metadata") or {}
    return f"{meta.get('namespace', '')}/{meta.get('name', '')}"


def grace_period(pod: Mapping[str, Any]) -> float:
    meta = pod.get("metadata") or {}
    if meta.get("deletionGracePeriodSeconds") is not None:
        return float(meta["deletionGracePeriodSeconds"])
    grace = (pod.get("spec") or {}).get("terminationGracePeriodSeconds")
    return float(DEFAULT_GRACE if grace is None else grace)


def _should_restart(policy: str, code: int) -> bool:
    return policy == "Always" or (policy == "OnFailure" and code != 0)


class PodWorker:
    """See the module docstring. ``update(pod)`` feeds newer versions; ``gone()`` tells it the
    object was removed from the API (no final delete then)."""

    def __init__(self, node: NodeContext, pod: Obj) -> None:
        self.node = node
        self.pod = pod
        meta = pod.get("metadata") or {}
        self.uid = str(meta.get("uid") or "")
        self.key = pod_key(pod)
        self.records = Records.of(pod)
        self.handles: dict[str, Container] = {}
        self.pod_ip = ""
        self.start_time = str((pod.get("status") or {}).get("startTime") or "") or now_rfc3339()
        self.sandbox_ready = False
        self._terminate = asyncio.Event()
        self._removed = False
        self._needs_report = False
        self._reporter: asyncio.Task[None] | None = None
        self._last_sent: Obj | None = None
        self._closed = False  # kubelet shutdown: no more reports
        self.done = asyncio.Event()

    # -- inputs ------------------------------------------------------------------------------------

    def update(self, pod: Obj) -> None:
        self.pod = pod
        if (pod.get("metadata") or {}).get("deletionTimestamp"):
            self._terminate.set()

    def gone(self) -> None:
        self._removed = True
        self._terminate.set()

    # -- paths and helpers ---------------------------------------------------------------------------

    @property
    def spec(self) -> Obj:
        return self.pod.get("spec") or {}

    def log_dir(self, container: str) -> str:
        meta = self.pod["metadata"]
        return os.path.join(self.node.root_dir, "pods", f"{meta.get('namespace')}_{meta.get('name')}_{self.uid}",
                            container)

    def log_path(self, container: str, restart: int) -> str:
        return os.path.join(self.log_dir(container), f"{restart}.log")

    def _spec_of(self, record: ContainerRecord) -> Obj:
        key = "initContainers" if record.init else "containers"
        return next(c for c in self.spec.get(key) or [] if c.get("name") == record.name)

    async def _fetch(self, kind: str, name: str) -> Obj | None:
        try:
            return await self.node.client.get(path_for("", "v1", kind, self.pod["metadata"].get("namespace", ""),
                                                       name))
        except ApiError as exc:
            if exc.not_found:
                return None
            raise ConfigError(f"{kind}/{name}: {exc.message}") from None

    # -- status ------------------------------------------------------------------------------------

    def status(self) -> Obj:
        return pod_status(self.pod, self.records.items, pod_ip=self.pod_ip, host_ip=self.node.node_ip,
                          start_time=self.start_time, sandbox_ready=self.sandbox_ready)

    def dirty(self) -> None:
        """Something changed: make sure the latest status gets reported."""
        self._needs_report = True
        if not self._closed and (self._reporter is None or self._reporter.done()):
            self._reporter = asyncio.create_task(self._report_loop())

    async def _report_loop(self) -> None:
        meta = self.pod["metadata"]
        path = path_for("", "v1", "pods", meta.get("namespace", ""), meta["name"], "status")
        delay = 0.5
        while self._needs_report:
            self._needs_report = False
            status = self.status()
            if status == self._last_sent:
                continue
            try:
                await self.node.client.patch(path, {"metadata": {"uid": self.uid}, "status": status})
                self._last_sent = status
            except ApiError as exc:
                if exc.not_found or exc.conflict:
                    return
                log.warning("pod %s: status update failed (retrying in %.1fs): %s", self.key, delay, exc)
                self._needs_report = True
                await asyncio.sleep(delay * (0.5 + random.random()))
                delay = min(10.0, delay * 2)

    async def flush(self) -> None:
        """Wait for the reporter to send everything pending."""
        while self._reporter is not None and not self._reporter.done():
            await asyncio.wait({self._reporter})

    # -- containers ----------------------------------------------------------------------------------

    async def _start(self, record: ContainerRecord) -> Container:
        spec = self._spec_of(record)
        env = await resolve_env(self.pod, spec, pod_ip=self.pod_ip, host_ip=self.node.node_ip, fetch=self._fetch)
        handle = await self.node.runtime.start_container(self.pod, expanded_container(spec, env), env=env,
                                                         log_path=self.log_path(record.name, record.restart_count))
        self.handles[record.name] = handle
        record.state, record.reason, record.message = RUNNING, "", ""
        record.started_at, record.finished_at = now_rfc3339(), ""
        record.container_id, record.image_id = handle.id, handle.image_id
        self.dirty()
        return handle

    def _terminated(self, record: ContainerRecord, code: int, *, reason: str = "", message: str = "") -> None:
        record.state, record.exit_code = TERMINATED, code
        record.reason = reason or ("Completed" if code == 0 else "Error")
        record.message = message
        record.finished_at = now_rfc3339()
        record.started_at = record.started_at or record.finished_at
        self.handles.pop(record.name, None)
        self.dirty()

    async def _run_once(self, record: ContainerRecord) -> int | None:
        """Start the container and wait for it to end: its exit code, or None when it could not
        start for a configuration problem (it then waits, and is retried)."""
        try:
            handle = await self._start(record)
        except ConfigError as exc:
            record.state, record.reason, record.message = WAITING, "CreateContainerConfigError", str(exc)
            self.dirty()
            return None
        except RuntimeError as exc:
            self._terminated(record, 128, reason="StartError", message=str(exc))
            return 128
        code = await handle.wait()
        self._terminated(record, code)
        return code

    async def _back_off(self, record: ContainerRecord, delay: float, *, restart: bool) -> None:
        if restart:
            record.last_terminated = record.terminated_dict()
            record.state, record.reason = WAITING, "CrashLoopBackOff"
            record.message = (f"back-off {delay:g}s restarting failed container={record.name} "
                              f"pod={self.pod['metadata']['name']}_{self.pod['metadata'].get('namespace')}({self.uid})")
            record.restart_count += 1
            self.dirty()
        await asyncio.sleep(delay)

    async def _supervise(self, record: ContainerRecord, policy: str, *, until_success: bool = False) -> bool:
        """Run one container per ``policy``; ``until_success`` (init containers) returns once it
        exited 0. :returns: False when the pod must fail (an init container failed under Never)."""
        low, high = self.node.backoff
        delay = low
        while True:
            started = time.monotonic()
            code = await self._run_once(record)
            if code is None:
                await self._back_off(record, delay, restart=False)
                delay = min(high, delay * 2)
                continue
            if until_success and code == 0:
                return True
            if not _should_restart("OnFailure" if until_success and policy == "Always" else policy, code):
                return not until_success
            if time.monotonic() - started > BACKOFF_RESET:
                delay = low
            await self._back_off(record, delay, restart=True)
            delay = min(high, delay * 2)

    async def _lifecycle(self) -> None:
        self.pod_ip = await self.node.runtime.run_sandbox(self.pod)
        self.sandbox_ready = True  # reported with the first container change: one patch when starts are quick
        policy = str(self.spec.get("restartPolicy") or "Always")
        supervisors: list[asyncio.Task[bool]] = []
        try:
            for record in self.records.init:
                if record.sidecar:
                    supervisors.append(asyncio.create_task(self._supervise(record, "Always")))
                elif not await self._supervise(record, policy, until_success=True):
                    return  # the pod failed
            supervisors += [asyncio.create_task(self._supervise(record, policy)) for record in self.records.regular]
            regular = supervisors[len(supervisors) - len(self.records.regular):]
            await asyncio.gather(*regular)
        finally:
            for task in supervisors:
                task.cancel()
            await asyncio.gather(*supervisors, return_exceptions=True)

    # -- termination --------------------------------------------------------------------------------

    async def _stop_all(self, grace: float) -> None:
        async def stop(name: str, handle: Container) -> None:
            code = await handle.stop(grace)
            record = self.records.get(name)
            if record is not None and record.state == RUNNING:
                self._terminated(record, code)

        await asyncio.gather(*(stop(n, h) for n, h in list(self.handles.items())), return_exceptions=True)

    async def _finish(self) -> None:
        await self._stop_all(grace_period(self.pod))
        with contextlib.suppress(Exception):
            await self.node.runtime.stop_sandbox(self.pod)
        if self._removed:
            return
        self.dirty()
        await self.flush()
        meta = self.pod["metadata"]
        try:
            await self.node.client.delete(path_for("", "v1", "pods", meta.get("namespace", ""), meta["name"]),
                                          options={"gracePeriodSeconds": 0, "preconditions": {"uid": self.uid}})
        except ApiError as exc:
            if not (exc.not_found or exc.conflict):
                log.warning("pod %s: final delete failed: %s", self.key, exc)

    async def run(self) -> None:
        """The whole life; returns after the pod was stopped and deleted (or removed). Cancelling
        it (kubelet shutdown) leaves the containers to ``kill()``."""
        body: asyncio.Task[None] | None = None
        try:
            phase = (self.pod.get("status") or {}).get("phase")
            if phase not in ("Succeeded", "Failed") and not self._terminate.is_set():
                body = asyncio.create_task(self._lifecycle())
                stop = asyncio.create_task(self._terminate.wait())
                try:
                    await asyncio.wait({body, stop}, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    stop.cancel()
                if body.done() and not body.cancelled() and body.exception() is not None:
                    log.error("pod %s: %r", self.key, body.exception())
                body.cancel()
                await asyncio.gather(body, return_exceptions=True)
                self.dirty()
            await self._terminate.wait()
            await self._finish()
        finally:
            if body is not None and not body.done():
                body.cancel()
                await asyncio.gather(body, return_exceptions=True)
            self.done.set()

    async def kill(self) -> None:
        """Kubelet shutdown, after ``run()`` was cancelled: stop the containers, report nothing
        more (the pod object stays; a new kubelet takes it over)."""
        if self._reporter is not None:
            self._reporter.cancel()
            await asyncio.gather(self._reporter, return_exceptions=True)
        self._needs_report = False
        self._closed = True
        await self._stop_all(0)
