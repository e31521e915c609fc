"""Scheduler scoring and queue (table-driven, pure)."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest

from kapi.components.scheduler import podaffinity, scoring
from kapi.components.scheduler.algorithm import find_node
from kapi.components.scheduler.cache import SchedulerCache
from kapi.components.scheduler.filters import Cycle
from kapi.components.scheduler.queue import SchedulingQueue
from kapi.components.scheduler.resources import NodeInfo, PodInfo

from .objects import node, pod

Obj = dict[str, Any]


def info_for(n: Obj, *bound: Obj) -> NodeInfo:
    info = NodeInfo(n["metadata"]["name"])
    info.set_node(n)
    for p in bound:
        info.add_pod(PodInfo.of(p))
    return info


def cycle(p: Obj) -> Cycle:
    return Cycle.of(PodInfo.of(p))


@pytest.mark.parametrize(("bound_cpu", "pod_cpu", "expected"), [
    ("0", "1", ((1 - 1 / 4) * 100 + (1 - 200 / 8192) * 100) / 2),
    ("3", "1", ((1 - 4 / 4) * 100 + (1 - 400 / 8192) * 100) / 2),
])
def test_least_allocated(bound_cpu: str, pod_cpu: str, expected: float) -> None:
    bound = [pod("b", cpu=bound_cpu)] if bound_cpu != "0" else []
    score = scoring.least_allocated(cycle(pod("p", cpu=pod_cpu)), info_for(node("n", cpu="4", memory="8Gi"), *bound))
    assert score == pytest.approx(expected, rel=1e-3)


def test_balanced_allocation_prefers_even_use() -> None:
    p = pod("p", cpu="1", memory="1Gi")
    even = info_for(node("even", cpu="4", memory="4Gi"))
    skewed = info_for(node("skewed", cpu="4", memory="64Gi"))
    assert scoring.balanced_allocation(cycle(p), even) == pytest.approx(100)
    assert scoring.balanced_allocation(cycle(p), skewed) < 100


@pytest.mark.parametrize(("function", "values", "expected"), [
    (scoring.by_max, [0, 5, 10], [0, 50, 100]),
    (scoring.by_max, [0, 0], [0, 0]),
    (scoring.reverse_by_max, [0, 1, 2], [100, 50, 0]),
    (scoring.reverse_by_max, [0, 0], [100, 100]),
    (scoring.min_max, [-10, 0, 10], [0, 50, 100]),
    (scoring.min_max, [3, 3], [0, 0]),
])
def test_normalisers(function: Any, values: list[float], expected: list[float]) -> None:
    assert function([float(v) for v in values]) == [float(e) for e in expected]


PREFERRED = {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
    {"weight": 80, "preference": {"matchExpressions": [{"key": "disk", "operator": "In", "values": ["ssd"]}]}},
    {"weight": 20, "preference": {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}}]}}


def test_preferred_node_affinity_and_taints_decide() -> None:
    cache = SchedulerCache()
    for n in (node("plain"), node("ssd", labels={"disk": "ssd"}), node("both", labels={"disk": "ssd", "zone": "a"})):
        cache.set_node(n)
    assert find_node(PodInfo.of(pod("p", affinity=PREFERRED)), cache, random.Random(0)).node == "both"
    cache = SchedulerCache()
    cache.set_node(node("tainted", taints=[{"key": "x", "effect": "PreferNoSchedule"}]))
    cache.set_node(node("clean"))
    assert {find_node(PodInfo.of(pod(f"p{i}")), cache, random.Random(i)).node for i in range(10)} == {"clean"}


def test_preferred_pod_affinity_scores() -> None:
    cache = SchedulerCache()
    for n in (node("a", labels={"zone": "a"}), node("b", labels={"zone": "b"})):
        cache.set_node(n)
    cache.update_pod(pod("db", labels={"app": "db"}, node_name="b"))
    term = {"weight": 50, "podAffinityTerm": {"labelSelector": {"matchLabels": {"app": "db"}}, "topologyKey": "zone"}}
    p = pod("p", affinity={"podAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [term]}})
    info = PodInfo.of(p)
    state = podaffinity.prepare(info, cache.ready_nodes(), [])
    assert state is not None and scoring.preferred_pod_affinity(Cycle.of(info, state), cache.nodes["b"]) == 50
    assert find_node(info, cache, random.Random(0)).node == "b"
    away = pod("q", affinity={"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [term]}})
    assert find_node(PodInfo.of(away), cache, random.Random(0)).node == "a"


def test_spreads_best_effort_pods() -> None:
    cache = SchedulerCache()
    for name in ("a", "b"):
        cache.set_node(node(name))
    rng = random.Random(3)
    for i in range(6):
        info = PodInfo.of(pod(f"p{i}"))
        cache.assume(info, find_node(info, cache, rng).node)
    assert len(cache.nodes["a"].pods) == len(cache.nodes["b"].pods) == 3


def test_select_host_breaks_ties_randomly() -> None:
    nodes = [NodeInfo(n) for n in "abc"]
    picks = {scoring.select_host(nodes, [1.0, 1.0, 0.5], random.Random(seed)).name for seed in range(30)}
    assert picks == {"a", "b"}


async def test_queue_orders_by_priority_then_age() -> None:
    queue = SchedulingQueue()
    old = pod("old")
    young = pod("young")
    young["metadata"]["creationTimestamp"] = "2025-01-01T00:00:00Z"
    urgent = pod("urgent", priority=100)
    urgent["metadata"]["creationTimestamp"] = "2026-01-01T00:00:00Z"
    for p in (young, old, urgent):
        queue.add(p)
    order = [(await queue.pop())["metadata"]["name"] for _ in range(3)]
    assert order == ["urgent", "old", "young"]


async def test_queue_parks_and_reactivates_after_backoff() -> None:
    queue = SchedulingQueue(initial_backoff=0.05, max_backoff=0.1)
    p = pod("p")
    queue.add(p)
    assert await queue.pop() is p
    queue.park(p)
    assert queue.parked == {"default/p"} and queue.active_count == 0
    queue.move_all_to_active()
    assert (await asyncio.wait_for(queue.pop(), 1))["metadata"]["name"] == "p"
    queue.park(p)
    changed = pod("p", nodeSelector={"a": "b"})
    queue.add(changed)  # a spec change reactivates
    assert await asyncio.wait_for(queue.pop(), 1) is changed
    queue.park(changed)
    queue.delete("default/p")
    queue.move_all_to_active()
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(queue.pop(), 0.2)


async def test_queue_flushes_stale_parked_pods() -> None:
    queue = SchedulingQueue(initial_backoff=0.01, max_backoff=0.01, max_parked=0.0)
    p = pod("p")
    queue.add(p)
    await queue.pop()
    queue.park(p)
    queue.flush_stale()
    assert await asyncio.wait_for(queue.pop(), 1) is p
