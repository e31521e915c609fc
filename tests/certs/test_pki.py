"""kapi_certs.pki: CAs, leaves and PEM helpers, checked with cryptography and Python's ssl."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID

from kapi_certs import pki


@pytest.fixture(scope="module")
def ca() -> tuple[x509.Certificate, pki.PrivateKey]:
    return pki.make_ca("test-ca")


@pytest.mark.parametrize(("key_type", "key_class"), [("ecdsa-p256", ec.EllipticCurvePrivateKey),
                                                     ("rsa-2048", rsa.RSAPrivateKey)])
def test_make_ca_is_a_self_signed_ca(key_type: pki.KeyType, key_class: type) -> None:
    cert, key = pki.make_ca("kubernetes", days=10, key_type=key_type)
    assert isinstance(key, key_class)
    assert pki.key_type_of(key) == key_type
    assert pki.common_name(cert) == "kubernetes"
    assert pki.is_issued_by(cert, cert)
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.key_cert_sign and usage.crl_sign
    life = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert datetime.timedelta(days=10) < life <= datetime.timedelta(days=10, minutes=10)


def test_issue_sets_subject_sans_usages_and_issuer(ca: tuple[x509.Certificate, pki.PrivateKey]) -> None:
    ca_cert, ca_key = ca
    cert, key = pki.issue(ca_cert, ca_key, cn="alice", orgs=("system:masters", "dev"), dns=("a.example", "a.example"),
                          ips=("127.0.0.1", ipaddress.ip_address("::1")), server=True, client=True, days=30)
    assert pki.same_public_key(cert, key)
    assert pki.is_issued_by(cert, ca_cert)
    assert (pki.common_name(cert), pki.organizations(cert)) == ("alice", ("system:masters", "dev"))
    assert pki.alt_names(cert) == (("a.example",), ("127.0.0.1", "::1"))
    assert pki.extended_usages(cert) == (True, True)
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    assert aki.key_identifier == ski.digest
    assert cert.signature_hash_algorithm is not None and cert.signature_hash_algorithm.name == "sha256"


def test_client_only_certificate_has_no_sans(ca: tuple[x509.Certificate, pki.PrivateKey]) -> None:
    cert, _ = pki.issue(*ca, cn="bob", client=True)
    assert pki.alt_names(cert) == ((), ())
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]


def test_leaf_never_outlives_its_ca() -> None:
    ca_cert, ca_key = pki.make_ca("short", days=2)
    cert, _ = pki.issue(ca_cert, ca_key, cn="x", days=365)
    assert cert.not_valid_after_utc == ca_cert.not_valid_after_utc


def test_issue_in_the_past_makes_an_expired_certificate(ca: tuple[x509.Certificate, pki.PrivateKey]) -> None:
    past = datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=10)
    cert, _ = pki.issue(*ca, cn="old", days=1, now=past)
    assert cert.not_valid_after_utc < datetime.datetime.now(datetime.UTC)


def test_issue_reuses_a_given_key(ca: tuple[x509.Certificate, pki.PrivateKey]) -> None:
    key = pki.generate_key()
    cert, same = pki.issue(*ca, cn="k", key=key)
    assert same is key and pki.same_public_key(cert, key)


def test_rsa_leaf_gets_key_encipherment(ca: tuple[x509.Certificate, pki.PrivateKey]) -> None:
    cert, key = pki.issue(*ca, cn="r", key_type="rsa-2048", server=True)
    assert isinstance(key, rsa.RSAPrivateKey)
    assert cert.extensions.get_extension_for_class(x509.KeyUsage).value.key_encipherment


@pytest.mark.parametrize("call", [
    lambda ca: pki.issue(ca[0], pki.generate_key(), cn="x"),
    lambda ca: pki.issue(*ca, cn="x", days=0),
    lambda ca: pki.make_ca("x", days=-1),
    lambda ca: pki.generate_key("dsa-1024"),  # type: ignore[arg-type]
], ids=["foreign-ca-key", "zero-days", "negative-ca-days", "unknown-key-type"])
def test_bad_requests_raise_pki_error(ca: tuple[x509.Certificate, pki.PrivateKey], call) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(pki.PKIError):
        call(ca)


def test_is_issued_by_rejects_another_ca(ca: tuple[x509.Certificate, pki.PrivateKey]) -> None:
    cert, _ = pki.issue(*ca, cn="x")
    assert not pki.is_issued_by(cert, pki.make_ca("other")[0])
    assert not pki.is_issued_by(cert, pki.make_ca("test-ca")[0])  # same name, another key


def test_pem_round_trips(ca: tuple[x509.Certificate, pki.PrivateKey]) -> None:
    cert, key = pki.issue(*ca, cn="pem")
    assert pki.load_cert(pki.cert_pem(cert)) == cert
    pem = pki.key_pem(key)
    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----")
    assert pki.same_public_key(cert, pki.load_key(pem))
    assert pki.public_key_pem(key).startswith(b"-----BEGIN PUBLIC KEY-----")
    with pytest.raises(ValueError):
        pki.load_key(b"not a key")


def test_sa_key_is_rsa_2048() -> None:
    key = pki.generate_sa_key()
    assert isinstance(key, rsa.RSAPrivateKey) and key.key_size == 2048
    assert pki.load_key(pki.key_pem(key), check_rsa=False).public_key().public_numbers() == \
        key.public_key().public_numbers()


@pytest.mark.parametrize("key_type", pki.KEY_TYPES)
def test_python_ssl_accepts_the_pair(tmp_path: Path, key_type: pki.KeyType) -> None:
    ca_cert, ca_key = pki.make_ca("ssl-ca", key_type=key_type)
    cert, key = pki.issue(ca_cert, ca_key, cn="srv", dns=("localhost",), server=True, key_type=key_type)
    (tmp_path / "c.crt").write_bytes(pki.cert_pem(cert))
    (tmp_path / "c.key").write_bytes(pki.key_pem(key))
    (tmp_path / "ca.crt").write_bytes(pki.cert_pem(ca_cert))
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(tmp_path / "c.crt", tmp_path / "c.key")
    server.load_verify_locations(tmp_path / "ca.crt")
