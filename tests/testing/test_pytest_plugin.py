"""The pytest plugin's fixtures, through real clients: kubectl, the official ``kubernetes`` client,
``kubernetes_asyncio`` (or httpx), and a pytest-xdist run of a third-party-style test file."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

import kapi
from kapi.testing.inprocess import KapiServer, LocalPKI, start_server

CONFIGMAP = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings"}, "data": {"color": "blue"}}


def test_a_server_starts_in_under_half_a_second(kapi_pki: LocalPKI, tmp_path: Path) -> None:
    timings = []
    for attempt in range(3):
        started = time.perf_counter()
        server = start_server(kapi.create_app(kapi.Config(storage_backend="memory", authenticators=("x509",))),
                              kapi_pki, tmp_path / str(attempt))
        timings.append(time.perf_counter() - started)
        server.stop()
    assert min(timings) < 0.5, timings
    assert sorted(timings)[1] < 0.5, timings


def test_official_client(kapi_client: Any) -> None:
    from kubernetes import client

    core = client.CoreV1Api(kapi_client)
    core.create_namespaced_config_map("default", CONFIGMAP)
    assert core.read_namespaced_config_map("settings", "default").data == {"color": "blue"}
    assert "kube-system" in [ns.metadata.name for ns in core.list_namespace().items]


def test_kubectl_with_the_kubeconfig(kapi_kubeconfig: Path) -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed")
    out = subprocess.run([kubectl, "--kubeconfig", str(kapi_kubeconfig), "get", "namespaces", "-o", "name"],
                         capture_output=True, text=True, timeout=30, check=True).stdout
    assert "namespace/default" in out


async def test_async_client(kapi_async_client: Any) -> None:
    try:
        from kubernetes_asyncio import client
    except ImportError:
        response = await kapi_async_client.get("/api/v1/namespaces")
        assert response.status_code == 200
        return
    core = client.CoreV1Api(kapi_async_client)
    await core.create_namespaced_config_map("default", CONFIGMAP)
    assert (await core.read_namespaced_config_map("settings", "default")).data == {"color": "blue"}


def test_server_can_reach_its_app(kapi_server: KapiServer) -> None:
    assert kapi_server.url.startswith("https://127.0.0.1:")
    revision = kapi_server.call(kapi_server.app.storage.current_revision())
    assert revision > 0


@pytest.mark.kapi(authorizers=("AlwaysDeny",))
def test_marker_changes_the_config(kapi_client: Any, kapi_config: kapi.Config) -> None:
    from kubernetes import client
    from kubernetes.client.rest import ApiException

    assert kapi_config.authorizers == ("AlwaysDeny",)
    with pytest.raises(ApiException) as info:
        client.CoreV1Api(kapi_client).list_namespace()
    assert info.value.status == 403


class DenyRedConfigMaps:
    @kapi.hookimpl
    def kapi_validate_admission(self, request: kapi.AdmissionRequest) -> None:
        if request.resource == "configmaps" and (request.obj or {}).get("data", {}).get("color") == "red":
            raise kapi.AdmissionDenied("red is not allowed")


class TestPluginFixture:
    @pytest.fixture
    def kapi_plugins(self) -> list[tuple[str, Any]]:
        return [("no-red", DenyRedConfigMaps())]

    @pytest.fixture
    def kapi_config(self) -> kapi.Config:
        return kapi.Config(storage_backend="memory", authenticators=("x509",), admission=("no-red",))

    def test_plugins_fixture_registers_in_code_plugins(self, kapi_client: Any) -> None:
        from kubernetes import client
        from kubernetes.client.rest import ApiException

        core = client.CoreV1Api(kapi_client)
        core.create_namespaced_config_map("default", CONFIGMAP)
        with pytest.raises(ApiException) as info:
            core.create_namespaced_config_map("default", {**CONFIGMAP, "metadata": {"name": "r"},
                                                          "data": {"color": "red"}})
        assert info.value.status == 403 and "red is not allowed" in info.value.body


def test_other_identities(kapi_server: KapiServer) -> None:
    from kubernetes import client, config

    configuration = client.Configuration()
    config.load_kube_config(config_file=str(kapi_server.kubeconfig_for("alice", ("dev",))),
                            client_configuration=configuration)
    with client.ApiClient(configuration) as api:
        review = client.AuthenticationV1Api(api).create_self_subject_review({"apiVersion": "authentication.k8s.io/v1",
                                                                             "kind": "SelfSubjectReview"})
    assert review.status.user_info.username == "alice"
    assert "dev" in review.status.user_info.groups


THIRD_PARTY_TESTS = '''
import pytest
from kubernetes import client

@pytest.mark.parametrize("n", range(4))
def test_isolated_servers(kapi_client, n):
    core = client.CoreV1Api(kapi_client)
    core.create_namespaced_config_map("default", {"metadata": {"name": "only-one"}})
    assert [c.metadata.name for c in core.list_namespaced_config_map("default").items
            if c.metadata.name == "only-one"] == ["only-one"]
'''


def test_plugin_under_xdist(tmp_path: Path) -> None:
    pytest.importorskip("xdist")
    (tmp_path / "test_third_party.py").write_text(THIRD_PARTY_TESTS)
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    env = {**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "xdist.plugin", "-p",
                             "kapi.testing.pytest_plugin", "-p", "no:cacheprovider", "-n", "2", str(tmp_path)],
                            capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "4 passed" in result.stdout
