"""Process plumbing every component command shares: logging, uvloop, signals, leader election.

``run_main(main)`` runs the coroutine function ``main(stop)`` in a fresh loop, where ``stop`` is
an ``asyncio.Event`` set on SIGINT/SIGTERM; its integer result is the exit code.
``run_elected(...)`` runs ``work()`` only while this process holds the component's Lease.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import socket
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from kapi.client import Client, LeaderElector

log = logging.getLogger("kapi.components")


def add_common_flags(parser: argparse.ArgumentParser) -> None:
    """``--kubeconfig`` (required) and ``-v``."""
    parser.add_argument("--kubeconfig", required=True, help="kubeconfig with the server, CA and this component's "
                        "client certificate")
    parser.add_argument("-v", "--v", dest="verbosity", type=int, default=0, help="log verbosity (0-10)")


def add_leader_flags(parser: argparse.ArgumentParser, lease_name: str) -> None:
    """kube-scheduler's leader election flags."""
    group = parser.add_argument_group("leader election")
    group.add_argument("--leader-elect", action=argparse.BooleanOptionalAction, default=False,
                       help="run only while holding the Lease (several replicas may run)")
    group.add_argument("--leader-elect-lease-duration", type=float, default=15.0)
    group.add_argument("--leader-elect-renew-deadline", type=float, default=10.0)
    group.add_argument("--leader-elect-retry-period", type=float, default=2.0)
    group.add_argument("--leader-elect-resource-namespace", default="kube-system")
    group.add_argument("--leader-elect-resource-name", default=lease_name)


def setup_logging(verbosity: int) -> None:
    logging.basicConfig(level=logging.DEBUG if verbosity >= 4 else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)


def identity() -> str:
    """A candidate identity: ``HOSTNAME_UUID``, as kube-scheduler makes it."""
    return f"{socket.gethostname()}_{uuid.uuid4()}"


def run_main(main: Callable[[asyncio.Event], Awaitable[int]]) -> int:
    """Run ``main(stop)`` under uvloop when available; SIGINT/SIGTERM set ``stop``."""
    try:
        import uvloop
    except ImportError:
        uvloop = None  # type: ignore[assignment]

    async def wrapper() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        return await main(stop)

    if uvloop is not None:
        return int(uvloop.run(wrapper()))
    return int(asyncio.run(wrapper()))


async def until_stopped(stop: asyncio.Event, work: Awaitable[Any]) -> bool:
    """Run ``work`` until it ends or ``stop`` is set (then cancel it). True when stopped."""
    task = asyncio.ensure_future(work)
    stopper = asyncio.ensure_future(stop.wait())
    try:
        done, _ = await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for pending in (task, stopper):
            if not pending.done():
                pending.cancel()
        await asyncio.gather(task, stopper, return_exceptions=True)
    if task in done and not task.cancelled() and task.exception() is not None:
        raise task.exception()  # type: ignore[misc]
    return stopper in done


async def run_elected(client: Client, args: argparse.Namespace, stop: asyncio.Event,
                      work: Callable[[], Awaitable[Any]]) -> int:
    """Run ``work()`` now (no ``--leader-elect``) or while leading; 0 on stop, 1 when leadership
    was lost (the process should exit and be restarted, like kube-scheduler)."""
    if not args.leader_elect:
        await until_stopped(stop, work())
        return 0
    elector = LeaderElector(client, args.leader_elect_resource_namespace, args.leader_elect_resource_name,
                            identity(), lease_duration=args.leader_elect_lease_duration,
                            renew_deadline=args.leader_elect_renew_deadline,
                            retry_period=args.leader_elect_retry_period)
    stop_task = asyncio.ensure_future(stop.wait())
    stop_task.add_done_callback(lambda _: elector.stop())
    try:
        lost = await elector.run(work, lambda: log.info("stopped leading"))
    finally:
        stop_task.cancel()
    if lost:
        log.error("leader election lost")
        return 1
    return 0
