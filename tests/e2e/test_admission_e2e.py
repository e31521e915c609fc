"""Admission end to end: a real kapi-apiserver with kube's default admission plugins (no flags), real
kubectl, and a real TLS webhook server started by the test."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import Kubectl, Server, serving
from tests.plugins.webhook_server import Hooks, webhook_server

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def admission_server(tmp_path_factory: pytest.TempPathFactory, hooks: Hooks) -> Iterator[Server]:
    """A server of its own: the webhook configurations here must not reach other tests. It starts
    after the webhook server and stops before it (its webhook client keeps connections open)."""
    with serving(tmp_path_factory.mktemp("kapi-admission")) as server:
        yield server


@pytest.fixture(scope="module")
def kubectl(admission_server: Server) -> Kubectl:
    return Kubectl.installed(admission_server.kubeconfig)


@pytest.fixture(scope="module")
def hooks(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hooks]:
    """The webhook server, on its own event loop in a thread (kubectl calls here are blocking)."""
    started = threading.Event()
    holder: dict[str, Any] = {}

    async def main() -> None:
        async with webhook_server(tmp_path_factory.mktemp("hooks")) as server:
            holder.update(hooks=server, stop=asyncio.Event(), loop=asyncio.get_running_loop())
            started.set()
            await holder["stop"].wait()

    thread = threading.Thread(target=asyncio.run, args=(main(),), daemon=True)
    thread.start()
    assert started.wait(15), "the webhook server did not start"
    try:
        yield holder["hooks"]
    finally:
        holder["loop"].call_soon_threadsafe(holder["stop"].set)
        thread.join(10)


def apply(kubectl: Kubectl, *objects: dict[str, Any], check: bool = True) -> Any:
    return kubectl.run("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List",
                                                              "items": list(objects)}), check=check)


def namespace(name: str, **labels: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}}


def pod(name: str, ns: str, **container: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": ns},
            "spec": {"containers": [{"name": "app", "image": "nginx:1.27", **container}]}}


def test_limit_range_defaults_and_default_plugins(kubectl: Kubectl, tmp_path: Path) -> None:
    limits = {"apiVersion": "v1", "kind": "LimitRange", "metadata": {"name": "defaults", "namespace": "lr"},
              "spec": {"limits": [{"type": "Container", "default": {"cpu": "500m", "memory": "128Mi"},
                                   "defaultRequest": {"cpu": "100m"}}]}}
    apply(kubectl, namespace("lr"), limits)
    apply(kubectl, pod("web", "lr"))
    shown = kubectl("get", "pod", "web", "-n", "lr", "-o", "yaml")
    assert "LimitRanger plugin set: cpu, memory request for container" in shown
    assert "requests:\n        cpu: 100m\n        memory: 128Mi" in shown
    spec = json.loads(kubectl("get", "pod", "web", "-n", "lr", "-o", "json"))["spec"]
    assert spec["containers"][0]["resources"] == {"limits": {"cpu": "500m", "memory": "128Mi"},
                                                  "requests": {"cpu": "100m", "memory": "128Mi"}}
    # the rest of kube's default set: service account and its token volume, tolerations, priority
    assert spec["serviceAccountName"] == "default"
    assert any(v["name"].startswith("kube-api-access-") for v in spec["volumes"])
    assert {t["key"] for t in spec["tolerations"]} == {"node.kubernetes.io/not-ready",
                                                       "node.kubernetes.io/unreachable"}
    assert spec["priority"] == 0
    assert "defaults" in kubectl("get", "limits", "-n", "lr")


def test_pod_security_restricted_namespace(kubectl: Kubectl) -> None:
    apply(kubectl, namespace("locked", **{"pod-security.kubernetes.io/enforce": "restricted"}),
          namespace("watched", **{"pod-security.kubernetes.io/warn": "baseline"}))
    refused = apply(kubectl, pod("root", "locked", securityContext={"privileged": True}), check=False)
    assert refused.returncode != 0
    assert 'violates PodSecurity "restricted:latest"' in refused.stderr
    assert 'privileged (container "app" must not set securityContext.privileged=true)' in refused.stderr
    warned = apply(kubectl, pod("root", "watched", securityContext={"privileged": True}))
    assert 'Warning: would violate PodSecurity "baseline:latest": privileged' in warned.stderr


def test_webhooks_mutate_and_reject(kubectl: Kubectl, hooks: Hooks) -> None:
    def hook(name: str, path: str) -> dict[str, Any]:
        return {"name": name, "admissionReviewVersions": ["v1"], "sideEffects": "None",
                "clientConfig": {"url": hooks.url + path, "caBundle": hooks.ca_bundle},
                "namespaceSelector": {"matchLabels": {"webhooks": "on"}},
                "rules": [{"operations": ["CREATE", "UPDATE"], "apiGroups": [""], "apiVersions": ["v1"],
                           "resources": ["configmaps", "pods"]}]}

    mutating = {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
                "metadata": {"name": "label"}, "webhooks": [hook("label.example.com", "/label")]}
    validating = {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
                  "metadata": {"name": "deny"}, "webhooks": [hook("deny.example.com", "/deny")]}
    apply(kubectl, namespace("hooked", webhooks="on"), mutating, validating)
    assert "label" in kubectl("get", "mutatingwebhookconfigurations")
    apply(kubectl, pod("mutated", "hooked"))
    labels = kubectl("get", "pod", "mutated", "-n", "hooked", "-o", "jsonpath={.metadata.labels}")
    assert json.loads(labels) == {"mutated": "yes"}
    bad = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "bad", "namespace": "hooked",
                                                                 "labels": {"deny": "yes"}}}
    refused = apply(kubectl, bad, check=False)
    assert refused.returncode != 0
    assert 'admission webhook "deny.example.com" denied the request: nope' in refused.stderr
    good = {**bad, "metadata": {"name": "good", "namespace": "hooked"}}
    assert "Warning: looked at it" in apply(kubectl, good).stderr
    reviewed = {r["request"]["name"] for r in hooks.reviews}
    assert {"mutated", "bad", "good"} <= reviewed


def test_resource_quota(kubectl: Kubectl) -> None:
    quota = {"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "two-pods", "namespace": "quota"},
             "spec": {"hard": {"pods": "2"}}}
    apply(kubectl, namespace("quota"), quota)
    apply(kubectl, pod("a", "quota"), pod("b", "quota"))
    refused = apply(kubectl, pod("c", "quota"), check=False)
    assert "exceeded quota: two-pods, requested: pods=1, used: pods=2, limited: pods=2" in refused.stderr
    assert "pods: 2/2" in kubectl("get", "quota", "-n", "quota")
