"""The kubelet's serving certificate and the CA it trusts for callers.

``serving_files`` returns ``(cert file, key file)``: the given ``--tls-cert-file`` /
``--tls-private-key-file``; else a certificate issued by the cluster CA when its key is at hand
(``--pki-dir`` holding ``ca.crt`` + ``ca.key``, as ``kapi up`` passes), subject
``CN=system:node:NODE, O=system:nodes`` with the node names and address as SANs; else a
self-signed one (kubelet's default without server TLS bootstrap; the API server then cannot
verify the kubelet). Generated files live in ``ROOT/pki`` (key 0600) and are reused while valid
for the same names.
"""

from __future__ import annotations

import datetime
import ipaddress
from collections.abc import Sequence
from pathlib import Path

from kapi_certs import issue, load_cert, load_key, make_ca
from kapi_certs.files import PUBLIC, OutFile, write_files
from kapi_certs.pki import alt_names, cert_pem, is_issued_by, key_pem


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def _still_good(cert_path: Path, dns: Sequence[str], ips: Sequence[str], ca_pem: bytes | None) -> bool:
    try:
        cert = load_cert(cert_path.read_bytes())
    except (OSError, ValueError):
        return False
    if cert.not_valid_after_utc - datetime.datetime.now(datetime.UTC) < datetime.timedelta(days=30):
        return False
    have_dns, have_ips = alt_names(cert)
    if set(dns) - set(have_dns) or {str(ipaddress.ip_address(i)) for i in ips} - set(have_ips):
        return False
    return ca_pem is None or is_issued_by(cert, load_cert(ca_pem))


def serving_files(root: str | Path, names: Sequence[str], address: str, *, cert_file: str = "", key_file: str = "",
                  pki_dir: str = "") -> tuple[str, str]:
    """See the module docstring."""
    if cert_file and key_file:
        return cert_file, key_file
    out = Path(root) / "pki"
    cert_path, key_path = out / "kubelet.crt", out / "kubelet.key"
    hosts = [*names, "localhost", address, "127.0.0.1"]
    dns = [h for h in dict.fromkeys(hosts) if h and not _is_ip(h)]
    ips = [h for h in dict.fromkeys(hosts) if h and _is_ip(h)]
    ca_path, ca_key_path = (Path(pki_dir) / "ca.crt", Path(pki_dir) / "ca.key") if pki_dir else (None, None)
    signed = ca_path is not None and ca_key_path is not None and ca_key_path.exists()
    ca_pem = ca_path.read_bytes() if signed and ca_path is not None else None
    if cert_path.exists() and key_path.exists() and _still_good(cert_path, dns, ips, ca_pem):
        return str(cert_path), str(key_path)
    if signed and ca_path is not None and ca_key_path is not None:
        ca_cert, ca_key = load_cert(ca_path.read_bytes()), load_key(ca_key_path.read_bytes())
    else:
        ca_cert, ca_key = make_ca(f"{names[0] if names else 'kubelet'}-ca@{int(datetime.datetime.now().timestamp())}")
    first = names[0] if names else "kubelet"
    cert, key = issue(ca_cert, ca_key, cn=f"system:node:{first}", orgs=("system:nodes",), dns=dns, ips=ips,
                      server=True)
    chain = cert_pem(cert) + (b"" if signed else cert_pem(ca_cert))
    write_files(out, [OutFile("kubelet.crt", chain, PUBLIC), OutFile("kubelet.key", key_pem(key))])
    return str(cert_path), str(key_path)


def write_client_ca(root: str | Path, ca_pem: bytes) -> str:
    """Store the CA that verifies callers (taken from the kubeconfig) as ``ROOT/pki/client-ca.crt``."""
    out = Path(root) / "pki"
    write_files(out, [OutFile("client-ca.crt", ca_pem, PUBLIC)])
    return str(out / "client-ca.crt")
