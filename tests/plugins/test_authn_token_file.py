"""authn_token_file: kube-apiserver's --token-auth-file CSV."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from types import SimpleNamespace

import pytest

from kapi import AuthnRequest, Config, UserInfo
from kapi_plugins import authn_token_file
from kapi_plugins.authn_token_file import TokenFileError

CSV = '''\
s3cret,alice,uid-1,"system:masters,dev"
other-token , bob , uid-2

,nobody,uid-3
onlyuser,carol,uid-4,
dup,first,u5
dup,second,u6,"g1"
'''


def _app(tmp_path: Path, text: str | None = CSV) -> SimpleNamespace:
    path = ""
    if text is not None:
        file = tmp_path / "tokens.csv"
        file.write_text(text)
        path = str(file)
    return SimpleNamespace(config=Config(token_auth_file=path), plugin_state=defaultdict(dict).__getitem__)


def _request(authorization: str | None) -> AuthnRequest:
    headers = {"authorization": authorization} if authorization is not None else {}
    return AuthnRequest(method="GET", path="/api", headers=headers)


def test_hook_kapi_startup_and_kapi_authenticate(tmp_path: Path) -> None:
    app = _app(tmp_path)
    authn_token_file.kapi_startup(app=app)
    assert authn_token_file.kapi_authenticate(request=_request("Bearer s3cret"), app=app) == \
        UserInfo(name="alice", uid="uid-1", groups=("system:masters", "dev"))
    assert authn_token_file.kapi_authenticate(request=_request("Bearer other-token"), app=app) == \
        UserInfo(name="bob", uid="uid-2")
    assert authn_token_file.kapi_authenticate(request=_request("bearer onlyuser"), app=app) == \
        UserInfo(name="carol", uid="uid-4")
    assert authn_token_file.kapi_authenticate(request=_request("Bearer dup"), app=app) == \
        UserInfo(name="second", uid="u6", groups=("g1",))


@pytest.mark.parametrize("authorization", [None, "Bearer wrong", "Bearer s3cre", "Basic czNjcmV0", "Bearer "])
def test_unknown_or_absent_tokens_are_not_ours(tmp_path: Path, authorization: str | None) -> None:
    app = _app(tmp_path)
    authn_token_file.kapi_startup(app=app)
    assert authn_token_file.kapi_authenticate(request=_request(authorization), app=app) is None


def test_no_file_configured(tmp_path: Path) -> None:
    app = _app(tmp_path, None)
    authn_token_file.kapi_startup(app=app)
    assert authn_token_file.kapi_authenticate(request=_request("Bearer s3cret"), app=app) is None


def test_before_startup_nothing_authenticates(tmp_path: Path) -> None:
    assert authn_token_file.kapi_authenticate(request=_request("Bearer s3cret"), app=_app(tmp_path)) is None


@pytest.mark.parametrize(("text", "line", "why"), [
    ("good,u,1\nhunter2,bob\n", 2, "at least 3 columns"),
    ("a,u,1\n\nb,,2\n", 3, "user name"),
    ('a,u,1\nb,"unterminated,2\n', 2, "malformed CSV"),
])
def test_malformed_file_names_file_and_line_not_token(tmp_path: Path, text: str, line: int, why: str) -> None:
    app = _app(tmp_path, text)
    with pytest.raises(TokenFileError, match=why) as info:
        authn_token_file.kapi_startup(app=app)
    message = str(info.value)
    assert f"line {line}" in message and "tokens.csv" in message
    assert "hunter2" not in message and '"unterminated' not in message


def test_unreadable_file(tmp_path: Path) -> None:
    app = SimpleNamespace(config=Config(token_auth_file=str(tmp_path / "missing.csv")),
                          plugin_state=defaultdict(dict).__getitem__)
    with pytest.raises(TokenFileError, match=r"missing\.csv"):
        authn_token_file.kapi_startup(app=app)


def test_aliases() -> None:
    assert authn_token_file.ALIASES == ("token-file",)
