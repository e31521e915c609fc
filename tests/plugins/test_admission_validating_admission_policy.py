"""admission_validating_admission_policy: CEL validations, params, variables, Deny/Warn, failure policy."""

from __future__ import annotations

from typing import Any

import httpx

from kapi import App
from kapi_plugins import admission_validating_admission_policy as plugin
from tests.plugins.admission_fakes import create_namespace, running

BASE = "/apis/admissionregistration.k8s.io/v1"
DEPLOYMENTS = "/apis/apps/v1/namespaces/default/deployments"
RULES = {"resourceRules": [{"apiGroups": ["apps"], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"],
                            "resources": ["deployments"]}]}


def policy(name: str, *validations: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicy",
            "metadata": {"name": name}, "spec": {"matchConstraints": RULES, "validations": list(validations), **spec}}


def binding(name: str, policy_name: str, actions: list[str], **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicyBinding",
            "metadata": {"name": name}, "spec": {"policyName": policy_name, "validationActions": actions, **spec}}


def deployment(name: str, replicas: int, **labels: str) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "labels": labels},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "c", "image": "x"}]}}}}


async def install(app: App, client: httpx.AsyncClient, *objects: dict[str, Any]) -> None:
    for obj in objects:
        plural = "validatingadmissionpolicies" if obj["kind"] == "ValidatingAdmissionPolicy" else \
            "validatingadmissionpolicybindings"
        resp = await client.post(f"{BASE}/{plural}", json=obj)
        assert resp.status_code == 201, resp.text
    await app.cache.sync()


def test_aliases() -> None:
    assert plugin.ALIASES == ("ValidatingAdmissionPolicy",)


async def test_hook_kapi_validate_admission() -> None:
    async with running("ValidatingAdmissionPolicy") as (app, client):
        await install(app, client, policy("max-replicas", {"expression": "object.spec.replicas <= 5"},
                                          {"expression": "object.metadata.name.startsWith('ok')",
                                           "messageExpression": "'name ' + object.metadata.name + ' is not ok'",
                                           "reason": "Forbidden"}),
                      binding("max-replicas-binding", "max-replicas", ["Deny"]))
        resp = await client.post(DEPLOYMENTS, json=deployment("ok-big", 10))
        assert resp.status_code == 422
        assert resp.json()["message"] == ("ValidatingAdmissionPolicy 'max-replicas' with binding "
                                          "'max-replicas-binding' denied request: failed expression: "
                                          "object.spec.replicas <= 5")
        resp = await client.post(DEPLOYMENTS, json=deployment("bad", 1))
        assert resp.status_code == 403 and resp.json()["reason"] == "Forbidden"
        assert resp.json()["message"].endswith("denied request: name bad is not ok")
        assert (await client.post(DEPLOYMENTS, json=deployment("ok", 3))).status_code == 201
        # other resources are not matched
        cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "bad"}}
        assert (await client.post("/api/v1/namespaces/default/configmaps", json=cm)).status_code == 201


async def test_warn_params_variables_and_conditions() -> None:
    async with running("ValidatingAdmissionPolicy") as (app, client):
        await create_namespace(client, "limits")
        limits = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "limits", "labels": {"p": "1"}},
                  "data": {"max": "2"}}
        assert (await client.post("/api/v1/namespaces/limits/configmaps", json=limits)).status_code == 201
        await install(app, client, policy(
            "param", {"expression": "variables.replicas <= int(params.data.max)", "message": "too many"},
            paramKind={"apiVersion": "v1", "kind": "ConfigMap"},
            variables=[{"name": "replicas", "expression": "object.spec.replicas"}],
            matchConditions=[{"name": "not-exempt", "expression": "!has(object.metadata.labels.exempt)"}]),
            binding("param-warn", "param", ["Warn"], paramRef={"name": "limits", "namespace": "limits",
                                                               "parameterNotFoundAction": "Deny"}))
        resp = await client.post(DEPLOYMENTS, json=deployment("three", 3))
        assert resp.status_code == 201
        assert resp.headers["warning"] == ('299 - "Validation failed for ValidatingAdmissionPolicy \'param\' with '
                                           'binding \'param-warn\': too many"')
        resp = await client.post(DEPLOYMENTS, json=deployment("exempt", 3, exempt="yes"))
        assert "warning" not in resp.headers


async def test_missing_params_and_failure_policy() -> None:
    async with running("ValidatingAdmissionPolicy") as (app, client):
        config_maps = {"apiVersion": "v1", "kind": "ConfigMap"}
        await install(app, client, policy("needs-params", {"expression": "true"}, paramKind=config_maps),
                      binding("b1", "needs-params", ["Deny"], paramRef={"name": "absent",
                                                                       "parameterNotFoundAction": "Deny"}))
        resp = await client.post(DEPLOYMENTS, json=deployment("d", 1))
        assert resp.status_code == 422 and "no params found" in resp.json()["message"]
        assert (await client.delete(f"{BASE}/validatingadmissionpolicybindings/b1")).status_code == 200
        await install(app, client, policy("broken", {"expression": "object.spec.nope > 1"}, failurePolicy="Ignore"),
                      binding("b2", "broken", ["Deny"]),
                      policy("bad-syntax", {"expression": "1 +"}), binding("b3", "bad-syntax", ["Warn"]))
        resp = await client.post(DEPLOYMENTS, json=deployment("e", 1))
        assert resp.status_code == 201
        assert "compilation failed for '1 +'" in resp.headers["warning"]


async def test_policy_kinds_validation() -> None:
    async with running() as (_app, client):
        resp = await client.post(f"{BASE}/validatingadmissionpolicies", json=policy("empty"))
        assert resp.status_code == 422 and "validations or auditAnnotations" in resp.json()["message"]
        resp = await client.post(f"{BASE}/validatingadmissionpolicybindings", json=binding("b", "p", ["Deny", "Warn"]))
        assert resp.status_code == 422 and "must not contain both Deny and Warn" in resp.json()["message"]
        table = await client.get(f"{BASE}/validatingadmissionpolicies",
                                 headers={"accept": "application/json;as=Table;v=v1;g=meta.k8s.io"})
        assert [c["name"] for c in table.json()["columnDefinitions"]] == ["Name", "Validations", "ParamKind", "Age"]
