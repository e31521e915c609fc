"""authn_anonymous: system:anonymous only when anonymous auth is on."""

from __future__ import annotations

from collections import defaultdict
from types import SimpleNamespace

from kapi import ANONYMOUS, UNAUTHENTICATED, Config
from kapi_plugins import authn_anonymous


def test_hook_kapi_authenticate_when_enabled() -> None:
    app = SimpleNamespace(config=Config(anonymous_auth=True), plugin_state=defaultdict(dict).__getitem__)
    user = authn_anonymous.kapi_authenticate(app=app)
    assert user is not None
    assert (user.name, user.groups) == (ANONYMOUS, (UNAUTHENTICATED,))


def test_disabled_means_no_opinion() -> None:
    app = SimpleNamespace(config=Config(anonymous_auth=False), plugin_state=defaultdict(dict).__getitem__)
    assert authn_anonymous.kapi_authenticate(app=app) is None


def test_aliases() -> None:
    assert authn_anonymous.ALIASES == ("anonymous",)
