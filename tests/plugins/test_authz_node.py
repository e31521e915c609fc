"""authz_node: the pod graph, kubelets confined to their node, static node rules."""

from __future__ import annotations

from typing import Any

import pytest

from kapi import App, Decision, RequestAttributes, UserInfo
from kapi_plugins import authz_node as node
from tests.plugins.authz_support import client, running

KUBELET_1 = "system:node:n1|system:nodes"
N1 = UserInfo("system:node:n1", groups=("system:nodes", "system:authenticated"))


def pod(name: str, node_name: str = "", namespace: str = "default", **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"containers": [{"name": "c", "image": "busybox"}], **spec}
    if node_name:
        body["nodeName"] = node_name
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": namespace}, "spec": body}


def attrs(verb: str, resource: str, *, name: str = "", ns: str = "", sub: str = "", group: str = "",
          user: UserInfo = N1) -> RequestAttributes:
    return RequestAttributes(verb=verb, path="", is_resource_request=True, api_group=group, resource=resource,
                             subresource=sub, namespace=ns, name=name, user=user)


def test_pod_references() -> None:
    spec = pod("web", "n1", serviceAccountName="robot", imagePullSecrets=[{"name": "pull"}], volumes=[
        {"name": "a", "secret": {"secretName": "vol-secret"}}, {"name": "b", "configMap": {"name": "vol-cm"}},
        {"name": "c", "persistentVolumeClaim": {"claimName": "data"}}, {"name": "d", "ephemeral": {}},
        {"name": "e", "projected": {"sources": [{"secret": {"name": "proj-secret"}},
                                                {"configMap": {"name": "proj-cm"}}]}},
        {"name": "f", "csi": {"driver": "x", "nodePublishSecretRef": {"name": "csi-secret"}}},
        {"name": "g", "rbd": {"secretRef": {"name": "rbd-secret"}}}])
    spec["spec"]["containers"][0]["env"] = [
        {"name": "A", "valueFrom": {"secretKeyRef": {"name": "env-secret", "key": "k"}}},
        {"name": "B", "valueFrom": {"configMapKeyRef": {"name": "env-cm", "key": "k"}}}, {"name": "C", "value": "x"}]
    spec["spec"]["initContainers"] = [{"name": "i", "envFrom": [{"secretRef": {"name": "init-secret"}},
                                                                {"configMapRef": {"name": "init-cm"}}]}]
    assert node.pod_references(spec) == {
        ("serviceaccounts", "robot"), ("secrets", "pull"), ("secrets", "vol-secret"), ("configmaps", "vol-cm"),
        ("persistentvolumeclaims", "data"), ("persistentvolumeclaims", "web-d"), ("secrets", "proj-secret"),
        ("configmaps", "proj-cm"), ("secrets", "csi-secret"), ("secrets", "rbd-secret"), ("secrets", "env-secret"),
        ("configmaps", "env-cm"), ("secrets", "init-secret"), ("configmaps", "init-cm")}
    assert node.pod_references({"spec": None}) == frozenset()


@pytest.mark.parametrize(("user", "expected"), [
    (UserInfo("system:node:n1", groups=("system:nodes",)), "n1"),
    (UserInfo("kubelet", groups=("system:nodes",)), ""),
    (UserInfo("system:node:n1"), None),
])
def test_node_name(user: UserInfo, expected: str | None) -> None:
    assert node.node_name(user) == expected


def test_graph_counts_shared_references() -> None:
    graph = node.Graph()
    graph.put(pod("a", "n1", volumes=[{"name": "v", "secret": {"secretName": "s"}}]))
    graph.put(pod("b", "n1", volumes=[{"name": "v", "secret": {"secretName": "s"}}]))
    graph.put(pod("c", "", volumes=[{"name": "v", "secret": {"secretName": "unbound"}}]))
    assert graph.uses("n1", "secrets", "default", "s") and not graph.uses("n1", "secrets", "default", "unbound")
    graph.remove(("default", "a"))
    assert graph.uses("n1", "secrets", "default", "s")
    graph.put(pod("b", "n2", volumes=[{"name": "v", "secret": {"secretName": "s"}}]))  # moved
    assert not graph.uses("n1", "secrets", "default", "s") and graph.uses("n2", "secrets", "default", "s")
    assert graph.by_node == {"n2": {("default", "b")}}


async def _put_pods(app: App, *pods: dict[str, Any]) -> None:
    async with client(app) as admin:
        for item in pods:
            response = await admin.post(f"/api/v1/namespaces/{item['metadata']['namespace']}/pods", json=item)
            assert response.status_code == 201, response.text
    await app.cache.sync()


async def test_hook_authorize_confines_kubelets_to_their_pods_objects() -> None:
    async with running(authorizers=("Node", "RBAC")) as app:
        await _put_pods(app, pod("web", "n1", volumes=[{"name": "v", "secret": {"secretName": "s1"}},
                                                       {"name": "w", "configMap": {"name": "c1"}},
                                                       {"name": "x", "persistentVolumeClaim": {"claimName": "p1"}}],
                                 serviceAccountName="robot"),
                        pod("db", "n2", volumes=[{"name": "v", "secret": {"secretName": "s2"}}]))
        decide = node.kapi_authorize
        assert decide(attributes=attrs("get", "secrets", name="s1", ns="default"), app=app) is Decision.ALLOW
        assert decide(attributes=attrs("watch", "configmaps", name="c1", ns="default"), app=app) is Decision.ALLOW
        assert decide(attributes=attrs("get", "secrets", name="s2", ns="default"), app=app) is None
        assert decide(attributes=attrs("get", "secrets", name="s1", ns="other"), app=app) is None
        assert decide(attributes=attrs("list", "secrets", ns="default"), app=app) is None
        assert decide(attributes=attrs("update", "secrets", name="s1", ns="default"), app=app) is None
        assert decide(attributes=attrs("get", "persistentvolumeclaims", name="p1", ns="default"), app=app) \
            is Decision.ALLOW
        assert decide(attributes=attrs("create", "serviceaccounts", name="robot", ns="default", sub="token"),
                      app=app) is Decision.ALLOW
        assert decide(attributes=attrs("get", "serviceaccounts", name="robot", ns="default"), app=app) is None
        assert decide(attributes=attrs("get", "pods", name="web", ns="default"), app=app) is Decision.ALLOW
        assert decide(attributes=attrs("get", "pods", name="db", ns="default"), app=app) is None
        assert decide(attributes=attrs("patch", "pods", name="web", ns="default", sub="status"), app=app) \
            is Decision.ALLOW
        assert decide(attributes=attrs("update", "pods", name="db", ns="default", sub="status"), app=app) is None
        # the graph follows pod changes: deleting web removes its edges
        async with client(app) as admin:
            await admin.delete("/api/v1/namespaces/default/pods/web?gracePeriodSeconds=0")
        await app.cache.sync()
        assert decide(attributes=attrs("get", "secrets", name="s1", ns="default"), app=app) is None


def test_hook_authorize_nodes_leases_and_static_rules() -> None:
    from types import SimpleNamespace

    app: Any = SimpleNamespace(plugin_state=lambda name: {})
    decide = node.kapi_authorize
    cases = [
        (attrs("get", "nodes", name="n1"), Decision.ALLOW), (attrs("get", "nodes", name="n2"), None),
        (attrs("patch", "nodes", name="n1", sub="status"), Decision.ALLOW),
        (attrs("update", "nodes", name="n2", sub="status"), None), (attrs("delete", "nodes", name="n2"), None),
        (attrs("create", "nodes"), Decision.ALLOW), (attrs("list", "nodes"), Decision.ALLOW),
        (attrs("update", "leases", name="n1", ns="kube-node-lease", group="coordination.k8s.io"), Decision.ALLOW),
        (attrs("create", "leases", ns="kube-node-lease", group="coordination.k8s.io"), Decision.ALLOW),
        (attrs("update", "leases", name="n2", ns="kube-node-lease", group="coordination.k8s.io"), None),
        (attrs("get", "leases", name="n1", ns="kube-system", group="coordination.k8s.io"), None),
        (attrs("list", "leases", ns="kube-node-lease", group="coordination.k8s.io"), None),
        (attrs("create", "events", ns="default"), Decision.ALLOW), (attrs("list", "services"), Decision.ALLOW),
        (attrs("watch", "pods"), Decision.ALLOW), (attrs("create", "pods", ns="default"), Decision.ALLOW),
        (attrs("create", "pods", name="x", ns="default", sub="eviction"), Decision.ALLOW),
        (attrs("delete", "services", name="x", ns="default"), None), (attrs("get", "deployments", group="apps"), None),
        (RequestAttributes(verb="get", path="/healthz", is_resource_request=False, user=N1), None),
        (attrs("get", "nodes", name="n1", user=UserInfo("jane")), None),
        (attrs("get", "nodes", name="n1", user=UserInfo("weird", groups=("system:nodes",))), None),
    ]
    for attributes, expected in cases:
        assert decide(attributes=attributes, app=app) is expected, attributes


def test_rules_for_is_incomplete_for_nodes() -> None:
    assert node.rules_for(N1, "default", app=None)["incomplete"] is True  # type: ignore[arg-type]
    assert node.rules_for(UserInfo("jane"), "default", app=None) == {  # type: ignore[arg-type]
        "resourceRules": [], "nonResourceRules": [], "incomplete": False}


async def test_node_and_rbac_through_the_api() -> None:
    async with running(authorizers=("Node", "RBAC")) as app, client(app, KUBELET_1) as kubelet, \
            client(app) as admin:
        await admin.post("/api/v1/namespaces/default/secrets", json={"metadata": {"name": "s1"}, "data": {}})
        await admin.post("/api/v1/namespaces/default/secrets", json={"metadata": {"name": "s2"}, "data": {}})
        await _put_pods(app, pod("web", "n1", volumes=[{"name": "v", "secret": {"secretName": "s1"}}]),
                        pod("db", "n2", volumes=[{"name": "v", "secret": {"secretName": "s2"}}]))
        assert (await kubelet.get("/api/v1/namespaces/default/secrets/s1")).status_code == 200
        refused = await kubelet.get("/api/v1/namespaces/default/secrets/s2")
        assert refused.status_code == 403 and 'User "system:node:n1" cannot get resource "secrets"' in \
            refused.json()["message"]
        assert (await kubelet.get("/api/v1/pods?fieldSelector=spec.nodeName%3Dn1")).status_code == 200
        assert (await kubelet.get("/api")).status_code == 200  # RBAC's system:discovery
        assert (await kubelet.delete("/api/v1/namespaces/default/services/kubernetes")).status_code == 403


async def test_state_without_pods_resource() -> None:
    async with running(authorizers=("Node",)) as app:
        state = node._state(app)
        state.ready, state.pods = True, None
        assert node.kapi_authorize(attributes=attrs("get", "secrets", name="s", ns="d"), app=app) is None
        assert state.claim_volume("d", "c") == ""
