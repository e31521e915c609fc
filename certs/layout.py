"""kubeadm's certificate layout under a certificate directory, driven by one declarative table.

``CAS`` and ``CERTS`` describe every file kubeadm puts in ``/etc/kubernetes/pki``: which CA signs
which certificate, its subject, its extended key usages and its subject-alternative-name rule.
``ensure_pki``, ``renew`` and ``expirations`` all walk that table::

    ca.crt/key                      CN=kubernetes                    cluster CA
    apiserver.crt/key               CN=kube-apiserver                serving; SANs below
    apiserver-kubelet-client        CN=kube-apiserver-kubelet-client O=kubeadm:cluster-admins
    front-proxy-ca.crt/key          CN=front-proxy-ca
    front-proxy-client              CN=front-proxy-client
    etcd/ca.crt/key                 CN=etcd-ca
    etcd/server, etcd/peer          CN=<node name>                   SANs node, localhost, advertise, 127.0.0.1, ::1
    etcd/healthcheck-client         CN=kube-etcd-healthcheck-client
    apiserver-etcd-client           CN=kube-apiserver-etcd-client    (signed by etcd/ca)
    sa.key/sa.pub                   RSA 2048 service-account signing key pair

The API server's serving certificate names ``kubernetes``, ``kubernetes.default``,
``kubernetes.default.svc``, ``kubernetes.default.svc.<dns domain>``, ``localhost``, the node name,
the first IP of each service CIDR (``10.96.0.1`` by default), ``127.0.0.1``, ``::1``, the advertise
address and every extra SAN (an IP if it parses as one, else a DNS name).

Policy of ``ensure_pki`` (idempotent): a CA is created only when neither its certificate nor its
key exists, and is never replaced (an expired CA is an error, as in kubeadm). A leaf is kept when
its certificate and key both load, belong together, were signed by the CA now on disk, have the
expected subject and usages, cover every required SAN and stay valid for more than
``PKIOptions.renew_before_days`` (30 by default; a third of the certificate's lifetime when that
is shorter); otherwise it is issued again with a new key and
the reason is reported. ``renew`` re-signs named leaves for a fresh period, keeping their key,
subject, SANs and usages (the existing certificate is the source of truth, as with
``kubeadm certs renew``). A CA whose key is absent is "externally managed": what it signed is
checked, never issued. Private keys are written 0600, certificates 0644, new directories 0700
(``kapi_certs.files``); concurrent callers on one directory are serialised by a lock file.
"""

from __future__ import annotations

import datetime
import ipaddress
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from kapi_certs import pki
from kapi_certs.files import PRIVATE, PUBLIC, OutFile, locked, write_files

Action = Literal["created", "kept", "replaced"]


@dataclass(frozen=True)
class PKIOptions:
    """What shapes the generated PKI. ``node_name`` defaults to this host's name (lowercased)."""

    advertise_address: str = ""
    extra_sans: tuple[str, ...] = ()
    service_cidr: str = "10.96.0.0/12"
    dns_domain: str = "cluster.local"
    node_name: str = ""
    key_type: pki.KeyType = pki.DEFAULT_KEY_TYPE
    ca_days: int = 3650
    cert_days: int = 365
    renew_before_days: int = 30

    def node(self) -> str:
        """The node name used in etcd certificates and the serving certificate's SANs."""
        return (self.node_name or socket.gethostname()).lower()

    def service_ips(self) -> tuple[str, ...]:
        """The first host address of each comma-separated service CIDR (the ``kubernetes`` Service IP).

        :raises PKIError: a CIDR does not parse.
        """
        out = []
        for cidr in filter(None, (c.strip() for c in self.service_cidr.split(","))):
            try:
                out.append(str(ipaddress.ip_network(cidr, strict=False).network_address + 1))
            except ValueError as err:
                raise pki.PKIError(f"invalid service CIDR {cidr!r}: {err}") from None
        return tuple(out)

    def advertise(self) -> tuple[str, ...]:
        """The advertise address as a one-element tuple (validated), or ``()``."""
        if not self.advertise_address:
            return ()
        try:
            return (str(ipaddress.ip_address(self.advertise_address)),)
        except ValueError:
            raise pki.PKIError(f"advertise address {self.advertise_address!r} is not an IP address") from None


SANs = tuple[tuple[str, ...], tuple[str, ...]]
SANRule = Callable[[PKIOptions], SANs]


def no_sans(options: PKIOptions) -> SANs:
    """SAN rule of client certificates: none."""
    return (), ()


def apiserver_sans(options: PKIOptions) -> SANs:
    """SAN rule of the API server's serving certificate (see the module docstring)."""
    domain = options.dns_domain.strip(".")
    dns = [options.node(), "kubernetes", "kubernetes.default", "kubernetes.default.svc",
           f"kubernetes.default.svc.{domain}", "localhost"]
    ips = [*options.service_ips(), "127.0.0.1", "::1", *options.advertise()]
    for extra in options.extra_sans:
        try:
            ips.append(str(ipaddress.ip_address(extra)))
        except ValueError:
            dns.append(extra)
    return tuple(dict.fromkeys(dns)), tuple(dict.fromkeys(ips))


def etcd_sans(options: PKIOptions) -> SANs:
    """SAN rule of etcd's server and peer certificates."""
    return (options.node(), "localhost"), tuple(dict.fromkeys(("127.0.0.1", "::1", *options.advertise())))


@dataclass(frozen=True)
class CASpec:
    """A certificate authority of the layout. ``path`` is relative, without ``.crt``/``.key``."""

    name: str
    path: str
    cn: str
    purpose: str


@dataclass(frozen=True)
class CertSpec:
    """A leaf certificate of the layout. ``cn`` may contain ``{node}`` (the node name)."""

    name: str
    path: str
    ca: str
    cn: str
    purpose: str
    orgs: tuple[str, ...] = ()
    server: bool = False
    client: bool = False
    sans: SANRule = field(default=no_sans)

    def subject(self, options: PKIOptions) -> tuple[str, tuple[str, ...]]:
        """``(common name, organizations)`` for these options."""
        return self.cn.format(node=options.node()), self.orgs


CAS: tuple[CASpec, ...] = (
    CASpec("ca", "ca", "kubernetes", "cluster CA: API server serving and client certificates"),
    CASpec("front-proxy-ca", "front-proxy-ca", "front-proxy-ca", "CA of the aggregation front proxy"),
    CASpec("etcd-ca", "etcd/ca", "etcd-ca", "CA of etcd's serving, peer and client certificates"),
)

CERTS: tuple[CertSpec, ...] = (
    CertSpec("apiserver", "apiserver", "ca", "kube-apiserver", "serving the Kubernetes API",
             server=True, sans=apiserver_sans),
    CertSpec("apiserver-kubelet-client", "apiserver-kubelet-client", "ca", "kube-apiserver-kubelet-client",
             "the API server's client certificate for kubelets", orgs=("kubeadm:cluster-admins",), client=True),
    CertSpec("front-proxy-client", "front-proxy-client", "front-proxy-ca", "front-proxy-client",
             "the front proxy's client certificate", client=True),
    CertSpec("etcd-server", "etcd/server", "etcd-ca", "{node}", "serving etcd",
             server=True, client=True, sans=etcd_sans),
    CertSpec("etcd-peer", "etcd/peer", "etcd-ca", "{node}", "etcd member-to-member traffic",
             server=True, client=True, sans=etcd_sans),
    CertSpec("etcd-healthcheck-client", "etcd/healthcheck-client", "etcd-ca", "kube-etcd-healthcheck-client",
             "liveness probes of etcd", client=True),
    CertSpec("apiserver-etcd-client", "apiserver-etcd-client", "etcd-ca", "kube-apiserver-etcd-client",
             "the API server's client certificate for etcd", client=True),
)

SA_KEY, SA_PUB = "sa.key", "sa.pub"
CERT_NAMES: tuple[str, ...] = tuple(c.name for c in CERTS)
_CA_BY_NAME = {c.name: c for c in CAS}
_CERT_BY_NAME = {c.name: c for c in CERTS}


def files_of(cert_dir: str | Path, name: str) -> tuple[Path, Path]:
    """``(certificate path, key path)`` of a CA or leaf of the table, by name (``"etcd-ca"``, ``"apiserver"``).

    :raises KeyError: no such name.
    """
    spec = _CA_BY_NAME.get(name) or _CERT_BY_NAME[name]
    base = Path(cert_dir) / spec.path
    return base.with_name(base.name + ".crt"), base.with_name(base.name + ".key")


@dataclass(frozen=True)
class PKIEntry:
    """What ``ensure_pki`` did with one item, and why (empty reason: nothing to say)."""

    name: str
    action: Action
    reason: str = ""


@dataclass(frozen=True)
class PKIResult:
    """The outcome of ``ensure_pki``: one entry per CA, leaf and the service-account key pair."""

    cert_dir: Path
    entries: tuple[PKIEntry, ...]

    @property
    def changed(self) -> tuple[str, ...]:
        """Names of the items created or replaced."""
        return tuple(e.name for e in self.entries if e.action != "kept")


@dataclass(frozen=True)
class ExpirationRow:
    """One line of ``expirations``: ``not_after`` is None when the certificate is missing."""

    name: str
    path: Path
    ca: str
    is_ca: bool
    not_after: datetime.datetime | None
    externally_managed: bool


# ---------------------------------------------------------------------------------------------
# loading


@dataclass(frozen=True)
class _Pair:
    cert: x509.Certificate | None
    key: pki.PrivateKey | None
    error: str = ""


def _load_pair(cert_dir: Path, name: str) -> _Pair:
    cert_path, key_path = files_of(cert_dir, name)
    cert = key = None
    try:
        if cert_path.exists():
            cert = pki.load_cert(cert_path.read_bytes())
        if key_path.exists():
            key = pki.load_key(key_path.read_bytes())
    except (ValueError, OSError) as err:
        failed = cert_path.name if cert is None else key_path.name
        return _Pair(cert, None, f"{failed} is unreadable ({type(err).__name__})")
    return _Pair(cert, key)


def _now(now: datetime.datetime | None) -> datetime.datetime:
    return now or datetime.datetime.now(datetime.UTC)


def renewal_margin(cert: x509.Certificate, options: PKIOptions) -> datetime.timedelta:
    """How close to its end a certificate may get before ``ensure_pki`` replaces it:
    ``renew_before_days``, or a third of the certificate's lifetime if that is shorter (so a
    30-day certificate is not replaced on every run)."""
    lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
    return min(datetime.timedelta(days=options.renew_before_days), lifetime / 3)


def _leaf_problem(spec: CertSpec, pair: _Pair, ca_cert: x509.Certificate, options: PKIOptions,
                  now: datetime.datetime) -> str:
    """Why the leaf on disk must be issued again, or ``""`` if it is good."""
    if pair.error:
        return pair.error
    if pair.cert is None or pair.key is None:
        return "missing"
    cert = pair.cert
    if not pki.same_public_key(cert, pair.key):
        return "the key does not match the certificate"
    if not pki.is_issued_by(cert, ca_cert):
        return f"not signed by the current {spec.ca}"
    left = cert.not_valid_after_utc - now
    if left <= renewal_margin(cert, options):
        return "expired" if left.total_seconds() <= 0 else f"expires in {max(left.days, 0)} days"
    cn, orgs = spec.subject(options)
    if (pki.common_name(cert), pki.organizations(cert)) != (cn, orgs):
        return "its subject differs from the expected one"
    if pki.extended_usages(cert) != (spec.server, spec.client):
        return "its key usages differ from the expected ones"
    want_dns, want_ips = spec.sans(options)
    have_dns, have_ips = pki.alt_names(cert)
    missing = sorted(set(want_dns) - set(have_dns)) + sorted(set(want_ips) - set(have_ips))
    return f"missing SANs: {', '.join(missing)}" if missing else ""


def _pair_files(path: str, cert: x509.Certificate, key: pki.PrivateKey) -> list[OutFile]:
    return [OutFile(path + ".key", pki.key_pem(key), PRIVATE), OutFile(path + ".crt", pki.cert_pem(cert), PUBLIC)]


# ---------------------------------------------------------------------------------------------
# ensure


@dataclass
class _Plan:
    """What one ``ensure_pki`` run decided: the entries to report and the files to write."""

    entries: list[PKIEntry] = field(default_factory=list)
    files: list[OutFile] = field(default_factory=list)
    cas: dict[str, tuple[x509.Certificate, pki.PrivateKey | None]] = field(default_factory=dict)


def _plan_ca(plan: _Plan, cert_dir: Path, spec: CASpec, options: PKIOptions, now: datetime.datetime) -> None:
    pair = _load_pair(cert_dir, spec.name)
    cert_path, key_path = files_of(cert_dir, spec.name)
    if pair.error:
        raise pki.PKIError(f"CA {spec.name}: {pair.error}; fix or remove {cert_path} and {key_path}")
    if pair.cert is None:
        if key_path.exists():
            raise pki.PKIError(f"CA {spec.name}: {key_path} exists without {cert_path}; restore it or remove the key")
        cert, key = pki.make_ca(spec.cn, days=options.ca_days, key_type=options.key_type, now=now)
        plan.cas[spec.name] = (cert, key)
        plan.files += _pair_files(spec.path, cert, key)
        plan.entries.append(PKIEntry(spec.name, "created"))
        return
    if pair.key is not None and not pki.same_public_key(pair.cert, pair.key):
        raise pki.PKIError(f"CA {spec.name}: {key_path} does not belong to {cert_path}")
    left = pair.cert.not_valid_after_utc - now
    if left.total_seconds() <= 0:
        raise pki.PKIError(f"CA {spec.name} expired on {pair.cert.not_valid_after_utc:%Y-%m-%d}; CAs are not "
                           f"renewed automatically: move {cert_path.parent} away and run 'kapi certs init' again")
    reason = "" if pair.key is not None else "externally managed (no CA key)"
    if left <= renewal_margin(pair.cert, options):
        reason = "; ".join(filter(None, (reason, f"expires in {left.days} days and is not renewed automatically")))
    plan.cas[spec.name] = (pair.cert, pair.key)
    plan.entries.append(PKIEntry(spec.name, "kept", reason))


def _plan_leaf(plan: _Plan, cert_dir: Path, spec: CertSpec, options: PKIOptions, now: datetime.datetime) -> None:
    ca_cert, ca_key = plan.cas[spec.ca]
    pair = _load_pair(cert_dir, spec.name)
    problem = _leaf_problem(spec, pair, ca_cert, options, now)
    if not problem:
        plan.entries.append(PKIEntry(spec.name, "kept"))
        return
    if ca_key is None:
        raise pki.PKIError(f"certificate {spec.name} must be issued ({problem}) but CA {spec.ca} is externally "
                           f"managed: provide its key or a valid {spec.path}.crt/.key")
    cn, orgs = spec.subject(options)
    dns, ips = spec.sans(options)
    cert, key = pki.issue(ca_cert, ca_key, cn=cn, orgs=orgs, dns=dns, ips=ips, server=spec.server,
                          client=spec.client, days=options.cert_days, key_type=options.key_type, now=now)
    plan.files += _pair_files(spec.path, cert, key)
    plan.entries.append(PKIEntry(spec.name, "created" if problem == "missing" else "replaced",
                                 "" if problem == "missing" else problem))


def _plan_sa(plan: _Plan, cert_dir: Path) -> None:
    key_path, pub_path = cert_dir / SA_KEY, cert_dir / SA_PUB
    key: rsa.RSAPrivateKey | None = None
    if key_path.exists():
        try:
            loaded = pki.load_key(key_path.read_bytes(), check_rsa=False)
        except (ValueError, OSError) as err:
            raise pki.PKIError(f"{key_path} is unreadable ({type(err).__name__}); fix or remove it") from None
        if not isinstance(loaded, rsa.RSAPrivateKey):
            raise pki.PKIError(f"{key_path} is not an RSA key; remove it to generate a new one")
        key = loaded
    pub = pki.public_key_pem(key) if key is not None else b""
    if key is not None and pub_path.exists() and pub_path.read_bytes() == pub:
        plan.entries.append(PKIEntry("sa", "kept"))
        return
    action: Action = "created" if key is None else "replaced"
    if key is None:
        key = pki.generate_sa_key()
        plan.files.append(OutFile(SA_KEY, pki.key_pem(key), PRIVATE))
    plan.files.append(OutFile(SA_PUB, pki.public_key_pem(key), PUBLIC))
    plan.entries.append(PKIEntry("sa", action, "" if action == "created" else f"{SA_PUB} rewritten from {SA_KEY}"))


def ensure_pki(cert_dir: str | Path, options: PKIOptions | None = None, *,
               now: datetime.datetime | None = None) -> PKIResult:
    """Make ``cert_dir`` hold the whole layout; keep what is valid, create or replace the rest.

    See the module docstring for the exact keep/replace policy. All files are decided first and
    written together at the end.

    :raises PKIError: a CA is unusable (expired, unreadable, key mismatch) or a certificate must be
        issued by an externally managed CA; nothing is written then.
    """
    options = options or PKIOptions()
    root = Path(cert_dir)
    moment = _now(now)
    with locked(root):
        plan = _Plan()
        for ca in CAS:
            _plan_ca(plan, root, ca, options, moment)
        for leaf in CERTS:
            _plan_leaf(plan, root, leaf, options, moment)
        _plan_sa(plan, root)
        write_files(root, plan.files)
    return PKIResult(root, tuple(plan.entries))


# ---------------------------------------------------------------------------------------------
# renew and inspect


def resolve_names(names: Iterable[str] | Literal["all"]) -> tuple[str, ...]:
    """Leaf names to act on: ``"all"`` (or a list containing it) means every leaf of the table.

    :raises PKIError: an unknown name (the message lists the valid ones).
    """
    wanted = (names,) if isinstance(names, str) else tuple(names)
    if "all" in wanted:
        return CERT_NAMES
    unknown = [n for n in wanted if n not in _CERT_BY_NAME]
    if unknown:
        raise pki.PKIError(f"unknown certificate {', '.join(unknown)}: choose from all, {', '.join(CERT_NAMES)}")
    return tuple(dict.fromkeys(wanted))


def renew(cert_dir: str | Path, names: Iterable[str] | Literal["all"], *, days: int = 365,
          now: datetime.datetime | None = None) -> tuple[str, ...]:
    """Re-sign the named leaves (or ``"all"``) for ``days`` from now, keeping each one's key,
    subject, SANs and usages. :returns: the names renewed.

    :raises PKIError: an unknown name, a missing or unreadable certificate or key, or a CA whose
        key is missing; nothing is written then.
    """
    root = Path(cert_dir)
    chosen = resolve_names(names)
    with locked(root):
        files: list[OutFile] = []
        cas: dict[str, _Pair] = {}
        for name in chosen:
            spec = _CERT_BY_NAME[name]
            ca = cas.setdefault(spec.ca, _load_pair(root, spec.ca))
            pair = _load_pair(root, name)
            if ca.cert is None or ca.key is None:
                raise pki.PKIError(f"cannot renew {name}: CA {spec.ca} needs both its certificate and its key")
            if pair.cert is None or pair.key is None:
                raise pki.PKIError(f"cannot renew {name}: {pair.error or 'certificate or key missing'}; "
                                   "run 'kapi certs init' to create it")
            dns, ips = pki.alt_names(pair.cert)
            server, client = pki.extended_usages(pair.cert)
            cert, key = pki.issue(ca.cert, ca.key, cn=pki.common_name(pair.cert), orgs=pki.organizations(pair.cert),
                                  dns=dns, ips=ips, server=server, client=client, days=days, key=pair.key, now=now)
            files += _pair_files(spec.path, cert, key)
        write_files(root, files)
    return chosen


def expirations(cert_dir: str | Path) -> list[ExpirationRow]:
    """Every leaf, then every CA of the table, with its end of validity (``None`` if missing) and
    whether its CA is externally managed (its key is absent). Unreadable files count as missing."""
    root = Path(cert_dir)
    ca_key_present = {ca.name: files_of(root, ca.name)[1].exists() for ca in CAS}

    def row(name: str, ca: str, is_ca: bool) -> ExpirationRow:
        cert_path = files_of(root, name)[0]
        try:
            not_after: datetime.datetime | None = pki.load_cert(cert_path.read_bytes()).not_valid_after_utc
        except (OSError, ValueError):
            not_after = None
        return ExpirationRow(name, cert_path, ca, is_ca, not_after, not ca_key_present[ca or name])

    return [row(c.name, c.ca, False) for c in CERTS] + [row(c.name, "", True) for c in CAS]
