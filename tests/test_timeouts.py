"""--request-timeout: slow requests end with 504 Timeout; watches are not cut by it."""

from __future__ import annotations

import asyncio

import pytest

import kapi
from kapi.testing.plugins import client_for, make_test_app, running
from kapi.timeouts import parse_duration

CM = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "slow"}}


class Slow:
    @kapi.hookimpl
    async def kapi_validate_admission(self) -> None:
        await asyncio.sleep(1)


@pytest.mark.parametrize(("text", "seconds"), [("60", 60), ("1m0s", 60), ("32s", 32), ("500ms", 0.5),
                                               ("1h2m3s", 3723), ("0.25", 0.25)])
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "1x", "s", "1m 0s", "-"])
def test_parse_duration_refuses(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


async def test_slow_requests_time_out_with_504() -> None:
    app = make_test_app(plugins=[("slow", Slow())], admission=("slow",), request_timeout=0.2)
    async with running(app), client_for(app) as client:
        response = await client.post("/api/v1/namespaces/default/configmaps", json=CM)
        assert response.status_code == 504 and response.json()["reason"] == "Timeout"
        assert (await client.get("/api/v1/namespaces")).status_code == 200
        watch = await client.get("/api/v1/namespaces/default/configmaps?watch=1&timeoutSeconds=1")
        assert watch.status_code == 200  # a watch outlives --request-timeout


async def test_the_client_timeout_parameter_can_only_shorten_it() -> None:
    app = make_test_app(plugins=[("slow", Slow())], admission=("slow",), request_timeout=5)
    async with running(app), client_for(app) as client:
        started = asyncio.get_running_loop().time()
        response = await client.post("/api/v1/namespaces/default/configmaps?timeout=200ms", json=CM)
        assert response.status_code == 504 and asyncio.get_running_loop().time() - started < 0.9
        assert (await client.get("/api/v1/namespaces?timeout=soon")).status_code == 400
