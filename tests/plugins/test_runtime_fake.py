"""The fake container runtime: instant containers, exit annotations, unique pod IPs."""

from __future__ import annotations

import asyncio

from kapi_plugins import runtime_fake


def pod(uid: str, **annotations: str) -> dict[str, object]:
    return {"metadata": {"name": uid, "uid": uid, "annotations": annotations}}


def test_hook_kapi_container_runtime_answers_only_fake() -> None:
    assert runtime_fake.kapi_container_runtime("process") is None
    assert isinstance(runtime_fake.kapi_container_runtime("fake"), runtime_fake.FakeRuntime)


async def test_containers_run_until_stopped() -> None:
    runtime = runtime_fake.FakeRuntime()
    container = await runtime.start_container(pod("a"), {"name": "c", "image": "nginx"}, env={}, log_path="/x")
    assert container.id.startswith("fake://") and container.image_id.startswith("nginx@sha256:")
    waiter = asyncio.create_task(container.wait())
    await asyncio.sleep(0.01)
    assert not waiter.done()
    assert await container.stop(30) == 0
    assert await waiter == 0


async def test_exit_annotations() -> None:
    runtime = runtime_fake.FakeRuntime()
    spec = pod("a", **{runtime_fake.EXIT_AFTER: "0.01", runtime_fake.EXIT_CODE: "3"})
    container = await runtime.start_container(spec, {"name": "c", "image": "x"}, env={}, log_path="/x")
    assert await asyncio.wait_for(container.wait(), 1) == 3


async def test_pod_ips_are_unique_and_reused() -> None:
    runtime = runtime_fake.FakeRuntime()
    ips = [await runtime.run_sandbox(pod(str(i))) for i in range(600)]
    assert len(set(ips)) == 600 and ips[0] == "10.244.0.2" and all(ip.startswith("10.24") for ip in ips)
    assert await runtime.run_sandbox(pod("0")) == ips[0]
    await runtime.stop_sandbox(pod("0"))
    assert await runtime.run_sandbox(pod("new")) == ips[0]
