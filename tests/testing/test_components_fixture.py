"""``@pytest.mark.kapi_components``: controllers, scheduler and fake kubelets beside the test server."""

from __future__ import annotations

from typing import Any

import pytest

from kapi.testing.inprocess import wait_until


def _gone(read: Any, *args: str) -> bool:
    from kubernetes.client.rest import ApiException

    try:
        read(*args)
    except ApiException as exc:
        return exc.status == 404
    return False


@pytest.mark.kapi_components(controllers=("*",), scheduler=True, fake_nodes=("node-1",))
def test_a_whole_control_plane_in_process(kapi_client: Any) -> None:
    from kubernetes import client

    core, apps = client.CoreV1Api(kapi_client), client.AppsV1Api(kapi_client)
    core.create_namespace({"metadata": {"name": "demo"}})
    labels = {"app": "web"}
    apps.create_namespaced_deployment("demo", {
        "metadata": {"name": "web"},
        "spec": {"replicas": 2, "selector": {"matchLabels": labels},
                 "template": {"metadata": {"labels": labels}, "spec": {"containers": [{"name": "c", "image": "x"}]}}}})

    def running() -> int:
        pods = core.list_namespaced_pod("demo", label_selector="app=web").items
        return sum(1 for p in pods if p.spec.node_name == "node-1" and p.status.phase == "Running")

    wait_until(lambda: running() == 2, timeout=20)
    parent = core.create_namespaced_config_map("demo", {"metadata": {"name": "parent"}})
    owner = {"apiVersion": "v1", "kind": "ConfigMap", "name": "parent", "uid": parent.metadata.uid}
    core.create_namespaced_config_map("demo", {"metadata": {"name": "child", "ownerReferences": [owner]}})
    core.delete_namespaced_config_map("parent", "demo")
    wait_until(lambda: _gone(core.read_namespaced_config_map, "child", "demo"), timeout=15)  # garbage collection
    core.delete_namespace("demo")
    wait_until(lambda: _gone(core.read_namespace, "demo"), timeout=20)  # namespace deletion empties and removes it


def test_no_components_by_default(kapi_components: Any) -> None:
    assert not kapi_components
