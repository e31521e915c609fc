"""``pods/NAME/log`` through the API server, proxied to a real kubelet endpoint over mutual TLS."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

import pytest
from tls_server import free_port, tls_server

from kapi.client import ApiError, Client, path_for
from kapi.components.kubelet.server import KubeletServer, serve_https
from kapi.components.kubelet.tls import serving_files
from kapi.rest.logs import choose_container, kubelet_endpoint
from kapi_plugins.runtime_process import ProcessRuntime

from .test_kubelet_live import _phase, bound_pod, eventually, running_fleet

pytestmark = pytest.mark.timeout(40)

PODS = path_for("", "v1", "pods", "default")


@pytest.mark.parametrize(("spec", "wanted", "result"), [
    ({"containers": [{"name": "a"}]}, "", "a"),
    ({"containers": [{"name": "a"}, {"name": "b"}]}, "b", "b"),
    ({"containers": [{"name": "a"}], "initContainers": [{"name": "i"}]}, "i", "i"),
    ({"containers": [{"name": "a"}, {"name": "b"}], "initContainers": [{"name": "i"}]}, "",
     "a container name must be specified for pod p, choose one of: [a b] or one of the init containers: [i]"),
    ({"containers": [{"name": "a"}]}, "zz", "container zz is not valid for pod p"),
])
def test_choose_container(spec: dict[str, Any], wanted: str, result: str) -> None:
    pod = {"metadata": {"name": "p"}, "spec": spec}
    if " " in result:
        with pytest.raises(Exception, match=result.replace("[", r"\[").replace("]", r"\]")):
            choose_container(pod, wanted)
    else:
        assert choose_container(pod, wanted) == result


def test_kubelet_endpoint() -> None:
    node = {"status": {"addresses": [{"type": "Hostname", "address": "n"}, {"type": "InternalIP",
                                                                           "address": "10.0.0.5"}],
                       "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}}}}
    assert kubelet_endpoint(node) == "https://10.0.0.5:10250"


async def text(client: Client, path: str, **params: Any) -> str:
    return b"".join([chunk async for chunk in client.stream(path, **params)]).decode()


async def test_pod_log_proxied_to_the_kubelet(tmp_path: Path) -> None:
    port = free_port()
    async with tls_server(tmp_path) as srv, \
            running_fleet(srv, tmp_path, ProcessRuntime(), ["p-0"], port=port) as (fleet, client):
        cert, key = serving_files(tmp_path / "kubelet", ["p-0"], "127.0.0.1", pki_dir=str(srv.pki))
        stop = asyncio.Event()
        serving = asyncio.create_task(serve_https(KubeletServer(fleet.lookup, fleet.pods).asgi(), host="127.0.0.1",
                                                  port=port, cert_file=cert, key_file=key,
                                                  client_ca_file=str(srv.pki / "ca.crt"), shutdown=stop.wait))
        try:
            script = "echo one; echo two; echo three; sleep 0.5; echo four; sleep 60"
            await client.create(PODS, bound_pod("talker", "p-0", {"name": "c", "image": "busybox",
                                                                   "command": ["sh", "-c", script]}))
            await eventually(lambda: _phase(client, "talker", "Running"))
            log_path = f"{PODS}/talker/log"

            async def has_three() -> bool:
                return "three" in await text(client, log_path)

            await eventually(has_three)
            assert (await text(client, log_path, tailLines=1)).startswith(("three\n", "four\n"))
            followed = ""
            async with contextlib.aclosing(client.stream(log_path, follow="true")) as stream:
                async for chunk in stream:
                    followed += chunk.decode()
                    if "four" in followed:
                        break
            assert followed.startswith("one\ntwo\nthree\n")
            await client.create(PODS, bound_pod("pending", "", {"name": "c", "image": "busybox"}))
            assert await text(client, f"{PODS}/pending/log") == ""
            with pytest.raises(ApiError) as bad:
                await text(client, log_path, container="nope")
            assert bad.value.code == 400 and bad.value.message == "container nope is not valid for pod talker"
            with pytest.raises(ApiError) as previous:
                await text(client, log_path, previous="true")
            assert previous.value.code == 400 and "previous terminated container" in previous.value.message
        finally:
            stop.set()
            await asyncio.gather(serving, return_exceptions=True)


