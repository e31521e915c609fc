"""authn_x509: user = CN, groups = every O of a verified client certificate."""

from __future__ import annotations

import datetime
from collections import defaultdict
from types import SimpleNamespace

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from kapi import AuthenticationError, AuthnRequest, ClientCertificate, Config, UserInfo
from kapi_certs import pki
from kapi_plugins import authn_x509


@pytest.fixture(scope="module")
def ca() -> tuple[x509.Certificate, pki.PrivateKey]:
    return pki.make_ca("kubernetes")


def _app(**options: object) -> SimpleNamespace:
    return SimpleNamespace(config=Config(plugin_options={"authn_x509": options}),
                           plugin_state=defaultdict(dict).__getitem__)


def _request(cert: x509.Certificate | None) -> AuthnRequest:
    client = ClientCertificate(pem=pki.cert_pem(cert).decode()) if cert is not None else None
    return AuthnRequest(method="GET", path="/api", headers={}, client_cert=client)


def test_hook_kapi_authenticate(ca: tuple[x509.Certificate, pki.PrivateKey]) -> None:
    cert, _ = pki.issue(*ca, cn="alice", orgs=("system:masters", "dev"), client=True)
    user = authn_x509.kapi_authenticate(request=_request(cert), app=_app())
    assert user == UserInfo(name="alice", groups=("system:masters", "dev"))


def test_no_certificate_is_not_ours() -> None:
    assert authn_x509.kapi_authenticate(request=_request(None), app=_app()) is None


def test_certificate_without_eku_is_accepted(ca: tuple[x509.Certificate, pki.PrivateKey]) -> None:
    cert, _ = pki.issue(*ca, cn="plain")
    assert authn_x509.kapi_authenticate(request=_request(cert), app=_app()) == UserInfo(name="plain")


def _no_cn(ca: tuple[x509.Certificate, pki.PrivateKey]) -> x509.Certificate:
    key = pki.generate_key()
    now = datetime.datetime.now(datetime.UTC)
    name = x509.Name([x509.NameAttribute(x509.NameOID.ORGANIZATION_NAME, "system:masters")])
    return (x509.CertificateBuilder().subject_name(name).issuer_name(ca[0].subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now)
            .not_valid_after(now + datetime.timedelta(days=1)).sign(ca[1], hashes.SHA256()))


@pytest.mark.parametrize(("make", "why"), [
    (lambda ca: pki.issue(*ca, cn="srv", server=True)[0], "clientAuth"),
    (lambda ca: pki.issue(*ca, cn="old", client=True, days=1,
                          now=datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=3))[0], "expired"),
    (lambda ca: pki.issue(*ca, cn="future", client=True,
                          now=datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=3))[0], "not valid yet"),
    (_no_cn, "common name"),
], ids=["server-only", "expired", "not-yet-valid", "no-cn"])
def test_rejections(ca: tuple[x509.Certificate, pki.PrivateKey], make, why: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(AuthenticationError, match=why) as info:
        authn_x509.kapi_authenticate(request=_request(make(ca)), app=_app())
    assert info.value.code == 401


def test_garbage_pem_is_rejected() -> None:
    request = AuthnRequest(method="GET", path="/", headers={}, client_cert=ClientCertificate(pem="junk"))
    with pytest.raises(AuthenticationError, match="cannot be parsed"):
        authn_x509.kapi_authenticate(request=request, app=_app())


def test_cache_is_per_app_and_bounded(ca: tuple[x509.Certificate, pki.PrivateKey]) -> None:
    app = _app(cache_size=2)
    certs = [pki.issue(*ca, cn=f"u{i}", client=True)[0] for i in range(3)]
    for cert in certs:
        authn_x509.kapi_authenticate(request=_request(cert), app=app)
    cache = app.plugin_state("authn_x509")["cache"]
    assert len(cache) == 2
    first = cache.get(pki.cert_pem(certs[2]).decode())
    assert cache.get(pki.cert_pem(certs[2]).decode()) is first
    assert "cache" not in _app().plugin_state("authn_x509")


def test_aliases() -> None:
    assert authn_x509.ALIASES == ("x509",)
