"""flowcontrol_apf: fair queuing per user. The flood test shows a well-behaved client keeping its
latency while another client floods the server; without the plugin it is turned away with 429s."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

import kapi
from kapi.testing.plugins import client_for, make_test_app, running
from kapi_plugins import flowcontrol_apf
from kapi_plugins.flowcontrol_apf import PriorityLevel, Rejected, classify

CM = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"generateName": "cm-"}}
WORK = 0.03  # seconds each create takes (a slow admission plugin)


class Slow:
    @kapi.hookimpl
    async def kapi_validate_admission(self, request: kapi.AdmissionRequest) -> None:
        if request.resource == "configmaps":
            await asyncio.sleep(WORK)


def flood_app(**apf: Any) -> kapi.App:
    return make_test_app(plugins=[("flowcontrol_apf", flowcontrol_apf), ("slow", Slow())], admission=("slow",),
                         max_mutating_requests_inflight=1, plugin_options={"flowcontrol_apf": apf})


async def flood(app: kapi.App, noisy_requests: int = 30, polite_requests: int = 5) -> tuple[list[float], list[int],
                                                                                             list[int]]:
    """(polite latencies, polite codes, noisy codes) while "noisy" floods and "polite" asks one at a time."""
    async with running(app), client_for(app, user="noisy") as noisy, client_for(app, user="polite") as polite:
        flood_tasks = [asyncio.ensure_future(noisy.post("/api/v1/namespaces/default/configmaps", json=CM))
                       for _ in range(noisy_requests)]
        await asyncio.sleep(WORK)  # the flood is queued
        latencies, codes = [], []
        for _ in range(polite_requests):
            started = time.perf_counter()
            response = await polite.post("/api/v1/namespaces/default/configmaps", json=CM)
            latencies.append(time.perf_counter() - started)
            codes.append(response.status_code)
        noisy_codes = [r.status_code for r in await asyncio.gather(*flood_tasks)]
    return latencies, codes, noisy_codes


async def test_a_polite_client_keeps_its_latency_during_a_flood() -> None:
    started = time.perf_counter()
    latencies, codes, noisy_codes = await flood(flood_app(seats=2))
    flood_time = time.perf_counter() - started
    assert codes == [201] * 5 and noisy_codes == [201] * 30  # everyone is served, nobody rejected
    # one seat for workloads: a polite request waits for at most the request in its seat and one noisy turn
    # (~2 x WORK), while the flood takes 30 x WORK = 0.9 s to drain; FIFO would make it wait for the whole flood
    assert flood_time > 30 * WORK
    assert max(latencies) < min(10 * WORK, flood_time / 3), (latencies, flood_time)


async def test_without_fair_queuing_the_polite_client_is_turned_away() -> None:
    _, codes, noisy_codes = await flood(flood_app(enabled=False))
    assert 429 in codes and 429 in noisy_codes  # the max-inflight limit rejects whoever comes while it is full


async def test_a_full_queue_answers_429_with_retry_after() -> None:
    app = flood_app(seats=2, queue_length=2)
    async with running(app), client_for(app, user="noisy") as noisy:
        responses = await asyncio.gather(*[noisy.post("/api/v1/namespaces/default/configmaps", json=CM)
                                           for _ in range(8)])
    rejected = [r for r in responses if r.status_code == 429]
    assert len(rejected) == 5 and sum(r.status_code == 201 for r in responses) == 3
    assert rejected[0].headers["retry-after"] == "1" and rejected[0].json()["reason"] == "TooManyRequests"
    assert "queued at priority level 'workload'" in rejected[0].json()["message"]
    served = next(r for r in responses if r.status_code == 201)
    assert served.headers["x-kubernetes-pf-prioritylevel-uid"] == "workload"


async def test_queue_wait_is_bounded() -> None:
    app = flood_app(seats=2, queue_wait=WORK / 3)
    async with running(app), client_for(app, user="noisy") as noisy:
        codes = [r.status_code for r in await asyncio.gather(
            *[noisy.post("/api/v1/namespaces/default/configmaps", json=CM) for _ in range(3)])]
    assert sorted(codes) == [201, 429, 429]


async def test_admins_and_watches_are_not_queued() -> None:
    app = flood_app(seats=2)
    async with running(app), client_for(app) as admin:
        response = await admin.post("/api/v1/namespaces/default/configmaps", json=CM)
        assert "x-kubernetes-pf-prioritylevel-uid" not in response.headers  # exempt
    levels = app.plugin_state("flowcontrol_apf")["levels"]
    assert {name: level.seats for name, level in levels.items()} == {"system": 1, "workload": 1}


@pytest.mark.parametrize(("user", "level"), [
    (kapi.UserInfo("admin", groups=("system:masters",)), "exempt"),
    (kapi.UserInfo("system:node:n1", groups=("system:nodes",)), "system"),
    (kapi.UserInfo("system:kube-scheduler"), "system"),
    (kapi.UserInfo("system:serviceaccount:kube-system:x", groups=("system:serviceaccounts:kube-system",)), "system"),
    (kapi.UserInfo("alice", groups=("dev",)), "workload"),
])
def test_classify(user: kapi.UserInfo, level: str) -> None:
    assert classify(user) == level


async def test_round_robin_between_flows() -> None:
    level = PriorityLevel("workload", seats=1, queue_length=10, queue_wait=5)
    order: list[str] = []

    async def request(flow: str, tag: str) -> None:
        await level.acquire(flow)
        order.append(tag)
        await asyncio.sleep(0)
        level.release()

    await level.acquire("holder")
    tasks = [asyncio.ensure_future(request("a", f"a{i}")) for i in range(4)]
    await asyncio.sleep(0)
    tasks.append(asyncio.ensure_future(request("b", "b0")))
    await asyncio.sleep(0)
    level.release()
    await asyncio.gather(*tasks)
    assert order == ["a0", "b0", "a1", "a2", "a3"]
    assert level.executing == 0 and not level.queues and not level.turns


async def test_a_cancelled_waiter_gives_up_its_place() -> None:
    level = PriorityLevel("workload", seats=1, queue_wait=5)
    await level.acquire("a")
    waiter = asyncio.ensure_future(level.acquire("b"))
    await asyncio.sleep(0)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert not level.queues and not level.turns
    level.release()
    assert level.executing == 0
    full = PriorityLevel("x", seats=1, queue_length=0)
    await full.acquire("a")
    with pytest.raises(Rejected):
        await full.acquire("a")


# -- the same through real clients over TLS: the official client in threads, one user per kubeconfig --

from concurrent.futures import ThreadPoolExecutor  # noqa: E402

from kapi.testing.inprocess import KapiServer  # noqa: E402
from kapi.testing.pytest_plugin import kapi_components, kapi_pki  # noqa: E402, F401
from kapi.testing.pytest_plugin import kapi_server as kapi_server  # noqa: E402


@pytest.fixture
def kapi_plugins() -> list[tuple[str, Any]]:
    return [("flowcontrol_apf", flowcontrol_apf), ("slow", Slow())]


@pytest.fixture
def kapi_config() -> kapi.Config:
    return kapi.Config(storage_backend="memory", authenticators=("x509",), admission=("slow",),
                       max_requests_inflight=1, max_mutating_requests_inflight=1,
                       plugin_options={"flowcontrol_apf": {"queue_length": 100}})


def test_real_clients_polite_latency_during_a_flood(kapi_server: KapiServer) -> None:
    from kubernetes import client, config

    def api_for(user: str) -> Any:
        configuration = client.Configuration()
        config.load_kube_config(config_file=str(kapi_server.kubeconfig_for(user)), client_configuration=configuration)
        configuration.connection_pool_maxsize = 32
        return client.ApiClient(configuration)

    noisy, polite = api_for("noisy"), api_for("polite")
    body = {"metadata": {"generateName": "cm-"}}
    client.CoreV1Api(polite).list_namespace()  # connect (TLS handshake) before measuring
    try:
        with ThreadPoolExecutor(24) as pool:
            list(pool.map(lambda _: client.CoreV1Api(noisy).list_namespace(), range(48)))  # open its connections
            flood = [pool.submit(client.CoreV1Api(noisy).create_namespaced_config_map, "default", body)
                     for _ in range(24)]
            time.sleep(3 * WORK)
            latencies = []
            for _ in range(4):
                started = time.perf_counter()
                client.CoreV1Api(polite).create_namespaced_config_map("default", body)
                latencies.append(time.perf_counter() - started)
            flood_done = [f.result(30) for f in flood]
            remaining = sum(1 for f in flood if f.done())
    finally:
        for api in (noisy, polite):
            api.close()
            api.rest_client.pool_manager.clear()
    assert len(flood_done) == remaining == 24
    assert max(latencies) < 12 * WORK, latencies  # the flood (24 x WORK on one seat) is still draining meanwhile
