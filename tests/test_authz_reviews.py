"""The authorization.k8s.io review APIs: SelfSubjectAccessReview, SubjectAccessReview,
LocalSubjectAccessReview and SelfSubjectRulesReview, answered by the configured chain."""

from __future__ import annotations

from typing import Any

import httpx

import kapi
from kapi import Decision, RequestAttributes, hookimpl
from tests.plugins.authz_support import (
    IdentityAuthenticator,
    authz_plugins,
    binding,
    client,
    create,
    role,
    rule,
    running,
)

AUTHZ = "/apis/authorization.k8s.io/v1"


def access(kind: str, attributes: dict[str, Any], **spec: Any) -> dict[str, Any]:
    key = "nonResourceAttributes" if "path" in attributes else "resourceAttributes"
    return {"apiVersion": "authorization.k8s.io/v1", "kind": kind, "spec": {key: attributes, **spec}}


async def _jane_reads_pods(app: Any) -> None:
    async with client(app) as admin:
        await create(admin, role("pod-reader", [rule(["get", "list"], ["pods"])], "dev"))
        await create(admin, binding("jane", "pod-reader", [("User", "jane")], "dev"), app)


async def _status(c: httpx.AsyncClient, url: str, body: dict[str, Any]) -> dict[str, Any]:
    response = await c.post(url, json=body)
    assert response.status_code == 201, response.text
    assert response.json()["metadata"] == {"creationTimestamp": None} or "namespace" in response.json()["metadata"]
    return dict(response.json()["status"])


async def test_self_subject_access_review() -> None:
    async with running(authorizers=("RBAC",)) as app, client(app, "jane|dev") as jane:
        await _jane_reads_pods(app)
        url = f"{AUTHZ}/selfsubjectaccessreviews"
        kind = "SelfSubjectAccessReview"
        assert await _status(jane, url, access(kind, {"verb": "list", "resource": "pods", "namespace": "dev"})) == \
            {"allowed": True}
        assert await _status(jane, url, access(kind, {"verb": "delete", "resource": "pods", "namespace": "dev"})) \
            == {"allowed": False}
        assert await _status(jane, url, access(kind, {"verb": "get", "path": "/healthz"})) == {"allowed": True}
        invalid = await jane.post(url, json={"apiVersion": "authorization.k8s.io/v1", "kind": kind, "spec": {}})
        assert invalid.status_code == 422 and "exactly one of" in invalid.json()["message"]


async def test_subject_access_review_and_its_validation() -> None:
    async with running(authorizers=("RBAC",)) as app, client(app) as admin, client(app, "jane|dev") as jane:
        await _jane_reads_pods(app)
        url, kind = f"{AUTHZ}/subjectaccessreviews", "SubjectAccessReview"
        asked = access(kind, {"verb": "get", "resource": "pods", "namespace": "dev"}, user="jane")
        assert await _status(admin, url, asked) == {"allowed": True}
        other = access(kind, {"verb": "get", "resource": "pods", "namespace": "dev"}, user="bob", groups=["ops"])
        assert await _status(admin, url, other) == {"allowed": False}
        masters = access(kind, {"verb": "delete", "resource": "nodes"}, user="x", groups=["system:masters"])
        assert await _status(admin, url, masters) == {"allowed": True}
        nobody = await admin.post(url, json=access(kind, {"verb": "get", "resource": "pods"}))
        assert nobody.status_code == 422 and "at least one of user or group" in nobody.json()["message"]
        assert (await jane.post(url, json=asked)).status_code == 403  # needs create on subjectaccessreviews


async def test_local_subject_access_review() -> None:
    async with running(authorizers=("RBAC",)) as app, client(app) as admin:
        await _jane_reads_pods(app)
        url, kind = f"{AUTHZ}/namespaces/dev/localsubjectaccessreviews", "LocalSubjectAccessReview"
        asked = access(kind, {"verb": "list", "resource": "pods", "namespace": "dev"}, user="jane")
        response = await admin.post(url, json=asked)
        assert response.status_code == 201 and response.json()["status"] == {"allowed": True}
        assert response.json()["metadata"]["namespace"] == "dev"
        elsewhere = access(kind, {"verb": "list", "resource": "pods", "namespace": "prod"}, user="jane")
        refused = await admin.post(url, json=elsewhere)
        assert refused.status_code == 422 and "must match metadata.namespace" in refused.json()["message"]
        paths = await admin.post(url, json=access(kind, {"verb": "get", "path": "/x"}, user="jane"))
        assert paths.status_code == 422 and "disallowed on this kind of request" in paths.json()["message"]
        wrong = await admin.post(url, json={**asked, "metadata": {"namespace": "prod"}})
        assert wrong.status_code == 400


class Picky:
    """An authorizer that fails on widgets (its error shows in evaluationError) and has no opinion
    on anything else."""

    @hookimpl
    def kapi_authorize(self, attributes: RequestAttributes) -> Decision | None:
        if attributes.resource == "widgets":
            raise RuntimeError("broken")
        return None


async def test_denied_and_evaluation_errors() -> None:
    cfg = kapi.Config(storage_backend="memory", authenticators=("test-identity",),
                      authorizers=("picky", "RBAC", "AlwaysDeny"))
    app = kapi.create_app(cfg, plugins=[("test-identity", IdentityAuthenticator()), ("picky", Picky()),
                                        *authz_plugins()])
    await app.startup()
    try:
        async with client(app, "jane|dev") as jane:
            url = f"{AUTHZ}/selfsubjectaccessreviews"
            status = await _status(jane, url, access("SelfSubjectAccessReview", {"verb": "get", "resource": "pods"}))
            assert status == {"allowed": False, "denied": True}
            status = await _status(jane, url, access("SelfSubjectAccessReview", {"verb": "get",
                                                                                 "resource": "widgets"}))
            assert status["allowed"] is False and status["denied"] is True
            assert 'plugin "picky" failed' in status["evaluationError"]
    finally:
        await app.shutdown()


async def test_self_subject_rules_review() -> None:
    async with running(authorizers=("Node", "RBAC")) as app, client(app, "jane|dev") as jane:
        await _jane_reads_pods(app)
        url = f"{AUTHZ}/selfsubjectrulesreviews"
        body = {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectRulesReview", "spec": {"namespace": "dev"}}
        status = await _status(jane, url, body)
        assert {"verbs": ["get", "list"], "apiGroups": [""], "resources": ["pods"]} in status["resourceRules"]
        assert {"verbs": ["create"], "apiGroups": ["authorization.k8s.io"],
                "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"]} in status["resourceRules"]
        assert any("/api/*" in r["nonResourceURLs"] for r in status["nonResourceRules"])
        assert status["incomplete"] is False
        other = await _status(jane, url, {**body, "spec": {"namespace": "prod"}})
        assert {"verbs": ["get", "list"], "apiGroups": [""], "resources": ["pods"]} not in other["resourceRules"]
        missing = await jane.post(url, json={**body, "spec": {}})
        assert missing.status_code == 400 and missing.json()["message"] == "no namespace on request"


async def test_rules_review_of_always_allow_lists_everything() -> None:
    async with running(authorizers=("AlwaysAllow",)) as app, client(app, "jane|dev") as jane:
        body = {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectRulesReview", "spec": {"namespace": "a"}}
        status = await _status(jane, f"{AUTHZ}/selfsubjectrulesreviews", body)
        assert status["resourceRules"] == [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}]
        assert status["incomplete"] is False


async def test_rules_review_without_rules_for_is_incomplete() -> None:
    from kapi import Decision, hookimpl

    class Opaque:
        @hookimpl
        def kapi_authorize(self, attributes: RequestAttributes) -> Decision:
            return Decision.ALLOW

    async with running(authorizers=("opaque",), plugins=[("opaque", Opaque())]) as app, \
            client(app, "jane|dev") as jane:
        body = {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectRulesReview", "spec": {"namespace": "a"}}
        status = await _status(jane, f"{AUTHZ}/selfsubjectrulesreviews", body)
        assert status == {"resourceRules": [], "nonResourceRules": [], "incomplete": True}
