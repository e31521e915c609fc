"""Endpoints and EndpointSlice controllers, ServiceAccount controller, root CA publisher (fake API)."""

from __future__ import annotations

from typing import Any

from kapi.components.controllers.endpoints import EndpointsController, endpoint_subsets
from kapi.components.controllers.endpointslice import EndpointSliceController, desired_slices
from kapi.components.controllers.rootcacert import DESCRIPTION_ANNOTATION, RootCACertPublisher
from kapi.components.controllers.serviceaccount import ServiceAccountController

from .builders import namespace, pod
from .fakes import FakeApi, drain, make_context

Obj = dict[str, Any]


def service(name: str = "web", **spec: Any) -> Obj:
    body = {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80, "targetPort": "http"}], **spec}
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": "default",
                                                                "labels": {"team": "a"}}, "spec": body}


def web_pod(name: str, ip: str, *, ready: bool = True, **spec: Any) -> Obj:
    obj = pod(name, {"app": "web"}, phase="Running", ready=ready, ip=ip, node="n1", **spec)
    obj["spec"]["containers"][0]["ports"] = [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]
    return obj


def test_subsets_split_ready_and_not_ready_and_resolve_named_ports() -> None:
    svc = service()
    pods = [web_pod("b", "10.0.0.2"), web_pod("a", "10.0.0.1"), web_pod("c", "10.0.0.3", ready=False),
            pod("no-ip", {"app": "web"}), {**web_pod("gone", "10.0.0.9"),
                                           "metadata": {**web_pod("gone", "10.0.0.9")["metadata"],
                                                        "deletionTimestamp": "2024-01-01T00:00:00Z"}}]
    subsets = endpoint_subsets(svc, pods)
    assert len(subsets) == 1
    subset = subsets[0]
    assert [a["ip"] for a in subset["addresses"]] == ["10.0.0.1", "10.0.0.2"]
    assert [a["ip"] for a in subset["notReadyAddresses"]] == ["10.0.0.3"]
    assert subset["ports"] == [{"name": "http", "port": 8080, "protocol": "TCP"}]
    assert subset["addresses"][0]["targetRef"]["kind"] == "Pod" and subset["addresses"][0]["nodeName"] == "n1"
    published = endpoint_subsets(service(publishNotReadyAddresses=True), pods)
    assert len(published[0]["addresses"]) == 3


def test_slices_carry_conditions_including_terminating() -> None:
    terminating = web_pod("t", "10.0.0.5")
    terminating["metadata"]["deletionTimestamp"] = "2024-01-01T00:00:00Z"
    groups = desired_slices(service(), [web_pod("a", "10.0.0.1"), terminating, web_pod("v6", "fd00::1")])
    assert {kind for kind, _ in groups} == {"IPv4", "IPv6"}
    (ports, endpoints), = [v for (kind, _), v in groups.items() if kind == "IPv4"]
    assert ports == [{"name": "http", "port": 8080, "protocol": "TCP"}]
    by_ip = {e["addresses"][0]: e["conditions"] for e in endpoints}
    assert by_ip["10.0.0.1"] == {"ready": True, "serving": True, "terminating": False}
    assert by_ip["10.0.0.5"] == {"ready": False, "serving": True, "terminating": True}


async def test_controllers_write_endpoints_and_slices_and_follow_changes() -> None:
    api = FakeApi()
    api.seed(namespace("default"), service(), web_pod("a", "10.0.0.1"))
    ctx, _ = make_context(api)
    endpoints, slices = EndpointsController(ctx), EndpointSliceController(ctx)
    ctx.informers.start()
    await drain(endpoints)
    await drain(slices)
    ep, = api.objects("endpoints")
    assert ep["metadata"]["labels"] == {"team": "a", "endpoints.kubernetes.io/managed-by": "endpoint-controller"}
    assert [a["ip"] for a in ep["subsets"][0]["addresses"]] == ["10.0.0.1"]
    slice_, = api.objects("endpointslices", "discovery.k8s.io")
    assert slice_["metadata"]["generateName"] == "web-" and slice_["addressType"] == "IPv4"
    assert slice_["metadata"]["labels"]["kubernetes.io/service-name"] == "web"
    assert slice_["metadata"]["ownerReferences"][0]["kind"] == "Service"
    api.seed(web_pod("b", "10.0.0.2"))
    await drain(endpoints)
    await drain(slices)
    ep, = api.objects("endpoints")
    assert [a["ip"] for a in ep["subsets"][0]["addresses"]] == ["10.0.0.1", "10.0.0.2"]
    slice_, = api.objects("endpointslices", "discovery.k8s.io")  # updated in place, not duplicated
    assert len(slice_["endpoints"]) == 2
    writes = len(api.actions)
    await endpoints.sync("default/web")
    await slices.sync("default/web")
    assert [a for a in api.actions[writes:] if a[0] != "get"] == []  # nothing changed, nothing written
    api.remove(api.objects("services")[0])
    await drain(endpoints)
    assert api.objects("endpoints") == []


async def test_service_without_selector_is_not_managed() -> None:
    api = FakeApi()
    api.seed(namespace("default"), service(selector=None), web_pod("a", "10.0.0.1"))
    ctx, _ = make_context(api)
    controller = EndpointsController(ctx)
    ctx.informers.start()
    await drain(controller)
    assert api.objects("endpoints") == []


async def test_default_service_account_per_active_namespace() -> None:
    api = FakeApi()
    api.seed(namespace("a"), namespace("b"))
    ctx, _ = make_context(api)
    controller = ServiceAccountController(ctx)
    ctx.informers.start()
    await drain(controller)
    assert sorted(sa["metadata"]["namespace"] for sa in api.objects("serviceaccounts")) == ["a", "b"]
    await api.delete("/api/v1/namespaces/b/serviceaccounts/default")
    await drain(controller)
    assert len(api.objects("serviceaccounts")) == 2  # recreated
    api.seed({**namespace("c"), "metadata": {"name": "c", "deletionTimestamp": "2024-01-01T00:00:00Z"}})
    await drain(controller)
    assert len(api.objects("serviceaccounts")) == 2  # terminating: skipped


async def test_root_ca_published_and_repaired() -> None:
    api = FakeApi()
    api.seed(namespace("a"))
    ctx, _ = make_context(api, root_ca_pem="PEM-1")
    controller = RootCACertPublisher(ctx)
    ctx.informers.start()
    await drain(controller)
    cm, = api.objects("configmaps")
    assert cm["metadata"]["name"] == "kube-root-ca.crt" and cm["data"] == {"ca.crt": "PEM-1"}
    assert cm["metadata"]["annotations"][DESCRIPTION_ANNOTATION]
    await api.update("/api/v1/namespaces/a/configmaps/kube-root-ca.crt", {**cm, "data": {"ca.crt": "tampered"}})
    await drain(controller)
    assert api.objects("configmaps")[0]["data"] == {"ca.crt": "PEM-1"}
