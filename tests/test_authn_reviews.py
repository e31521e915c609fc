"""kapi.rest.authn_reviews: TokenReview runs the authenticator chain; SelfSubjectReview echoes the caller."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from kapi import APIError, App, AuthenticationError, AuthnRequest, UserInfo, hookimpl
from kapi.kinds.authn import authn_resources
from kapi.rest import authn_reviews
from kapi_plugins import authn_anonymous
from tests.plugins.authn_fakes import ctx_for, make_app, started


class Tokens:
    """A test authenticator: "good" is alice, "bad" is rejected, anything else is not its token."""

    @hookimpl
    def kapi_authenticate(self, request: AuthnRequest) -> UserInfo | None:
        token = request.bearer_token()
        if token == "bad":
            raise AuthenticationError("token revoked")
        return UserInfo(name="alice", uid="1", groups=("dev",), extra={"k": ("v",)}) if token == "good" else None


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[App]:
    plugins = [("tokens", Tokens()), ("authn_anonymous", authn_anonymous)]
    options = {"authn_service_account": {"api_audiences": "api,other"}}
    async with started(make_app(tmp_path, plugins, authenticators=("tokens", "anonymous"), anonymous=True,
                                options=options)) as running:
        yield running


async def review(app: App, spec: dict[str, Any]) -> dict[str, Any]:
    body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": spec}
    response = await authn_reviews.token_review(ctx_for(app, "POST", "/apis/authentication.k8s.io/v1/tokenreviews",
                                                        body))
    assert response.status_code == 201
    out = orjson.loads(response.body)
    assert out["kind"] == "TokenReview" and out["metadata"] == {"creationTimestamp": None}
    return dict(out["status"])


async def test_token_review(app: App) -> None:
    assert await review(app, {"token": "good"}) == {
        "authenticated": True, "audiences": ["api", "other"],
        "user": {"username": "alice", "uid": "1", "groups": ["dev", "system:authenticated"], "extra": {"k": ["v"]}}}
    assert await review(app, {"token": "unknown"}) == {"user": {}}  # anonymous does not count
    assert await review(app, {"token": "bad"}) == {"user": {}, "error": "token revoked"}


async def test_token_review_audiences(app: App) -> None:
    assert (await review(app, {"token": "good", "audiences": ["other", "vault"]}))["audiences"] == ["other"]
    assert await review(app, {"token": "good", "audiences": ["vault"]}) == {"user": {}}


async def test_token_review_needs_a_token(app: App) -> None:
    with pytest.raises(APIError, match="token is required") as info:
        await review(app, {})
    assert info.value.code == 400


async def test_self_subject_review(app: App) -> None:
    user = UserInfo(name="bob", groups=("g", "system:authenticated"))
    body = {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview",
            "metadata": {"creationTimestamp": None}, "status": {"userInfo": {}}}
    ctx = ctx_for(app, "POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews", body, user=user)
    response = await authn_reviews.self_subject_review(ctx)
    assert response.status_code == 201
    assert orjson.loads(response.body)["status"] == {"userInfo": {"username": "bob",
                                                                  "groups": ["g", "system:authenticated"]}}


def test_resources() -> None:
    types = {rt.kind: rt for rt in authn_resources()}
    assert set(types) == {"TokenReview", "SelfSubjectReview"}
    for rt in types.values():
        assert rt.group_version == "authentication.k8s.io/v1" and rt.verbs == ("create",) and not rt.namespaced
    assert set(authn_reviews.REVIEWS) == {"tokenreviews", "selfsubjectreviews"}
