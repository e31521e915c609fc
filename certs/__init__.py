"""kapi_certs: the PKI of a kapi control plane (kubeadm's layout, made in pure Python).

* ``kapi_certs.pki`` - pure functions returning ``cryptography`` objects: ``make_ca``, ``issue``,
  ``generate_sa_key``, PEM helpers. No file I/O.
* ``kapi_certs.layout`` - kubeadm's ``pki/`` directory from one declarative table:
  ``ensure_pki`` (idempotent), ``renew``, ``expirations``.
* ``kapi_certs.kubeconfig`` - kubeconfig dicts/YAML for users and control-plane components.
* ``kapi_certs.files`` - the single writer: atomic, private keys 0600, new directories 0700.
* ``kapi_certs.cli`` - ``kapi certs init|check-expiration|renew`` and ``kapi kubeconfig user|component``.

``ensure_default_credentials`` is what the API server uses when started without TLS flags: a
whole PKI under ``DATA_DIR/pki`` and an admin kubeconfig at ``DATA_DIR/admin.kubeconfig``.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from kapi_certs.kubeconfig import (
    COMPONENTS,
    build_kubeconfig,
    component_identity,
    component_kubeconfig,
    current_credentials,
    load_kubeconfig,
    to_yaml,
    user_kubeconfig,
    write_kubeconfig,
)
from kapi_certs.layout import (
    CAS,
    CERT_NAMES,
    CERTS,
    ExpirationRow,
    PKIEntry,
    PKIOptions,
    PKIResult,
    ensure_pki,
    expirations,
    files_of,
    renew,
    renewal_margin,
)
from kapi_certs.pki import (
    KEY_TYPES,
    KeyType,
    PKIError,
    PrivateKey,
    cert_pem,
    common_name,
    generate_key,
    generate_sa_key,
    is_issued_by,
    issue,
    key_pem,
    load_cert,
    load_key,
    make_ca,
    organizations,
    public_key_pem,
)

__all__ = [
    "CAS", "CERTS", "CERT_NAMES", "COMPONENTS", "KEY_TYPES", "DefaultCredentials", "ExpirationRow", "KeyType",
    "PKIEntry", "PKIError", "PKIOptions", "PKIResult", "PrivateKey", "build_kubeconfig", "cert_pem", "common_name",
    "component_identity", "component_kubeconfig", "current_credentials", "ensure_default_credentials", "ensure_pki",
    "expirations", "files_of", "generate_key", "generate_sa_key", "is_issued_by", "issue", "key_pem", "load_cert",
    "load_key", "load_kubeconfig", "make_ca", "organizations", "public_key_pem", "renew", "to_yaml",
    "user_kubeconfig", "write_kubeconfig",
]

DEFAULT_SERVER = "https://127.0.0.1:6443"
ADMIN_KUBECONFIG = "admin.kubeconfig"


@dataclass(frozen=True)
class DefaultCredentials:
    """Paths of the credentials ``ensure_default_credentials`` keeps under a data directory.

    ``ca_cert`` is both the CA clients trust and the ``--client-ca-file`` of the server.
    """

    cert_dir: Path
    ca_cert: Path
    serving_cert: Path
    serving_key: Path
    admin_kubeconfig_path: Path


def _admin_kubeconfig_ok(path: Path, server: str, ca_pem: bytes, options: PKIOptions) -> bool:
    try:
        server_now, ca, client = current_credentials(load_kubeconfig(path))
    except (OSError, ValueError):
        return False
    if server_now != server or ca is None or client is None or cert_pem(ca) != ca_pem:
        return False
    name, groups = component_identity("admin")
    left = client.not_valid_after_utc - datetime.datetime.now(datetime.UTC)
    return (left > renewal_margin(client, options) and is_issued_by(client, ca)
            and (common_name(client), organizations(client)) == (name, groups))


def ensure_default_credentials(data_dir: str | Path, *, server: str = DEFAULT_SERVER, advertise_address: str = "",
                               extra_sans: Iterable[str] = ()) -> DefaultCredentials:
    """Make sure ``data_dir`` holds a PKI (``data_dir/pki``, see ``ensure_pki``) and an admin
    kubeconfig (``data_dir/admin.kubeconfig``, user ``kubernetes-admin`` in ``system:masters``,
    pointing at ``server``). The serving certificate names ``server``'s host too, besides the
    usual SANs, the advertise address and ``extra_sans``. Idempotent: a second call on a good
    directory only reads (a few ms); the admin kubeconfig is rewritten when it is missing, points
    elsewhere, was signed by another CA or expires within 30 days.

    :raises PKIError: the existing PKI is unusable (see ``ensure_pki``).
    """
    root = Path(data_dir)
    cert_dir = root / "pki"
    server_host = urlsplit(server).hostname or ""
    options = PKIOptions(advertise_address=advertise_address,
                         extra_sans=tuple(dict.fromkeys([*extra_sans, *([server_host] if server_host else [])])))
    ensure_pki(cert_dir, options)
    ca_path, ca_key_path = files_of(cert_dir, "ca")
    serving_cert, serving_key = files_of(cert_dir, "apiserver")
    kubeconfig_path = root / ADMIN_KUBECONFIG
    ca_pem = ca_path.read_bytes()
    if not _admin_kubeconfig_ok(kubeconfig_path, server, ca_pem, options):
        if not ca_key_path.exists():
            raise PKIError(f"{kubeconfig_path} must be (re)written but the CA is externally managed "
                           f"({ca_key_path} is missing): provide a valid admin kubeconfig")
        ca_cert, ca_key = load_cert(ca_pem), load_key(ca_key_path.read_bytes())
        write_kubeconfig(kubeconfig_path, component_kubeconfig(ca_cert, ca_key, "admin", server=server,
                                                               days=options.cert_days))
    return DefaultCredentials(cert_dir, ca_path, serving_cert, serving_key, kubeconfig_path)
