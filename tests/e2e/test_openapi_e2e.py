"""Real kubectl 1.37 validating ``kind: List`` manifests client-side with the /openapi/v2 protobuf."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import Kubectl, Server, serving

pytestmark = pytest.mark.e2e

NS = "openapi-e2e"


@pytest.fixture(scope="module")
def own_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with serving(tmp_path_factory.mktemp("kapi-openapi")) as srv:
        yield srv


@pytest.fixture(scope="module")
def kc(own_server: Server) -> Kubectl:
    runner = Kubectl.installed(own_server.kubeconfig)
    runner("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}))
    return runner


def configmap(name: str, **extra: object) -> dict[str, object]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": NS,
                                                                  "labels": {"set": name.split("-")[0]}}, **extra}


def as_list(*items: dict[str, object]) -> str:
    return json.dumps({"apiVersion": "v1", "kind": "List", "items": list(items)})


def test_apply_list(kc: Kubectl) -> None:
    out = kc("apply", "-f", "-", input=as_list(configmap("single-1", data={"k": "v"})))
    assert "configmap/single-1 created" in out
    assert json.loads(kc("get", "configmap", "single-1", "-n", NS, "-o", "json"))["data"] == {"k": "v"}


def test_apply_list_with_unknown_field_fails_client_side(kc: Kubectl, own_server: Server) -> None:
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "bad", "namespace": NS},
                  "spec": {"bogus": 1, "selector": {"matchLabels": {"a": "b"}},
                           "template": {"metadata": {"labels": {"a": "b"}},
                                        "spec": {"containers": [{"name": "c", "image": "i"}]}}}}
    result = kc.run("apply", "-f", "-", input=as_list(deployment), check=False)
    assert result.returncode != 0
    assert "error validating data" in result.stderr
    assert 'unknown field "bogus" in io.k8s.api.apps.v1.DeploymentSpec' in result.stderr
    assert kc.run("get", "deployment", "bad", "-n", NS, check=False).returncode != 0


def test_apply_list_of_120(kc: Kubectl) -> None:
    items = [configmap(f"many-{i}", data={"i": str(i)}) for i in range(120)]
    out = kc("apply", "-f", "-", input=as_list(*items), timeout=60)
    assert out.count(" created") == 120
    names = kc("get", "configmaps", "-n", NS, "-l", "set=many", "-o", "name").split()
    assert len(names) == 120


def test_reapply_what_get_prints(kc: Kubectl, tmp_path: Path) -> None:
    kc("apply", "-f", "-", input=as_list(*(configmap(f"round-{i}", data={"v": "1"}) for i in range(3))))
    listed = kc("get", "configmaps", "-n", NS, "-l", "set=round", "-o", "yaml")
    assert listed.startswith("apiVersion: v1\nitems:")
    changed = listed.replace('v: "1"', 'v: "2"')
    out = kc("apply", "-f", "-", input=changed)
    assert out.count(" configured") == 3
    got = json.loads(kc("get", "configmaps", "-n", NS, "-l", "set=round", "-o", "json"))
    assert [item["data"] for item in got["items"]] == [{"v": "2"}] * 3
