"""Client-certificate authentication (kube-apiserver's ``--client-ca-file``), alias ``x509``.

The TLS layer verifies a presented certificate against ``--client-ca-file`` during the handshake
(a certificate from another CA, or an expired one, never reaches the app). For a request that
carries a verified certificate this plugin answers:

* user name = the subject's common name (CN);
* groups = every organization (O) of the subject, in order (``O=system:masters`` makes an admin);
* no uid, no extra.

It rejects the request with 401 (``AuthenticationError``) when the certificate has no CN, is
outside its validity period (it can expire while a connection stays open), or has an extended
key usage extension without ``clientAuth`` (or ``anyExtendedKeyUsage``), as Go's verifier does.
(kube-apiserver lets a CN-less certificate fall through to the next authenticator; kapi refuses
it so the client learns why.) Requests without a certificate are not this plugin's: it returns
None and the next authenticator is tried.

Parsed certificates are cached per app, by PEM, in a bounded LRU
(``app.plugin_state("authn_x509")``), so a connection's requests parse its certificate once.

Options (``config.plugin_options["authn_x509"]``): ``cache_size`` (default 1024) - how many
distinct certificates to keep parsed.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from kapi import AuthenticationError, AuthnRequest, UserInfo, hookimpl

if TYPE_CHECKING:
    from kapi import App

PLUGIN_NAME = "authn_x509"
ALIASES = ("x509",)
DEFAULT_CACHE_SIZE = 1024
_CLIENT_USAGES = frozenset({ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE})


@dataclass(frozen=True, slots=True)
class Identity:
    """What a certificate says, once parsed: the user (or why it is refused) and its validity."""

    user: UserInfo | None
    error: str
    not_before: float
    not_after: float


def identity_of(pem: str) -> Identity:
    """Parse a PEM client certificate into an ``Identity`` (never raises)."""
    try:
        cert = x509.load_pem_x509_certificate(pem.encode("ascii"))
    except ValueError:
        return Identity(None, "the client certificate cannot be parsed", 0.0, 0.0)
    start, end = cert.not_valid_before_utc.timestamp(), cert.not_valid_after_utc.timestamp()
    try:
        usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        usages = None
    except ValueError:
        return Identity(None, "the client certificate has malformed extensions", start, end)
    if usages is not None and _CLIENT_USAGES.isdisjoint(usages):
        return Identity(None, "the client certificate is not valid for client authentication "
                              "(its extended key usage lacks clientAuth)", start, end)
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if not names or not names[0].value:
        return Identity(None, "the client certificate has no common name (CN) to use as the user name", start, end)
    groups = tuple(str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME))
    return Identity(UserInfo(name=str(names[0].value), groups=groups), "", start, end)


class IdentityCache:
    """A bounded LRU of ``Identity`` by PEM. Not thread-safe: use it from the event loop."""

    def __init__(self, size: int = DEFAULT_CACHE_SIZE) -> None:
        self._size = max(1, size)
        self._items: OrderedDict[str, Identity] = OrderedDict()

    def __len__(self) -> int:
        return len(self._items)

    def get(self, pem: str) -> Identity:
        """The identity of ``pem``, parsed on first sight; evicts the least recently used."""
        found = self._items.get(pem)
        if found is not None:
            self._items.move_to_end(pem)
            return found
        found = self._items[pem] = identity_of(pem)
        if len(self._items) > self._size:
            self._items.popitem(last=False)
        return found


def _cache(app: App) -> IdentityCache:
    state = app.plugin_state(PLUGIN_NAME)
    cache = state.get("cache")
    if cache is None:
        size = int(app.config.options_for(PLUGIN_NAME).get("cache_size", DEFAULT_CACHE_SIZE))
        cache = state["cache"] = IdentityCache(size)
    return cache


@hookimpl
def kapi_authenticate(request: AuthnRequest, app: App) -> UserInfo | None:
    """The user named by the request's verified client certificate, or None without one.

    :raises AuthenticationError: the certificate has no CN, lacks clientAuth, or is not valid now.
    """
    cert = request.client_cert
    if cert is None:
        return None
    identity = _cache(app).get(cert.pem)
    if identity.user is None:
        raise AuthenticationError(identity.error)
    now = time.time()
    if now > identity.not_after:
        raise AuthenticationError("the client certificate has expired")
    if now < identity.not_before:
        raise AuthenticationError("the client certificate is not valid yet")
    return identity.user
