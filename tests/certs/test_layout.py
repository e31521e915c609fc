"""kapi_certs.layout: kubeadm's pki/ layout, idempotency, permissions, SANs, renew, expirations."""

from __future__ import annotations

import datetime
import os
import stat
from pathlib import Path

import pytest

from kapi_certs import layout, pki
from kapi_certs.layout import PKIOptions, ensure_pki, expirations, files_of, renew

OPTIONS = PKIOptions(node_name="node1", advertise_address="192.0.2.10", extra_sans=("api.example.com", "10.0.0.5"))
NOW = datetime.datetime.now(datetime.UTC)


@pytest.fixture
def pki_dir(tmp_path: Path) -> Path:
    root = tmp_path / "pki"
    ensure_pki(root, OPTIONS)
    return root


def _cert(root: Path, name: str) -> pki.x509.Certificate:
    return pki.load_cert(files_of(root, name)[0].read_bytes())


def _actions(result: layout.PKIResult) -> dict[str, str]:
    return {e.name: e.action for e in result.entries}


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


EXPECTED_FILES = {
    "ca.crt", "ca.key", "apiserver.crt", "apiserver.key", "apiserver-kubelet-client.crt",
    "apiserver-kubelet-client.key", "front-proxy-ca.crt", "front-proxy-ca.key", "front-proxy-client.crt",
    "front-proxy-client.key", "etcd/ca.crt", "etcd/ca.key", "etcd/server.crt", "etcd/server.key", "etcd/peer.crt",
    "etcd/peer.key", "etcd/healthcheck-client.crt", "etcd/healthcheck-client.key", "apiserver-etcd-client.crt",
    "apiserver-etcd-client.key", "sa.key", "sa.pub",
}


def test_creates_kubeadm_layout_with_private_modes(tmp_path: Path) -> None:
    root = tmp_path / "new" / "pki"
    result = ensure_pki(root, OPTIONS)
    assert set(_actions(result).values()) == {"created"}
    assert set(_snapshot(root)) - {".lock"} == EXPECTED_FILES
    for rel in EXPECTED_FILES:
        mode = stat.S_IMODE(os.stat(root / rel).st_mode)
        assert mode == (0o600 if rel.endswith(".key") else 0o644), rel
    for directory in (tmp_path / "new", root, root / "etcd"):
        assert stat.S_IMODE(os.stat(directory).st_mode) == 0o700
    assert not [p for p in root.rglob("*.tmp")]


def test_second_run_keeps_everything_byte_for_byte(pki_dir: Path) -> None:
    before = _snapshot(pki_dir)
    result = ensure_pki(pki_dir, OPTIONS)
    assert set(_actions(result).values()) == {"kept"} and result.changed == ()
    assert _snapshot(pki_dir) == before


def test_apiserver_sans(pki_dir: Path) -> None:
    dns, ips = pki.alt_names(_cert(pki_dir, "apiserver"))
    assert set(dns) == {"node1", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
                        "kubernetes.default.svc.cluster.local", "localhost", "api.example.com"}
    assert set(ips) == {"10.96.0.1", "127.0.0.1", "::1", "192.0.2.10", "10.0.0.5"}
    assert pki.extended_usages(_cert(pki_dir, "apiserver")) == (True, False)


def test_etcd_certificates(pki_dir: Path) -> None:
    for name in ("etcd-server", "etcd-peer"):
        cert = _cert(pki_dir, name)
        assert pki.common_name(cert) == "node1"
        assert set(pki.alt_names(cert)[0]) == {"node1", "localhost"}
        assert set(pki.alt_names(cert)[1]) == {"127.0.0.1", "::1", "192.0.2.10"}
        assert pki.extended_usages(cert) == (True, True)


@pytest.mark.parametrize("spec", layout.CERTS, ids=lambda s: s.name)
def test_each_leaf_matches_the_table(pki_dir: Path, spec: layout.CertSpec) -> None:
    cert = _cert(pki_dir, spec.name)
    assert pki.is_issued_by(cert, _cert(pki_dir, spec.ca))
    assert (pki.common_name(cert), pki.organizations(cert)) == spec.subject(OPTIONS)
    assert pki.extended_usages(cert) == (spec.server, spec.client)
    key = pki.load_key(files_of(pki_dir, spec.name)[1].read_bytes())
    assert pki.same_public_key(cert, key)


def test_kubelet_client_identity(pki_dir: Path) -> None:
    cert = _cert(pki_dir, "apiserver-kubelet-client")
    assert pki.common_name(cert) == "kube-apiserver-kubelet-client"
    assert pki.organizations(cert) == ("kubeadm:cluster-admins",)
    assert pki.common_name(_cert(pki_dir, "ca")) == "kubernetes"


def test_service_cidr_sets_the_service_ip(tmp_path: Path) -> None:
    ensure_pki(tmp_path, PKIOptions(node_name="n", service_cidr="10.100.0.0/16,fd00::/108"))
    assert {"10.100.0.1", "fd00::1"} <= set(pki.alt_names(_cert(tmp_path, "apiserver"))[1])


def test_new_sans_replace_only_the_serving_certificate(pki_dir: Path) -> None:
    changed = PKIOptions(node_name="node1", advertise_address="192.0.2.10", extra_sans=("other.example",))
    result = ensure_pki(pki_dir, changed)
    assert result.changed == ("apiserver",)
    entry = next(e for e in result.entries if e.name == "apiserver")
    assert entry.action == "replaced" and "other.example" in entry.reason
    assert "other.example" in pki.alt_names(_cert(pki_dir, "apiserver"))[0]


def test_certificates_expiring_soon_are_replaced(pki_dir: Path) -> None:
    later = NOW + datetime.timedelta(days=340)
    result = ensure_pki(pki_dir, OPTIONS, now=later)
    assert set(result.changed) == set(layout.CERT_NAMES)
    assert all("expires in" in e.reason for e in result.entries if e.action == "replaced")
    assert _cert(pki_dir, "apiserver").not_valid_after_utc > later + datetime.timedelta(days=300)


def test_missing_key_and_foreign_signature_are_repaired(pki_dir: Path) -> None:
    files_of(pki_dir, "front-proxy-client")[1].unlink()
    for path in files_of(pki_dir, "ca"):
        path.unlink()
    result = ensure_pki(pki_dir, OPTIONS)
    actions = _actions(result)
    assert actions["ca"] == "created" and actions["front-proxy-client"] == "created"
    assert actions["apiserver"] == actions["apiserver-kubelet-client"] == "replaced"
    assert actions["etcd-server"] == actions["front-proxy-ca"] == "kept"
    assert "not signed by the current ca" in next(e.reason for e in result.entries if e.name == "apiserver")
    assert pki.is_issued_by(_cert(pki_dir, "apiserver"), _cert(pki_dir, "ca"))


def test_sa_pub_is_rewritten_from_sa_key(pki_dir: Path) -> None:
    sa_key = (pki_dir / "sa.key").read_bytes()
    (pki_dir / "sa.pub").unlink()
    assert _actions(ensure_pki(pki_dir, OPTIONS))["sa"] == "replaced"
    assert (pki_dir / "sa.key").read_bytes() == sa_key
    assert (pki_dir / "sa.pub").read_bytes() == pki.public_key_pem(pki.load_key(sa_key))


def test_expired_ca_is_an_error_and_nothing_is_written(tmp_path: Path) -> None:
    ensure_pki(tmp_path, OPTIONS, now=NOW - datetime.timedelta(days=40))
    ca_cert, ca_key = pki.make_ca("kubernetes", days=1, now=NOW - datetime.timedelta(days=40))
    files_of(tmp_path, "ca")[0].write_bytes(pki.cert_pem(ca_cert))
    files_of(tmp_path, "ca")[1].write_bytes(pki.key_pem(ca_key))
    before = _snapshot(tmp_path)
    with pytest.raises(pki.PKIError, match="CA ca expired"):
        ensure_pki(tmp_path, OPTIONS)
    assert _snapshot(tmp_path) == before


def test_mismatched_ca_key_is_an_error(pki_dir: Path) -> None:
    files_of(pki_dir, "ca")[1].write_bytes(pki.key_pem(pki.generate_key()))
    with pytest.raises(pki.PKIError, match="does not belong"):
        ensure_pki(pki_dir, OPTIONS)


def test_externally_managed_ca(pki_dir: Path) -> None:
    files_of(pki_dir, "etcd-ca")[1].unlink()
    result = ensure_pki(pki_dir, OPTIONS)
    assert "externally managed" in next(e.reason for e in result.entries if e.name == "etcd-ca")
    assert result.changed == ()
    files_of(pki_dir, "etcd-peer")[0].unlink()
    with pytest.raises(pki.PKIError, match="externally"):
        ensure_pki(pki_dir, OPTIONS)
    rows = {r.name: r for r in expirations(pki_dir)}
    assert rows["etcd-peer"].not_after is None and rows["etcd-peer"].externally_managed
    assert not rows["apiserver"].externally_managed


def test_renew_keeps_key_subject_and_sans(pki_dir: Path) -> None:
    old = _cert(pki_dir, "apiserver")
    old_key = files_of(pki_dir, "apiserver")[1].read_bytes()
    later = NOW + datetime.timedelta(days=100)
    assert renew(pki_dir, ["apiserver"], days=400, now=later) == ("apiserver",)
    new = _cert(pki_dir, "apiserver")
    assert new.serial_number != old.serial_number
    assert new.not_valid_after_utc > old.not_valid_after_utc
    assert files_of(pki_dir, "apiserver")[1].read_bytes() == old_key
    assert pki.alt_names(new) == pki.alt_names(old) and new.subject == old.subject
    assert pki.extended_usages(new) == pki.extended_usages(old)
    assert pki.is_issued_by(new, _cert(pki_dir, "ca"))


def test_renew_all_and_errors(pki_dir: Path) -> None:
    assert renew(pki_dir, "all") == layout.CERT_NAMES
    with pytest.raises(pki.PKIError, match="unknown certificate"):
        renew(pki_dir, ["nope"])
    files_of(pki_dir, "etcd-peer")[0].unlink()
    with pytest.raises(pki.PKIError, match="cannot renew etcd-peer"):
        renew(pki_dir, ["etcd-peer"])


def test_expirations_rows(pki_dir: Path) -> None:
    rows = expirations(pki_dir)
    assert [r.name for r in rows] == [*layout.CERT_NAMES, "ca", "front-proxy-ca", "etcd-ca"]
    by_name = {r.name: r for r in rows}
    assert by_name["apiserver-etcd-client"].ca == "etcd-ca" and by_name["etcd-ca"].is_ca
    assert by_name["apiserver"].not_after == _cert(pki_dir, "apiserver").not_valid_after_utc
    assert not any(r.externally_managed for r in rows)
    assert all(r.not_after is None for r in expirations(pki_dir.parent / "empty"))


def test_rsa_layout(tmp_path: Path) -> None:
    ensure_pki(tmp_path, PKIOptions(node_name="n", key_type="rsa-2048"))
    key = pki.load_key(files_of(tmp_path, "apiserver")[1].read_bytes())
    assert pki.key_type_of(key) == "rsa-2048"
    assert ensure_pki(tmp_path, PKIOptions(node_name="n", key_type="rsa-2048")).changed == ()


@pytest.mark.parametrize("options", [PKIOptions(advertise_address="not-an-ip"), PKIOptions(service_cidr="x/99")])
def test_bad_options(tmp_path: Path, options: PKIOptions) -> None:
    with pytest.raises(pki.PKIError):
        ensure_pki(tmp_path, options)
