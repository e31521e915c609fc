"""``kapi up``: a whole single-machine cluster in one command.

1. the PKI and the admin kubeconfig (``DATA_DIR/pki``, ``DATA_DIR/admin.kubeconfig``), and one
   kubeconfig per component with its own client certificate (``DATA_DIR/kubeconfigs/``);
2. ``kapi-apiserver`` (SQLite in DATA_DIR, ``--authorization-mode=Node,RBAC``, kube's default
   admission plugins plus NodeRestriction - without a controller manager, minus ServiceAccount and
   TaintNodesByCondition, which need its controllers), then
   ``kapi scheduler --leader-elect``, ``kapi controller-manager`` (when installed) and the
   kubelets: ``--nodes N`` process-runtime nodes ``kapi-node-0..`` (default 1) and, with
   ``--fake-nodes K``, one process running K fake nodes ``kapi-fake-0..`` - each component its own
   process, logging to ``DATA_DIR/logs/NAME.log``;
3. waits until the API server is ready, the scheduler holds its Lease and every node is Ready,
   showing each step; then prints the admin kubeconfig's path and a kubectl example;
4. restarts a component that dies, and stops everything on Ctrl-C / SIGTERM (kubelets first,
   which stop their containers).

The fake nodes share one identity (``system:kapi:fake-kubelets`` in ``system:masters``), as KWOK
does; real nodes authenticate as ``system:node:NAME`` and are confined by the Node authorizer.
"""

from __future__ import annotations

import argparse
import base64
import functools
import signal
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from kapi.components.supervisor import Child, Supervisor
from kapi.config import default_data_dir

#: without a controller manager nothing creates ServiceAccounts or lifts the not-ready taint
NEEDS_CONTROLLERS = "ServiceAccount,TaintNodesByCondition"
FAKE_IDENTITY = ("system:kapi:fake-kubelets", ("system:masters",))
COMPONENTS = [sys.executable, "-m", "kapi.components"]


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register the ``up`` sub-command."""
    parser = subparsers.add_parser("up", help="run a whole cluster on this machine (Ctrl-C stops it)",
                                   description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--data-dir", default=default_data_dir(), help="database, certificates, kubeconfigs, "
                        "logs (default %(default)s)")
    parser.add_argument("--secure-port", type=int, default=6443, help="the API server's port (default 6443)")
    parser.add_argument("--nodes", type=int, default=1, help="process-runtime nodes (default 1)")
    parser.add_argument("--fake-nodes", type=int, default=0, help="fake nodes (one process, fake runtime)")
    parser.add_argument("--authorization-mode", default="Node,RBAC")
    parser.add_argument("--enable-admission-plugins", default="NodeRestriction", help="besides kube-apiserver's "
                        "default-on ones (default %(default)s)")
    parser.add_argument("--disable-admission-plugins", default="", help="default-on ones not to run (without a "
                        f"controller manager {NEEDS_CONTROLLERS} are always off)")
    parser.add_argument("--apiserver-arg", action="append", default=[], metavar="FLAG=VALUE",
                        help="extra kapi-apiserver flag, e.g. --apiserver-arg=--storage-backend=etcd3 (repeatable)")
    parser.add_argument("--no-controller-manager", dest="controller_manager", action="store_false",
                        help="do not start the controller manager")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for the cluster")
    parser.set_defaults(func=main)
    return parser


# -- credentials -------------------------------------------------------------------------------


def _kubeconfig_current(path: Path, server: str, ca_pem: bytes) -> bool:
    from kapi_certs import cert_pem, current_credentials, load_kubeconfig

    try:
        url, ca, client = current_credentials(load_kubeconfig(path))
    except (OSError, ValueError):
        return False
    return url == server and ca is not None and client is not None and cert_pem(ca) == ca_pem


def component_kubeconfigs(data_dir: Path, server: str, nodes: list[str], fake: bool) -> dict[str, Path]:
    """One kubeconfig per component under ``DATA_DIR/kubeconfigs`` (reused while still valid)."""
    from kapi_certs import (
        component_kubeconfig,
        files_of,
        load_cert,
        load_key,
        user_kubeconfig,
        write_kubeconfig,
    )

    ca_path, ca_key_path = files_of(data_dir / "pki", "ca")
    ca_pem = ca_path.read_bytes()
    ca_cert, ca_key = load_cert(ca_pem), load_key(ca_key_path.read_bytes())
    wanted: dict[str, Callable[[], dict[str, Any]]] = {
        "kube-scheduler": lambda: component_kubeconfig(ca_cert, ca_key, "kube-scheduler", server=server),
        "kube-controller-manager": lambda: component_kubeconfig(ca_cert, ca_key, "kube-controller-manager",
                                                                server=server),
    }
    for node in nodes:
        wanted[f"kubelet-{node}"] = functools.partial(component_kubeconfig, ca_cert, ca_key, "kubelet",
                                                      server=server, node_name=node)
    if fake:
        name, groups = FAKE_IDENTITY
        wanted["kubelet-fake"] = lambda: user_kubeconfig(ca_cert, ca_key, server=server, name=name, groups=groups)
    out = {}
    for component, make in wanted.items():
        path = data_dir / "kubeconfigs" / f"{component}.kubeconfig"
        if not _kubeconfig_current(path, server, ca_pem):
            write_kubeconfig(path, make())
        out[component] = path
    return out


# -- readiness ---------------------------------------------------------------------------------


def admin_http(data_dir: Path, server: str) -> httpx.Client:
    """A blocking client with the admin credentials (for the readiness checks)."""
    from kapi.client import ssl_context
    from kapi_certs import load_kubeconfig

    user = load_kubeconfig(data_dir / "admin.kubeconfig")["users"][0]["user"]
    tls = ssl_context((data_dir / "pki" / "ca.crt").read_bytes(), base64.b64decode(user["client-certificate-data"]),
                      base64.b64decode(user["client-key-data"]))
    return httpx.Client(base_url=server, verify=tls, timeout=2.0)


def _get(http: httpx.Client, path: str) -> Any:
    try:
        response = http.get(path)
    except httpx.HTTPError:
        return None
    if response.status_code != 200:
        return None
    return response.json() if "json" in response.headers.get("content-type", "") else response.text


def apiserver_ready(http: httpx.Client) -> bool:
    return _get(http, "/readyz") is not None


def lease_held(http: httpx.Client, name: str) -> bool:
    lease = _get(http, f"/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/{name}")
    return bool(lease and (lease.get("spec") or {}).get("holderIdentity"))


def ready_nodes(http: httpx.Client) -> set[str]:
    """Nodes that are Ready and schedulable: no ``not-ready``/``unreachable`` taint left (the node
    lifecycle controller lifts the one TaintNodesByCondition puts on new nodes)."""
    nodes = _get(http, "/api/v1/nodes") or {"items": []}
    out = set()
    for node in nodes["items"]:
        ready = any(c.get("type") == "Ready" and c.get("status") == "True"
                    for c in (node.get("status") or {}).get("conditions") or [])
        tainted = any(t.get("key") in ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable")
                      for t in (node.get("spec") or {}).get("taints") or [])
        if ready and not tainted:
            out.add(node["metadata"]["name"])
    return out


class Stopped(Exception):
    """Ctrl-C / SIGTERM while waiting."""


def wait_for(what: str, check: Callable[[], bool], *, deadline: float, supervisor: Supervisor,
             stop: Callable[[], bool]) -> None:
    """Poll ``check`` until true, printing ``what`` with the time it took.

    :raises Stopped: on a stop request; ``TimeoutError``/``RuntimeError`` (with the log tail)
        when the deadline passes or the API server died.
    """
    started = time.monotonic()
    interactive = sys.stdout.isatty()
    if interactive:
        print(f"  ... {what}", end="", flush=True)
    try:
        while not check():
            if stop():
                raise Stopped
            dead = supervisor.check()
            if dead is not None:
                raise RuntimeError(f"{dead.name} exited with {dead.process.returncode if dead.process else '?'}:\n"
                                   f"{dead.tail()}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"timed out waiting for: {what}")
            time.sleep(0.05)
    except BaseException:
        if interactive:
            print(flush=True)
        raise
    print(f"{chr(13) if interactive else ''}  ok  {what} ({time.monotonic() - started:.1f}s)", flush=True)


# -- the command -------------------------------------------------------------------------------


def controller_manager_flags(data_dir: Path) -> list[str] | None:
    """The flags to start ``kapi controller-manager`` with (kubeadm's: leader election, one service
    account per controller, the cluster CA to publish), or None when it is not installed."""
    from kapi.plugins import make_plugin_manager

    parser = argparse.ArgumentParser(prog="kapi")
    subparsers = parser.add_subparsers(dest="command")
    make_plugin_manager().hook.kapi_register_commands(subparsers=subparsers)
    command = subparsers.choices.get("controller-manager")
    if command is None:
        return None
    options = {s for action in command._actions for s in action.option_strings}
    wanted = ["--leader-elect", "--use-service-account-credentials", f"--root-ca-file={data_dir / 'pki' / 'ca.crt'}"]
    return [flag for flag in wanted if flag.split("=", 1)[0] in options]


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _apiserver_argv(args: argparse.Namespace, data_dir: Path, with_controllers: bool) -> list[str]:
    binary = Path(sys.executable).parent / "kapi-apiserver"
    head = [str(binary)] if binary.exists() else \
        [sys.executable, "-c", "import sys; from kapi.cli import apiserver_main; sys.exit(apiserver_main())"]
    disabled = [p for p in args.disable_admission_plugins.split(",") if p]
    if not with_controllers:
        disabled += NEEDS_CONTROLLERS.split(",")
    argv = [*head, f"--data-dir={data_dir}", f"--secure-port={args.secure_port}",
            f"--authorization-mode={args.authorization_mode}",
            f"--enable-admission-plugins={args.enable_admission_plugins}"]
    if disabled:
        argv.append(f"--disable-admission-plugins={','.join(dict.fromkeys(disabled))}")
    return [*argv, *args.apiserver_arg]


def start_cluster(args: argparse.Namespace, supervisor: Supervisor, stop: Callable[[], bool]) -> Path:
    """Everything up to a ready cluster; returns the admin kubeconfig path."""
    from kapi_certs import ensure_default_credentials

    data_dir = Path(args.data_dir).resolve()
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    server = f"https://127.0.0.1:{args.secure_port}"
    deadline = time.monotonic() + args.timeout
    if not _port_free(args.secure_port):
        raise RuntimeError(f"port {args.secure_port} is in use (another kapi up?): choose --secure-port")
    nodes = [f"kapi-node-{i}" for i in range(args.nodes)]
    fakes = [f"kapi-fake-{i}" for i in range(args.fake_nodes)]
    started = time.monotonic()
    creds = ensure_default_credentials(data_dir, server=server)
    kubeconfigs = component_kubeconfigs(data_dir, server, nodes, bool(fakes))
    print(f"  ok  certificates and kubeconfigs in {data_dir} ({time.monotonic() - started:.1f}s)", flush=True)
    cm_flags = controller_manager_flags(data_dir) if args.controller_manager else None
    supervisor.start("kube-apiserver", _apiserver_argv(args, data_dir, cm_flags is not None), critical=True)
    with admin_http(data_dir, server) as http:
        wait_for(f"kube-apiserver on {server}", lambda: apiserver_ready(http), deadline=deadline,
                 supervisor=supervisor, stop=stop)
        supervisor.start("kube-scheduler", [*COMPONENTS, "scheduler", f"--kubeconfig={kubeconfigs['kube-scheduler']}",
                                            "--leader-elect"])
        if cm_flags is not None:
            supervisor.start("kube-controller-manager", [
                sys.executable, "-m", "kapi.cli", "controller-manager",
                f"--kubeconfig={kubeconfigs['kube-controller-manager']}", *cm_flags])
        elif args.controller_manager:
            print("  --  kube-controller-manager is not installed: Deployments and ReplicaSets will not act",
                  flush=True)
        for node in nodes:
            supervisor.start(f"kubelet-{node}", [
                *COMPONENTS, "kubelet", f"--node-name={node}", f"--kubeconfig={kubeconfigs[f'kubelet-{node}']}",
                "--runtime=process", "--port=0", f"--root-dir={data_dir / 'kubelet' / node}",
                f"--pki-dir={data_dir / 'pki'}"])
        if fakes:
            supervisor.start("kubelet-fake", [
                *COMPONENTS, "kubelet", "--node-name=kapi-fake", f"--fake-nodes={len(fakes)}", "--runtime=fake",
                f"--kubeconfig={kubeconfigs['kubelet-fake']}", "--port=0",
                f"--root-dir={data_dir / 'kubelet' / 'kapi-fake'}", f"--pki-dir={data_dir / 'pki'}"])
        wait_for("kube-scheduler (leader)", lambda: lease_held(http, "kube-scheduler"), deadline=deadline,
                 supervisor=supervisor, stop=stop)
        if cm_flags and "--leader-elect" in cm_flags:
            wait_for("kube-controller-manager (leader)", lambda: lease_held(http, "kube-controller-manager"),
                     deadline=deadline, supervisor=supervisor, stop=stop)
        wanted = set(nodes) | set(fakes)
        if wanted:
            wait_for(f"{len(wanted)} node(s) Ready", lambda: wanted <= ready_nodes(http), deadline=deadline,
                     supervisor=supervisor, stop=stop)
    return creds.admin_kubeconfig_path


def main(args: argparse.Namespace) -> int:
    """Bring the cluster up, then supervise it until Ctrl-C / SIGTERM."""
    stopping = {"now": False}

    def request_stop(_signum: int, _frame: Any) -> None:
        stopping["now"] = True

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    supervisor = Supervisor(Path(args.data_dir).resolve() / "logs")
    print(f"kapi up: starting a cluster in {Path(args.data_dir).resolve()}", flush=True)
    code = 0
    try:
        kubeconfig = start_cluster(args, supervisor, lambda: stopping["now"])
        print(f"\nThe cluster is up. Admin kubeconfig: {kubeconfig}\n"
              f"  kubectl --kubeconfig {kubeconfig} get nodes\n"
              f"  export KUBECONFIG={kubeconfig}\n"
              f"Component logs: {supervisor.log_dir}. Press Ctrl-C to stop.", flush=True)
        while not stopping["now"]:
            dead: Child | None = supervisor.check()
            if dead is not None:
                print(f"kube-apiserver exited with {dead.process.returncode if dead.process else '?'}:\n"
                      f"{dead.tail()}", file=sys.stderr, flush=True)
                code = 1
                break
            time.sleep(0.2)
    except Stopped:
        pass
    except (RuntimeError, TimeoutError, OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        code = 1
    finally:
        print("kapi up: stopping ...", flush=True)
        supervisor.stop_all()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        print("kapi up: stopped", flush=True)
    return code

