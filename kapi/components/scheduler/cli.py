"""``kapi scheduler --kubeconfig K [--leader-elect] [--scheduler-name NAME]``."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from kapi.client import Client
from kapi.components.runner import add_common_flags, add_leader_flags, run_elected, run_main, setup_logging
from kapi.components.scheduler.scheduler import DEFAULT_SCHEDULER, Scheduler


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register the ``scheduler`` sub-command."""
    parser = subparsers.add_parser("scheduler", help="run the scheduler (assigns pods to nodes)",
                                   description="Watches unscheduled pods and nodes; binds each pod to the best "
                                               "node that fits, or marks it Unschedulable with the reasons.")
    add_common_flags(parser)
    parser.add_argument("--scheduler-name", default=DEFAULT_SCHEDULER, help="schedule the pods whose "
                        "spec.schedulerName is this (default %(default)s)")
    add_leader_flags(parser, "kube-scheduler")
    parser.set_defaults(func=main)
    return parser


def main(args: argparse.Namespace) -> int:
    """Run until SIGINT/SIGTERM (exit 0) or until leadership is lost (exit 1)."""
    setup_logging(args.verbosity)

    async def run(stop: asyncio.Event) -> int:
        async with Client.from_kubeconfig(args.kubeconfig) as client:
            scheduler = Scheduler(client, args.scheduler_name)
            return await run_elected(client, args, stop, scheduler.run)

    return run_main(run)
