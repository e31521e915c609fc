"""API Priority and Fairness, simplified: per-user fair queuing so one noisy client cannot starve others.

kube-apiserver's ``--enable-priority-and-fairness`` (default true here too). The server's
concurrency (``--max-requests-inflight`` + ``--max-mutating-requests-inflight`` seats) is split
between priority levels, and inside a level every **flow** (one user) gets its own queue; a free
seat goes to the next flow in round-robin order, so a client that floods the server waits behind
itself while a well-behaved client's occasional request is served at the next free seat.

Priority levels (kube's suggested configuration, reduced to three):

* ``exempt`` - group ``system:masters``: never queued or limited here;
* ``system`` - the control plane: ``system:nodes``, ``system:kube-controller-manager``,
  ``system:kube-scheduler`` and service accounts of ``kube-system``: 30% of the seats;
* ``workload`` - everyone else: 70% of the seats.

A request that finds no free seat waits in its flow's queue; it is rejected with 429 and
``Retry-After: 1`` (as kube-apiserver does) when its flow already has ``--apf-queue-length``
(50) waiting, or after waiting ``--apf-queue-wait`` seconds (15). Long-running requests (watches,
``pods/log?follow=true``) are not limited. Responses say which level served them
(``X-Kubernetes-PF-PriorityLevel-UID``; the value is the level's name). Disabled with
``--enable-priority-and-fairness=false``: then only the immediate 429 of the max-inflight limits
applies.

Embedders configure it in ``config.plugin_options["flowcontrol_apf"]``: ``enabled`` (bool),
``seats`` (total, default the two max-inflight limits added), ``queue_length``, ``queue_wait``.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import kapi
from kapi.flagtypes import boolean

NAME = "flowcontrol_apf"
EXEMPT_GROUP = "system:masters"
SYSTEM_USERS = frozenset({"system:kube-controller-manager", "system:kube-scheduler"})
SYSTEM_GROUPS = frozenset({"system:nodes", "system:serviceaccounts:kube-system"})
SHARES = (("system", 0.3), ("workload", 0.7))
QUEUE_LENGTH = 50
QUEUE_WAIT = 15.0


class Rejected(Exception):
    """No seat and no room (or time) left in the queue."""


@dataclass
class PriorityLevel:
    """Seats shared by flows, with one FIFO queue per flow served round-robin."""

    name: str
    seats: int
    queue_length: int = QUEUE_LENGTH
    queue_wait: float = QUEUE_WAIT
    executing: int = 0
    queues: dict[str, collections.deque[asyncio.Future[None]]] = field(default_factory=dict)
    turns: collections.deque[str] = field(default_factory=collections.deque)

    async def acquire(self, flow: str) -> None:
        """Take a seat for ``flow``, waiting fairly; raises ``Rejected``."""
        if self.executing < self.seats and not self.turns:
            self.executing += 1
            return
        queue = self.queues.get(flow)
        if queue is None:
            queue = self.queues[flow] = collections.deque()
        if len(queue) >= self.queue_length:
            raise Rejected(f"too many requests of {flow!r} queued at priority level {self.name!r}")
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        queue.append(waiter)
        if flow not in self.turns:
            self.turns.append(flow)
        try:
            await asyncio.wait_for(asyncio.shield(waiter), self.queue_wait)
        except BaseException as exc:  # timed out, or the client went away
            if waiter.done() and not waiter.cancelled():  # the seat came just now: hand it on
                self.release()
            else:
                waiter.cancel()
                self._forget(flow, waiter)
            if isinstance(exc, TimeoutError):
                raise Rejected(f"a request of {flow!r} waited {self.queue_wait:g}s at priority level "
                               f"{self.name!r}") from None
            raise

    def release(self) -> None:
        """Give the seat to the next flow in turn, or free it."""
        while self.turns:
            flow = self.turns.popleft()
            queue = self.queues.get(flow)
            while queue:
                waiter = queue.popleft()
                if not waiter.done():
                    if queue:
                        self.turns.append(flow)
                    else:
                        del self.queues[flow]
                    waiter.set_result(None)  # the seat passes to it; executing is unchanged
                    return
            self.queues.pop(flow, None)
        self.executing -= 1

    def _forget(self, flow: str, waiter: asyncio.Future[None]) -> None:
        queue = self.queues.get(flow)
        if queue is not None and waiter in queue:
            queue.remove(waiter)
            if not queue:
                del self.queues[flow]
                if flow in self.turns:
                    self.turns.remove(flow)


def classify(user: kapi.UserInfo) -> str:
    """The priority level of a user's requests."""
    if EXEMPT_GROUP in user.groups:
        return "exempt"
    if user.name in SYSTEM_USERS or SYSTEM_GROUPS.intersection(user.groups) or user.name.startswith("system:node:"):
        return "system"
    return "workload"


def make_levels(seats: int, queue_length: int = QUEUE_LENGTH, queue_wait: float = QUEUE_WAIT) -> dict[str, Any]:
    return {name: PriorityLevel(name, max(1, math.floor(seats * share)), queue_length, queue_wait)
            for name, share in SHARES}


def long_running(attributes: kapi.RequestAttributes, query: bytes) -> bool:
    return attributes.verb == "watch" or (attributes.subresource == "log" and b"follow=true" in query)


class FairQueuing:
    """The ASGI middleware (position ``authenticated``)."""

    def __init__(self, app: Any, levels: Mapping[str, PriorityLevel]) -> None:
        self.app = app
        self.levels = levels

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        attributes = kapi.request_attributes(scope) if scope["type"] == "http" else None
        if attributes is None or long_running(attributes, scope.get("query_string", b"")):
            await self.app(scope, receive, send)
            return
        name = classify(attributes.user)
        level = self.levels.get(name)
        if level is None:
            await self.app(scope, receive, send)
            return
        try:
            await level.acquire(attributes.user.name)
        except Rejected as exc:
            raise kapi.APIError(429, "TooManyRequests", f"Too many requests, please try again later ({exc}).",
                                retry_after=1) from None
        header = (b"x-kubernetes-pf-prioritylevel-uid", name.encode())

        async def labelled_send(message: Any) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", ()), header]}
            await send(message)

        try:
            await self.app(scope, receive, labelled_send)
        finally:
            level.release()


@kapi.hookimpl
def kapi_add_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("priority and fairness (plugin flowcontrol_apf)")
    group.add_argument("--enable-priority-and-fairness", type=boolean, default=True, help="fair queuing per user "
                       "between priority levels (default true)")
    group.add_argument("--apf-queue-length", type=int, default=QUEUE_LENGTH, help="requests one user may have "
                       "waiting before 429")
    group.add_argument("--apf-queue-wait", type=float, default=QUEUE_WAIT, help="seconds a request may wait for "
                       "a seat before 429")


@kapi.hookimpl
def kapi_read_options(args: argparse.Namespace) -> Mapping[str, Any] | None:
    if getattr(args, "apf_queue_length", 1) < 1 or getattr(args, "apf_queue_wait", 1.0) <= 0:
        raise ValueError("--apf-queue-length and --apf-queue-wait must be positive")
    return {"enabled": getattr(args, "enable_priority_and_fairness", True),
            "queue_length": getattr(args, "apf_queue_length", QUEUE_LENGTH),
            "queue_wait": getattr(args, "apf_queue_wait", QUEUE_WAIT)}


@kapi.hookimpl
def kapi_middleware(app: kapi.App) -> list[tuple[Callable[[Any], Any], str]] | None:
    options = app.config.options_for(NAME)
    if not options.get("enabled", True):
        return None
    seats = int(options.get("seats") or app.config.max_requests_inflight + app.config.max_mutating_requests_inflight)
    if seats <= 0:
        return None
    levels = make_levels(seats, int(options.get("queue_length", QUEUE_LENGTH)),
                         float(options.get("queue_wait", QUEUE_WAIT)))
    app.plugin_state(NAME)["levels"] = levels
    return [(lambda inner: FairQueuing(inner, levels), "authenticated")]
