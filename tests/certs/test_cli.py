"""kapi certs / kapi kubeconfig commands, through a parser built with the plugin's hookimpl."""

from __future__ import annotations

import argparse
import datetime
import os
import stat
from pathlib import Path

import pytest
import yaml

from kapi_certs import cli, kubeconfig, layout, pki


@pytest.fixture(scope="module")
def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="kapi")
    cli.kapi_register_commands(subparsers=top.add_subparsers())
    return top


def run(parser: argparse.ArgumentParser, *argv: str) -> int:
    args = parser.parse_args(list(argv))
    return int(args.func(args))


@pytest.fixture
def cert_dir(parser: argparse.ArgumentParser, tmp_path: Path) -> str:
    path = str(tmp_path / "pki")
    assert run(parser, "certs", "init", "--cert-dir", path, "--node-name", "n1") == 0
    return path


def test_init_options_reach_the_certificates(parser: argparse.ArgumentParser, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "pki"
    code = run(parser, "certs", "init", "--cert-dir", str(path), "--apiserver-advertise-address", "192.0.2.7",
               "--apiserver-cert-extra-sans", "a.example,10.9.9.9", "--apiserver-cert-extra-sans", "b.example",
               "--service-cidr", "10.32.0.0/16", "--service-dns-domain", "corp.local", "--node-name", "cp1",
               "--cert-days", "30", "--ca-days", "100")
    assert code == 0
    out = capsys.readouterr().out
    assert "[certs] created apiserver" in out and str(path) in out
    cert = pki.load_cert((path / "apiserver.crt").read_bytes())
    dns, ips = pki.alt_names(cert)
    assert {"a.example", "b.example", "cp1", "kubernetes.default.svc.corp.local"} <= set(dns)
    assert {"192.0.2.7", "10.9.9.9", "10.32.0.1"} <= set(ips)
    assert cert.not_valid_after_utc - cert.not_valid_before_utc < datetime.timedelta(days=31)
    assert run(parser, "certs", "init", "--cert-dir", str(path), "--node-name", "cp1", "--service-cidr",
               "10.32.0.0/16", "--service-dns-domain", "corp.local") == 0
    assert "[certs] kept apiserver" in capsys.readouterr().out


def test_check_expiration_table(parser: argparse.ArgumentParser, cert_dir: str,
                                capsys: pytest.CaptureFixture[str]) -> None:
    os.unlink(layout.files_of(cert_dir, "etcd-peer")[0])
    os.unlink(layout.files_of(cert_dir, "front-proxy-ca")[1])
    capsys.readouterr()
    assert run(parser, "certs", "check-expiration", "--cert-dir", cert_dir) == 0
    leaves, cas = capsys.readouterr().out.split("\n\n")
    lines = leaves.splitlines()
    assert lines[0].split("   ")[0] == "CERTIFICATE"
    assert "RESIDUAL TIME" in lines[0] and "CERTIFICATE AUTHORITY" in lines[0]
    apiserver = next(line for line in lines if line.startswith("apiserver "))
    assert "364d" in apiserver and " UTC " in apiserver and apiserver.split()[-2:] == ["ca", "no"]
    assert any(line.startswith("!MISSING! etcd-peer") for line in lines)
    assert next(line for line in lines if line.startswith("front-proxy-client")).endswith("yes")
    ca_lines = cas.splitlines()
    assert ca_lines[0].startswith("CERTIFICATE AUTHORITY") and "9y" in ca_lines[1]


@pytest.mark.parametrize(("seconds", "text"), [(-5, "<invalid>"), (-0.5, "0s"), (59, "59s"), (60, "1m"),
                                                (7200, "2h"), (86400 * 364 + 5, "364d"), (86400 * 3650, "10y")])
def test_residual(seconds: float, text: str) -> None:
    assert cli.residual(datetime.timedelta(seconds=seconds)) == text


def test_renew(parser: argparse.ArgumentParser, cert_dir: str, capsys: pytest.CaptureFixture[str]) -> None:
    before = pki.load_cert(layout.files_of(cert_dir, "etcd-server")[0].read_bytes())
    assert run(parser, "certs", "renew", "etcd-server", "--cert-dir", cert_dir) == 0
    assert "certificate etcd-server renewed" in capsys.readouterr().out
    after = pki.load_cert(layout.files_of(cert_dir, "etcd-server")[0].read_bytes())
    assert after.serial_number != before.serial_number
    assert run(parser, "certs", "renew", "all", "--cert-dir", cert_dir) == 0
    with pytest.raises(SystemExit):
        parser.parse_args(["certs", "renew", "bogus", "--cert-dir", cert_dir])


def test_kubeconfig_user_to_stdout(parser: argparse.ArgumentParser, cert_dir: str,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    assert run(parser, "kubeconfig", "user", "--name", "alice", "--group", "dev", "--group", "ops",
               "--cert-dir", cert_dir, "--server", "https://10.0.0.1:6443") == 0
    config = yaml.safe_load(capsys.readouterr().out)
    server, ca_cert, client = kubeconfig.current_credentials(config)
    assert server == "https://10.0.0.1:6443" and client is not None and ca_cert is not None
    assert (pki.common_name(client), pki.organizations(client)) == ("alice", ("dev", "ops"))
    assert pki.is_issued_by(client, ca_cert)


def test_kubeconfig_token_and_component_to_file(parser: argparse.ArgumentParser, cert_dir: str,
                                                tmp_path: Path) -> None:
    out = tmp_path / "bot.kubeconfig"
    assert run(parser, "kubeconfig", "user", "--name", "bot", "--token", "t0k", "--cert-dir", cert_dir,
               "--out", str(out)) == 0
    assert kubeconfig.load_kubeconfig(out)["users"][0]["user"] == {"token": "t0k"}
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o600
    kubelet = tmp_path / "kubelet.conf"
    assert run(parser, "kubeconfig", "component", "kubelet", "--node-name", "w1", "--cert-dir", cert_dir,
               "--out", str(kubelet)) == 0
    client = kubeconfig.current_credentials(kubeconfig.load_kubeconfig(kubelet))[2]
    assert client is not None and pki.common_name(client) == "system:node:w1"


@pytest.mark.parametrize("argv", [
    ("kubeconfig", "component", "kubelet"),
    ("kubeconfig", "user", "--name", "x", "--token", "t", "--group", "g"),
])
def test_errors_exit_1_with_a_message(parser: argparse.ArgumentParser, cert_dir: str, argv: tuple[str, ...],
                                      capsys: pytest.CaptureFixture[str]) -> None:
    assert run(parser, *argv, "--cert-dir", cert_dir) == 1
    assert capsys.readouterr().err.startswith("error: ")


def test_missing_ca_and_bare_group(parser: argparse.ArgumentParser, tmp_path: Path,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    assert run(parser, "kubeconfig", "component", "admin", "--cert-dir", str(tmp_path)) == 1
    assert "kapi certs init" in capsys.readouterr().err
    assert run(parser, "certs") == 2
    with pytest.raises(SystemExit):
        parser.parse_args(["certs", "init", "--cert-days", "0"])
