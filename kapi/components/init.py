"""``kapi init --root DIR``: the kubeadm view of a kapi control plane, written under an install root.

Under ``DIR`` (``/`` to install for real) it writes what ``kubeadm init`` leaves on a machine:

* ``etc/kubernetes/pki/`` - the cluster PKI (``ensure_pki``: kept when present and valid);
* ``etc/kubernetes/{admin,scheduler,controller-manager,kubelet}.conf`` - kubeconfigs with each
  component's own client certificate;
* ``etc/kubernetes/manifests/kube-{apiserver,scheduler,controller-manager}.yaml`` - static pod
  manifests whose ``command`` carries every effective option of the component;
* ``etc/systemd/system/kapi-{apiserver,scheduler,controller-manager,kubelet}.service`` - systemd
  units whose ``ExecStart`` carries the same options (the kubelet is a unit only, as in kubeadm);
* ``var/lib/kapi/kubelet/pki/kubelet.{crt,key}`` - the kubelet's serving certificate.

"Every effective option" means every flag the component accepts, defaults included, as
``kapi-apiserver --print-effective-options`` prints them - so the manifest, the unit and ``ps``
show the same thing. Paths inside the files are the installed ones (``/etc/kubernetes/...``),
whatever ``--root`` is. The controller manager is included when it is installed.
"""

from __future__ import annotations

import argparse
import socket
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

ETC = "/etc/kubernetes"
PKI = f"{ETC}/pki"
DATA = "/var/lib/kapi"
VERSION = "0.1.0"


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register the ``init`` sub-command."""
    parser = subparsers.add_parser("init", help="write kubeadm-style static pod manifests, systemd units, PKI and "
                                                "kubeconfigs under an install root")
    parser.add_argument("--root", required=True, help="install root ('/' for this machine)")
    parser.add_argument("--advertise-address", default="127.0.0.1", help="the API server's address for clients")
    parser.add_argument("--secure-port", type=int, default=6443)
    parser.add_argument("--node-name", default=socket.gethostname().lower(), help="this machine's Node name")
    parser.add_argument("--image", default=f"kapi:{VERSION}", help="container image named in the manifests")
    parser.add_argument("--bin-dir", default="/usr/local/bin", help="where kapi and kapi-apiserver are installed")
    parser.add_argument("--apiserver-arg", action="append", default=[], metavar="--FLAG=VALUE",
                        help="extra kapi-apiserver flag (repeatable)")
    parser.set_defaults(func=main)
    return parser


# -- effective options -------------------------------------------------------------------------


def apiserver_options(extra: Sequence[str], *, address: str, port: int) -> list[str]:
    """Every effective kapi-apiserver option for an installed control plane."""
    from kapi.cli import add_apiserver_flags, effective_flags, with_generated_paths
    from kapi.plugins import make_plugin_manager

    parser = argparse.ArgumentParser(prog="kapi-apiserver")
    add_apiserver_flags(parser)
    make_plugin_manager().hook.kapi_add_options(parser=parser)
    known = {s for action in parser._actions for s in action.option_strings}
    wanted = {
        "--advertise-address": address, "--bind-address": "0.0.0.0", "--secure-port": str(port),
        "--data-dir": DATA, "--tls-cert-file": f"{PKI}/apiserver.crt", "--tls-private-key-file": f"{PKI}/apiserver.key",
        "--client-ca-file": f"{PKI}/ca.crt", "--authorization-mode": "Node,RBAC",
        "--enable-admission-plugins": "NamespaceLifecycle,LimitRanger,ServiceAccount,Priority,"
                                      "DefaultTolerationSeconds,NodeRestriction",
        "--kubelet-client-certificate": f"{PKI}/apiserver-kubelet-client.crt",
        "--kubelet-client-key": f"{PKI}/apiserver-kubelet-client.key",
        "--kubelet-certificate-authority": f"{PKI}/ca.crt",
        "--service-account-key-file": f"{PKI}/sa.pub", "--service-account-signing-key-file": f"{PKI}/sa.key",
        "--requestheader-client-ca-file": f"{PKI}/front-proxy-ca.crt",
    }
    argv = [f"{flag}={value}" for flag, value in wanted.items() if flag in known]
    args = parser.parse_args([*argv, *extra])
    return effective_flags(parser, with_generated_paths(args))


def component_options(command: str, argv: Sequence[str]) -> list[str] | None:
    """Every effective option of the ``kapi COMMAND`` sub-command; None when not installed."""
    from kapi.cli import effective_flags
    from kapi.plugins import make_plugin_manager

    root = argparse.ArgumentParser(prog="kapi")
    subparsers = root.add_subparsers(dest="command")
    make_plugin_manager().hook.kapi_register_commands(subparsers=subparsers)
    parser = subparsers.choices.get(command)
    if parser is None:
        return None
    known = {s for action in parser._actions for s in action.option_strings}
    usable = [a for a in argv if a.split("=", 1)[0] in known]
    return effective_flags(parser, parser.parse_args(usable))


# -- file contents -----------------------------------------------------------------------------


def static_pod(name: str, image: str, command: list[str], port: int, *, probe_path: str = "/healthz",
               mounts: Sequence[tuple[str, str, bool]] = ()) -> dict[str, Any]:
    """A kubeadm-shaped static pod manifest (``kube-system``, host network, HTTPS probes)."""
    probe = {"httpGet": {"host": "127.0.0.1", "path": probe_path, "port": port, "scheme": "HTTPS"},
             "initialDelaySeconds": 10, "periodSeconds": 10, "timeoutSeconds": 15, "failureThreshold": 8}
    volumes = [{"name": vname, "hostPath": {"path": path, "type": "DirectoryOrCreate"}} for vname, path, _ in mounts]
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "kube-system", "labels": {"component": name, "tier": "control-plane"}},
        "spec": {
            "hostNetwork": True, "priorityClassName": "system-node-critical",
            "priority": 2000001000, "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{
                "name": name, "image": image, "imagePullPolicy": "IfNotPresent", "command": command,
                "livenessProbe": probe, "startupProbe": {**probe, "failureThreshold": 24},
                "resources": {"requests": {"cpu": "250m" if name == "kube-apiserver" else "100m"}},
                "volumeMounts": [{"name": vname, "mountPath": path, "readOnly": ro} for vname, path, ro in mounts],
            }],
            "volumes": volumes,
        },
        "status": {},
    }


def systemd_unit(description: str, command: list[str], *, after: str = "network-online.target") -> str:
    """A systemd service unit running ``command`` (one option per continuation line)."""
    exec_start = " \\\n    ".join(command)
    return (f"[Unit]\nDescription={description}\nDocumentation=https://kubernetes.io/docs/\n"
            f"Wants=network-online.target\nAfter={after}\n\n"
            f"[Service]\nExecStart={exec_start}\nRestart=always\nRestartSec=5\nLimitNOFILE=1048576\n\n"
            f"[Install]\nWantedBy=multi-user.target\n")


# -- the command -------------------------------------------------------------------------------


def _write(path: Path, text: str, mode: int = 0o644) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)
    return path


def write_credentials(root: Path, args: argparse.Namespace) -> None:
    """PKI, kubeconfigs and the kubelet serving certificate under ``root``."""
    from kapi.components.kubelet.tls import serving_files
    from kapi_certs import PKIOptions, component_kubeconfig, ensure_pki, files_of, load_cert, load_key, write_kubeconfig

    pki = root / PKI.lstrip("/")
    ensure_pki(pki, PKIOptions(advertise_address=args.advertise_address, node_name=args.node_name))
    ca_path, ca_key_path = files_of(pki, "ca")
    ca_cert, ca_key = load_cert(ca_path.read_bytes()), load_key(ca_key_path.read_bytes())
    server = f"https://{args.advertise_address}:{args.secure_port}"
    for conf, component in (("admin.conf", "admin"), ("scheduler.conf", "kube-scheduler"),
                            ("controller-manager.conf", "kube-controller-manager"), ("kubelet.conf", "kubelet")):
        write_kubeconfig(root / ETC.lstrip("/") / conf,
                         component_kubeconfig(ca_cert, ca_key, component, server=server,  # type: ignore[arg-type]
                                              node_name=args.node_name))
    serving_files(root / DATA.lstrip("/") / "kubelet", [args.node_name], args.advertise_address, pki_dir=str(pki))


def main(args: argparse.Namespace) -> int:
    """Write everything; print what was written."""
    root = Path(args.root).resolve()
    kapi_bin, apiserver_bin = f"{args.bin_dir}/kapi", f"{args.bin_dir}/kapi-apiserver"
    write_credentials(root, args)
    written: list[Path] = []
    commands: dict[str, list[str] | None] = {
        "apiserver": [apiserver_bin, *apiserver_options(args.apiserver_arg, address=args.advertise_address,
                                                        port=args.secure_port)],
    }
    scheduler = component_options("scheduler", [f"--kubeconfig={ETC}/scheduler.conf", "--leader-elect"])
    manager = component_options("controller-manager", [f"--kubeconfig={ETC}/controller-manager.conf",
                                                       "--leader-elect"])
    kubelet = component_options("kubelet", [f"--kubeconfig={ETC}/kubelet.conf", f"--node-name={args.node_name}",
                                            "--runtime=process", f"--node-ip={args.advertise_address}",
                                            f"--root-dir={DATA}/kubelet",
                                            f"--tls-cert-file={DATA}/kubelet/pki/kubelet.crt",
                                            f"--tls-private-key-file={DATA}/kubelet/pki/kubelet.key",
                                            f"--client-ca-file={PKI}/ca.crt"])
    commands["scheduler"] = [kapi_bin, "scheduler", *scheduler] if scheduler is not None else None
    commands["controller-manager"] = [kapi_bin, "controller-manager", *manager] if manager is not None else None
    commands["kubelet"] = [kapi_bin, "kubelet", *kubelet] if kubelet is not None else None
    mounts = [("k8s-certs", PKI, True), ("kubeconfigs", ETC, True), ("data", DATA, False)]
    for name, command in commands.items():
        if command is None:
            print(f"skipped {name}: not installed")
            continue
        if name != "kubelet":
            manifest = static_pod(f"kube-{name}", args.image, command,
                                  args.secure_port if name == "apiserver" else 0, probe_path="/livez",
                                  mounts=mounts)
            if name != "apiserver":  # no health port yet: the kubelet restarts it when the process exits
                del manifest["spec"]["containers"][0]["livenessProbe"]
                del manifest["spec"]["containers"][0]["startupProbe"]
            written.append(_write(root / ETC.lstrip("/") / "manifests" / f"kube-{name}.yaml",
                                  yaml.safe_dump(manifest, sort_keys=False), 0o600))
        after = "network-online.target" if name == "apiserver" else "network-online.target kapi-apiserver.service"
        written.append(_write(root / "etc/systemd/system" / f"kapi-{name}.service",
                              systemd_unit(f"kapi {name} (Kubernetes-compatible)", command, after=after)))
    for path in written:
        print(f"wrote {path}")
    print(f"PKI and kubeconfigs in {root / ETC.lstrip('/')}")
    return 0
