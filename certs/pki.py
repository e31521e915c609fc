"""Pure PKI primitives: keys, CAs and leaf certificates as ``cryptography`` objects.

Nothing here touches the file system; ``kapi_certs.layout`` decides where things live and
``kapi_certs.files`` writes them. Conventions (the ones kubeadm uses, measured to work with
etcd, gRPC, Go's crypto/tls, Python's ssl and OpenSSL):

* keys are ECDSA P-256 by default (fast: ~0.1 ms to generate) or RSA 2048;
* every certificate is signed with SHA-256, its validity starts 5 minutes in the past (clock
  skew) and a leaf never outlives its issuing CA;
* a CA has ``BasicConstraints(ca=True)`` and ``keyCertSign``; a leaf has ``BasicConstraints
  (ca=False)``, ``digitalSignature`` (plus ``keyEncipherment`` for RSA), the extended key usages
  asked for, a subject key identifier and an authority key identifier;
* a subject is ``O=...`` (once per group, in order) followed by ``CN=...``: Kubernetes reads the
  user name from CN and the groups from every O.
"""

from __future__ import annotations

import datetime
import ipaddress
from collections.abc import Iterable
from typing import Literal, get_args

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

KeyType = Literal["ecdsa-p256", "rsa-2048"]
KEY_TYPES: tuple[KeyType, ...] = get_args(KeyType)
DEFAULT_KEY_TYPE: KeyType = "ecdsa-p256"

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
IPLike = str | ipaddress.IPv4Address | ipaddress.IPv6Address

CLOCK_SKEW = datetime.timedelta(minutes=5)


class PKIError(Exception):
    """A PKI operation cannot be done as asked; the message says why and what to do."""


# ---------------------------------------------------------------------------------------------
# keys


def generate_key(key_type: KeyType = DEFAULT_KEY_TYPE) -> PrivateKey:
    """A new private key of ``key_type`` (``"ecdsa-p256"`` or ``"rsa-2048"``)."""
    if key_type == "ecdsa-p256":
        return ec.generate_private_key(ec.SECP256R1())
    if key_type == "rsa-2048":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    raise PKIError(f"unknown key type {key_type!r}: use one of {', '.join(KEY_TYPES)}")


def generate_sa_key() -> rsa.RSAPrivateKey:
    """The service-account signing key: RSA 2048, like kubeadm's ``sa.key`` (``sa.pub`` is its
    public half, see ``public_key_pem``)."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def key_type_of(key: PrivateKey) -> KeyType:
    """The ``KeyType`` name of an existing key (used to keep a key's type on renewal)."""
    return "rsa-2048" if isinstance(key, rsa.RSAPrivateKey) else "ecdsa-p256"


def same_public_key(cert: x509.Certificate, key: PrivateKey) -> bool:
    """True when ``key`` is the private half of ``cert``'s public key."""
    fmt = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return cert.public_key().public_bytes(*fmt) == key.public_key().public_bytes(*fmt)


# ---------------------------------------------------------------------------------------------
# certificates


def subject_name(cn: str, orgs: Iterable[str] = ()) -> x509.Name:
    """``O=org`` for each org (in order), then ``CN=cn``."""
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in orgs]
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, cn))
    return x509.Name(attrs)


def _key_usage(*, ca: bool, rsa_key: bool) -> x509.KeyUsage:
    return x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=rsa_key,
                         data_encipherment=False, key_agreement=False, key_cert_sign=ca, crl_sign=ca,
                         encipher_only=False, decipher_only=False)


def _start(now: datetime.datetime | None) -> datetime.datetime:
    return (now or datetime.datetime.now(datetime.UTC)) - CLOCK_SKEW


def make_ca(cn: str, *, days: int = 3650, key_type: KeyType = DEFAULT_KEY_TYPE, key: PrivateKey | None = None,
            now: datetime.datetime | None = None) -> tuple[x509.Certificate, PrivateKey]:
    """A self-signed CA valid for ``days`` from ``now`` (default: the current time).

    :param key: reuse this key instead of generating one of ``key_type``.
    :returns: ``(certificate, private key)``.
    """
    if days <= 0:
        raise PKIError(f"a CA must be valid for at least one day, got {days}")
    key = key or generate_key(key_type)
    name = subject_name(cn)
    start = _start(now)
    cert = (x509.CertificateBuilder()
            .subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(start + CLOCK_SKEW + datetime.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(_key_usage(ca=True, rsa_key=isinstance(key, rsa.RSAPrivateKey)), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    return cert, key


def _authority_key_id(ca_cert: x509.Certificate, ca_key: PrivateKey) -> x509.AuthorityKeyIdentifier:
    try:
        ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    except x509.ExtensionNotFound:
        return x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key())
    return x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)


def issue(ca_cert: x509.Certificate, ca_key: PrivateKey, *, cn: str, orgs: Iterable[str] = (),
          dns: Iterable[str] = (), ips: Iterable[IPLike] = (), server: bool = False, client: bool = False,
          days: int = 365, key_type: KeyType = DEFAULT_KEY_TYPE, key: PrivateKey | None = None,
          now: datetime.datetime | None = None) -> tuple[x509.Certificate, PrivateKey]:
    """A leaf certificate signed by ``ca_cert``/``ca_key``.

    :param cn: the subject's common name (a Kubernetes user name for client certificates).
    :param orgs: one ``O=`` per entry (Kubernetes groups).
    :param dns: DNS subject alternative names; ``ips``: IP ones (strings or ``ipaddress`` objects).
    :param server: add the ``serverAuth`` extended key usage; ``client``: add ``clientAuth``.
    :param days: validity from ``now``, cut to the CA's own end of validity.
    :param key: reuse this key (renewal) instead of generating one of ``key_type``.
    :returns: ``(certificate, private key)``.
    :raises PKIError: ``ca_key`` does not belong to ``ca_cert``, or ``days`` is not positive.
    """
    if days <= 0:
        raise PKIError(f"a certificate must be valid for at least one day, got {days}")
    if not same_public_key(ca_cert, ca_key):
        raise PKIError("the CA key does not belong to the CA certificate")
    key = key or generate_key(key_type)
    start = _start(now)
    end = min(start + CLOCK_SKEW + datetime.timedelta(days=days), ca_cert.not_valid_after_utc)
    usages = [oid for oid, wanted in ((ExtendedKeyUsageOID.SERVER_AUTH, server),
                                      (ExtendedKeyUsageOID.CLIENT_AUTH, client)) if wanted]
    builder = (x509.CertificateBuilder()
               .subject_name(subject_name(cn, orgs)).issuer_name(ca_cert.subject).public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(start).not_valid_after(end)
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
               .add_extension(_key_usage(ca=False, rsa_key=isinstance(key, rsa.RSAPrivateKey)), critical=True)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
               .add_extension(_authority_key_id(ca_cert, ca_key), critical=False))
    if usages:
        builder = builder.add_extension(x509.ExtendedKeyUsage(usages), critical=False)
    sans: list[x509.GeneralName] = [x509.DNSName(d) for d in dict.fromkeys(dns)]
    sans += [x509.IPAddress(ip) for ip in dict.fromkeys(ipaddress.ip_address(i) for i in ips)]
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return builder.sign(ca_key, hashes.SHA256()), key


# ---------------------------------------------------------------------------------------------
# reading certificates


def common_name(cert: x509.Certificate) -> str:
    """The subject's first CN, or ``""``."""
    attrs = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(attrs[0].value) if attrs else ""


def organizations(cert: x509.Certificate) -> tuple[str, ...]:
    """Every ``O=`` of the subject, in order."""
    return tuple(str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME))


def alt_names(cert: x509.Certificate) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """``(dns names, ip addresses as strings)`` of the subject alternative names."""
    try:
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return (), ()
    return (tuple(sans.get_values_for_type(x509.DNSName)),
            tuple(str(ip) for ip in sans.get_values_for_type(x509.IPAddress)))


def extended_usages(cert: x509.Certificate) -> tuple[bool, bool]:
    """``(serverAuth, clientAuth)`` as granted by the extended key usage extension."""
    try:
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return False, False
    return ExtendedKeyUsageOID.SERVER_AUTH in eku, ExtendedKeyUsageOID.CLIENT_AUTH in eku


def is_issued_by(cert: x509.Certificate, ca_cert: x509.Certificate) -> bool:
    """True when ``ca_cert`` signed ``cert`` (signature and issuer name checked)."""
    try:
        cert.verify_directly_issued_by(ca_cert)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


# ---------------------------------------------------------------------------------------------
# serialisation


def cert_pem(cert: x509.Certificate) -> bytes:
    """PEM bytes of a certificate."""
    return cert.public_bytes(serialization.Encoding.PEM)


def key_pem(key: PrivateKey) -> bytes:
    """Unencrypted PKCS#8 PEM bytes (``-----BEGIN PRIVATE KEY-----``) of a private key."""
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def public_key_pem(key: PrivateKey) -> bytes:
    """PEM ``SubjectPublicKeyInfo`` (``-----BEGIN PUBLIC KEY-----``) of a key's public half."""
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)


def load_cert(data: bytes) -> x509.Certificate:
    """The first certificate of PEM ``data``. :raises ValueError: not a PEM certificate."""
    return x509.load_pem_x509_certificate(data)


def load_key(data: bytes, *, check_rsa: bool = True) -> PrivateKey:
    """A PEM private key (PKCS#8, PKCS#1 or SEC1). :raises ValueError: unreadable or unsupported.

    ``check_rsa=False`` skips the RSA consistency check (~50 ms for 2048 bits); use it only for a
    key of our own that is read to get its public half, never to sign with.
    """
    key = serialization.load_pem_private_key(data, password=None, unsafe_skip_rsa_key_validation=not check_rsa)
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise ValueError(f"unsupported private key type {type(key).__name__}")
    return key
