"""The controller framework: work queue, expectations, caches with indexes, manager and command helpers."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from kapi.components.controllers.command import kubeconfig_ca, parse_duration
from kapi.components.controllers.credentials import ServiceAccountClients
from kapi.components.controllers.expectations import Expectations
from kapi.components.controllers.gvr import PODS
from kapi.components.controllers.manager import select_controllers, service_accounts
from kapi.components.controllers.objects import int_or_percent, set_condition
from kapi.components.controllers.workqueue import WorkQueue

from .builders import namespace, pod
from .fakes import FakeApi, make_context


async def test_queue_dedups_and_requeues_keys_added_while_processing() -> None:
    queue = WorkQueue()
    queue.add("a")
    queue.add("a")
    queue.add("b")
    assert len(queue) == 2
    assert await queue.get() == "a"
    queue.add("a")  # while processing: not handed out twice
    assert await queue.get() == "b"
    assert queue.get_nowait() is None
    queue.done("a")
    assert await queue.get() == "a"


async def test_queue_delays_and_backoff() -> None:
    queue = WorkQueue(base_delay=0.01, max_delay=0.04)
    queue.add_after("late", 0.05)
    queue.add_after("late", 0.02)  # the earlier time wins
    assert queue.get_nowait() is None and queue.pending_delayed == 1
    assert await asyncio.wait_for(queue.get(), 1) == "late"
    for _ in range(5):
        queue.add_rate_limited("x")
    assert queue.num_requeues("x") == 5
    queue.forget("x")
    assert queue.num_requeues("x") == 0


async def test_queue_shutdown_releases_waiters() -> None:
    queue = WorkQueue()
    waiter = asyncio.create_task(queue.get())
    await asyncio.sleep(0)
    queue.shutdown()
    assert await asyncio.wait_for(waiter, 1) is None
    queue.add("ignored")
    assert len(queue) == 0


def test_expectations() -> None:
    now = [0.0]
    expectations = Expectations(lambda: now[0], ttl=10)
    assert expectations.satisfied("k")
    expectations.expect_creations("k", 2)
    expectations.expect_deletions("k", ["ns/a"])
    assert not expectations.satisfied("k")
    expectations.creation_observed("k", 2)
    assert not expectations.satisfied("k")
    expectations.deletion_observed("k", "ns/a")
    assert expectations.satisfied("k")
    expectations.expect_creations("k", 1)
    now[0] = 11
    assert expectations.satisfied("k")  # expired


def test_cache_indexes_follow_changes() -> None:
    api = FakeApi()
    ctx, _ = make_context(api)
    cache = ctx.informers.cache(PODS)
    cache.add_index("node", lambda p: [p["spec"].get("nodeName", "")])
    api.seed(namespace("a"))
    first, = api.seed(pod("p", ns="a", node="n1"))
    assert [p["metadata"]["name"] for p in cache.by_index("node", "n1")] == ["p"]
    assert [p["metadata"]["name"] for p in cache.by_index("namespace", "a")] == ["p"]
    moved = {**first, "spec": {**first["spec"], "nodeName": "n2"}}
    api.seed(moved)
    assert cache.by_index("node", "n1") == [] and len(cache.by_index("node", "n2")) == 1
    api.remove(moved)
    assert cache.by_index("node", "n2") == [] and cache.by_index("namespace", "a") == []
    assert ctx.informers.cache(PODS) is cache  # shared


def test_select_controllers() -> None:
    everything = select_controllers(["*"])
    assert "deployment" in everything and "garbagecollector" in everything
    assert select_controllers(["*", "-garbagecollector"]) == [n for n in everything if n != "garbagecollector"]
    assert select_controllers(["job", "deployment"]) == ["deployment", "job"]
    with pytest.raises(ValueError, match="unknown controller"):
        select_controllers(["nope"])
    assert service_accounts(["garbagecollector", "job"]) == {"garbagecollector": "generic-garbage-collector",
                                                             "job": "job-controller"}


def test_durations_and_helpers() -> None:
    assert parse_duration("40s") == 40 and parse_duration("1m30s") == 90 and parse_duration("500ms") == 0.5
    assert parse_duration("2") == 2
    with pytest.raises(ValueError):
        parse_duration("5 minutes")
    assert int_or_percent("25%", 10, round_up=True) == 3 and int_or_percent("25%", 10, round_up=False) == 2
    assert int_or_percent(4, 10, round_up=True) == 4
    conditions: list[dict[str, Any]] = [{"type": "A", "status": "True", "reason": "x", "lastTransitionTime": "t0"}]
    assert not set_condition(conditions, {"type": "A", "status": "True", "reason": "x", "lastTransitionTime": "t1"})
    assert set_condition(conditions, {"type": "A", "status": "True", "reason": "y", "lastTransitionTime": "t1"})
    assert conditions[0]["lastTransitionTime"] == "t0"  # same status: the transition time stays


def test_kubeconfig_ca() -> None:
    config = {"current-context": "c", "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u"}}],
              "clusters": [{"name": "k", "cluster": {"certificate-authority-data": "UEVN"}}]}
    assert kubeconfig_ca(config) == "PEM"
    assert kubeconfig_ca({}) == ""


async def test_service_account_clients() -> None:
    api = FakeApi()
    api.seed(namespace("kube-system"))
    made: list[str] = []

    def make(token: str) -> Any:
        made.append(token)
        return api

    accounts = ServiceAccountClients(api, make)  # type: ignore[arg-type]
    clients = await accounts.build({"deployment": "deployment-controller", "replicaset": "replicaset-controller"})
    assert set(clients) == {"deployment", "replicaset"}
    assert [a["metadata"]["name"] for a in api.objects("serviceaccounts")] == ["deployment-controller",
                                                                               "replicaset-controller"]
    assert made == ["token-deployment-controller-1", "token-replicaset-controller-2"]
    assert await clients["deployment"].get("/api/v1/namespaces/kube-system") is not None  # forwards
