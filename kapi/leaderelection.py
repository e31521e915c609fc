"""Leader election through a coordination.k8s.io/v1 Lease (client-go's ``leaderelection``).

Candidates share one Lease. The holder renews ``spec.renewTime`` every ``retry_period``; the
others retry every ``retry_period`` and take the Lease once it has expired: its holder is empty,
or neither the record changed for ``lease_duration`` seconds as this candidate observed it
(client-go's skew-proof rule) nor is ``renewTime + leaseDurationSeconds`` in the future by the
wall clock (a fast path for a single machine, so a restarted component need not wait). Every
write is a PUT carrying the read ``resourceVersion``, so two candidates can never both win: the
loser gets 409 and tries again later. A leader that cannot renew within ``renew_deadline`` stops
leading. On ``stop()`` a leader releases the Lease (empty holder) so a successor starts at once.
"""

from __future__ import annotations

import asyncio
import datetime
import inspect
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from kapi.client import ApiError, Client, path_for

log = logging.getLogger("kapi.leaderelection")

Obj = dict[str, Any]
Callback = Callable[[], Awaitable[Any] | Any]


def micro_time(now: datetime.datetime | None = None) -> str:
    """A MicroTime as the API serializes it: ``2024-01-02T03:04:05.123456Z``."""
    moment = now or datetime.datetime.now(datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_micro_time(value: str) -> datetime.datetime | None:
    """The inverse of ``micro_time`` (also accepts RFC 3339 without fraction); None when unparsable."""
    try:
        return datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except (ValueError, AttributeError):
        return None


class LeaderElector:
    """One candidate for the Lease ``lease_namespace/lease_name`` under ``identity``.

    :param lease_duration: seconds a non-leader waits before taking over an unrenewed Lease.
    :param renew_deadline: seconds the leader keeps trying to renew before giving up leadership.
    :param retry_period: seconds between attempts (to acquire or to renew).
    :raises ValueError: ``lease_duration <= renew_deadline`` or ``renew_deadline <= retry_period``.
    """

    def __init__(self, client: Client, lease_namespace: str, lease_name: str, identity: str, *,
                 lease_duration: float = 15, renew_deadline: float = 10, retry_period: float = 2) -> None:
        if not lease_duration > renew_deadline > retry_period > 0:
            raise ValueError("need lease_duration > renew_deadline > retry_period > 0")
        self.client = client
        self.namespace = lease_namespace
        self.name = lease_name
        self.identity = identity
        self.lease_duration = lease_duration
        self.renew_deadline = renew_deadline
        self.retry_period = retry_period
        self.is_leader = False
        self._observed: tuple[str, str] = ("", "")  # (holder, renewTime) last seen
        self._observed_at = 0.0
        self._lease: Obj | None = None
        self._stopping = asyncio.Event()

    @property
    def path(self) -> str:
        return path_for("coordination.k8s.io", "v1", "leases", self.namespace, self.name)

    def _spec(self, lease: Obj | None, now: datetime.datetime) -> Obj:
        spec = dict((lease or {}).get("spec") or {})
        stamp = micro_time(now)
        if spec.get("holderIdentity") != self.identity:
            spec["leaseTransitions"] = int(spec.get("leaseTransitions") or 0) + (1 if lease is not None else 0)
            spec["acquireTime"] = stamp
        spec.update(holderIdentity=self.identity, leaseDurationSeconds=max(1, int(self.lease_duration)),
                    renewTime=stamp)
        return spec

    def _expired(self, spec: Obj) -> bool:
        holder = spec.get("holderIdentity") or ""
        if not holder or holder == self.identity:
            return True
        record = (holder, str(spec.get("renewTime") or ""))
        now = time.monotonic()
        if record != self._observed:
            self._observed, self._observed_at = record, now
        if now - self._observed_at >= self.lease_duration:
            return True
        renewed = parse_micro_time(record[1])
        duration = float(spec.get("leaseDurationSeconds") or self.lease_duration)
        return renewed is not None and renewed + datetime.timedelta(seconds=duration) < datetime.datetime.now(
            datetime.UTC)

    async def try_acquire_or_renew(self) -> bool:
        """One attempt: create the Lease, renew it, or take it over if expired. True when this
        candidate holds the Lease afterwards. API errors count as a failed attempt."""
        now = datetime.datetime.now(datetime.UTC)
        try:
            try:
                lease = await self.client.get(self.path)
            except ApiError as exc:
                if not exc.not_found:
                    raise
                body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                        "metadata": {"name": self.name, "namespace": self.namespace}, "spec": self._spec(None, now)}
                self._lease = await self.client.create(
                    path_for("coordination.k8s.io", "v1", "leases", self.namespace), body)
                return True
            if not self._expired(lease.get("spec") or {}):
                return False
            lease["spec"] = self._spec(lease, now)
            self._lease = await self.client.update(self.path, lease)
            return True
        except ApiError as exc:
            if exc.code not in (409, 0):
                log.warning("lease %s/%s: %s", self.namespace, self.name, exc)
            return False

    async def _release(self) -> None:
        if self._lease is None:
            return
        lease = dict(self._lease)
        lease["spec"] = {**(lease.get("spec") or {}), "holderIdentity": "", "leaseDurationSeconds": 1,
                         "renewTime": micro_time()}
        try:
            await self.client.update(self.path, lease)
        except ApiError as exc:
            log.info("lease %s/%s not released: %s", self.namespace, self.name, exc)

    async def _wait(self, seconds: float) -> bool:
        """Sleep unless stopped; True when stopped."""
        try:
            await asyncio.wait_for(self._stopping.wait(), seconds)
        except TimeoutError:
            return False
        return True

    async def _acquire(self) -> bool:
        while not self._stopping.is_set():
            if await self.try_acquire_or_renew():
                return True
            await self._wait(self.retry_period)
        return False

    async def _renew_until_lost(self) -> None:
        last = time.monotonic()
        while not await self._wait(self.retry_period):
            if await self.try_acquire_or_renew():
                last = time.monotonic()
            elif time.monotonic() - last >= self.renew_deadline:
                log.warning("lease %s/%s: could not renew within %ss, leadership lost", self.namespace, self.name,
                            self.renew_deadline)
                return

    async def run(self, on_started_leading: Callback, on_stopped_leading: Callback | None = None) -> bool:
        """Campaign until leading, then call ``on_started_leading()`` (when it returns an
        awaitable, it runs as a task: the leader's work) and keep renewing. Returns when
        leadership is lost (True) or ``stop()`` was called (False); the work task is cancelled
        first and ``on_stopped_leading()`` called (awaited if async) when this candidate had led.
        Like kube-scheduler, a component usually exits when this returns True."""
        if not await self._acquire():
            return False
        self.is_leader = True
        log.info("lease %s/%s acquired by %s", self.namespace, self.name, self.identity)
        work: asyncio.Task[Any] | None = None
        try:
            result = on_started_leading()
            if inspect.isawaitable(result):
                work = asyncio.ensure_future(result)
            await self._renew_until_lost()
        finally:
            self.is_leader = False
            if work is not None and not work.done():
                work.cancel()
                await asyncio.gather(work, return_exceptions=True)
            if self._stopping.is_set():
                await self._release()
            if on_stopped_leading is not None:
                stopped = on_stopped_leading()
                if inspect.isawaitable(stopped):
                    await stopped
        return not self._stopping.is_set()

    def stop(self) -> None:
        """Stop campaigning; a leader releases the Lease and ``run()`` returns False."""
        self._stopping.set()
