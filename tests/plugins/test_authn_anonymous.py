"""authn_anonymous: system:anonymous only when anonymous auth is on and no credential was sent."""

from __future__ import annotations

from collections import defaultdict
from types import SimpleNamespace

from kapi import ANONYMOUS, UNAUTHENTICATED, AuthnRequest, Config
from kapi_plugins import authn_anonymous

NO_CREDENTIALS = AuthnRequest(method="GET", path="/api", headers={})


def _app(enabled: bool) -> SimpleNamespace:
    return SimpleNamespace(config=Config(anonymous_auth=enabled), plugin_state=defaultdict(dict).__getitem__)


def test_hook_kapi_authenticate_when_enabled() -> None:
    user = authn_anonymous.kapi_authenticate(request=NO_CREDENTIALS, app=_app(True))
    assert user is not None
    assert (user.name, user.groups) == (ANONYMOUS, (UNAUTHENTICATED,))


def test_disabled_means_no_opinion() -> None:
    assert authn_anonymous.kapi_authenticate(request=NO_CREDENTIALS, app=_app(False)) is None


def test_unrecognised_credentials_are_not_anonymous() -> None:
    bad = AuthnRequest(method="GET", path="/api", headers={"authorization": "Bearer nope"})
    assert authn_anonymous.kapi_authenticate(request=bad, app=_app(True)) is None


def test_aliases() -> None:
    assert authn_anonymous.ALIASES == ("anonymous",)
