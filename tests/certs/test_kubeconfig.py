"""kapi_certs.kubeconfig and ensure_default_credentials."""

from __future__ import annotations

import base64
import os
import stat
import time
from pathlib import Path

import pytest
import yaml
from cryptography import x509

from kapi_certs import ensure_default_credentials, kubeconfig, pki


@pytest.fixture(scope="module")
def ca() -> tuple[x509.Certificate, pki.PrivateKey]:
    return pki.make_ca("kubernetes")


def _client_cert(config: dict) -> x509.Certificate:  # type: ignore[type-arg]
    return pki.load_cert(base64.b64decode(config["users"][0]["user"]["client-certificate-data"]))


@pytest.mark.parametrize(("component", "node", "cn", "orgs"), [
    ("admin", "", "kubernetes-admin", ("system:masters",)),
    ("kube-scheduler", "", "system:kube-scheduler", ()),
    ("kube-controller-manager", "", "system:kube-controller-manager", ()),
    ("kubelet", "worker-1", "system:node:worker-1", ("system:nodes",)),
])
def test_component_identities(ca: tuple[x509.Certificate, pki.PrivateKey], component: kubeconfig.Component,
                              node: str, cn: str, orgs: tuple[str, ...]) -> None:
    config = kubeconfig.component_kubeconfig(*ca, component, server="https://127.0.0.1:6443", node_name=node)
    cert = _client_cert(config)
    assert (pki.common_name(cert), pki.organizations(cert)) == (cn, orgs)
    assert pki.extended_usages(cert) == (False, True)
    assert pki.is_issued_by(cert, ca[0])
    assert config["current-context"] == f"{cn}@kubernetes"
    server, ca_cert, client = kubeconfig.current_credentials(config)
    assert (server, ca_cert, client) == ("https://127.0.0.1:6443", ca[0], cert)
    key = pki.load_key(base64.b64decode(config["users"][0]["user"]["client-key-data"]))
    assert pki.same_public_key(cert, key)


def test_kubelet_needs_a_node_name(ca: tuple[x509.Certificate, pki.PrivateKey]) -> None:
    with pytest.raises(ValueError, match="node name"):
        kubeconfig.component_kubeconfig(*ca, "kubelet", server="https://x")


def test_user_with_groups_and_yaml_round_trip(ca: tuple[x509.Certificate, pki.PrivateKey], tmp_path: Path) -> None:
    config = kubeconfig.user_kubeconfig(*ca, server="https://h:6443", name="alice", groups=("dev", "ops"))
    assert pki.organizations(_client_cert(config)) == ("dev", "ops")
    path = kubeconfig.write_kubeconfig(tmp_path / "sub" / "alice.kubeconfig", config)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert yaml.safe_load(path.read_text()) == config == kubeconfig.load_kubeconfig(path)


def test_token_kubeconfig(ca: tuple[x509.Certificate, pki.PrivateKey]) -> None:
    config = kubeconfig.build_kubeconfig(server="https://h", ca_cert=pki.cert_pem(ca[0]), user="bot", token="s3cret",
                                         namespace="apps")
    assert config["users"] == [{"name": "bot", "user": {"token": "s3cret"}}]
    assert config["contexts"][0]["context"] == {"cluster": "kubernetes", "user": "bot", "namespace": "apps"}
    assert kubeconfig.current_credentials(config)[2] is None


def test_credentials_must_be_one_kind(ca: tuple[x509.Certificate, pki.PrivateKey]) -> None:
    cert, key = pki.issue(*ca, cn="x", client=True)
    for kwargs in ({}, {"client_cert": cert}, {"client_cert": cert, "client_key": key, "token": "t"}):
        with pytest.raises(ValueError):
            kubeconfig.build_kubeconfig(server="https://h", ca_cert=ca[0], user="x", **kwargs)  # type: ignore[arg-type]


def test_current_credentials_of_a_broken_kubeconfig() -> None:
    assert kubeconfig.current_credentials({"current-context": "nope"}) == ("", None, None)


def test_default_credentials_are_fast_and_idempotent(tmp_path: Path) -> None:
    start = time.perf_counter()
    creds = ensure_default_credentials(tmp_path, server="https://127.0.0.1:7443")
    first = time.perf_counter() - start
    assert first < 1.0
    snapshot = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    start = time.perf_counter()
    again = ensure_default_credentials(tmp_path, server="https://127.0.0.1:7443")
    assert time.perf_counter() - start < 0.05
    assert again == creds
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == snapshot
    assert creds.cert_dir == tmp_path / "pki" and creds.ca_cert == tmp_path / "pki" / "ca.crt"
    assert creds.serving_cert.exists() and creds.serving_key.exists()
    assert stat.S_IMODE(os.stat(creds.admin_kubeconfig_path).st_mode) == 0o600
    config = kubeconfig.load_kubeconfig(creds.admin_kubeconfig_path)
    server, ca_cert, client = kubeconfig.current_credentials(config)
    assert server == "https://127.0.0.1:7443" and ca_cert is not None and client is not None
    assert pki.common_name(client) == "kubernetes-admin" and pki.is_issued_by(client, ca_cert)


def test_default_credentials_follow_the_server_url(tmp_path: Path) -> None:
    creds = ensure_default_credentials(tmp_path, server="https://127.0.0.1:1")
    ensure_default_credentials(tmp_path, server="https://192.0.2.4:2", extra_sans=("api.local",))
    server = kubeconfig.current_credentials(kubeconfig.load_kubeconfig(creds.admin_kubeconfig_path))[0]
    assert server == "https://192.0.2.4:2"
    dns, ips = pki.alt_names(pki.load_cert(creds.serving_cert.read_bytes()))
    assert "api.local" in dns and "192.0.2.4" in ips


def test_default_credentials_with_external_ca(tmp_path: Path) -> None:
    creds = ensure_default_credentials(tmp_path)
    (creds.cert_dir / "ca.key").unlink()
    assert ensure_default_credentials(tmp_path) == creds
    creds.admin_kubeconfig_path.unlink()
    with pytest.raises(pki.PKIError, match="externally managed"):
        ensure_default_credentials(tmp_path)
