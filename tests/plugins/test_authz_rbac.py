"""authz_rbac: rule semantics, subject index, aggregation, escalation checks and bootstrap policy."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest

from kapi import Decision, RequestAttributes, UserInfo
from kapi_plugins import authz_rbac as rbac
from kapi_plugins.authz_rbac import Matcher, Policy, Rule
from tests.plugins.authz_support import binding, client, create, role, rule, running

WRITE = ["get", "list", "create", "update", "patch", "delete"]


def res(verb: str, resource: str, *, group: str = "", sub: str = "", name: str = "", ns: str = "",
        user: UserInfo | None = None) -> RequestAttributes:
    return RequestAttributes(verb=verb, path="", is_resource_request=True, api_group=group, resource=resource,
                             subresource=sub, name=name, namespace=ns, user=user or UserInfo("jane"))


def path(verb: str, url: str) -> RequestAttributes:
    return RequestAttributes(verb=verb, path=url, is_resource_request=False, user=UserInfo("jane"))


# ---------------------------------------------------------------------------------------------
# rules


@pytest.mark.parametrize(("policy", "attributes", "allowed"), [
    (rule(["get"], ["pods"]), res("get", "pods"), True),
    (rule(["get"], ["pods"]), res("list", "pods"), False),
    (rule(["*"], ["pods"]), res("delete", "pods"), True),
    (rule(["get"], ["pods"]), res("get", "pods", group="apps"), False),
    (rule(["get"], ["*"], groups=["*"]), res("get", "deployments", group="apps"), True),
    (rule(["get"], ["pods"]), res("get", "pods", sub="log"), False),
    (rule(["get"], ["pods/log"]), res("get", "pods", sub="log"), True),
    (rule(["get"], ["pods/log"]), res("get", "pods"), False),
    (rule(["get"], ["*/scale"], groups=["apps"]), res("get", "deployments", group="apps", sub="scale"), True),
    (rule(["get"], ["*/scale"], groups=["apps"]), res("get", "deployments", group="apps"), False),
    (rule(["get"], ["*"]), res("get", "pods", sub="status"), True),
    (rule(["get"], ["configmaps"], names=["a"]), res("get", "configmaps", name="a"), True),
    (rule(["get"], ["configmaps"], names=["a"]), res("get", "configmaps", name="b"), False),
    (rule(["list"], ["configmaps"], names=["a"]), res("list", "configmaps"), False),
    (rule(["get"], urls=["/healthz"]), path("get", "/healthz"), True),
    (rule(["get"], urls=["/healthz"]), path("get", "/healthz/etcd"), False),
    (rule(["get"], urls=["/healthz*"]), path("get", "/healthz/etcd"), True),
    (rule(["get"], urls=["/apis/*"]), path("get", "/apis/apps/v1"), True),
    (rule(["get"], urls=["/apis/*"]), path("get", "/apis"), False),
    (rule(["*"], urls=["*"]), path("post", "/anything"), True),
    (rule(["get"], urls=["*"]), res("get", "pods"), False),
    (rule(["get"], ["pods"]), path("get", "/api/v1/pods"), False),
])
def test_rule_allows(policy: dict[str, Any], attributes: RequestAttributes, allowed: bool) -> None:
    assert Matcher(Rule.parse(policy)).allows(attributes) is allowed


def test_rule_round_trip_and_compact_form() -> None:
    parsed = Rule.parse(rule(["get", "list"], ["pods"], names=["a"]))
    assert parsed.to_dict() == {"verbs": ["get", "list"], "apiGroups": [""], "resources": ["pods"],
                                "resourceNames": ["a"]}
    assert parsed.compact() == '{APIGroups:[""], Resources:["pods"], ResourceNames:["a"], Verbs:["get" "list"]}'
    assert Rule.parse("junk") == Rule()


@pytest.mark.parametrize(("owner", "wanted", "covered"), [
    ([rule(["*"], ["*"], groups=["*"])], rule(["get", "delete"], ["pods", "secrets"]), True),
    ([rule(["get"], ["pods"])], rule(["get", "list"], ["pods"]), False),
    ([rule(["get"], ["pods"]), rule(["list"], ["pods"])], rule(["get", "list"], ["pods"]), True),
    ([rule(["get"], ["*/scale"], groups=["apps"])], rule(["get"], ["deployments/scale"], groups=["apps"]), True),
    ([rule(["get"], ["deployments"], groups=["apps"])], rule(["get"], ["deployments/scale"], groups=["apps"]),
     False),
    ([rule(["get"], ["configmaps"])], rule(["get"], ["configmaps"], names=["a"]), True),
    ([rule(["get"], ["configmaps"], names=["a"])], rule(["get"], ["configmaps"]), False),
    ([rule(["get"], ["configmaps"], names=["a", "b"])], rule(["get"], ["configmaps"], names=["b"]), True),
    ([rule(["get"], urls=["/logs/*"])], rule(["get"], urls=["/logs/a", "/logs/b/c"]), True),
    ([rule(["get"], urls=["/logs"])], rule(["get"], urls=["/logs/a"]), False),
])
def test_covers(owner: list[dict[str, Any]], wanted: dict[str, Any], covered: bool) -> None:
    missing = rbac.covers(rbac.parse_rules(owner), [Rule.parse(wanted)])
    assert (not missing) is covered


def test_escalation_message_lists_compacted_missing_rules() -> None:
    missing = rbac.covers(rbac.parse_rules([rule(["get"], ["pods"])]),
                          [Rule.parse(rule(["get", "list", "create"], ["pods", "secrets"]))])
    message = rbac.escalation_message(UserInfo("jane", groups=("dev", "system:authenticated")), missing)
    assert message == ('user "jane" (groups=["dev" "system:authenticated"]) is attempting to grant RBAC permissions '
                       'not currently held:\n'
                       '{APIGroups:[""], Resources:["pods"], Verbs:["list" "create"]}\n'
                       '{APIGroups:[""], Resources:["secrets"], Verbs:["get" "list" "create"]}')


@pytest.mark.parametrize(("selector", "matched"), [
    ({"matchLabels": {"a": "1"}}, True),
    ({"matchLabels": {"a": "2"}}, False),
    ({"matchExpressions": [{"key": "a", "operator": "In", "values": ["1", "2"]}]}, True),
    ({"matchExpressions": [{"key": "a", "operator": "NotIn", "values": ["1"]}]}, False),
    ({"matchExpressions": [{"key": "b", "operator": "Exists"}]}, False),
    ({"matchExpressions": [{"key": "b", "operator": "DoesNotExist"}]}, True),
    ({"matchExpressions": [{"key": "a", "operator": "Bogus"}]}, False),
    ({}, True),
    (None, False),
])
def test_selector_matches(selector: Any, matched: bool) -> None:
    assert rbac.selector_matches(selector, {"a": "1"}) is matched


# ---------------------------------------------------------------------------------------------
# the policy index


def _policy() -> Policy:
    clusterroles = [
        role("reader", [rule(["get", "list"], ["pods"])]),
        role("secret-reader", [rule(["get"], ["secrets"])], labels={"agg": "yes"}),
        role("cm-reader", [rule(["get"], ["configmaps"])], labels={"agg": "yes", "agg2": "yes"}),
        role("agg", [], aggregationRule={"clusterRoleSelectors": [{"matchLabels": {"agg": "yes"}}]},
             labels={"top": "yes"}),
        role("top", [], aggregationRule={"clusterRoleSelectors": [{"matchLabels": {"top": "yes"}},
                                                                  {"matchLabels": {"agg2": "yes"}}]}),
    ]
    roles = [role("local", [rule(["create"], ["configmaps"])], namespace="dev")]
    cluster_bindings = [binding("b1", "reader", [("User", "jane")]),
                        binding("b2", "agg", [("Group", "ops")]),
                        binding("b3", "reader", [("ServiceAccount", "kube-system/robot")]),
                        binding("b4", "missing", [("User", "bob")])]
    bindings = [binding("r1", "local", [("Group", "dev")], namespace="dev"),
                binding("r2", "secret-reader", [("ServiceAccount", "bot")], namespace="dev", role_kind="ClusterRole"),
                binding("r3", "local", [("User", "carol")], namespace="prod")]
    return Policy(clusterroles, roles, cluster_bindings, bindings)


def test_bindings_by_user_group_and_service_account() -> None:
    policy = _policy()
    jane = UserInfo("jane", groups=("dev",))
    assert policy.rules_for(jane, "dev").allows(res("create", "configmaps"))
    assert not policy.rules_for(jane, "prod").allows(res("create", "configmaps"))
    assert policy.rules_for(jane, "prod").allows(res("list", "pods"))
    assert policy.rules_for(UserInfo("x", groups=("ops",)), "").allows(res("get", "secrets"))
    robot = UserInfo("system:serviceaccount:kube-system:robot")
    assert policy.rules_for(robot, "any").allows(res("get", "pods"))
    bot = UserInfo("system:serviceaccount:dev:bot")
    assert policy.rules_for(bot, "dev").allows(res("get", "secrets"))
    assert not policy.rules_for(UserInfo("system:serviceaccount:prod:bot"), "dev").allows(res("get", "secrets"))
    assert not policy.rules_for(UserInfo("carol"), "prod").allows(res("create", "configmaps"))  # Role not in prod
    assert policy.rules_for(UserInfo("carol"), "prod").errors == (f'role.{rbac.GROUP} "local" not found',)
    assert policy.rules_for(UserInfo("bob"), "").errors == (f'clusterrole.{rbac.GROUP} "missing" not found',)


def test_rule_sets_are_cached_per_user() -> None:
    policy = _policy()
    jane = UserInfo("jane", groups=("dev",))
    assert policy.rules_for(jane, "dev") is policy.rules_for(UserInfo("jane", groups=("dev",)), "dev")
    assert policy.rules_for(jane, "dev") is not policy.rules_for(jane, "prod")


def test_aggregation_is_computed_recursively_and_skips_itself() -> None:
    policy = _policy()
    assert policy.clusterrole_rules("agg") == (Rule.parse(rule(["get"], ["configmaps"])),
                                               Rule.parse(rule(["get"], ["secrets"])))
    assert set(policy.clusterrole_rules("top") or ()) == {Rule.parse(rule(["get"], ["configmaps"])),
                                                          Rule.parse(rule(["get"], ["secrets"]))}
    assert policy.clusterrole_rules("nope") is None
    looped = Policy([role("a", [], labels={"x": "1"}, aggregationRule={"clusterRoleSelectors": [
        {"matchLabels": {"x": "1"}}]})], (), (), ())
    assert looped.clusterrole_rules("a") == ()


# ---------------------------------------------------------------------------------------------
# bootstrap policy


def test_bootstrap_objects() -> None:
    objects = rbac.bootstrap_objects()
    roles = {o["metadata"]["name"]: o for o in objects["clusterroles"]}
    for name in ("cluster-admin", "admin", "edit", "view", "system:basic-user", "system:discovery",
                 "system:public-info-viewer", "system:node", "system:node-proxier", "system:kube-scheduler",
                 "system:kube-controller-manager", "system:volume-scheduler", "system:auth-delegator",
                 "system:controller:replicaset-controller", "system:controller:namespace-controller"):
        assert name in roles, name
    admin = Policy(objects["clusterroles"], (), (), ())
    admin_rules = admin.clusterrole_rules("admin") or ()
    assert Rule.parse(roles["admin"]["rules"][0]) in admin_rules  # stored filled in
    allows = rbac.RuleSet(admin_rules)
    assert allows.allows(res("create", "rolebindings", group=rbac.GROUP))
    assert allows.allows(res("get", "pods", sub="log")) and allows.allows(res("delete", "secrets"))
    assert not rbac.RuleSet(admin.clusterrole_rules("view") or ()).allows(res("get", "secrets"))
    assert roles["view"]["metadata"]["labels"][rbac.AGG_EDIT] == "true"
    bindings = {o["metadata"]["name"]: o for o in objects["clusterrolebindings"]}
    assert bindings["cluster-admin"]["subjects"] == [{"kind": "Group", "apiGroup": rbac.GROUP,
                                                      "name": "system:masters"}]
    assert {s["name"] for s in bindings["system:public-info-viewer"]["subjects"]} == {
        "system:authenticated", "system:unauthenticated"}
    assert "subjects" not in bindings["system:node"]
    assert bindings["system:controller:deployment-controller"]["subjects"] == [
        {"kind": "ServiceAccount", "name": "deployment-controller", "namespace": "kube-system"}]
    assert all(o["metadata"]["annotations"][rbac.AUTOUPDATE] == "true" for o in objects["roles"])


def test_reconcile_adds_back_missing_rules_and_subjects_unless_autoupdate_false() -> None:
    objects = rbac.bootstrap_objects()
    wanted = next(o for o in objects["clusterroles"] if o["metadata"]["name"] == "system:basic-user")
    trimmed = {**wanted, "rules": wanted["rules"][:1]}
    fixed = rbac.reconciled(trimmed, wanted)
    assert fixed is not None and rbac.parse_rules(fixed["rules"]) == rbac.parse_rules(wanted["rules"])
    assert rbac.reconciled(wanted, wanted) is None
    frozen = {**trimmed, "metadata": {**trimmed["metadata"], "annotations": {rbac.AUTOUPDATE: "false"}}}
    assert rbac.reconciled(frozen, wanted) is None
    crb = next(o for o in objects["clusterrolebindings"] if o["metadata"]["name"] == "system:public-info-viewer")
    fixed = rbac.reconciled({**crb, "subjects": crb["subjects"][:1]}, crb)
    assert fixed is not None and fixed["subjects"] == crb["subjects"]


# ---------------------------------------------------------------------------------------------
# in-process: the authorizer, admission and lifecycle through the API


async def test_hook_startup_creates_bootstrap_policy_only_when_enabled() -> None:
    async with running(authorizers=("RBAC",)) as app, client(app) as admin:
        listed = (await admin.get(f"/apis/{rbac.GROUP}/v1/clusterroles")).json()["items"]
        names = {o["metadata"]["name"] for o in listed}
        assert {"cluster-admin", "admin", "system:public-info-viewer"} <= names
        shown = (await admin.get(f"/apis/{rbac.GROUP}/v1/clusterroles/admin")).json()
        assert shown["rules"] and shown["aggregationRule"]
        roles = (await admin.get(f"/apis/{rbac.GROUP}/v1/namespaces/kube-system/roles")).json()["items"]
        assert "extension-apiserver-authentication-reader" in {o["metadata"]["name"] for o in roles}
        assert any(impl.plugin == "authz_rbac" for impl in app.chains.validate)  # ALWAYS_ADMIT
        assert app.chains.admission_names == ()
    async with running(authorizers=("AlwaysAllow",)) as app, client(app) as admin:
        assert (await admin.get(f"/apis/{rbac.GROUP}/v1/clusterroles")).json()["items"] == []
        assert not any(impl.plugin == "authz_rbac" for impl in app.chains.validate)


async def test_hook_authorize_grants_only_what_is_bound() -> None:
    async with running(authorizers=("RBAC",)) as app, client(app) as admin, client(app, "jane|dev") as jane:
        assert (await jane.get("/api/v1/namespaces/default/pods")).status_code == 403
        assert (await jane.get("/api")).status_code == 200  # system:discovery
        assert (await jane.get("/version")).status_code == 200  # system:public-info-viewer
        assert (await create(admin, role("pod-reader", [rule(["get", "list"], ["pods"])], "default"))).status_code \
            == 201
        assert (await create(admin, binding("devs", "pod-reader", [("Group", "dev")], "default"), app)).status_code \
            == 201
        assert (await jane.get("/api/v1/namespaces/default/pods")).status_code == 200
        assert (await jane.get("/api/v1/namespaces/kube-system/pods")).status_code == 403
        assert (await jane.post("/api/v1/namespaces/default/pods", json={})).status_code == 403
        await admin.delete(f"/apis/{rbac.GROUP}/v1/namespaces/default/rolebindings/devs")
        await app.cache.sync()
        assert (await jane.get("/api/v1/namespaces/default/pods")).status_code == 403


def test_hook_authorize_before_startup_and_for_masters() -> None:
    from types import SimpleNamespace

    app: Any = SimpleNamespace(plugin_state=lambda name: {})
    assert rbac.kapi_authorize(attributes=res("get", "pods"), app=app) is None
    masters = res("delete", "nodes", user=UserInfo("root", groups=("system:masters",)))
    assert rbac.kapi_authorize(attributes=masters, app=app) is Decision.ALLOW


async def _jane_may_manage_rbac(admin: Any, app: Any, extra: list[dict[str, Any]] | None = None) -> None:
    # explicit verbs: "*" would include escalate and bind
    rules = [rule(WRITE, ["roles", "rolebindings"], groups=[rbac.GROUP]), rule(["get", "list"], ["pods"]),
             *(extra or [])]
    assert (await create(admin, role("rbac-manager", rules, "dev"))).status_code == 201
    assert (await create(admin, binding("jane-manages", "rbac-manager", [("User", "jane")], "dev"), app)) \
        .status_code == 201


async def test_hook_validate_admission_refuses_role_escalation() -> None:
    async with running(authorizers=("RBAC",)) as app, client(app) as admin, client(app, "jane|dev") as jane:
        await _jane_may_manage_rbac(admin, app)
        ok = await create(jane, role("sub", [rule(["get"], ["pods"])], "dev"))
        assert ok.status_code == 201, ok.text
        refused = await create(jane, role("more", [rule(["get"], ["pods"]), rule(["get", "create"], ["secrets"])],
                                          "dev"))
        assert refused.status_code == 403
        status = refused.json()
        assert status["reason"] == "Forbidden" and status["details"]["kind"] == "roles"
        assert status["message"] == (
            f'roles.{rbac.GROUP} "more" is forbidden: user "jane" (groups=["dev" "system:authenticated"]) is '
            f'attempting to grant RBAC permissions not currently held:\n'
            f'{{APIGroups:[""], Resources:["secrets"], Verbs:["get" "create"]}}')
        # updating a role to more than jane holds is refused too; a label-only change of a held role is fine
        current = (await jane.get(f"/apis/{rbac.GROUP}/v1/namespaces/dev/roles/sub")).json()
        current["rules"].append(rule(["delete"], ["pods"]))
        assert (await jane.put(f"/apis/{rbac.GROUP}/v1/namespaces/dev/roles/sub", json=current)).status_code == 403
        # with the escalate verb she may
        assert (await create(admin, role("escalator", [rule(["escalate"], ["roles"], groups=[rbac.GROUP])], "dev"))) \
            .status_code == 201
        await create(admin, binding("jane-escalates", "escalator", [("User", "jane")], "dev"), app)
        assert (await create(jane, role("more", [rule(["*"], ["secrets"])], "dev"))).status_code == 201


async def test_hook_validate_admission_refuses_binding_escalation() -> None:
    async with running(authorizers=("RBAC",)) as app, client(app) as admin, client(app, "jane|dev") as jane:
        await _jane_may_manage_rbac(admin, app)
        refused = await create(jane, binding("jane-edit", "edit", [("User", "jane")], "dev", role_kind="ClusterRole"))
        assert refused.status_code == 403 and "not currently held" in refused.json()["message"]
        missing = await create(jane, binding("x", "nope", [("User", "jane")], "dev"))
        assert missing.status_code == 403 and f'roles.{rbac.GROUP} "nope" not found' in missing.json()["message"]
        # a role she holds entirely may be bound
        await create(jane, role("pods", [rule(["get"], ["pods"])], "dev"), app)
        assert (await create(jane, binding("bob-pods", "pods", [("User", "bob")], "dev"))).status_code == 201
        # bind on the role allows binding what she does not hold
        await create(admin, role("binder", [rule(["bind"], ["clusterroles"], groups=[rbac.GROUP], names=["edit"])],
                                 "dev"))
        await create(admin, binding("jane-binds", "binder", [("User", "jane")], "dev"), app)
        ok = await create(jane, binding("jane-edit", "edit", [("User", "bob")], "dev", role_kind="ClusterRole"))
        assert ok.status_code == 201, ok.text


async def test_aggregation_rule_needs_cluster_admin_powers() -> None:
    async with running(authorizers=("RBAC",)) as app, client(app) as admin, client(app, "jane|dev") as jane:
        rules = [rule(WRITE, ["clusterroles"], groups=[rbac.GROUP]), rule(["get"], ["pods"])]
        await create(admin, role("cr-manager", rules))
        await create(admin, binding("jane-cr", "cr-manager", [("User", "jane")]), app)
        assert (await create(jane, role("plain", [rule(["get"], ["pods"])]))).status_code == 201
        aggregated = role("mine", [], aggregationRule={"clusterRoleSelectors": [{"matchLabels": {"x": "y"}}]})
        refused = await create(jane, aggregated)
        assert refused.status_code == 403
        assert refused.json()["message"].endswith("must have cluster-admin privileges to use the aggregationRule")
        assert (await create(admin, aggregated)).status_code == 201


async def test_aggregated_roles_are_kept_filled_in_storage() -> None:
    async with running(authorizers=("RBAC",)) as app, client(app) as admin, client(app, "jane|dev") as jane:
        extension = role("widgets-view", [rule(["get", "list"], ["widgets"], groups=["example.com"])],
                         labels={rbac.AGG_VIEW: "true"})
        assert (await create(admin, extension)).status_code == 201
        await create(admin, binding("jane-admin", "admin", [("User", "jane")], "dev", role_kind="ClusterRole"), app)
        # the authorizer sees the aggregated rule at once...
        assert (await jane.get("/apis/example.com/v1/namespaces/dev/widgets")).status_code != 403
        # ...and the controller writes it into admin, edit and view
        wanted = rule(["get", "list"], ["widgets"], groups=["example.com"])
        for _ in range(200):
            shown = {name: (await admin.get(f"/apis/{rbac.GROUP}/v1/clusterroles/{name}")).json()["rules"]
                     for name in ("admin", "edit", "view")}
            if all(wanted in rules for rules in shown.values()):
                break
            await asyncio.sleep(0.01)
        else:
            raise AssertionError(f"aggregated roles were not updated: {orjson.dumps(shown)[:200]!r}")


async def test_rules_for_lists_bound_rules() -> None:
    async with running(authorizers=("RBAC",)) as app, client(app) as admin:
        await create(admin, role("cm", [rule(["get"], ["configmaps"], names=["a"])], "dev"))
        await create(admin, binding("b", "cm", [("User", "jane")], "dev"), app)
        answer = rbac.rules_for(UserInfo("jane", groups=("system:authenticated",)), "dev", app)
        assert {"verbs": ["get"], "apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["a"]} \
            in answer["resourceRules"]
        assert {"verbs": ["get"], "nonResourceURLs": ["/healthz", "/livez", "/readyz", "/version", "/version/"]} \
            in answer["nonResourceRules"]
        assert answer["incomplete"] is False and "evaluationError" not in answer


async def test_restart_keeps_existing_policy(tmp_path: Any) -> None:
    async with running(authorizers=("RBAC",), storage_backend="sqlite", data_dir=str(tmp_path)) as app, \
            client(app) as admin:
        before = (await admin.get(f"/apis/{rbac.GROUP}/v1/clusterroles/view")).json()["metadata"]
    async with running(authorizers=("RBAC",), storage_backend="sqlite", data_dir=str(tmp_path)) as app, \
            client(app) as admin:
        after = (await admin.get(f"/apis/{rbac.GROUP}/v1/clusterroles/view")).json()["metadata"]
    assert before["uid"] == after["uid"] and before["resourceVersion"] == after["resourceVersion"]
