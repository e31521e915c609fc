"""``kapi kubelet --node-name N --kubeconfig K [--runtime fake|process] [--fake-nodes COUNT]``."""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import logging
import os
import socket
from pathlib import Path
from typing import Any

from kapi.client import Client
from kapi.components.kubelet.fleet import Fleet
from kapi.components.kubelet.kubelet import Kubelet
from kapi.components.kubelet.node import NodeConfig
from kapi.components.kubelet.runtime import RuntimeNotFound, load_runtime, plugin_manager
from kapi.components.kubelet.server import AUTHORIZED_GROUPS, AUTHORIZED_USERS, KubeletServer, serve_https
from kapi.components.kubelet.tls import serving_files, write_client_ca
from kapi.components.kubelet.worker import NodeContext
from kapi.components.runner import add_common_flags, run_main, setup_logging, until_stopped
from kapi.config import default_data_dir

log = logging.getLogger("kapi.kubelet")

FAKE_CAPACITY = "cpu=32,memory=256Gi,pods=110,ephemeral-storage=1Ti"


def _pairs(value: str) -> dict[str, str]:
    out = {}
    for item in filter(None, (v.strip() for v in value.split(","))):
        key, sep, val = item.partition("=")
        if not sep or not key:
            raise argparse.ArgumentTypeError(f"expected KEY=VALUE, not {item!r}")
        out[key] = val
    return out


def _taints(value: str) -> list[dict[str, str]]:
    """``key=value:Effect,key2:Effect`` -> taints."""
    taints = []
    for item in filter(None, (v.strip() for v in value.split(","))):
        body, sep, effect = item.rpartition(":")
        if not sep or effect not in ("NoSchedule", "PreferNoSchedule", "NoExecute"):
            raise argparse.ArgumentTypeError(f"taint {item!r}: expected key[=value]:NoSchedule|PreferNoSchedule|"
                                             "NoExecute")
        key, _, val = body.partition("=")
        taints.append({"key": key, "value": val, "effect": effect} if val else {"key": key, "effect": effect})
    return taints


def _backoff(value: str) -> tuple[float, float]:
    low, _, high = value.partition(",")
    try:
        return float(low), float(high or max(float(low), 300.0))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected SECONDS[,MAX_SECONDS], not {value!r}") from None


def machine_capacity() -> str:
    """This machine's cpu count and memory, for a process-runtime node."""
    memory = "8Gi"
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemTotal:"):
                    memory = f"{int(line.split()[1])}Ki"
                    break
    except OSError:
        pass
    return f"cpu={os.cpu_count() or 1},memory={memory},pods=110,ephemeral-storage=100Gi"


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register the ``kubelet`` sub-command."""
    parser = subparsers.add_parser("kubelet", help="run a node agent (or many fake ones)",
                                   description="Registers a Node, keeps its Lease, runs the pods bound to it "
                                               "through a container runtime plugin, reports their status and "
                                               "serves their logs over HTTPS.")
    add_common_flags(parser)
    parser.add_argument("--node-name", default=socket.gethostname(), help="the Node's name (with --fake-nodes: "
                        "the prefix, nodes are NAME-0 ... NAME-<COUNT-1>)")
    parser.add_argument("--runtime", default="", help="container runtime plugin: process (default) or fake "
                        "(default with --fake-nodes)")
    parser.add_argument("--fake-nodes", type=int, default=0, metavar="COUNT", help="run COUNT nodes in this "
                        "process, sharing one watch and one endpoint (scale tests)")
    parser.add_argument("--root-dir", default="", help="container logs and generated certificates (default "
                        "DATA_DIR/kubelet/NODE)")
    parser.add_argument("--address", default="127.0.0.1", help="address of the HTTPS endpoint")
    parser.add_argument("--port", type=int, default=10250, help="port of the HTTPS endpoint (0: any free port)")
    parser.add_argument("--node-ip", default="127.0.0.1", help="the node's InternalIP (and the process runtime's "
                        "pod IP)")
    parser.add_argument("--node-labels", type=_pairs, default={}, metavar="K=V,...")
    parser.add_argument("--register-with-taints", type=_taints, default=[], metavar="K=V:EFFECT,...")
    parser.add_argument("--capacity", type=_pairs, default=None, metavar="cpu=N,memory=Q,pods=N",
                        help="what the node offers (default: this machine; with --fake-nodes " + FAKE_CAPACITY + ")")
    parser.add_argument("--tls-cert-file", default="", help="serving certificate (default: issued from "
                        "--pki-dir's CA, else self-signed)")
    parser.add_argument("--tls-private-key-file", default="")
    parser.add_argument("--pki-dir", default="", help="the cluster's pki directory (ca.crt + ca.key) to issue the "
                        "serving certificate from")
    parser.add_argument("--client-ca-file", default="", help="CA of callers' client certificates (default: the "
                        "kubeconfig's CA)")
    parser.add_argument("--authorized-users", default=",".join(AUTHORIZED_USERS), help="client certificate CNs "
                        "allowed to read logs (default %(default)s)")
    parser.add_argument("--crash-loop-backoff", type=_backoff, default=(10.0, 300.0), metavar="SECONDS[,MAX]",
                        help="restart back-off of crashing containers (default 10,300)")
    parser.add_argument("--node-status-report-frequency", type=float, default=300.0)
    parser.add_argument("--node-lease-renew-interval", type=float, default=10.0)
    parser.add_argument("--plugin", action="append", default=[], metavar="MODULE", help="also load this plugin "
                        "module by import name (a runtime not installed as an entry point); repeatable")
    parser.set_defaults(func=main)
    return parser


def _kubeconfig_ca(path: str) -> bytes:
    from kapi_certs import load_kubeconfig

    config = load_kubeconfig(path)
    for cluster in config.get("clusters") or []:
        data = (cluster.get("cluster") or {}).get("certificate-authority-data")
        if data:
            return base64.b64decode(data)
    raise ValueError(f"{path} carries no certificate-authority-data: give --client-ca-file")


def _bind(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(1024)
    sock.set_inheritable(True)
    return sock


def main(args: argparse.Namespace) -> int:
    """Run the node(s) until SIGINT/SIGTERM (their containers are stopped then)."""
    setup_logging(args.verbosity)
    runtime_name = args.runtime or ("fake" if args.fake_nodes else "process")
    try:
        runtime = load_runtime(runtime_name, plugin_manager(args.plugin))
    except RuntimeNotFound as exc:
        print(f"error: {exc}")
        return 2
    names = [f"{args.node_name}-{i}" for i in range(args.fake_nodes)] if args.fake_nodes else [args.node_name]
    root = Path(args.root_dir or os.path.join(default_data_dir(), "kubelet", args.node_name))
    capacity = args.capacity or _pairs(FAKE_CAPACITY if args.fake_nodes else machine_capacity())
    sock = _bind(args.address, args.port)
    port = sock.getsockname()[1]
    client_ca = args.client_ca_file or write_client_ca(root, _kubeconfig_ca(args.kubeconfig))
    cert, key = serving_files(root, names, args.node_ip, cert_file=args.tls_cert_file,
                              key_file=args.tls_private_key_file, pki_dir=args.pki_dir)

    async def run(stop: asyncio.Event) -> int:
        async with Client.from_kubeconfig(args.kubeconfig) as client, \
                Client.from_kubeconfig(args.kubeconfig, max_connections=4) as heartbeats:
            kubelets = {}
            for name in names:
                node = NodeConfig(name=name, address=args.node_ip, port=port, capacity=capacity,
                                  labels=args.node_labels, taints=args.register_with_taints,
                                  runtime_version=f"{runtime.name}://{runtime.version}")
                context = NodeContext(client=client, runtime=runtime, node_name=name, node_ip=args.node_ip,
                                      root_dir=str(root), backoff=args.crash_loop_backoff)
                kubelets[name] = Kubelet(client, node, context, lease_interval=args.node_lease_renew_interval,
                                         report_interval=args.node_status_report_frequency,
                                         heartbeat_client=heartbeats)
            fleet = Fleet(client, kubelets)
            users = [u for u in args.authorized_users.split(",") if u]
            app = KubeletServer(fleet.lookup, fleet.pods).asgi(users=users, groups=AUTHORIZED_GROUPS)
            server = asyncio.create_task(serve_https(app, host=args.address, port=port, cert_file=cert, key_file=key,
                                                     client_ca_file=client_ca, shutdown=stop.wait,
                                                     socket_fd=sock.fileno()))
            log.info("kubelet %s: %d node(s), runtime %s, serving on https://%s:%d", args.node_name, len(names),
                     runtime.name, args.address, port)
            try:
                await until_stopped(stop, fleet.run())
            finally:
                stop.set()
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(server, 5)  # do not wait long for idle TLS peers
        return 0

    return run_main(run)
