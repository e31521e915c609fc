"""``kapi certs ...`` and ``kapi kubeconfig ...``: the PKI from the command line (kubeadm's verbs).

::

    kapi certs init [--cert-dir DIR] [--apiserver-advertise-address IP] [--apiserver-cert-extra-sans SAN,...]
                    [--service-cidr CIDR] [--service-dns-domain D] [--node-name N] [--key-type T]
                    [--ca-days N] [--cert-days N]
    kapi certs check-expiration [--cert-dir DIR]
    kapi certs renew NAME|all ... [--cert-dir DIR] [--cert-days N]
    kapi kubeconfig user --name N [--group G ...] [--token T] [--cert-dir DIR] [--server URL] [--out FILE]
    kapi kubeconfig component admin|kube-scheduler|kube-controller-manager|kubelet [--node-name N]
                    [--cert-dir DIR] [--server URL] [--out FILE]

``--cert-dir`` defaults to ``DATA_DIR/pki``, where the API server keeps the credentials it makes
when started without TLS flags. A kubeconfig goes to stdout unless ``--out`` is given (then it
is written 0600). Commands are registered through ``kapi_register_commands``; each returns 0 on
success and 1 with a one-line error on stderr otherwise.
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from cryptography import x509

from kapi import hookimpl
from kapi.config import default_data_dir
from kapi_certs import kubeconfig, layout, pki

DEFAULT_SERVER = "https://127.0.0.1:6443"


# ---------------------------------------------------------------------------------------------
# presentation


def residual(delta: datetime.timedelta) -> str:
    """Time left, written like kubectl/kubeadm's ``ShortHumanDuration`` (``45s``, ``3h``, ``364d``, ``9y``)."""
    seconds = int(delta.total_seconds())
    if seconds < -1:
        return "<invalid>"
    if seconds < 0:
        return "0s"
    for unit, size, limit in (("s", 1, 60), ("m", 60, 3600), ("h", 3600, 86400), ("d", 86400, 86400 * 365)):
        if seconds < limit:
            return f"{seconds // size}{unit}"
    return f"{seconds // (86400 * 365)}y"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    return ["   ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in [header, *rows]]


def format_expirations(rows: Sequence[layout.ExpirationRow], now: datetime.datetime) -> str:
    """The ``check-expiration`` report: leaves, a blank line, then CAs (kubeadm's two tables)."""

    def cells(row: layout.ExpirationRow) -> list[str]:
        managed = "yes" if row.externally_managed else "no"
        if row.not_after is None:
            return [f"!MISSING! {row.name}", "", "", *([] if row.is_ca else [row.ca]), managed]
        when = row.not_after.strftime("%b %d, %Y %H:%M UTC")
        return [row.name, when, residual(row.not_after - now), *([] if row.is_ca else [row.ca]), managed]

    leaves = _table(["CERTIFICATE", "EXPIRES", "RESIDUAL TIME", "CERTIFICATE AUTHORITY", "EXTERNALLY MANAGED"],
                    [cells(r) for r in rows if not r.is_ca])
    cas = _table(["CERTIFICATE AUTHORITY", "EXPIRES", "RESIDUAL TIME", "EXTERNALLY MANAGED"],
                 [cells(r) for r in rows if r.is_ca])
    return "\n".join([*leaves, "", *cas]) + "\n"


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 1


def _guarded(command: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Turn the expected failures of a command into exit code 1 and a one-line message."""

    def run(args: argparse.Namespace) -> int:
        try:
            return command(args)
        except (pki.PKIError, ValueError, OSError) as err:
            return _fail(str(err))

    run.__doc__ = command.__doc__
    return run


# ---------------------------------------------------------------------------------------------
# commands


def _split_sans(values: Sequence[str] | None) -> tuple[str, ...]:
    return tuple(s.strip() for v in values or () for s in v.split(",") if s.strip())


@_guarded
def cmd_init(args: argparse.Namespace) -> int:
    """Create the missing or invalid parts of the PKI under --cert-dir."""
    options = layout.PKIOptions(
        advertise_address=args.apiserver_advertise_address, extra_sans=_split_sans(args.apiserver_cert_extra_sans),
        service_cidr=args.service_cidr, dns_domain=args.service_dns_domain, node_name=args.node_name,
        key_type=args.key_type, ca_days=args.ca_days, cert_days=args.cert_days)
    result = layout.ensure_pki(args.cert_dir, options)
    for entry in result.entries:
        print(f"[certs] {entry.action} {entry.name}" + (f": {entry.reason}" if entry.reason else ""))
    print(f"[certs] certificates and keys are in {result.cert_dir}")
    return 0


@_guarded
def cmd_check_expiration(args: argparse.Namespace) -> int:
    """Print when each certificate and CA under --cert-dir expires."""
    rows = layout.expirations(args.cert_dir)
    sys.stdout.write(format_expirations(rows, datetime.datetime.now(datetime.UTC)))
    return 0


@_guarded
def cmd_renew(args: argparse.Namespace) -> int:
    """Renew the named certificates (or all) with their existing keys."""
    for name in layout.renew(args.cert_dir, args.names, days=args.cert_days):
        print(f"[renew] certificate {name} renewed")
    print("[renew] restart the components that use them to load the new certificates")
    return 0


def _load_ca(cert_dir: str) -> tuple[x509.Certificate, pki.PrivateKey]:
    cert_path, key_path = layout.files_of(cert_dir, "ca")
    if not cert_path.exists() or not key_path.exists():
        raise pki.PKIError(f"{cert_path} and {key_path} are needed: run 'kapi certs init --cert-dir {cert_dir}'")
    return pki.load_cert(cert_path.read_bytes()), pki.load_key(key_path.read_bytes())


def _emit(config: dict[str, Any], out: str | None) -> int:
    if out:
        path = kubeconfig.write_kubeconfig(out, config)
        print(f"[kubeconfig] wrote {path}", file=sys.stderr)
    else:
        sys.stdout.write(kubeconfig.to_yaml(config))
    return 0


@_guarded
def cmd_kubeconfig_user(args: argparse.Namespace) -> int:
    """Make a kubeconfig for a user: a new client certificate, or the given token."""
    ca_cert, ca_key = _load_ca(args.cert_dir)
    if args.token:
        if args.group:
            raise ValueError("--group applies to certificates; a token's groups come from the token authenticator")
        config = kubeconfig.build_kubeconfig(server=args.server, ca_cert=ca_cert, user=args.name, token=args.token)
    else:
        config = kubeconfig.user_kubeconfig(ca_cert, ca_key, server=args.server, name=args.name,
                                            groups=args.group or (), days=args.days, key_type=args.key_type)
    return _emit(config, args.out)


@_guarded
def cmd_kubeconfig_component(args: argparse.Namespace) -> int:
    """Make the kubeconfig of a control-plane component."""
    ca_cert, ca_key = _load_ca(args.cert_dir)
    config = kubeconfig.component_kubeconfig(ca_cert, ca_key, args.component, server=args.server,
                                             node_name=args.node_name, days=args.days, key_type=args.key_type)
    return _emit(config, args.out)


# ---------------------------------------------------------------------------------------------
# parsers


def _help_of(parser: argparse.ArgumentParser) -> Callable[[argparse.Namespace], int]:
    def show(_: argparse.Namespace) -> int:
        parser.print_help(sys.stderr)
        return 2

    return show


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cert-dir", default=os.path.join(default_data_dir(), "pki"),
                        help="certificate directory (default: %(default)s)")


def _positive(value: str) -> int:
    number = int(value)
    if number <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive number of days, got {value}")
    return number


def _key_type(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--key-type", choices=pki.KEY_TYPES, default=pki.DEFAULT_KEY_TYPE,
                        help="private key algorithm (default: %(default)s)")


def _add_certs(subparsers: Any) -> None:
    certs = subparsers.add_parser("certs", help="create, check and renew the cluster's certificates")
    certs.set_defaults(func=_help_of(certs))
    verbs = certs.add_subparsers(title="commands", metavar="COMMAND")

    init = verbs.add_parser("init", help="create the PKI (idempotent: keeps valid certificates)")
    _common(init)
    init.add_argument("--apiserver-advertise-address", default="", help="IP address put in the serving certificate")
    init.add_argument("--apiserver-cert-extra-sans", action="append", metavar="SAN[,SAN]",
                      help="extra IPs or DNS names for the serving certificate (repeatable, comma-separated)")
    init.add_argument("--service-cidr", default="10.96.0.0/12", help="service CIDR; its first IP is a SAN")
    init.add_argument("--service-dns-domain", default="cluster.local", help="cluster DNS domain")
    init.add_argument("--node-name", default="", help="node name for SANs and etcd certificates (default: hostname)")
    _key_type(init)
    init.add_argument("--ca-days", type=_positive, default=3650, help="CA validity in days (default: %(default)s)")
    init.add_argument("--cert-days", type=_positive, default=365, help="leaf validity in days (default: %(default)s)")
    init.set_defaults(func=cmd_init)

    check = verbs.add_parser("check-expiration", help="show when the certificates expire")
    _common(check)
    check.set_defaults(func=cmd_check_expiration)

    renew = verbs.add_parser("renew", help="renew certificates, keeping their keys")
    renew.add_argument("names", nargs="+", choices=("all", *layout.CERT_NAMES), metavar="NAME",
                       help=f"all, or one or more of: {', '.join(layout.CERT_NAMES)}")
    _common(renew)
    renew.add_argument("--cert-days", type=_positive, default=365, help="new validity in days (default: %(default)s)")
    renew.set_defaults(func=cmd_renew)


def _kubeconfig_common(parser: argparse.ArgumentParser) -> None:
    _common(parser)
    parser.add_argument("--server", default=DEFAULT_SERVER, help="API server URL (default: %(default)s)")
    parser.add_argument("--out", help="write the kubeconfig here (mode 0600) instead of stdout")
    parser.add_argument("--days", type=_positive, default=365, help="client certificate validity (default: 365)")
    _key_type(parser)


def _add_kubeconfig(subparsers: Any) -> None:
    parent = subparsers.add_parser("kubeconfig", help="make kubeconfig files signed by the cluster CA")
    parent.set_defaults(func=_help_of(parent))
    kinds = parent.add_subparsers(title="commands", metavar="COMMAND")

    user = kinds.add_parser("user", help="a kubeconfig for a user (client certificate CN=name, O=group)")
    user.add_argument("--name", required=True, help="user name (the certificate's CN)")
    user.add_argument("--group", action="append", help="group (an O of the certificate; repeatable)")
    user.add_argument("--token", help="embed this bearer token instead of issuing a certificate")
    _kubeconfig_common(user)
    user.set_defaults(func=cmd_kubeconfig_user)

    component = kinds.add_parser("component", help="a kubeconfig for a control-plane component")
    component.add_argument("component", choices=kubeconfig.COMPONENTS)
    component.add_argument("--node-name", default="", help="the kubelet's node name (required for kubelet)")
    _kubeconfig_common(component)
    component.set_defaults(func=cmd_kubeconfig_component)


@hookimpl
def kapi_register_commands(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register ``kapi certs`` and ``kapi kubeconfig``."""
    _add_certs(subparsers)
    _add_kubeconfig(subparsers)
