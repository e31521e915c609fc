"""Scheduler filters, resources and the decision message (table-driven, pure)."""

from __future__ import annotations

import random
from typing import Any

import pytest

from kapi.components.scheduler import podaffinity
from kapi.components.scheduler.algorithm import NO_NODES, find_node, fit_error_message, nodes_to_find
from kapi.components.scheduler.cache import SchedulerCache
from kapi.components.scheduler.filters import Cycle, run_filters
from kapi.components.scheduler.matching import node_selector_term_matches, requirement_matches, tolerates
from kapi.components.scheduler.resources import NodeInfo, PodInfo, non_zero_requests, pod_requests, to_units

from .objects import node, pod

Obj = dict[str, Any]


def info_for(n: Obj, *bound: Obj) -> NodeInfo:
    info = NodeInfo(n["metadata"]["name"])
    info.set_node(n)
    for p in bound:
        info.add_pod(PodInfo.of(p))
    return info


@pytest.mark.parametrize(("name", "value", "units"), [
    ("cpu", "500m", 500), ("cpu", "1", 1000), ("cpu", "0.1", 100), ("cpu", "1u", 1), ("memory", "1Gi", 2**30),
    ("memory", "1k", 1000), ("pods", "110", 110), ("memory", "bogus", 0), ("cpu", 2, 2000),
])
def test_to_units(name: str, value: object, units: int) -> None:
    assert to_units(name, value) == units


def test_pod_requests_sum_init_max_sidecars_overhead() -> None:
    p = pod("p", cpu="100m", memory="1Mi")
    p["spec"]["containers"].append({"name": "d", "resources": {"requests": {"cpu": "200m"}}})
    p["spec"]["initContainers"] = [{"name": "i", "resources": {"requests": {"cpu": "1", "memory": "1Ki"}}},
                                   {"name": "s", "restartPolicy": "Always", "resources": {"requests": {"cpu": "50m"}}}]
    p["spec"]["overhead"] = {"cpu": "10m"}
    # containers 300m + sidecar 50m = 350m; init 1000m (before the sidecar starts) -> max 1000m; + overhead
    assert pod_requests(p) == {"cpu": 1010, "memory": 2**20}
    assert non_zero_requests(pod("q")) == (100, 200 * 2**20)


TOLERATION_CASES = [
    ({"key": "k", "operator": "Exists"}, {"key": "k", "value": "v", "effect": "NoSchedule"}, True),
    ({"operator": "Exists"}, {"key": "any", "effect": "NoExecute"}, True),
    ({"key": "k", "value": "v"}, {"key": "k", "value": "v", "effect": "NoSchedule"}, True),
    ({"key": "k", "value": "w"}, {"key": "k", "value": "v", "effect": "NoSchedule"}, False),
    ({"key": "k", "operator": "Exists", "effect": "NoExecute"}, {"key": "k", "effect": "NoSchedule"}, False),
    ({"key": "other", "operator": "Exists"}, {"key": "k", "effect": "NoSchedule"}, False),
]


@pytest.mark.parametrize(("toleration", "taint", "expected"), TOLERATION_CASES)
def test_tolerates(toleration: Obj, taint: Obj, expected: bool) -> None:
    assert tolerates(toleration, taint) is expected


@pytest.mark.parametrize(("requirement", "expected"), [
    ({"key": "zone", "operator": "In", "values": ["a", "b"]}, True),
    ({"key": "zone", "operator": "NotIn", "values": ["a"]}, False),
    ({"key": "zone", "operator": "Exists"}, True),
    ({"key": "gpu", "operator": "DoesNotExist"}, True),
    ({"key": "cores", "operator": "Gt", "values": ["4"]}, True),
    ({"key": "cores", "operator": "Lt", "values": ["4"]}, False),
    ({"key": "zone", "operator": "Bogus"}, False),
])
def test_requirement_matches(requirement: Obj, expected: bool) -> None:
    assert requirement_matches(requirement, {"zone": "a", "cores": "8"}) is expected


def test_node_selector_term_fields_and_empty() -> None:
    term = {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n1"]}]}
    assert node_selector_term_matches(term, {}, "n1")
    assert not node_selector_term_matches(term, {}, "n2")
    assert not node_selector_term_matches({}, {"a": "b"}, "n1")


NODE_AFFINITY = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
    {"matchExpressions": [{"key": "disk", "operator": "In", "values": ["ssd"]}]}]}}}
TAINT = {"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}

FILTER_CASES: list[tuple[str, Obj, Obj, list[Obj], tuple[str, ...]]] = [
    ("fits", pod("p", cpu="1"), node("n"), [], ()),
    ("node name", pod("p", node_name="other"), node("n"), [], ("node(s) didn't match the requested node name",)),
    ("node selector", pod("p", nodeSelector={"disk": "ssd"}), node("n"), [],
     ("node(s) didn't match Pod's node affinity/selector",)),
    ("node selector ok", pod("p", nodeSelector={"disk": "ssd"}), node("n", labels={"disk": "ssd"}), [], ()),
    ("required affinity", pod("p", affinity=NODE_AFFINITY), node("n", labels={"disk": "hdd"}), [],
     ("node(s) didn't match Pod's node affinity/selector",)),
    ("required affinity ok", pod("p", affinity=NODE_AFFINITY), node("n", labels={"disk": "ssd"}), [], ()),
    ("taint", pod("p"), node("n", taints=[TAINT]), [], ("node(s) had untolerated taint {dedicated: gpu}",)),
    ("tolerated", pod("p", tolerations=[{"key": "dedicated", "operator": "Exists"}]), node("n", taints=[TAINT]),
     [], ()),
    ("prefer no schedule ignored", pod("p"), node("n", taints=[{"key": "x", "effect": "PreferNoSchedule"}]), [], ()),
    ("unschedulable", pod("p"), node("n", unschedulable=True), [], ("node(s) were unschedulable",)),
    ("unschedulable tolerated", pod("p", tolerations=[{"key": "node.kubernetes.io/unschedulable",
                                                       "operator": "Exists", "effect": "NoSchedule"}]),
     node("n", unschedulable=True), [], ()),
    ("cpu", pod("p", cpu="3"), node("n", cpu="4"), [pod("b", cpu="2")], ("Insufficient cpu",)),
    ("cpu and memory", pod("p", cpu="5", memory="9Gi"), node("n"), [], ("Insufficient cpu", "Insufficient memory")),
    ("exact fit", pod("p", cpu="2"), node("n", cpu="4"), [pod("b", cpu="2")], ()),
    ("too many pods", pod("p"), node("n", pods=1), [pod("b")], ("Too many pods",)),
    ("extended resource", pod("p", cpu=""), node("n"), [], ()),
    ("host port", pod("p", containers=[{"name": "c", "ports": [{"containerPort": 80, "hostPort": 8080}]}]),
     node("n"), [pod("b", containers=[{"name": "c", "ports": [{"containerPort": 80, "hostPort": 8080}]}])],
     ("node(s) didn't have free ports for the requested pod ports",)),
    ("host port other protocol", pod("p", containers=[{"name": "c", "ports": [
        {"containerPort": 80, "hostPort": 8080, "protocol": "UDP"}]}]),
     node("n"), [pod("b", containers=[{"name": "c", "ports": [{"containerPort": 80, "hostPort": 8080}]}])], ()),
    # the first failing filter decides: a taint is reported even though cpu is short too
    ("first filter wins", pod("p", cpu="64"), node("n", taints=[TAINT]), [],
     ("node(s) had untolerated taint {dedicated: gpu}",)),
]


@pytest.mark.parametrize(("incoming", "n", "bound", "reasons"), [c[1:] for c in FILTER_CASES],
                         ids=[c[0] for c in FILTER_CASES])
def test_filters(incoming: Obj, n: Obj, bound: list[Obj], reasons: tuple[str, ...]) -> None:
    assert run_filters(Cycle.of(PodInfo.of(incoming)), info_for(n, *bound)) == reasons


def test_extended_resources_must_be_allocatable() -> None:
    p = pod("p")
    p["spec"]["containers"][0]["resources"] = {"requests": {"example.com/gpu": "1"}}
    assert run_filters(Cycle.of(PodInfo.of(p)), info_for(node("n"))) == ("Insufficient example.com/gpu",)
    gpu_node = node("g")
    gpu_node["status"]["allocatable"]["example.com/gpu"] = "2"
    assert run_filters(Cycle.of(PodInfo.of(p)), info_for(gpu_node)) == ()


def test_fit_error_message_is_kube_schedulers() -> None:
    message = fit_error_message(3, {"Insufficient cpu": 2, "node(s) had untolerated taint {a: }": 1})
    assert message == "0/3 nodes are available: 1 node(s) had untolerated taint {a: }, 2 Insufficient cpu."
    assert fit_error_message(0, {}) == NO_NODES


def cache_with(*nodes: Obj, bound: tuple[Obj, ...] = ()) -> SchedulerCache:
    cache = SchedulerCache()
    for n in nodes:
        cache.set_node(n)
    for p in bound:
        cache.update_pod(p)
    return cache


def test_find_node_unschedulable_message() -> None:
    cache = cache_with(node("a", cpu="1"), node("b", cpu="1"), node("c", taints=[TAINT]))
    decision = find_node(PodInfo.of(pod("big", cpu="2")), cache)
    assert decision.node == ""
    assert decision.message == ("0/3 nodes are available: 1 node(s) had untolerated taint {dedicated: gpu}, "
                                "2 Insufficient cpu.")
    assert find_node(PodInfo.of(pod("p")), SchedulerCache()).message == NO_NODES


def test_cache_accounting_assume_forget_and_terminal() -> None:
    cache = cache_with(node("a", cpu="1"))
    info = PodInfo.of(pod("p", cpu="1"))
    cache.assume(info, "a")
    assert find_node(PodInfo.of(pod("q", cpu="1")), cache).node == ""
    cache.update_pod(pod("p", cpu="1"))  # a stale unbound version does not drop the assumption
    assert cache.nodes["a"].requested["cpu"] == 1000
    cache.forget("default/p")
    assert cache.nodes["a"].requested["cpu"] == 0
    bound = pod("p", cpu="1", node_name="a")
    cache.update_pod(bound)
    assert cache.nodes["a"].requested["cpu"] == 1000
    bound["status"]["phase"] = "Succeeded"
    cache.update_pod(bound)
    assert cache.nodes["a"].requested["cpu"] == 0 and not cache.nodes["a"].pods


def zone_nodes() -> tuple[Obj, ...]:
    return (node("a1", labels={"zone": "a"}), node("a2", labels={"zone": "a"}), node("b1", labels={"zone": "b"}))


def affinity(kind: str, labels: dict[str, str], key: str = "zone", required: bool = True, weight: int = 10) -> Obj:
    term = {"labelSelector": {"matchLabels": labels}, "topologyKey": key}
    if required:
        return {kind: {"requiredDuringSchedulingIgnoredDuringExecution": [term]}}
    return {kind: {"preferredDuringSchedulingIgnoredDuringExecution": [{"weight": weight, "podAffinityTerm": term}]}}


def feasible(p: Obj, cache: SchedulerCache) -> set[str]:
    info = PodInfo.of(p)
    nodes = cache.ready_nodes()
    cycle = Cycle.of(info, podaffinity.prepare(info, nodes, cache.anti_affine_pods()))
    return {n.name for n in nodes if not run_filters(cycle, n)}


POD_AFFINITY_CASES = [
    ("affinity follows the zone", affinity("podAffinity", {"app": "db"}), [("db", {"app": "db"}, "a1")],
     {"a1", "a2"}),
    ("anti-affinity avoids the zone", affinity("podAntiAffinity", {"app": "db"}), [("db", {"app": "db"}, "a1")],
     {"b1"}),
    ("hostname anti-affinity", affinity("podAntiAffinity", {"app": "db"}, key="kubernetes.io/hostname"),
     [("db", {"app": "db"}, "a1")], {"a2", "b1"}),
    ("no match anywhere", affinity("podAffinity", {"app": "cache"}), [("db", {"app": "db"}, "a1")], set()),
    ("other namespace does not count", affinity("podAffinity", {"app": "db"}),
     [("db", {"app": "db"}, "a1", "other")], set()),
]


@pytest.mark.parametrize(("spec_affinity", "existing", "expected"), [c[1:] for c in POD_AFFINITY_CASES],
                         ids=[c[0] for c in POD_AFFINITY_CASES])
def test_pod_affinity(spec_affinity: Obj, existing: list[tuple[Any, ...]], expected: set[str]) -> None:
    bound = tuple(pod(e[0], labels=e[1], node_name=e[2], namespace=e[3] if len(e) > 3 else "default")
                  for e in existing)
    cache = cache_with(*zone_nodes(), bound=bound)
    assert feasible(pod("p", labels={"app": "web"}, affinity=spec_affinity), cache) == expected


def test_first_pod_of_a_self_affine_group_goes_anywhere() -> None:
    cache = cache_with(*zone_nodes())
    p = pod("p", labels={"app": "web"}, affinity=affinity("podAffinity", {"app": "web"}))
    assert feasible(p, cache) == {"a1", "a2", "b1"}


def test_existing_pods_anti_affinity_is_symmetric() -> None:
    guard = pod("guard", labels={"app": "guard"}, node_name="a1",
                affinity=affinity("podAntiAffinity", {"app": "web"}))
    cache = cache_with(*zone_nodes(), bound=(guard,))
    assert feasible(pod("p", labels={"app": "web"}), cache) == {"b1"}
    assert feasible(pod("q", labels={"app": "other"}), cache) == {"a1", "a2", "b1"}
    decision = find_node(PodInfo.of(pod("r", labels={"app": "web"}, nodeSelector={"zone": "a"})), cache)
    assert decision.message == ("0/3 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, "
                                "2 node(s) didn't satisfy existing pods anti-affinity rules.")


def test_find_node_is_deterministic_with_a_seeded_rng() -> None:
    cache = cache_with(node("a"), node("b"))
    first = find_node(PodInfo.of(pod("p")), cache, random.Random(1)).node
    assert first == find_node(PodInfo.of(pod("p")), cache, random.Random(1)).node


@pytest.mark.parametrize(("total", "wanted"), [(3, 3), (99, 99), (100, 100), (500, 230), (1000, 420),
                                               (5000, 500), (10000, 500)])
def test_nodes_to_find(total: int, wanted: int) -> None:
    assert nodes_to_find(total) == wanted


def test_filtering_stops_early_and_rotates() -> None:
    cache = cache_with(*(node(f"n{i:03d}") for i in range(300)))
    first = find_node(PodInfo.of(pod("p")), cache, random.Random(0))
    assert first.feasible == nodes_to_find(300) == 144 and cache.next_start == 144
    find_node(PodInfo.of(pod("q")), cache, random.Random(0))
    assert cache.next_start == 288
    decision = find_node(PodInfo.of(pod("big", cpu="64")), cache)
    assert decision.message == "0/300 nodes are available: 300 Insufficient cpu."
