"""Authorization end to end: a real kapi-apiserver with ``--authorization-mode=Node,RBAC`` and real kubectl.

The admin (``system:masters``) keeps full access; anonymous callers read only the public health
and version endpoints; a restricted user (client certificate from ``kapi kubeconfig user``) is
confined to its Role's namespace, cannot grant itself more, and sees its rules with
``kubectl auth can-i --list``; a kubelet (``kapi kubeconfig component kubelet``) reads only the
secrets of pods bound to its node; aggregated ClusterRoles show their rules.
"""

from __future__ import annotations

import json
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import Kubectl, Server, serving

pytestmark = pytest.mark.e2e

SETUP = """
apiVersion: v1
kind: Namespace
metadata: {name: dev}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: developer, namespace: dev}
rules:
- {apiGroups: [""], resources: [pods, configmaps], verbs: [get, list, watch, create]}
- {apiGroups: [rbac.authorization.k8s.io], resources: [roles, rolebindings], verbs: [get, list, create, update]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: developers, namespace: dev}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: developer}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: Group, name: dev}]
"""
GREEDY_ROLE = """
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: greedy, namespace: dev}
rules: [{apiGroups: [""], resources: [secrets], verbs: [get, list]}]
"""
MODEST_ROLE = """
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: modest, namespace: dev}
rules: [{apiGroups: [""], resources: [pods], verbs: [get]}]
"""
ADMIN_BINDING = """
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: jane-admin, namespace: dev}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: admin}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: jane}]
"""
NODE_OBJECTS = """
apiVersion: v1
kind: Secret
metadata: {name: s1, namespace: default}
stringData: {k: one}
---
apiVersion: v1
kind: Secret
metadata: {name: s2, namespace: default}
stringData: {k: two}
---
apiVersion: v1
kind: Pod
metadata: {name: on-n1, namespace: default}
spec:
  nodeName: n1
  containers: [{name: c, image: busybox}]
  volumes: [{name: v, secret: {secretName: s1}}]
---
apiVersion: v1
kind: Pod
metadata: {name: on-n2, namespace: default}
spec:
  nodeName: n2
  containers: [{name: c, image: busybox}]
  volumes: [{name: v, secret: {secretName: s2}}]
"""
AGGREGATED = """
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: widgets-view
  labels: {rbac.authorization.k8s.io/aggregate-to-view: "true"}
rules: [{apiGroups: [example.com], resources: [widgets], verbs: [get, list, watch]}]
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """This module's own server, with Node and RBAC authorization (anonymous auth on, the default)."""
    with serving(tmp_path_factory.mktemp("kapi-authz-e2e"), "--authorization-mode=Node,RBAC") as srv:
        yield srv


def _kubeconfig(server: Server, *args: str) -> Path:
    out = server.data_dir / f"{'-'.join(a.lstrip('-') for a in args)}.kubeconfig"
    if not out.exists():
        result = subprocess.run([sys.executable, "-c", "from kapi.cli import main; raise SystemExit(main())",
                                 "kubeconfig", *args, "--cert-dir", str(server.data_dir / "pki"), "--server",
                                 server.url, "--out", str(out)], capture_output=True, text=True, timeout=30)
        assert result.returncode == 0, result.stderr
    return out


@pytest.fixture(scope="module")
def admin(server: Server) -> Kubectl:
    admin = Kubectl.installed(server.kubeconfig)
    admin("apply", "-f", "-", input=SETUP)
    return admin


@pytest.fixture(scope="module")
def jane(server: Server, admin: Kubectl) -> Kubectl:
    """A user in group dev, from ``kapi kubeconfig user``."""
    return Kubectl(_kubeconfig(server, "user", "--name", "jane", "--group", "dev"), admin.binary)


def _anonymous(server: Server, path: str) -> int:
    context = ssl.create_default_context(cafile=str(server.data_dir / "pki" / "ca.crt"))
    try:
        with urllib.request.urlopen(f"{server.url}{path}", context=context, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as err:
        return int(err.code)


def test_admin_and_anonymous(server: Server, admin: Kubectl) -> None:
    assert "kube-system" in admin("get", "namespaces")
    assert "cluster-admin" in admin("get", "clusterrolebindings")
    for path in ("/healthz", "/livez", "/readyz", "/version"):
        assert _anonymous(server, path) == 200, path
    assert _anonymous(server, "/api/v1/namespaces/default/pods") == 403
    assert _anonymous(server, "/apis") == 403  # discovery is for authenticated users


def test_user_is_confined_to_its_namespace(jane: Kubectl) -> None:
    assert jane.run("get", "pods", "-n", "dev").returncode == 0
    jane("create", "configmap", "notes", "-n", "dev", "--from-literal=a=1")
    refused = jane.run("get", "pods", "-n", "default", check=False)
    assert refused.returncode != 0
    assert 'User "jane" cannot list resource "pods" in API group "" in the namespace "default"' in refused.stderr
    assert jane.run("get", "secrets", "-n", "dev", check=False).returncode != 0
    assert jane("auth", "can-i", "list", "pods", "-n", "dev").strip() == "yes"
    assert jane.run("auth", "can-i", "list", "pods", "-n", "default", check=False).stdout.strip() == "no"


def test_can_i_list_as_jane(admin: Kubectl, jane: Kubectl) -> None:
    table = admin("auth", "can-i", "--list", "--as", "jane", "--as-group", "dev", "-n", "dev")
    rows = {line.split()[0]: line for line in table.splitlines()[1:] if line.strip()}
    assert "[get list watch create]" in rows["pods"] and "[get list watch create]" in rows["configmaps"]
    assert "selfsubjectaccessreviews.authorization.k8s.io" in rows
    assert "secrets" not in rows
    own = jane("auth", "can-i", "--list", "-n", "dev")
    assert "roles.rbac.authorization.k8s.io" in own
    assert admin("auth", "can-i", "get", "pods", "-n", "dev", "--as", "jane", "--as-group", "dev").strip() == "yes"
    assert admin.run("auth", "can-i", "get", "pods", "-n", "dev", "--as", "jane", check=False).stdout.strip() \
        == "no"  # without the dev group


def test_escalation_is_refused(jane: Kubectl) -> None:
    greedy = jane.run("apply", "-f", "-", input=GREEDY_ROLE, check=False)
    assert greedy.returncode != 0
    assert "is attempting to grant RBAC permissions not currently held" in greedy.stderr
    assert '{APIGroups:[""], Resources:["secrets"], Verbs:["get" "list"]}' in greedy.stderr
    assert jane.run("apply", "-f", "-", input=MODEST_ROLE).returncode == 0
    refused = jane.run("apply", "-f", "-", input=ADMIN_BINDING, check=False)
    assert refused.returncode != 0 and "not currently held" in refused.stderr


def test_kubelet_reads_only_its_pods_secrets(server: Server, admin: Kubectl) -> None:
    admin("apply", "-f", "-", input=NODE_OBJECTS)
    kubelet = Kubectl(_kubeconfig(server, "component", "kubelet", "--node-name", "n1"), admin.binary)
    deadline = time.monotonic() + 5
    while kubelet.run("get", "secret", "s1", "-n", "default", check=False).returncode != 0:
        assert time.monotonic() < deadline, "the kubelet never got its pod's secret"
        time.sleep(0.1)
    other = kubelet.run("get", "secret", "s2", "-n", "default", check=False)
    assert other.returncode != 0 and 'User "system:node:n1" cannot get resource "secrets"' in other.stderr
    assert kubelet.run("get", "pod", "on-n1", "-n", "default").returncode == 0
    assert kubelet.run("get", "pod", "on-n2", "-n", "default", check=False).returncode != 0
    assert kubelet.run("get", "configmaps", "-n", "default", check=False).returncode != 0


def test_aggregated_cluster_roles(admin: Kubectl) -> None:
    admin_role = json.loads(admin("get", "clusterrole", "admin", "-o", "json"))
    assert admin_role["aggregationRule"]["clusterRoleSelectors"]
    assert any("rolebindings" in rule.get("resources", ()) for rule in admin_role["rules"])
    admin("apply", "-f", "-", input=AGGREGATED)
    deadline = time.monotonic() + 5
    while True:
        rules = json.loads(admin("get", "clusterrole", "admin", "-o", "json"))["rules"]
        if any("widgets" in rule.get("resources", ()) for rule in rules):
            break
        assert time.monotonic() < deadline, "admin did not aggregate widgets-view"
        time.sleep(0.1)
