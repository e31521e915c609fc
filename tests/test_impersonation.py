"""Impersonate-* headers: each part authorized with the impersonate verb, then the request runs as
the impersonated user."""

from __future__ import annotations

from typing import Any

import pytest

from kapi import errors
from kapi.impersonation import Request, plan, split_service_account
from kapi.types import UserInfo
from tests.plugins.authz_support import binding, client, create, role, rule, running

WHOAMI = "/apis/authentication.k8s.io/v1/selfsubjectreviews"
REVIEW = {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}


def test_plan_user_groups_extras_uid() -> None:
    requests, user = plan([("impersonate-user", "jane"), ("impersonate-group", "dev"),
                           ("impersonate-group", "ops"), ("impersonate-extra-scopes%2Fx", "read"),
                           ("impersonate-uid", "42")])
    assert requests == [Request("users", "jane"), Request("groups", "dev"), Request("groups", "ops"),
                        Request("userextras", "read", group="authentication.k8s.io", subresource="scopes/x"),
                        Request("uids", "42", group="authentication.k8s.io")]
    assert user == UserInfo("jane", uid="42", groups=("dev", "ops", "system:authenticated"),
                            extra={"scopes/x": ("read",)})


@pytest.mark.parametrize(("headers", "groups"), [
    ([("impersonate-user", "system:serviceaccount:ns:robot")],
     ("system:serviceaccounts", "system:serviceaccounts:ns", "system:authenticated")),
    ([("impersonate-user", "system:serviceaccount:ns:robot"), ("impersonate-group", "x")],
     ("x", "system:authenticated")),
    ([("impersonate-user", "jane"), ("impersonate-group", "system:unauthenticated")], ("system:unauthenticated",)),
    ([("impersonate-user", "system:anonymous")], ("system:unauthenticated",)),
    ([("impersonate-user", "jane")], ("system:authenticated",)),
])
def test_plan_groups(headers: list[tuple[str, str]], groups: tuple[str, ...]) -> None:
    assert plan(headers)[1].groups == groups  # type: ignore[union-attr]


def test_plan_service_account_request_and_errors() -> None:
    assert plan([("impersonate-user", "system:serviceaccount:ns:robot")])[0] == [
        Request("serviceaccounts", "robot", namespace="ns")]
    assert split_service_account("system:serviceaccount:a:b:c") is None
    assert split_service_account("system:serviceaccount:Bad:b") is None
    assert plan([]) == ([], None)
    assert plan([("impersonate-other", "x")]) == ([], None)
    with pytest.raises(errors.APIError) as info:
        plan([("impersonate-group", "dev")])
    assert info.value.code == 400


async def _whoami(c: Any, **headers: Any) -> Any:
    return await c.post(WHOAMI, json=REVIEW, headers=headers)


async def test_admin_acts_as_another_user() -> None:
    async with running(authorizers=("RBAC",)) as app, client(app) as admin:
        response = await admin.post(WHOAMI, json=REVIEW, headers=[("Impersonate-User", "jane"),
                                                                  ("Impersonate-Group", "dev"),
                                                                  ("Impersonate-Group", "qa")])
        assert response.status_code == 201, response.text
        assert response.json()["status"]["userInfo"] == {"username": "jane",
                                                         "groups": ["dev", "qa", "system:authenticated"]}
        # the request is authorized as jane: she may not list pods
        refused = await admin.get("/api/v1/namespaces/dev/pods", headers={"Impersonate-User": "jane"})
        assert refused.status_code == 403 and 'User "jane" cannot list' in refused.json()["message"]


async def test_impersonation_needs_the_impersonate_verb() -> None:
    async with running(authorizers=("RBAC",)) as app, client(app) as admin, client(app, "jane|dev") as jane:
        refused = await _whoami(jane, **{"Impersonate-User": "bob"})
        assert refused.status_code == 403
        assert refused.json()["message"] == ('users "bob" is forbidden: User "jane" cannot impersonate resource '
                                             '"users" in API group "" at the cluster scope')
        assert refused.json()["details"] == {"name": "bob", "kind": "users"}
        await create(admin, role("impersonate-bob", [rule(["impersonate"], ["users"], names=["bob"])]))
        await create(admin, binding("jane-as-bob", "impersonate-bob", [("User", "jane")]), app)
        allowed = await _whoami(jane, **{"Impersonate-User": "bob"})
        assert allowed.status_code == 201 and allowed.json()["status"]["userInfo"]["username"] == "bob"
        assert (await _whoami(jane, **{"Impersonate-User": "carol"})).status_code == 403
        group = await jane.post(WHOAMI, json=REVIEW, headers={"Impersonate-User": "bob", "Impersonate-Group": "x"})
        assert group.status_code == 403 and 'cannot impersonate resource "groups"' in group.json()["message"]
        sa = await _whoami(jane, **{"Impersonate-User": "system:serviceaccount:dev:robot"})
        assert sa.status_code == 403 and 'in the namespace "dev"' in sa.json()["message"]
        extra = await _whoami(jane, **{"Impersonate-User": "bob", "Impersonate-Extra-Scopes": "all"})
        assert extra.status_code == 403 and '"userextras/scopes" in API group "authentication.k8s.io"' in \
            extra.json()["message"]
        assert (await _whoami(jane, **{"Impersonate-Group": "x"})).status_code == 400
