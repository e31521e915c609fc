"""Authenticating proxies (kube-apiserver's ``--requestheader-*`` flags), alias ``request-header``.

A front proxy (the aggregation layer, an auth gateway) that has authenticated a user forwards the
request with the user in headers and proves itself with its own client certificate. This plugin
accepts the headers ONLY when the request's verified client certificate was issued by a CA of
``--requestheader-client-ca-file`` (the front-proxy CA, usually not the cluster CA), is valid now,
is usable for client authentication, and - when ``--requestheader-allowed-names`` is given - has
one of those common names. Then:

* user name = the first non-empty header of ``--requestheader-username-headers`` (default
  ``X-Remote-User``);
* groups = every value of ``--requestheader-group-headers`` (default ``X-Remote-Group``);
* extra = every ``--requestheader-extra-headers-prefix`` header (default ``X-Remote-Extra-``):
  the rest of the header name, lowercased and URL-unescaped, is the key;
* uid = the first ``--requestheader-uid-headers`` header (none by default).

A header carrying several values (repeated headers joined with commas, as HTTP allows) gives one
group or extra value per comma-separated item. Header names are matched case-insensitively.

TLS: the server verifies client certificates during the handshake against the bundle it was given
(``--client-ca-file``), so that bundle must include the front-proxy CA as well as the cluster CA
(e.g. ``cat ca.crt front-proxy-ca.crt > client-ca-bundle.crt``). This plugin then checks the
certificate against the front-proxy CA alone (the leaf must be issued directly by it). List it
BEFORE ``x509`` in ``config.authenticators`` (kube order), or x509 answers first with the proxy's
own identity.

Errors (the rule, kube-apiserver's union semantics): this plugin never fails a request. No client
certificate, a certificate from another CA (a normal client of the cluster CA), a proxy name that
is not allowed, or no username header: None, and the next authenticator (x509) is tried.
Rejections are logged at debug level with the certificate's CN.

Options (``config.plugin_options["authn_request_header"]``): ``client_ca_file``, ``allowed_names``,
``username_headers``, ``group_headers``, ``extra_headers_prefix``, ``uid_headers`` (lists
comma-separated). Setting ``--requestheader-client-ca-file`` sets ``enabled``.
"""

from __future__ import annotations

import argparse
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from kapi import AuthnRequest, UserInfo, hookimpl

if TYPE_CHECKING:
    from kapi import App

PLUGIN_NAME = "authn_request_header"
ALIASES = ("request-header", "requestheader")
CACHE_SIZE = 64
_CLIENT_USAGES = frozenset({ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE})

log = logging.getLogger(__name__)


class RequestHeaderConfigError(ValueError):
    """The request-header configuration cannot be used; the message names the flag."""


def _strings(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    items = value.split(",") if isinstance(value, str) else [str(v) for v in value]
    return tuple(s.strip() for s in items if s.strip())


@dataclass(frozen=True)
class Settings:
    """The resolved options; header names are lowercase."""

    cas: tuple[x509.Certificate, ...]
    allowed_names: frozenset[str]
    username_headers: tuple[str, ...]
    group_headers: tuple[str, ...]
    extra_prefixes: tuple[str, ...]
    uid_headers: tuple[str, ...]


def load_cas(path: str) -> tuple[x509.Certificate, ...]:
    """The certificates of the PEM bundle at ``path``. :raises RequestHeaderConfigError: unusable."""
    try:
        cas = tuple(x509.load_pem_x509_certificates(Path(path).read_bytes()))
    except OSError as exc:
        raise RequestHeaderConfigError(f"--requestheader-client-ca-file {path!r} cannot be read: "
                                       f"{exc.strerror}") from None
    except ValueError:
        raise RequestHeaderConfigError(f"--requestheader-client-ca-file {path!r} holds no PEM certificate") from None
    return cas


def settings_of(options: Mapping[str, Any]) -> Settings | None:
    """Resolve ``options``; None without ``client_ca_file``."""
    path = str(options.get("client_ca_file") or "")
    if not path:
        return None

    def names(key: str, default: tuple[str, ...]) -> tuple[str, ...]:
        value = _strings(options.get(key)) if options.get(key) is not None else default
        return tuple(v.lower() for v in value)

    return Settings(cas=load_cas(path), allowed_names=frozenset(_strings(options.get("allowed_names"))),
                    username_headers=names("username_headers", ("X-Remote-User",)),
                    group_headers=names("group_headers", ("X-Remote-Group",)),
                    extra_prefixes=names("extra_headers_prefix", ("X-Remote-Extra-",)),
                    uid_headers=names("uid_headers", ()))


@dataclass(frozen=True, slots=True)
class Proxy:
    """What a client certificate says about the proxy: its CN if a requestheader CA issued it and
    it may authenticate clients ("" otherwise), and its validity."""

    cn: str
    not_before: float
    not_after: float


def proxy_of(pem: str, cas: tuple[x509.Certificate, ...]) -> Proxy:
    """Check a PEM client certificate against the requestheader CAs (never raises)."""
    try:
        cert = x509.load_pem_x509_certificate(pem.encode("ascii"))
    except ValueError:
        return Proxy("", 0.0, 0.0)
    start, end = cert.not_valid_before_utc.timestamp(), cert.not_valid_after_utc.timestamp()
    issued = False
    for ca in cas:
        if ca.subject != cert.issuer:
            continue
        try:
            cert.verify_directly_issued_by(ca)
        except (ValueError, TypeError, InvalidSignature):
            continue
        issued = True
        break
    try:
        usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        usages = None
    except ValueError:
        return Proxy("", start, end)
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if not issued or (usages is not None and _CLIENT_USAGES.isdisjoint(usages)) or not names:
        return Proxy("", start, end)
    return Proxy(str(names[0].value), start, end)


def _values(headers: Mapping[str, str], name: str) -> list[str]:
    value = headers.get(name)
    return [v.strip() for v in value.split(",") if v.strip()] if value else []


def user_from_headers(headers: Mapping[str, str], settings: Settings) -> UserInfo | None:
    """The user the proxy names in ``headers`` (None without a username header)."""
    name = next((headers[h].strip() for h in settings.username_headers if headers.get(h, "").strip()), "")
    if not name:
        return None
    groups = tuple(g for h in settings.group_headers for g in _values(headers, h))
    extra: dict[str, list[str]] = {}
    for header in headers:
        for prefix in settings.extra_prefixes:
            if header.startswith(prefix) and len(header) > len(prefix):
                extra.setdefault(unquote(header[len(prefix):]).lower(), []).extend(_values(headers, header))
    uid = next((headers[h].strip() for h in settings.uid_headers if headers.get(h, "").strip()), "")
    return UserInfo(name=name, uid=uid, groups=groups, extra={k: tuple(v) for k, v in extra.items()})


@dataclass
class State:
    """Per-app state: the settings and a small LRU of checked proxy certificates."""

    settings: Settings | None
    proxies: dict[str, Proxy] = field(default_factory=dict)

    def proxy(self, pem: str) -> Proxy:
        assert self.settings is not None
        found = self.proxies.pop(pem, None) or proxy_of(pem, self.settings.cas)
        self.proxies[pem] = found
        if len(self.proxies) > CACHE_SIZE:
            del self.proxies[next(iter(self.proxies))]
        return found


def state_of(app: App) -> State:
    """This app's state (built at startup, or on first use)."""
    holder = app.plugin_state(PLUGIN_NAME)
    state: State | None = holder.get("state")
    if state is None:
        state = holder["state"] = State(settings_of(app.config.options_for(PLUGIN_NAME)))
    return state


@hookimpl
def kapi_add_options(parser: argparse.ArgumentParser) -> None:
    """kube-apiserver's ``--requestheader-*`` flags."""
    group = parser.add_argument_group("authenticating proxy (authn_request_header)")
    group.add_argument("--requestheader-client-ca-file", default="", metavar="FILE",
                       help="CA bundle that issues front-proxy client certificates (the server's --client-ca-file "
                            "bundle must contain it too)")
    group.add_argument("--requestheader-allowed-names", default="", metavar="CN[,CN]",
                       help="common names a front proxy may have (default: any the CA issued)")
    group.add_argument("--requestheader-username-headers", default="X-Remote-User", metavar="HEADER[,HEADER]")
    group.add_argument("--requestheader-group-headers", default="X-Remote-Group", metavar="HEADER[,HEADER]")
    group.add_argument("--requestheader-extra-headers-prefix", default="X-Remote-Extra-", metavar="PREFIX[,PREFIX]")
    group.add_argument("--requestheader-uid-headers", default="", metavar="HEADER[,HEADER]")


@hookimpl
def kapi_read_options(args: argparse.Namespace) -> dict[str, Any] | None:
    """The flags as this plugin's options section; None without a CA file."""
    path = getattr(args, "requestheader_client_ca_file", "")
    if not path:
        return None
    load_cas(path)
    return {"enabled": True, "client_ca_file": path,
            "allowed_names": list(_strings(args.requestheader_allowed_names)),
            "username_headers": list(_strings(args.requestheader_username_headers)),
            "group_headers": list(_strings(args.requestheader_group_headers)),
            "extra_headers_prefix": list(_strings(args.requestheader_extra_headers_prefix)),
            "uid_headers": list(_strings(args.requestheader_uid_headers))}


@hookimpl
def kapi_startup(app: App) -> None:
    """Load the requestheader CA bundle (an unusable one stops the server)."""
    app.plugin_state(PLUGIN_NAME).pop("state", None)
    state_of(app)


@hookimpl
def kapi_authenticate(request: AuthnRequest, app: App) -> UserInfo | None:
    """The user named by a trusted proxy's headers, or None (never raises)."""
    cert = request.client_cert
    if cert is None:
        return None
    state = state_of(app)
    if state.settings is None:
        return None
    proxy = state.proxy(cert.pem)
    now = time.time()
    if not proxy.cn or not proxy.not_before <= now <= proxy.not_after:
        return None
    if state.settings.allowed_names and proxy.cn not in state.settings.allowed_names:
        log.debug("request-header: client certificate CN %r is not an allowed proxy name", proxy.cn)
        return None
    return user_from_headers(request.headers, state.settings)
