"""admission_pod_security: enforce/warn/audit by namespace labels, the PSS checks, label validation."""

from __future__ import annotations

from typing import Any

import pytest

from kapi.admissionkit import podsecurity
from kapi_plugins import admission_pod_security as plugin
from tests.plugins.admission_fakes import create_namespace, pod, running

RESTRICTED_OK = {"name": "app", "image": "x", "securityContext": {
    "allowPrivilegeEscalation": False, "runAsNonRoot": True, "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"}}}


def labels(**modes: str) -> dict[str, str]:
    return {f"pod-security.kubernetes.io/{mode}": level for mode, level in modes.items()}


def test_aliases() -> None:
    assert plugin.ALIASES == ("PodSecurity",)


async def test_hook_kapi_validate_admission() -> None:
    async with running("PodSecurity") as (_app, client):
        await create_namespace(client, "locked", labels(enforce="restricted"))
        resp = await client.post("/api/v1/namespaces/locked/pods", json=pod("web", {"name": "web", "image": "x"}))
        assert resp.status_code == 403
        assert resp.json()["message"] == (
            'pods "web" is forbidden: violates PodSecurity "restricted:latest": allowPrivilegeEscalation != false '
            '(container "web" must set securityContext.allowPrivilegeEscalation=false), unrestricted capabilities '
            '(container "web" must set securityContext.capabilities.drop=["ALL"]), runAsNonRoot != true (pod or '
            'container "web" must set securityContext.runAsNonRoot=true), seccompProfile (pod or container "web" must '
            'set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost")')
        assert (await client.post("/api/v1/namespaces/locked/pods", json=pod("ok", RESTRICTED_OK))).status_code == 201
        # labels and annotations changes of an admitted pod are not re-evaluated
        resp = await client.patch("/api/v1/namespaces/locked/pods/ok", json={"metadata": {"labels": {"a": "b"}}},
                                  headers={"content-type": "application/merge-patch+json"})
        assert resp.status_code == 200


async def test_warn_mode_adds_warning_header_for_pods_and_workloads() -> None:
    async with running("PodSecurity") as (_app, client):
        await create_namespace(client, "soft", labels(enforce="baseline", warn="restricted"))
        privileged = {"name": "p", "image": "x", "securityContext": {"privileged": True}}
        resp = await client.post("/api/v1/namespaces/soft/pods", json=pod("bad", privileged))
        assert resp.status_code == 403
        assert 'violates PodSecurity "baseline:latest": privileged (container "p" must not set ' \
               'securityContext.privileged=true)' in resp.json()["message"]
        resp = await client.post("/api/v1/namespaces/soft/pods", json=pod("meh"))
        assert resp.status_code == 201
        assert resp.headers["warning"].startswith('299 - "would violate PodSecurity \\"restricted:latest\\": '
                                                  'allowPrivilegeEscalation != false')
        deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
                      "spec": {"selector": {"matchLabels": {"a": "b"}},
                               "template": {"metadata": {"labels": {"a": "b"}},
                                            "spec": {"containers": [privileged]}}}}
        resp = await client.post("/apis/apps/v1/namespaces/soft/deployments", json=deployment)
        assert resp.status_code == 201  # workloads are never refused, only warned about
        assert 'would violate PodSecurity \\"restricted:latest\\"' in resp.headers["warning"]


async def test_namespace_labels() -> None:
    async with running("PodSecurity") as (_app, client):
        resp = await client.post("/api/v1/namespaces", json={"apiVersion": "v1", "kind": "Namespace", "metadata": {
            "name": "typo", "labels": labels(enforce="strict")}})
        assert resp.status_code == 422
        assert resp.json()["message"] == ('namespaces "typo" is invalid: metadata.labels[pod-security.kubernetes.io/'
                                          'enforce]: Invalid value: "strict": must be one of privileged, baseline, '
                                          'restricted')
        await create_namespace(client, "open")
        assert (await client.post("/api/v1/namespaces/open/pods", json=pod("root"))).status_code == 201
        strict = {"metadata": {"labels": labels(enforce="restricted")}}
        resp = await client.patch("/api/v1/namespaces/open", json=strict,
                                  headers={"content-type": "application/merge-patch+json"})
        assert resp.status_code == 200
        assert 'existing pods in namespace \\"open\\" violate the new PodSecurity enforce level' in \
            resp.headers["warning"]


async def test_exemptions() -> None:
    options = {plugin.PLUGIN_NAME: {"exempt_namespaces": "kube-system", "enforce": "restricted"}}
    async with running("PodSecurity", options=options) as (_app, client):
        assert (await client.post("/api/v1/namespaces/kube-system/pods", json=pod("sys"))).status_code == 201
        assert (await client.post("/api/v1/namespaces/default/pods", json=pod("user"))).status_code == 403


@pytest.mark.parametrize(("spec", "level", "reasons"), [
    ({"hostNetwork": True, "hostPID": True, "containers": [{"name": "a"}]}, "baseline",
     [("host namespaces", "hostNetwork=true, hostPID=true")]),
    ({"containers": [{"name": "a", "securityContext": {"capabilities": {"add": ["SYS_ADMIN", "CHOWN"]}}}]},
     "baseline", [("non-default capabilities",
                   'container "a" must not include "SYS_ADMIN" in securityContext.capabilities.add')]),
    ({"volumes": [{"name": "h", "hostPath": {"path": "/"}}], "containers": [{"name": "a"}]}, "baseline",
     [("hostPath volumes", 'volume "h"')]),
    ({"containers": [{"name": "a", "ports": [{"containerPort": 80, "hostPort": 80}]},
                     {"name": "b", "ports": [{"containerPort": 81, "hostPort": 8080}]}]}, "baseline",
     [("hostPort", 'containers "a", "b" use hostPorts 80, 8080')]),
    ({"securityContext": {"seccompProfile": {"type": "Unconfined"}, "sysctls": [{"name": "kernel.msgmax"}]},
      "containers": [{"name": "a"}]}, "baseline",
     [("seccompProfile", 'pod must not set securityContext.seccompProfile.type to "Unconfined"'),
      ("forbidden sysctls", "kernel.msgmax")]),
    ({"containers": [{"name": "a", "securityContext": {"procMount": "Unmasked"}}]}, "baseline",
     [("procMount", 'container "a" must not set securityContext.procMount to "Unmasked"')]),
    ({"securityContext": {"runAsUser": 0, "runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
      "volumes": [{"name": "n", "nfs": {"server": "s", "path": "/"}}],
      "containers": [{"name": "a", "securityContext": {"allowPrivilegeEscalation": False,
                                                       "capabilities": {"drop": ["ALL"], "add": ["SYS_TIME"]}}}]},
     "restricted", [("non-default capabilities",
                     'container "a" must not include "SYS_TIME" in securityContext.capabilities.add'),
                    ("unrestricted capabilities",
                     'container "a" must not include "SYS_TIME" in securityContext.capabilities.add'),
                    ("restricted volume types", 'volume "n" uses restricted volume type "nfs"'),
                    ("runAsUser=0", "pod must not set runAsUser=0")]),
])
def test_checks(spec: dict[str, Any], level: str, reasons: list[tuple[str, str]]) -> None:
    assert podsecurity.evaluate(level, {}, spec) == reasons


def test_privileged_allows_everything() -> None:
    assert podsecurity.evaluate("privileged", {}, {"hostNetwork": True}) == []
