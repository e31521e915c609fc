"""``kapi init`` (manifests, units, PKI) and ``kapi-apiserver --print-effective-options``."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
import yaml

from kapi.cli import add_apiserver_flags, apiserver_main, effective_flags
from kapi.components import init
from kapi.components.cli import main as components_main
from kapi_certs import current_credentials, load_kubeconfig


def test_effective_flags_forms() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--name", default="x")
    parser.add_argument("--items", type=lambda v: tuple(v.split(",")), default=("a", "b"))
    parser.add_argument("--repeat", action="append", default=[])
    parser.add_argument("--switch", action="store_true")
    parser.add_argument("--toggle", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--flag", type=lambda v: v == "true", default=False)
    args = parser.parse_args(["--repeat", "1", "--repeat", "2", "--switch", "--no-toggle"])
    assert effective_flags(parser, args) == ["--name=x", "--items=a,b", "--repeat=1", "--repeat=2", "--switch",
                                             "--no-toggle", "--flag=false"]


def test_print_effective_options(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert apiserver_main(["--print-effective-options", "--data-dir", str(tmp_path), "--secure-port", "7443",
                           "--authorization-mode", "Node,RBAC"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "--secure-port=7443" in lines and "--authorization-mode=Node,RBAC" in lines
    assert f"--tls-cert-file={tmp_path}/pki/apiserver.crt" in lines
    assert f"--client-ca-file={tmp_path}/pki/ca.crt" in lines and "--storage-backend=sqlite" in lines
    assert not (tmp_path / "pki").exists(), "printing the options must not generate anything"
    parser = argparse.ArgumentParser()
    add_apiserver_flags(parser)
    reparsed = parser.parse_known_args(lines)[0]
    assert reparsed.secure_port == 7443 and reparsed.authorization_mode == ("Node", "RBAC")


def test_kapi_init_writes_manifests_units_and_credentials(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "root"
    assert components_main(["init", "--root", str(root), "--node-name", "n1", "--advertise-address", "10.0.0.7"]) == 0
    etc = root / "etc" / "kubernetes"
    manifest = yaml.safe_load((etc / "manifests" / "kube-apiserver.yaml").read_text())
    [container] = manifest["spec"]["containers"]
    command = container["command"]
    assert command[0] == "/usr/local/bin/kapi-apiserver"
    assert "--advertise-address=10.0.0.7" in command and "--authorization-mode=Node,RBAC" in command
    assert "--tls-cert-file=/etc/kubernetes/pki/apiserver.crt" in command
    assert "--kubelet-client-certificate=/etc/kubernetes/pki/apiserver-kubelet-client.crt" in command
    assert "--watch-cache-size=1000" in command, "defaults are effective options too"
    assert container["livenessProbe"]["httpGet"]["path"] == "/livez"
    assert manifest["metadata"]["namespace"] == "kube-system" and manifest["spec"]["hostNetwork"] is True
    unit = (root / "etc/systemd/system/kapi-apiserver.service").read_text()
    exec_start = unit.split("ExecStart=", 1)[1].split("\nRestart=", 1)[0]
    assert [part.strip() for part in exec_start.split("\\\n")] == command
    scheduler_unit = (root / "etc/systemd/system/kapi-scheduler.service").read_text()
    assert "--kubeconfig=/etc/kubernetes/scheduler.conf" in scheduler_unit and "--leader-elect \\" in scheduler_unit
    kubelet_unit = (root / "etc/systemd/system/kapi-kubelet.service").read_text()
    assert "--node-name=n1" in kubelet_unit and "--tls-cert-file=/var/lib/kapi/kubelet/pki/kubelet.crt" in kubelet_unit
    assert not (etc / "manifests" / "kube-kubelet.yaml").exists()
    for conf, user in (("admin.conf", "kubernetes-admin"), ("scheduler.conf", "system:kube-scheduler"),
                       ("kubelet.conf", "system:node:n1")):
        server, ca, client = current_credentials(load_kubeconfig(etc / conf))
        assert server == "https://10.0.0.7:6443" and ca is not None and client is not None
        assert client.subject.rfc4514_string().startswith(f"CN={user}") or user in client.subject.rfc4514_string()
    assert (etc / "pki" / "ca.key").stat().st_mode & 0o077 == 0
    assert (root / "var/lib/kapi/kubelet/pki/kubelet.crt").exists()
    out = capsys.readouterr().out
    assert "wrote" in out and "kube-apiserver.yaml" in out


def test_static_pod_and_unit_shapes() -> None:
    pod = init.static_pod("kube-scheduler", "img", ["kapi", "scheduler"], 0)
    assert pod["spec"]["containers"][0]["command"] == ["kapi", "scheduler"]
    assert pod["metadata"]["labels"] == {"component": "kube-scheduler", "tier": "control-plane"}
    unit = init.systemd_unit("x", ["a", "--b=1"])
    assert "ExecStart=a \\\n    --b=1\n" in unit and "WantedBy=multi-user.target" in unit
