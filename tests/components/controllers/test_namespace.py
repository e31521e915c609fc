"""Namespace controller: content deletion, conditions and finalization against the fake API."""

from __future__ import annotations

from kapi.components.controllers.namespace import NamespaceController
from kapi.components.controllers.objects import find_condition

from .builders import deployment, namespace, pod
from .fakes import FakeApi, drain, make_context


def seed(api: FakeApi) -> None:
    api.seed(namespace("default"), namespace("doomed"))
    api.seed(deployment("web", 1, ns="doomed"), pod("p", ns="doomed"), pod("survivor", ns="default"))
    api.seed({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg", "namespace": "doomed"},
              "data": {"a": "1"}})


async def test_terminating_namespace_is_emptied_then_finalized() -> None:
    api = FakeApi()
    seed(api)
    ctx, _ = make_context(api)
    controller = NamespaceController(ctx)
    ctx.informers.start()
    await api.delete("/api/v1/namespaces/doomed")
    assert api.objects("namespaces")[1]["status"]["phase"] == "Terminating"
    await drain(controller)
    assert len(api.objects("namespaces")) == 2  # content deleted: a confirming pass comes first
    assert await controller.sync("doomed") is None
    assert [n["metadata"]["name"] for n in api.objects("namespaces")] == ["default"]
    assert all(o["metadata"]["namespace"] != "doomed" for plural, group in
               (("pods", ""), ("configmaps", ""), ("deployments", "apps")) for o in api.objects(plural, group))
    assert [p["metadata"]["name"] for p in api.objects("pods")] == ["survivor"]
    assert ("update", "/api/v1/namespaces/doomed/finalize") in api.actions


async def test_remaining_content_is_reported_and_retried() -> None:
    api = FakeApi()
    api.seed(namespace("doomed"))
    api.seed(pod("bound", ns="doomed", node="n1"))  # stays until its kubelet stops it
    ctx, _ = make_context(api, namespace_sync_period=3.0)
    controller = NamespaceController(ctx)
    await api.delete("/api/v1/namespaces/doomed")
    assert await controller.sync("doomed") == 3.0
    ns, = api.objects("namespaces")
    remaining = find_condition(ns["status"]["conditions"], "NamespaceContentRemaining")
    assert remaining is not None and remaining["status"] == "True"
    assert remaining["message"] == "Some resources are remaining: pods. has 1 resource instances"
    discovery = find_condition(ns["status"]["conditions"], "NamespaceDeletionDiscoveryFailure")
    assert discovery is not None and discovery["status"] == "False"
    api.remove(api.objects("pods")[0])
    assert await controller.sync("doomed") is None
    assert api.objects("namespaces") == []


async def test_active_namespace_is_left_alone() -> None:
    api = FakeApi()
    seed(api)
    ctx, _ = make_context(api)
    controller = NamespaceController(ctx)
    ctx.informers.start()
    await drain(controller)
    assert len(api.objects("namespaces")) == 2 and len(api.objects("pods")) == 2
