"""authz_abac: kube's ABAC policy file (v1beta1 and legacy lines) and its matching rules."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from kapi import Decision, RequestAttributes, UserInfo
from kapi_plugins import authz_abac as abac
from kapi_plugins.authz_abac import Policy, PolicyFileError
from tests.plugins.authz_support import client, running

V1 = '{"apiVersion": "abac.authorization.kubernetes.io/v1beta1", "kind": "Policy", "spec": %s}'
FILE = "\n".join([
    "# admins",
    V1 % '{"user": "alice", "namespace": "*", "resource": "*", "apiGroup": "*", "nonResourcePath": "*"}',
    "",
    V1 % '{"group": "dev", "namespace": "dev", "resource": "pods", "apiGroup": "", "readonly": true}',
    V1 % '{"user": "*", "nonResourcePath": "/version", "readonly": true}',
    V1 % '{"user": "bob", "namespace": "dev", "resource": "*", "apiGroup": "apps"}',
    V1 % '{"group": "system:unauthenticated", "nonResourcePath": "/healthz*", "readonly": true}',
    '{"user": "legacy", "readonly": true}',
])


def req(verb: str, resource: str, *, user: UserInfo, ns: str = "", group: str = "") -> RequestAttributes:
    return RequestAttributes(verb=verb, path="", is_resource_request=True, api_group=group, resource=resource,
                             namespace=ns, user=user)


def url(verb: str, path: str, user: UserInfo) -> RequestAttributes:
    return RequestAttributes(verb=verb, path=path, is_resource_request=False, user=user)


ALICE = UserInfo("alice", groups=("system:authenticated",))
JANE = UserInfo("jane", groups=("dev", "system:authenticated"))
BOB = UserInfo("bob", groups=("system:authenticated",))
ANON = UserInfo("system:anonymous", groups=("system:unauthenticated",))
LEGACY = UserInfo("legacy", groups=("system:authenticated",))


@pytest.mark.parametrize(("attributes", "allowed"), [
    (req("delete", "nodes", user=ALICE), True),
    (url("post", "/anything", ALICE), True),
    (req("list", "pods", user=JANE, ns="dev"), True),
    (req("create", "pods", user=JANE, ns="dev"), False),
    (req("list", "pods", user=JANE, ns="prod"), False),
    (req("list", "deployments", user=JANE, ns="dev", group="apps"), False),
    (url("get", "/version", JANE), True),
    (url("get", "/version", ANON), False),
    (url("get", "/healthz/etcd", ANON), True),
    (url("post", "/healthz", ANON), False),
    (req("create", "deployments", user=BOB, ns="dev", group="apps"), True),
    (req("create", "pods", user=BOB, ns="dev"), False),
    (req("get", "secrets", user=LEGACY, ns="any"), True),
    (url("get", "/api", LEGACY), True),
    (req("create", "secrets", user=LEGACY, ns="any"), False),
])
def test_matching(tmp_path: Path, attributes: RequestAttributes, allowed: bool) -> None:
    (tmp_path / "policy.jsonl").write_text(FILE)
    policies = abac.load_policies(tmp_path / "policy.jsonl")
    assert any(p.matches(attributes) for p in policies) is allowed


def test_conversions() -> None:
    assert abac.parse_line({"user": "*"}, "x") == Policy(group="system:authenticated", api_group="*", resource="*",
                                                         namespace="*", non_resource_path="*")
    assert abac.parse_line({"user": "u", "namespace": "ns"}, "x") == Policy(user="u", api_group="*", resource="*",
                                                                             namespace="ns")
    v1 = abac.parse_line({"apiVersion": abac.API_VERSION, "kind": "Policy", "spec": {"group": "*"}}, "x")
    assert v1 == Policy(group="system:authenticated")
    assert not Policy().subject_matches(ALICE)


@pytest.mark.parametrize(("text", "why"), [
    ('{"apiVersion": "v2", "kind": "Policy", "spec": {}}', "expected apiVersion"),
    (V1 % '{"user": 3}', "user must be a string"),
    (V1 % '{"user": "a", "readonly": "yes"}', "readonly must be true or false"),
    ('{"apiVersion": "abac.authorization.kubernetes.io/v1beta1", "kind": "Policy"}', "spec is required"),
    ("{nope", "not valid JSON"),
    ("[1]", "expected a JSON object"),
])
def test_bad_lines_name_file_and_line(tmp_path: Path, text: str, why: str) -> None:
    path = tmp_path / "policy.jsonl"
    path.write_text(f"# first\n{text}\n")
    with pytest.raises(PolicyFileError, match=why) as info:
        abac.load_policies(path)
    assert f"{path}, line 2" in str(info.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(PolicyFileError, match="cannot read the policy file"):
        abac.load_policies(tmp_path / "nope")


def test_hook_add_options_and_read_options() -> None:
    parser = argparse.ArgumentParser()
    abac.kapi_add_options(parser=parser)
    assert abac.kapi_read_options(args=parser.parse_args(["--authorization-policy-file", "/p"])) == \
        {"policy_file": "/p"}
    assert abac.kapi_read_options(args=parser.parse_args([])) is None


async def test_through_the_api(tmp_path: Path) -> None:
    (tmp_path / "policy.jsonl").write_text(FILE)
    options = {"authz_abac": {"policy_file": str(tmp_path / "policy.jsonl")}}
    async with running(authorizers=("ABAC",), plugin_options=options) as app, client(app, "jane|dev") as jane:
        assert (await jane.get("/api/v1/namespaces/dev/pods")).status_code == 200
        assert (await jane.get("/api/v1/namespaces/prod/pods")).status_code == 403
        assert abac.kapi_authorize(attributes=req("get", "pods", user=JANE, ns="dev"), app=app) is Decision.ALLOW
        rules = abac.rules_for(JANE, "dev", app)
        assert rules["resourceRules"] == [{"verbs": ["get", "list", "watch"], "apiGroups": [""],
                                           "resources": ["pods"]}]
        # as kube's RulesFor: a policy is listed only when its namespace is "*" or the one asked for
        assert rules["nonResourceRules"] == []
        assert abac.rules_for(ALICE, "x", app)["nonResourceRules"] == [{"verbs": ["*"], "nonResourceURLs": ["*"]}]


async def test_hook_startup_needs_a_policy_file() -> None:
    with pytest.raises(RuntimeError, match="needs --authorization-policy-file"):
        async with running(authorizers=("ABAC",)):
            pass
    async with running(authorizers=("AlwaysAllow",)) as app:  # not enabled: nothing loaded, no error
        assert abac.kapi_authorize(attributes=req("get", "pods", user=ALICE), app=app) is None
