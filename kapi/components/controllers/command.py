"""``kapi controller-manager``: the controllers as a process (kube-controller-manager's flags).

::

    kapi controller-manager --kubeconfig controller-manager.kubeconfig [--controllers '*,-podgc']
        [--leader-elect] [--node-monitor-grace-period 40s] [--node-monitor-period 5s]
        [--node-startup-grace-period 1m] [--pod-eviction-timeout 5m] [--root-ca-file ca.crt]
        [--use-service-account-credentials] [--concurrent-syncs 5] [-v 4]

Durations are Go durations (``40s``, ``1m30s``, ``500ms``) or plain seconds. The cluster CA
published as ``kube-root-ca.crt`` comes from ``--root-ca-file``, else from the kubeconfig. With
``--leader-elect`` only the holder of the Lease ``kube-system/kube-controller-manager`` runs
controllers; a process that loses the Lease exits with status 1 (to be restarted, as kube does).
With ``--use-service-account-credentials`` each controller writes as its own service account in
``kube-system`` (what RBAC's ``system:controller:*`` roles are bound to).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import logging
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from kapi.components.controllers.framework import ControllerOptions
from kapi.components.controllers.manager import CONTROLLERS, run_controllers, select_controllers, service_accounts
from kapi.durations import parse_duration

log = logging.getLogger("kapi.controllers")

LEASE_NAME = "kube-controller-manager"




def _duration(text: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_flags(parser: argparse.ArgumentParser) -> None:
    """The flags of ``kapi controller-manager``."""
    from kapi.components.runner import add_common_flags, add_leader_flags

    add_common_flags(parser)
    parser.add_argument("--controllers", default="*", help="controllers to run: '*' (all), NAME to enable, -NAME to "
                        f"disable, comma-separated (known: {', '.join(CONTROLLERS)})")
    parser.add_argument("--node-monitor-grace-period", type=_duration, default=40.0, metavar="DURATION",
                        help="a node silent for longer is marked unknown (default 40s)")
    parser.add_argument("--node-monitor-period", type=_duration, default=5.0, metavar="DURATION",
                        help="how often node health is checked (default 5s)")
    parser.add_argument("--node-startup-grace-period", type=_duration, default=60.0, metavar="DURATION",
                        help="grace for a node that never reported (default 1m)")
    parser.add_argument("--pod-eviction-timeout", type=_duration, default=300.0, metavar="DURATION",
                        help="eviction delay for pods on unhealthy nodes without a toleration (default 5m)")
    parser.add_argument("--terminated-pod-gc-period", type=_duration, default=20.0, metavar="DURATION",
                        help="how often pods of deleted nodes are collected (default 20s)")
    parser.add_argument("--root-ca-file", default="", help="CA published as kube-root-ca.crt (default: the "
                        "kubeconfig's CA)")
    parser.add_argument("--use-service-account-credentials", action=argparse.BooleanOptionalAction, default=False,
                        help="each controller writes as its own service account in kube-system")
    parser.add_argument("--concurrent-syncs", type=int, default=5, help="objects each controller syncs at once")
    add_leader_flags(parser, LEASE_NAME)


def kubeconfig_ca(config: Mapping[str, Any]) -> str:
    """The CA PEM of a kubeconfig's current cluster ("" when it has none)."""
    context_name = config.get("current-context")
    context = next((c.get("context") or {} for c in config.get("contexts") or [] if c.get("name") == context_name), {})
    cluster = next((c.get("cluster") or {} for c in config.get("clusters") or []
                    if c.get("name") == context.get("cluster")), {})
    if cluster.get("certificate-authority-data"):
        return base64.b64decode(str(cluster["certificate-authority-data"])).decode()
    if cluster.get("certificate-authority"):
        return Path(str(cluster["certificate-authority"])).read_text()
    return ""


def options_from_args(args: argparse.Namespace, kubeconfig: Mapping[str, Any]) -> ControllerOptions:
    """Flags -> ControllerOptions."""
    root_ca = Path(args.root_ca_file).read_text() if args.root_ca_file else kubeconfig_ca(kubeconfig)
    return ControllerOptions(node_monitor_grace_period=args.node_monitor_grace_period,
                             node_monitor_period=args.node_monitor_period,
                             node_startup_grace_period=args.node_startup_grace_period,
                             default_toleration_seconds=args.pod_eviction_timeout,
                             pod_gc_period=args.terminated_pod_gc_period, root_ca_pem=root_ca,
                             workers=max(1, args.concurrent_syncs))


def _token_config(kubeconfig: Mapping[str, Any], token: str) -> dict[str, Any]:
    """The kubeconfig with its current user replaced by a bearer token."""
    context_name = kubeconfig.get("current-context")
    context = next((c.get("context") or {} for c in kubeconfig.get("contexts") or []
                    if c.get("name") == context_name), {})
    return {**kubeconfig, "users": [{"name": context.get("user"), "user": {"token": token}}]}


async def _main(args: argparse.Namespace, stop: asyncio.Event) -> int:
    from kapi.client import Client
    from kapi.components.controllers.credentials import ServiceAccountClients
    from kapi.components.runner import run_elected
    from kapi_certs import load_kubeconfig

    kubeconfig = load_kubeconfig(args.kubeconfig)
    names = select_controllers(args.controllers.split(","))
    options = options_from_args(args, kubeconfig)
    client = Client.from_config(kubeconfig)
    accounts: ServiceAccountClients | None = None
    renewal: asyncio.Task[None] | None = None

    async def work() -> None:
        nonlocal accounts, renewal
        clients = {}
        if args.use_service_account_credentials:
            accounts = ServiceAccountClients(client, lambda token: Client.from_config(_token_config(kubeconfig,
                                                                                                     token)))
            clients = await accounts.build(service_accounts(names))
            renewal = asyncio.create_task(accounts.renew_forever())
        await run_controllers(client, controllers=names, stop=stop, options=options, clients=clients)

    try:
        return await run_elected(client, args, stop, work)
    finally:
        if renewal is not None:
            renewal.cancel()
        if accounts is not None:
            await accounts.aclose()
        await client.aclose()


def cmd_controller_manager(args: argparse.Namespace) -> int:
    """Run the controller manager until SIGINT/SIGTERM (exit 1 when leadership was lost)."""
    from kapi.components.runner import run_main, setup_logging

    setup_logging(args.verbosity)
    try:
        select_controllers(args.controllers.split(","))
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return run_main(lambda stop: _main(args, stop))


def add_command(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register ``kapi controller-manager``."""
    parser = subparsers.add_parser("controller-manager", help="run the controllers (deployment, replicaset, "
                                   "namespace, garbage collector, node lifecycle, job, ...)",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_flags(parser)
    parser.set_defaults(func=cmd_controller_manager)


def main(argv: list[str] | None = None) -> int:
    """``python -m kapi.components.controllers.command``: the command without the plugin registry."""
    parser = argparse.ArgumentParser(prog="kapi controller-manager", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_flags(parser)
    return cmd_controller_manager(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
