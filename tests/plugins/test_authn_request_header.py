"""authn_request_header: users named by a trusted front proxy's headers."""

from __future__ import annotations

import argparse
import datetime
from collections import defaultdict
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from cryptography import x509

from kapi import AuthnRequest, ClientCertificate, Config, UserInfo
from kapi_certs import pki
from kapi_plugins import authn_request_header as rh

HEADERS = {"x-remote-user": "alice", "x-remote-group": "dev, ops", "x-remote-extra-scopes": "read,write",
           "x-remote-extra-acme.com%2fproject": "p1", "authorization": "Bearer ignored"}


@pytest.fixture(scope="module")
def cas() -> SimpleNamespace:
    return SimpleNamespace(proxy=pki.make_ca("front-proxy-ca"), cluster=pki.make_ca("kubernetes"))


@pytest.fixture
def ca_file(tmp_path: Path, cas: SimpleNamespace) -> Path:
    path = tmp_path / "front-proxy-ca.crt"
    path.write_bytes(pki.cert_pem(cas.proxy[0]))
    return path


def _app(**options: Any) -> SimpleNamespace:
    return SimpleNamespace(config=Config(plugin_options={rh.PLUGIN_NAME: options}),
                           plugin_state=defaultdict(dict).__getitem__)


def _request(cert: x509.Certificate | None, headers: dict[str, str] | None = None) -> AuthnRequest:
    client = ClientCertificate(pem=pki.cert_pem(cert).decode()) if cert is not None else None
    return AuthnRequest(method="GET", path="/api", headers=dict(HEADERS if headers is None else headers),
                        client_cert=client)


def test_hook_kapi_authenticate(ca_file: Path, cas: SimpleNamespace) -> None:
    app = _app(client_ca_file=str(ca_file), allowed_names="front-proxy-client")
    proxy, _ = pki.issue(*cas.proxy, cn="front-proxy-client", client=True)
    user = rh.kapi_authenticate(request=_request(proxy), app=app)
    assert user == UserInfo(name="alice", groups=("dev", "ops"),
                            extra={"scopes": ("read", "write"), "acme.com/project": ("p1",)})


@pytest.mark.parametrize(("make", "headers"), [
    (lambda cas: None, None),
    (lambda cas: pki.issue(*cas.cluster, cn="front-proxy-client", client=True)[0], None),
    (lambda cas: pki.issue(*pki.make_ca("front-proxy-ca"), cn="front-proxy-client", client=True)[0], None),
    (lambda cas: pki.issue(*cas.proxy, cn="intruder", client=True)[0], None),
    (lambda cas: pki.issue(*cas.proxy, cn="front-proxy-client", server=True)[0], None),
    (lambda cas: pki.issue(*cas.proxy, cn="front-proxy-client", client=True, days=1,
                           now=datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=3))[0], None),
    (lambda cas: pki.issue(*cas.proxy, cn="front-proxy-client", client=True)[0], {"x-remote-group": "dev"}),
], ids=["no-cert", "cluster-ca", "forged-ca", "not-allowed", "server-only", "expired", "no-username"])
def test_not_ours(ca_file: Path, cas: SimpleNamespace, make: Any, headers: dict[str, str] | None) -> None:
    app = _app(client_ca_file=str(ca_file), allowed_names=["front-proxy-client"])
    assert rh.kapi_authenticate(request=_request(make(cas), headers), app=app) is None


def test_any_name_allowed_and_custom_headers(ca_file: Path, cas: SimpleNamespace) -> None:
    app = _app(client_ca_file=str(ca_file), username_headers="X-User,X-Remote-User", group_headers="X-Groups",
               extra_headers_prefix="X-Extra-", uid_headers="X-Uid")
    proxy, _ = pki.issue(*cas.proxy, cn="any-proxy", client=True)
    headers = {"x-remote-user": "bob", "x-groups": "g1", "x-extra-team": "a", "x-uid": "7"}
    user = rh.kapi_authenticate(request=_request(proxy, headers), app=app)
    assert user == UserInfo(name="bob", uid="7", groups=("g1",), extra={"team": ("a",)})


def test_garbage_certificate_and_no_configuration(ca_file: Path) -> None:
    request = AuthnRequest(method="GET", path="/", headers=HEADERS, client_cert=ClientCertificate(pem="junk"))
    assert rh.kapi_authenticate(request=request, app=_app(client_ca_file=str(ca_file))) is None
    assert rh.kapi_authenticate(request=request, app=_app()) is None


def test_proxy_checks_are_cached(ca_file: Path, cas: SimpleNamespace, monkeypatch: pytest.MonkeyPatch) -> None:
    app = _app(client_ca_file=str(ca_file))
    proxy, _ = pki.issue(*cas.proxy, cn="front-proxy-client", client=True)
    rh.kapi_authenticate(request=_request(proxy), app=app)
    monkeypatch.setattr(rh, "proxy_of", lambda *a: pytest.fail("checked twice"))
    assert rh.kapi_authenticate(request=_request(proxy), app=app) is not None


def test_hook_kapi_startup_rejects_a_bad_ca_file(tmp_path: Path) -> None:
    (tmp_path / "bad.crt").write_text("nope")
    with pytest.raises(rh.RequestHeaderConfigError, match="no PEM certificate"):
        rh.kapi_startup(app=_app(client_ca_file=str(tmp_path / "bad.crt")))
    with pytest.raises(rh.RequestHeaderConfigError, match="cannot be read"):
        rh.kapi_startup(app=_app(client_ca_file=str(tmp_path / "missing.crt")))


def test_hook_kapi_add_options_and_read_options(ca_file: Path) -> None:
    parser = argparse.ArgumentParser()
    rh.kapi_add_options(parser=parser)
    assert rh.kapi_read_options(args=parser.parse_args([])) is None
    args = parser.parse_args(["--requestheader-client-ca-file", str(ca_file),
                              "--requestheader-allowed-names", "front-proxy-client,aggregator"])
    assert rh.kapi_read_options(args=args) == {
        "enabled": True, "client_ca_file": str(ca_file), "allowed_names": ["front-proxy-client", "aggregator"],
        "username_headers": ["X-Remote-User"], "group_headers": ["X-Remote-Group"],
        "extra_headers_prefix": ["X-Remote-Extra-"], "uid_headers": []}


def test_aliases() -> None:
    assert "request-header" in rh.ALIASES
