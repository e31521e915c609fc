"""Kubelets against a real API server over mutual TLS: registration, Lease, pods run through the
fake and process runtimes, status, restarts, graceful deletion, and the HTTPS log endpoint."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from tls_server import TLSServer, tls_server

from kapi.client import ApiError, Client, path_for
from kapi.components.kubelet.fleet import Fleet
from kapi.components.kubelet.kubelet import Kubelet
from kapi.components.kubelet.node import NodeConfig
from kapi.components.kubelet.server import KubeletServer, serve_https
from kapi.components.kubelet.tls import serving_files
from kapi.components.kubelet.worker import NodeContext
from kapi_certs import cert_pem, files_of, issue, key_pem, load_cert, load_key
from kapi_plugins.runtime_fake import FakeRuntime
from kapi_plugins.runtime_process import ProcessRuntime

pytestmark = pytest.mark.timeout(40)

Obj = dict[str, Any]
PODS = path_for("", "v1", "pods", "default")


async def eventually(check: Callable[[], Awaitable[Any]], timeout: float = 8) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = await check()
        if result:
            return result
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


def bound_pod(name: str, node: str, *containers: Obj, **spec: Any) -> Obj:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"nodeName": node, "containers": list(containers) or [{"name": "c", "image": "nginx"}],
                     "terminationGracePeriodSeconds": 2, **spec}}


@contextlib.asynccontextmanager
async def running_fleet(srv: TLSServer, tmp_path: Path, runtime: Any, names: list[str],
                        port: int = 0) -> AsyncIterator[tuple[Fleet, Client]]:
    client = Client.from_kubeconfig(srv.admin_kubeconfig)
    kubelets = {n: Kubelet(client, NodeConfig(name=n, port=port, runtime_version="test://1"),
                           NodeContext(client, runtime, n, "127.0.0.1", str(tmp_path / "kubelet"), (0.1, 0.4)),
                           lease_interval=0.2)
                for n in names}
    fleet = Fleet(client, kubelets)
    task = asyncio.create_task(fleet.run())
    try:
        await eventually(lambda: _nodes_ready(client, names))
        yield fleet, client
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await client.aclose()


async def _nodes_ready(client: Client, names: list[str]) -> bool:
    nodes = (await client.list(path_for("", "v1", "nodes")))["items"]
    return {n["metadata"]["name"] for n in nodes} >= set(names)


async def _pod(client: Client, name: str) -> Obj:
    return await client.get(f"{PODS}/{name}")


async def _phase(client: Client, name: str, wanted: str) -> Obj | None:
    pod = await _pod(client, name)
    return pod if pod.get("status", {}).get("phase") == wanted else None


async def _gone(client: Client, name: str) -> bool:
    try:
        await _pod(client, name)
    except ApiError as exc:
        return exc.not_found
    return False


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[TLSServer]:
    async with tls_server(tmp_path) as srv:
        yield srv


async def test_fake_nodes_register_and_run_pods(server: TLSServer, tmp_path: Path) -> None:
    async with running_fleet(server, tmp_path, FakeRuntime(), ["f-0", "f-1"]) as (_fleet, client):
        node = await client.get(path_for("", "v1", "nodes", "", "f-0"))
        assert node["status"]["nodeInfo"]["containerRuntimeVersion"] == "test://1"
        assert {c["type"]: c["status"] for c in node["status"]["conditions"]}["Ready"] == "True"
        lease = await eventually(lambda: client.get(path_for("coordination.k8s.io", "v1", "leases",
                                                             "kube-node-lease", "f-1")))
        assert lease["spec"]["holderIdentity"] == "f-1" and lease["spec"]["leaseDurationSeconds"] == 40
        first_renew = lease["spec"]["renewTime"]
        await eventually(lambda: _renewed(client, "f-1", first_renew))
        await client.create(PODS, bound_pod("a", "f-0"))
        await client.create(PODS, bound_pod("b", "f-1"))
        a = await eventually(lambda: _phase(client, "a", "Running"))
        b = await eventually(lambda: _phase(client, "b", "Running"))
        assert a["status"]["podIP"] != b["status"]["podIP"] and a["status"]["podIP"].startswith("10.24")
        assert {c["type"]: c["status"] for c in a["status"]["conditions"]} == {
            "PodReadyToStartContainers": "True", "Initialized": "True", "Ready": "True", "ContainersReady": "True",
            "PodScheduled": "True"}
        [status] = a["status"]["containerStatuses"]
        assert status["ready"] and status["containerID"].startswith("fake://") and status["restartCount"] == 0
        assert status["imageID"].startswith("nginx@sha256:") and a["status"]["startTime"]
        # graceful deletion: the object stays until the kubelet stopped the containers
        await client.delete(f"{PODS}/a")
        assert await eventually(lambda: _gone(client, "a"))


async def _renewed(client: Client, node: str, before: str) -> bool:
    lease = await client.get(path_for("coordination.k8s.io", "v1", "leases", "kube-node-lease", node))
    return bool(lease["spec"]["renewTime"] != before)


async def test_fake_job_like_pod_completes(server: TLSServer, tmp_path: Path) -> None:
    async with running_fleet(server, tmp_path, FakeRuntime(), ["f-0"]) as (_fleet, client):
        pod = bound_pod("job", "f-0", restartPolicy="Never")
        pod["metadata"]["annotations"] = {"fake.kapi.io/exit-after": "0.1", "fake.kapi.io/exit-code": "0"}
        await client.create(PODS, pod)
        done = await eventually(lambda: _phase(client, "job", "Succeeded"))
        terminated = done["status"]["containerStatuses"][0]["state"]["terminated"]
        assert terminated["exitCode"] == 0 and terminated["reason"] == "Completed"


async def test_process_runtime_exit_codes_restarts_env_and_deletion(server: TLSServer, tmp_path: Path) -> None:
    async with running_fleet(server, tmp_path, ProcessRuntime(), ["p-0"]) as (fleet, client):
        await client.create(path_for("", "v1", "configmaps", "default"),
                            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"},
                             "data": {"word": "bird"}})
        env = [{"name": "WORD", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "word"}}},
               {"name": "ME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]
        await client.create(PODS, bound_pod("once", "p-0", {"name": "c", "image": "busybox", "env": env,
                                                             "command": ["sh", "-c", "echo $(WORD) $ME; exit 3"]},
                                            restartPolicy="Never"))
        failed = await eventually(lambda: _phase(client, "once", "Failed"))
        terminated = failed["status"]["containerStatuses"][0]["state"]["terminated"]
        assert terminated["exitCode"] == 3 and terminated["reason"] == "Error"
        worker = fleet.lookup("default", "once")
        assert worker is not None
        assert Path(worker.log_path("c", 0)).read_text() == "bird once\n"

        await client.create(PODS, bound_pod("crash", "p-0", {"name": "c", "image": "busybox",
                                                              "command": ["sh", "-c", "exit 1"]},
                                            restartPolicy="OnFailure"))

        async def restarted() -> Obj | None:
            pod = await _pod(client, "crash")
            statuses = pod.get("status", {}).get("containerStatuses") or [{}]
            return pod if statuses[0].get("restartCount", 0) >= 2 else None

        crash = await eventually(restarted)
        [status] = crash["status"]["containerStatuses"]
        assert status["lastState"]["terminated"]["exitCode"] == 1
        assert crash["status"]["phase"] in ("Running", "Pending")

        await client.create(PODS, bound_pod("sleeper", "p-0", {"name": "c", "image": "busybox",
                                                                "command": ["sleep", "60"]}))
        await eventually(lambda: _phase(client, "sleeper", "Running"))
        sleeper = fleet.lookup("default", "sleeper")
        assert sleeper is not None
        process = sleeper.handles["c"].process  # type: ignore[attr-defined]
        await client.delete(f"{PODS}/sleeper")
        assert await eventually(lambda: _gone(client, "sleeper"))
        assert process.returncode == 128 - 15 or process.returncode == -15


async def test_missing_config_waits(server: TLSServer, tmp_path: Path) -> None:
    async with running_fleet(server, tmp_path, ProcessRuntime(), ["p-0"]) as (_fleet, client):
        env = [{"name": "X", "valueFrom": {"secretKeyRef": {"name": "nope", "key": "k"}}}]
        await client.create(PODS, bound_pod("cfg", "p-0", {"name": "c", "image": "busybox", "env": env}))

        async def waiting() -> Obj | None:
            statuses = (await _pod(client, "cfg")).get("status", {}).get("containerStatuses") or [{}]
            return statuses[0].get("state", {}).get("waiting")

        state = await eventually(waiting)
        assert state == {"reason": "CreateContainerConfigError", "message": 'secret "nope" not found'}


def _tls(ca: Path, cert: Path | None = None, key: Path | None = None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(ca))
    if cert is not None and key is not None:
        ctx.load_cert_chain(str(cert), str(key))
    return ctx


async def test_kubelet_endpoint_serves_logs_to_the_apiserver_only(server: TLSServer, tmp_path: Path) -> None:
    from tls_server import free_port

    port = free_port()
    async with running_fleet(server, tmp_path, ProcessRuntime(), ["p-0"], port=port) as (fleet, client):
        cert, key = serving_files(tmp_path / "kubelet", ["p-0"], "127.0.0.1", pki_dir=str(server.pki))
        stop = asyncio.Event()
        app = KubeletServer(fleet.lookup, fleet.pods).asgi()
        serving = asyncio.create_task(serve_https(app, host="127.0.0.1", port=port, cert_file=cert, key_file=key,
                                                  client_ca_file=str(server.pki / "ca.crt"), shutdown=stop.wait))
        try:
            script = "for i in 1 2 3; do echo line $i; done; sleep 0.3; echo late; sleep 60"
            await client.create(PODS, bound_pod("talker", "p-0", {"name": "c", "image": "busybox",
                                                                   "command": ["sh", "-c", script]}))
            await eventually(lambda: _phase(client, "talker", "Running"))
            ca = server.pki / "ca.crt"
            url = f"https://127.0.0.1:{port}"
            kc_cert, kc_key = files_of(server.pki, "apiserver-kubelet-client")
            async with httpx.AsyncClient(verify=_tls(ca, kc_cert, kc_key), base_url=url) as apiserver:
                await eventually(lambda: _has(apiserver, "/containerLogs/default/talker/c", b"line 3"))
                tail = await apiserver.get("/containerLogs/default/talker/c", params={"tailLines": "2"})
                assert tail.text in ("line 2\nline 3\n", "line 3\nlate\n")
                followed = b""
                async with apiserver.stream("GET", "/containerLogs/default/talker/c",
                                            params={"follow": "true"}) as response:
                    async for chunk in response.aiter_bytes():
                        followed += chunk
                        if b"late" in followed:
                            break
                assert followed.startswith(b"line 1\n")
                missing = await apiserver.get("/containerLogs/default/nobody/c")
                assert missing.status_code == 404
                assert (await apiserver.get("/healthz")).text == "ok"
            node_cert, node_key = _client_pair(server.pki, tmp_path, "system:node:p-0", "system:nodes")
            async with httpx.AsyncClient(verify=_tls(ca, node_cert, node_key), base_url=url) as other:
                assert (await other.get("/containerLogs/default/talker/c")).status_code == 403
            async with httpx.AsyncClient(verify=_tls(ca), base_url=url) as anonymous:
                assert (await anonymous.get("/containerLogs/default/talker/c")).status_code == 401
                assert (await anonymous.get("/healthz")).status_code == 200
        finally:
            stop.set()
            await asyncio.gather(serving, return_exceptions=True)


def _client_pair(pki: Path, out: Path, cn: str, group: str) -> tuple[Path, Path]:
    ca_path, ca_key_path = files_of(pki, "ca")
    cert, key = issue(load_cert(ca_path.read_bytes()), load_key(ca_key_path.read_bytes()), cn=cn, orgs=(group,),
                      client=True)
    (out / "other.crt").write_bytes(cert_pem(cert))
    (out / "other.key").write_bytes(key_pem(key))
    return out / "other.crt", out / "other.key"


async def _has(client: httpx.AsyncClient, path: str, text: bytes) -> bool:
    response = await client.get(path)
    return response.status_code == 200 and text in response.content
