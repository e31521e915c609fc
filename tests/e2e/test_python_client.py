"""The official ``kubernetes`` Python client, and raw HTTPS, against a real kapi-apiserver."""

from __future__ import annotations

import json
import ssl
import threading
from collections.abc import Iterator

import httpx
import pytest
from kubernetes import client, watch
from kubernetes.client.rest import ApiException

from tests.e2e.conftest import Server, kubeconfig_files

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def core(k8s: client.ApiClient) -> client.CoreV1Api:
    api = client.CoreV1Api(k8s)
    try:
        api.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="py")))
    except ApiException as exc:
        assert exc.status == 409
    return api


def tls_context(server: Server, *, client_cert: bool = True) -> ssl.SSLContext:
    """Trust the server's CA; present the admin client certificate unless told not to."""
    ctx = ssl.create_default_context(cafile=str(server.data_dir / "pki" / "ca.crt"))
    if client_cert:
        ctx.load_cert_chain(*kubeconfig_files(server))
    return ctx


@pytest.fixture(scope="module")
def http(server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, verify=tls_context(server), timeout=20) as c:
        yield c


def test_crud_and_conflict(core: client.CoreV1Api) -> None:
    cm = core.create_namespaced_config_map("py", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="c1"),
                                                                     data={"a": "1"}))
    assert cm.metadata.resource_version
    stale = cm.metadata.resource_version
    cm.data["a"] = "2"
    updated = core.replace_namespaced_config_map("c1", "py", cm)
    assert int(updated.metadata.resource_version) > int(stale)
    cm.metadata.resource_version = stale
    with pytest.raises(ApiException) as err:
        core.replace_namespaced_config_map("c1", "py", cm)
    assert err.value.status == 409
    assert json.loads(err.value.body)["reason"] == "Conflict"
    with pytest.raises(ApiException) as err:
        core.read_namespaced_config_map("absent", "py")
    assert err.value.status == 404
    core.delete_namespaced_config_map("c1", "py")


def test_generate_name_and_list_selectors(core: client.CoreV1Api) -> None:
    made = core.create_namespaced_config_map("py", client.V1ConfigMap(
        metadata=client.V1ObjectMeta(generate_name="gen-", labels={"k": "v"})))
    assert made.metadata.name.startswith("gen-") and len(made.metadata.name) == 9
    found = core.list_namespaced_config_map("py", label_selector="k=v")
    assert [i.metadata.name for i in found.items] == [made.metadata.name]


def test_watch_resume_without_gaps_or_duplicates(core: client.CoreV1Api) -> None:
    start = core.list_namespaced_config_map("py").metadata.resource_version
    names = [f"w-{i}" for i in range(20)]
    for name in names[:10]:
        core.create_namespaced_config_map("py", client.V1ConfigMap(metadata=client.V1ObjectMeta(name=name)))
    seen: list[tuple[str, str]] = []
    w = watch.Watch()
    last = start
    for event in w.stream(core.list_namespaced_config_map, "py", resource_version=start, timeout_seconds=5):
        seen.append((event["type"], event["object"].metadata.name))
        last = event["object"].metadata.resource_version
        if len(seen) == 10:
            w.stop()
    for name in names[10:]:
        core.create_namespaced_config_map("py", client.V1ConfigMap(metadata=client.V1ObjectMeta(name=name)))
    w2 = watch.Watch()
    for event in w2.stream(core.list_namespaced_config_map, "py", resource_version=last, timeout_seconds=5):
        seen.append((event["type"], event["object"].metadata.name))
        if len(seen) == 20:
            w2.stop()
    assert seen == [("ADDED", n) for n in names]


def test_watch_sees_concurrent_writes(core: client.CoreV1Api) -> None:
    rv = core.list_namespaced_config_map("py").metadata.resource_version
    events: list[str] = []
    w = watch.Watch()

    def consume() -> None:
        for event in w.stream(core.list_namespaced_config_map, "py", resource_version=rv, timeout_seconds=10):
            events.append(f"{event['type']} {event['object'].metadata.name}")
            if len(events) >= 3:
                w.stop()

    thread = threading.Thread(target=consume)
    thread.start()
    core.create_namespaced_config_map("py", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="live")))
    core.patch_namespaced_config_map("live", "py", {"data": {"x": "y"}})
    core.delete_namespaced_config_map("live", "py")
    thread.join(15)
    assert events == ["ADDED live", "MODIFIED live", "DELETED live"]


def test_apps_and_status_subresource(k8s: client.ApiClient, core: client.CoreV1Api) -> None:
    apps = client.AppsV1Api(k8s)
    body = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d1"},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"a": "b"}},
                     "template": {"metadata": {"labels": {"a": "b"}},
                                  "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}}
    d = apps.create_namespaced_deployment("py", body)
    assert d.metadata.generation == 1
    apps.patch_namespaced_deployment_status("d1", "py", {"status": {"replicas": 7}})
    d = apps.read_namespaced_deployment("d1", "py")
    assert d.status.replicas == 7 and d.metadata.generation == 1
    apps.patch_namespaced_deployment("d1", "py", {"spec": {"replicas": 3}, "status": {"replicas": 0}})
    d = apps.read_namespaced_deployment("d1", "py")
    assert d.spec.replicas == 3 and d.status.replicas == 7 and d.metadata.generation == 2
    scale = apps.read_namespaced_deployment_scale("d1", "py")
    assert scale.spec.replicas == 3
    apps.patch_namespaced_deployment_scale("d1", "py", {"spec": {"replicas": 5}})
    assert apps.read_namespaced_deployment("d1", "py").spec.replicas == 5


def test_services_get_cluster_ips(core: client.CoreV1Api) -> None:
    svc = core.create_namespaced_service("py", {"metadata": {"name": "s1"},
                                                "spec": {"selector": {"a": "b"}, "ports": [{"port": 80}]}})
    assert svc.spec.cluster_ip.startswith("10.") and svc.spec.ports[0].target_port == 80
    node_port = core.create_namespaced_service("py", {"metadata": {"name": "s2"}, "spec": {
        "type": "NodePort", "ports": [{"port": 80}]}})
    assert 30000 <= node_port.spec.ports[0].node_port <= 32767
    assert node_port.spec.cluster_ip != svc.spec.cluster_ip
    kubernetes_svc = core.read_namespaced_service("kubernetes", "default")
    assert kubernetes_svc.spec.cluster_ip == "10.96.0.1"


def test_pod_binding(core: client.CoreV1Api) -> None:
    core.create_namespaced_pod("py", {"metadata": {"name": "b1"},
                                      "spec": {"containers": [{"name": "c", "image": "busybox"}]}})
    core.create_namespaced_pod_binding("b1", "py", {"metadata": {"name": "b1"},
                                                    "target": {"kind": "Node", "name": "node-a"}},
                                       _preload_content=False)
    pod = core.read_namespaced_pod("b1", "py")
    assert pod.spec.node_name == "node-a"
    with pytest.raises(ApiException) as err:
        core.create_namespaced_pod_binding("b1", "py", {"metadata": {"name": "b1"}, "target": {"name": "node-b"}},
                                           _preload_content=False)
    assert err.value.status == 409
    assert [p.metadata.name for p in core.list_namespaced_pod("py", field_selector="spec.nodeName=node-a").items] \
        == ["b1"]


@pytest.mark.parametrize(("body", "ctype", "code"), [
    pytest.param(b"{not json", "application/json", 400, id="malformed-json"),
    pytest.param(b"a: [unclosed", "application/yaml", 400, id="malformed-yaml"),
    pytest.param(b'{"apiVersion":"v1","kind":"Secret","metadata":{"name":"x"}}', "application/json", 400,
                 id="kind-mismatch"),
    pytest.param(b"[" * 5000 + b"]" * 5000, "application/json", 400, id="deep-nesting"),
    pytest.param(b"a: &a [x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
                 b"d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\n"
                 b"f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\ng: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]\n"
                 b"h: [*g,*g,*g,*g,*g,*g,*g,*g,*g]\nmetadata: {name: bomb}\napiVersion: v1\nkind: ConfigMap\n",
                 "application/yaml", 400,
                 id="yaml-billion-laughs"),
    pytest.param(b'{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"UPPER"}}', "application/json", 422,
                 id="invalid-name"),
])
def test_bad_input_is_a_4xx_status(http: httpx.Client, body: bytes, ctype: str, code: int) -> None:
    before = http.get("/api/v1/namespaces/py/configmaps").json()["metadata"]["resourceVersion"]
    resp = http.post("/api/v1/namespaces/py/configmaps", content=body, headers={"content-type": ctype})
    assert resp.status_code == code, resp.text
    status = resp.json()
    assert status["kind"] == "Status" and status["code"] == code and status["message"]
    after = http.get("/api/v1/namespaces/py/configmaps").json()["metadata"]["resourceVersion"]
    assert after == before


def test_body_over_3mib_is_413(http: httpx.Client) -> None:
    big = json.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "big"},
                      "data": {"x": "a" * (3 * 1024 * 1024 + 10)}})
    resp = http.post("/api/v1/namespaces/py/configmaps", content=big, headers={"content-type": "application/json"})
    assert resp.status_code == 413 and resp.json()["reason"] == "RequestEntityTooLarge"


def test_bad_selectors_are_400(http: httpx.Client) -> None:
    assert http.get("/api/v1/pods", params={"labelSelector": "a in (b"}).status_code == 400
    resp = http.get("/api/v1/pods", params={"fieldSelector": "spec.bogus=x"})
    assert resp.status_code == 400 and "field label not supported" in resp.json()["message"]


def test_expired_continue_is_410_or_400(http: httpx.Client) -> None:
    assert http.get("/api/v1/configmaps", params={"limit": "1", "continue": "garbage"}).status_code == 400


def test_unauthenticated_is_401(server: Server) -> None:
    with httpx.Client(base_url=server.url, verify=tls_context(server, client_cert=False), timeout=10) as anon:
        resp = anon.get("/api/v1/namespaces")
        assert resp.status_code == 401 and resp.json()["reason"] == "Unauthorized"


def test_http2_early_errors_keep_the_connection(server: Server) -> None:
    """An error answered before the body is read (404, 413) must not kill the HTTP/2 connection
    (client-go multiplexes its watches on it)."""
    with httpx.Client(http2=True, base_url=server.url, verify=tls_context(server), timeout=20) as c:
        for _ in range(3):
            resp = c.post("/apis/nothing.example.com/v1/things", content=b'{"a":"' + b"x" * 200_000 + b'"}',
                          headers={"content-type": "application/json"})
            assert resp.status_code == 404 and resp.http_version == "HTTP/2"
        too_big = c.post("/api/v1/namespaces/default/configmaps", content=b"x" * (4 * 1024 * 1024),
                         headers={"content-type": "application/json"})
        assert too_big.status_code == 413
        assert c.get("/api/v1/namespaces").status_code == 200
