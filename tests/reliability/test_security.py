"""Security checks against a real kapi-apiserver with ``--anonymous-auth=true
--authorization-mode=Node,RBAC``: anonymous callers reach only what kube's default
``system:public-info-viewer`` allows (every discovered resource and verb is refused); a kubelet reads
only its own pods' secrets; a user cannot escalate through RBAC, impersonation or token requests;
secret values and bearer tokens never reach the server log, error responses, metrics or traces; private
keys are 0600; TLS < 1.2 and TLS 1.2 without forward-secret AEAD ciphers are refused."""

from __future__ import annotations

import ssl
import stat
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import Server, start_server
from tests.reliability.support import client, identity_files, tls

pytestmark = pytest.mark.e2e

PUBLIC = ("/healthz", "/livez", "/readyz", "/version")
SECRET_VALUE = "c3VwZXItc2VjcmV0LXZhbHVlLTQyNDI="  # base64 of a recognisable plain text
PLAIN_SECRET = "super-secret-value-4242"
TOKEN = "kapi-test-token-NEVER-LOG-ME-1234567890"


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = start_server(tmp_path_factory.mktemp("sec"), "--anonymous-auth=true",
                          "--authorization-mode=Node,RBAC")
    try:
        with client(server) as admin:
            for obj in SETUP:
                resp = admin.post(obj.pop("_path"), json=obj)
                assert resp.status_code in (201, 409), resp.text
        yield server
    finally:
        server.stop()


def _ns(name: str) -> dict[str, Any]:
    return {"_path": "/api/v1/namespaces", "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}


RBAC = "/apis/rbac.authorization.k8s.io/v1"
SETUP: list[dict[str, Any]] = [
    _ns("dev"), _ns("other"),
    {"_path": "/api/v1/namespaces/other/secrets", "apiVersion": "v1", "kind": "Secret",
     "metadata": {"name": "s-other"}, "data": {"password": SECRET_VALUE}},
    {"_path": "/api/v1/namespaces/dev/secrets", "apiVersion": "v1", "kind": "Secret",
     "metadata": {"name": "s-n2"}, "stringData": {"password": PLAIN_SECRET}},
    {"_path": "/api/v1/namespaces/dev/serviceaccounts", "apiVersion": "v1", "kind": "ServiceAccount",
     "metadata": {"name": "sa"}},
    {"_path": "/api/v1/namespaces/other/serviceaccounts", "apiVersion": "v1", "kind": "ServiceAccount",
     "metadata": {"name": "sa"}},
    {"_path": "/api/v1/nodes", "apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"}},
    {"_path": "/api/v1/nodes", "apiVersion": "v1", "kind": "Node", "metadata": {"name": "n2"}},
    {"_path": "/api/v1/namespaces/dev/pods", "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p2"},
     "spec": {"nodeName": "n2", "containers": [{"name": "c", "image": "busybox"}],
              "volumes": [{"name": "s", "secret": {"secretName": "s-n2"}}]}},
    {"_path": f"{RBAC}/namespaces/dev/roles", "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
     "metadata": {"name": "dev", "namespace": "dev"},
     "rules": [{"apiGroups": [""], "resources": ["pods", "configmaps"], "verbs": ["*"]},
               {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["roles", "rolebindings"],
                "verbs": ["get", "list", "create", "update", "delete"]}]},
    {"_path": f"{RBAC}/namespaces/dev/rolebindings", "apiVersion": "rbac.authorization.k8s.io/v1",
     "kind": "RoleBinding", "metadata": {"name": "dev", "namespace": "dev"},
     "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "dev"},
     "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "jane"}]},
]


def discovered(admin: httpx.Client) -> list[tuple[str, dict[str, Any]]]:
    """(group-version path, APIResource) for every top-level resource the server advertises."""
    paths = ["/api/v1"]
    for group in admin.get("/apis").json()["groups"]:
        paths.extend(f"/apis/{v['groupVersion']}" for v in group["versions"])
    return [(p, r) for p in paths for r in admin.get(p).json()["resources"] if "/" not in r["name"]]


def test_anonymous_is_refused_everywhere_but_public_info(live: Server) -> None:
    with client(live) as admin, client(live, admin=False) as anon:
        for path in PUBLIC:
            assert anon.get(path).status_code == 200, path
        for path in ("/api", "/apis", "/openapi/v2", "/openapi/v3", "/metrics", "/api/v1"):
            assert anon.get(path).status_code in (401, 403), path
        tried = 0
        for gv, res in discovered(admin):
            base = f"{gv}/namespaces/default/{res['name']}" if res["namespaced"] else f"{gv}/{res['name']}"
            attempts = [("GET", base, None), ("GET", f"{base}?watch=1&timeoutSeconds=1", None),
                        ("POST", base, {}), ("DELETE", base, None), ("GET", f"{base}/x", None),
                        ("PUT", f"{base}/x", {}), ("PATCH", f"{base}/x", {}), ("DELETE", f"{base}/x", None)]
            for method, url, body in attempts:
                headers = {"content-type": "application/merge-patch+json"} if method == "PATCH" else {}
                resp = anon.request(method, url, json=body, headers=headers)
                tried += 1
                assert resp.status_code in (401, 403), (method, url, resp.status_code, resp.text[:200])
        print(f"anonymous: {tried} resource requests, all refused")
        assert tried > 200


def test_kubelet_reads_only_its_own_pods_secrets(live: Server) -> None:
    n1 = identity_files(live, "system:node:n1", ("system:nodes",))
    n2 = identity_files(live, "system:node:n2", ("system:nodes",))
    with client(live, n1) as kubelet1, client(live, n2) as kubelet2:
        assert kubelet2.get("/api/v1/namespaces/dev/secrets/s-n2").status_code == 200
        assert kubelet1.get("/api/v1/namespaces/dev/secrets/s-n2").status_code == 403
        assert kubelet1.get("/api/v1/namespaces/other/secrets/s-other").status_code == 403
        assert kubelet1.get("/api/v1/namespaces/dev/secrets").status_code == 403
        assert kubelet1.get("/api/v1/namespaces/kube-system/configmaps").status_code == 403


def test_user_cannot_escalate(live: Server) -> None:
    jane = identity_files(live, "jane", ("dev",))
    with client(live, jane) as http:
        assert http.get("/api/v1/namespaces/dev/configmaps").status_code == 200
        assert http.get("/api/v1/namespaces/dev/secrets").status_code == 403
        # RBAC: a Role with more than she has, and a binding to cluster-admin, are refused
        role = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "more"},
                "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}]}
        assert http.post(f"{RBAC}/namespaces/dev/roles", json=role).status_code == 403
        binding = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                   "metadata": {"name": "admin"}, "subjects": [{"kind": "User", "name": "jane"}],
                   "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "admin"}}
        assert http.post(f"{RBAC}/namespaces/dev/rolebindings", json=binding).status_code == 403
        # impersonation
        for header in ({"Impersonate-User": "admin"}, {"Impersonate-Group": "system:masters",
                                                       "Impersonate-User": "jane"}):
            assert http.get("/api/v1/namespaces/other/secrets", headers=header).status_code == 403
        # token requests for service accounts
        review = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {}}
        for ns in ("dev", "other"):
            assert http.post(f"/api/v1/namespaces/{ns}/serviceaccounts/sa/token", json=review).status_code == 403
        # a pod names secrets of its own namespace only: the kubelet of its node still cannot read
        # the same-named secret of another namespace
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "steal"},
               "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "busybox"}],
                        "volumes": [{"name": "s", "secret": {"secretName": "s-other"}}]}}
        assert http.post("/api/v1/namespaces/dev/pods", json=pod).status_code == 201
    with client(live, identity_files(live, "system:node:n1", ("system:nodes",))) as kubelet:
        assert kubelet.get("/api/v1/namespaces/other/secrets/s-other").status_code == 403
        assert kubelet.get("/api/v1/namespaces/dev/secrets/s-other").status_code == 404  # its pod's: allowed


def test_secrets_and_tokens_stay_out_of_logs_errors_metrics_and_traces(live: Server) -> None:
    with client(live, admin=False) as anon:
        for path in ("/api/v1/namespaces/dev/secrets", "/api/v1/namespaces/dev/secrets/s-n2", "/version"):
            anon.get(path, headers={"Authorization": f"Bearer {TOKEN}"})
            anon.post(path, headers={"Authorization": f"Bearer {TOKEN}"}, json={"data": {"x": SECRET_VALUE}})
    with client(live) as admin:
        bad = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "Bad_Name"},
               "stringData": {"password": PLAIN_SECRET}}
        resp = admin.post("/api/v1/namespaces/dev/secrets", json=bad)
        assert resp.status_code == 422
        assert PLAIN_SECRET not in resp.text
        exposed = {"server log": live.log(), "metrics": admin.get("/metrics").text,
                   "traces": admin.get("/debug/kapi/traces", params={"limit": "1000"}).text}
    assert '"steps"' in exposed["traces"]
    for where, text in exposed.items():
        for needle in (PLAIN_SECRET, SECRET_VALUE, TOKEN):
            assert needle not in text, (where, needle)


def test_private_keys_are_0600(live: Server) -> None:
    keys = [p for p in (live.data_dir / "pki").rglob("*.key")]
    assert keys
    for key in keys:
        assert stat.S_IMODE(key.stat().st_mode) & 0o077 == 0, (key, oct(key.stat().st_mode))


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # the very versions under test are deprecated
@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1])
def test_old_tls_is_refused(live: Server, version: ssl.TLSVersion) -> None:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(str(live.data_dir / "pki" / "ca.crt"))
    ctx.set_ciphers("ALL:@SECLEVEL=0")
    ctx.minimum_version = ctx.maximum_version = version
    with pytest.raises(httpx.ConnectError), httpx.Client(verify=ctx) as old:
        old.get(f"{live.url}/healthz")


@pytest.mark.parametrize("ciphers", ["AES128-SHA:AES256-GCM-SHA384", "ECDHE-RSA-AES128-SHA:ECDHE-RSA-AES256-SHA384",
                                     "DHE-RSA-AES128-GCM-SHA256"])
def test_weak_tls12_ciphers_are_refused(live: Server, ciphers: str) -> None:
    """TLS 1.2 offers only forward-secret AEAD suites (ECDHE with AES-GCM or ChaCha20)."""
    ctx = tls(live, admin=False)
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers(ciphers)
    with pytest.raises(httpx.ConnectError), httpx.Client(verify=ctx) as weak:
        weak.get(f"{live.url}/healthz")


def test_modern_tls_works(live: Server) -> None:
    for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
        ctx = tls(live, admin=False)
        ctx.minimum_version = ctx.maximum_version = version
        with httpx.Client(verify=ctx) as modern:
            assert modern.get(f"{live.url}/healthz").status_code == 200
