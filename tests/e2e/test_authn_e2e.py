"""Authentication end to end: a real kapi-apiserver, real kubectl and the official Python client.

Service-account tokens from ``kubectl create token`` (plain and pod-bound), used with ``kubectl
--token`` and with the kubernetes client; ``kubectl auth whoami`` (SelfSubjectReview); TokenReview;
bootstrap tokens; a user kubeconfig from ``kapi kubeconfig user``; the service-account issuer
discovery documents; and 401 for wrong tokens.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import Kubectl, Server, serving

pytestmark = pytest.mark.e2e

FLAGS = ("--authentication-plugins", "service-account,bootstrap-token", "--enable-bootstrap-token-auth",
         "--service-account-max-token-expiration", "48h")
BOOTSTRAP = "abcdef.0123456789abcdef"
ACCOUNT = """
apiVersion: v1
kind: ServiceAccount
metadata: {name: robot, namespace: default}
"""
POD = """
apiVersion: v1
kind: Pod
metadata: {name: worker, namespace: default}
spec:
  serviceAccountName: robot
  containers: [{name: c, image: example/worker:1}]
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """This module's own server (the authenticator flags differ from the shared one's)."""
    with serving(tmp_path_factory.mktemp("kapi-authn-e2e"), *FLAGS) as srv:
        yield srv


@pytest.fixture(scope="module")
def admin(server: Server) -> Kubectl:
    """kubectl as the admin (client certificate), with the ServiceAccount default/robot created."""
    admin = Kubectl.installed(server.kubeconfig)
    admin("apply", "-f", "-", input=ACCOUNT)
    return admin


def as_token(server: Server, admin: Kubectl, token: str, *args: str, check: bool = True
             ) -> subprocess.CompletedProcess[str]:
    """kubectl with only a bearer token (no client certificate), via --token."""
    empty = server.data_dir / "empty.kubeconfig"
    empty.write_text("apiVersion: v1\nkind: Config\n")
    cmd = [admin.binary, "--kubeconfig", str(empty), "--server", server.url, "--certificate-authority",
           str(server.data_dir / "pki" / "ca.crt"), "--token", token, *args]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    if check and result.returncode != 0:
        raise AssertionError(f"kubectl {' '.join(args)} failed ({result.returncode}):\n{result.stderr}")
    return result


def whoami(server: Server, admin: Kubectl, token: str) -> dict[str, Any]:
    out = as_token(server, admin, token, "auth", "whoami", "-o", "json").stdout
    return dict(json.loads(out)["status"]["userInfo"])


def claims(token: str) -> dict[str, Any]:
    return dict(json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "==")))


def test_create_token_then_kubectl_with_it(server: Server, admin: Kubectl) -> None:
    token = admin("create", "token", "robot", "-n", "default", "--duration", "20m").strip()
    payload = claims(token)
    assert payload["exp"] - payload["iat"] == 1200
    assert payload["sub"] == "system:serviceaccount:default:robot"
    user = whoami(server, admin, token)
    assert user["username"] == "system:serviceaccount:default:robot"
    assert {"system:serviceaccounts", "system:serviceaccounts:default", "system:authenticated"} <= set(user["groups"])
    assert "default" in as_token(server, admin, token, "get", "namespaces").stdout


def test_pod_bound_token_dies_with_the_pod(server: Server, admin: Kubectl) -> None:
    admin("apply", "-f", "-", input=POD)
    token = admin("create", "token", "robot", "-n", "default", "--bound-object-kind", "Pod",
                  "--bound-object-name", "worker").strip()
    user = whoami(server, admin, token)
    assert user["extra"]["authentication.kubernetes.io/pod-name"] == ["worker"]
    admin("delete", "pod", "worker", "-n", "default", "--grace-period=0", "--force", "--wait=false")
    refused = as_token(server, admin, token, "get", "namespaces", check=False)
    assert refused.returncode != 0 and "pod default/worker has been deleted" in refused.stderr


def test_python_client_with_a_token(server: Server, admin: Kubectl) -> None:
    from kubernetes import client

    token = admin("create", "token", "robot", "-n", "default").strip()

    def api(bearer: str) -> client.ApiClient:
        configuration = client.Configuration()
        configuration.host = server.url
        configuration.ssl_ca_cert = str(server.data_dir / "pki" / "ca.crt")
        configuration.api_key = {"authorization": f"Bearer {bearer}"}
        return client.ApiClient(configuration)

    with api(token) as good:
        names = [ns.metadata.name for ns in client.CoreV1Api(good).list_namespace().items]
        assert "kube-system" in names
        review = client.AuthenticationV1Api(good).create_self_subject_review(
            client.V1SelfSubjectReview(api_version="authentication.k8s.io/v1", kind="SelfSubjectReview"))
        assert review.status.user_info.username == "system:serviceaccount:default:robot"
    with api(token[:-4] + "AAAA") as bad, pytest.raises(client.ApiException) as info:
        client.CoreV1Api(bad).list_namespace()
    assert info.value.status == 401


def test_wrong_tokens_are_401(server: Server, admin: Kubectl) -> None:
    token = admin("create", "token", "robot", "-n", "default").strip()
    head, payload, _ = token.split(".")
    forged = f"{head}.{payload}.{base64.urlsafe_b64encode(b'x' * 256).decode().rstrip('=')}"
    for wrong in ("not-a-token", forged, "zzzzzz.0123456789abcdef"):
        result = as_token(server, admin, wrong, "get", "namespaces", check=False)
        assert result.returncode != 0 and "must be logged in" in result.stderr, wrong
        assert wrong not in result.stderr


def test_token_review(admin: Kubectl) -> None:
    token = admin("create", "token", "robot", "-n", "default").strip()
    review = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": token}}
    out = json.loads(admin("create", "--validate=false", "-f", "-", "-o", "json", input=json.dumps(review)))
    assert out["status"]["authenticated"] is True
    assert out["status"]["user"]["username"] == "system:serviceaccount:default:robot"
    review["spec"]["token"] = "nonsense"
    refused = json.loads(admin("create", "--validate=false", "-f", "-", "-o", "json", input=json.dumps(review)))
    assert not refused["status"].get("authenticated")


def test_admin_whoami_and_discovery(admin: Kubectl) -> None:
    assert "kubernetes-admin" in admin("auth", "whoami")
    discovery = json.loads(admin("get", "--raw", "/.well-known/openid-configuration"))
    assert discovery["issuer"] == "https://kubernetes.default.svc.cluster.local"
    kids = {key["kid"] for key in json.loads(admin("get", "--raw", "/openid/v1/jwks"))["keys"]}
    token = admin("create", "token", "robot", "-n", "default").strip()
    header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    assert header["kid"] in kids and header["alg"] == "RS256"


def test_bootstrap_token(server: Server, admin: Kubectl) -> None:
    token_id, secret = BOOTSTRAP.split(".")
    manifest = admin("create", "secret", "generic", f"bootstrap-token-{token_id}", "-n", "kube-system",
                     "--type", "bootstrap.kubernetes.io/token", f"--from-literal=token-id={token_id}",
                     f"--from-literal=token-secret={secret}", "--from-literal=usage-bootstrap-authentication=true",
                     "--from-literal=auth-extra-groups=system:bootstrappers:kubeadm:default-node-token",
                     "--dry-run=client", "-o", "yaml")
    admin("apply", "-f", "-", input=manifest)
    user = whoami(server, admin, BOOTSTRAP)
    assert user["username"] == f"system:bootstrap:{token_id}"
    assert "system:bootstrappers:kubeadm:default-node-token" in user["groups"]


def test_user_kubeconfig_from_the_cli(server: Server, admin: Kubectl, tmp_path: Path) -> None:
    out = tmp_path / "alice.kubeconfig"
    subprocess.run([sys.executable, "-c", "from kapi.cli import main; raise SystemExit(main())", "kubeconfig",
                    "user", "--name", "alice", "--group", "dev", "--cert-dir", str(server.data_dir / "pki"),
                    "--server", server.url, "--out", str(out)], check=True, capture_output=True, timeout=30)
    alice = Kubectl(out, admin.binary)
    assert json.loads(alice("auth", "whoami", "-o", "json"))["status"]["userInfo"]["username"] == "alice"
    assert "dev" in alice("auth", "whoami")
    assert "default" in alice("get", "namespaces")
