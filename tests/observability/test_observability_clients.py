"""Metrics and traces through real clients against the in-process TLS server: kubectl ``get --raw``,
the official client asking for ``X-Kapi-Trace``, and a streaming watch seen by the metrics."""

from __future__ import annotations

import json
import shutil
import ssl
import subprocess
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest

from kapi.testing.inprocess import KapiServer, wait_until


def kubectl(kubeconfig: Path, *args: str) -> str:
    binary = shutil.which("kubectl")
    if binary is None:
        pytest.skip("kubectl is not installed")
    result = subprocess.run([binary, "--kubeconfig", str(kubeconfig), *args], capture_output=True, text=True,
                            timeout=30)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_kubectl_reads_metrics_and_traces(kapi_kubeconfig: Path) -> None:
    kubectl(kapi_kubeconfig, "get", "namespaces")
    metrics = kubectl(kapi_kubeconfig, "get", "--raw", "/metrics")
    assert 'apiserver_request_total{verb="LIST",dry_run="",group="",version="v1",resource="namespaces"' in metrics
    assert 'authentication_attempts{result="success"}' in metrics
    traces = json.loads(kubectl(kapi_kubeconfig, "get", "--raw", "/debug/kapi/traces?limit=2"))
    assert len(traces["items"]) == 2
    items = json.loads(kubectl(kapi_kubeconfig, "get", "--raw", "/debug/kapi/traces?limit=50"))["items"]
    listing = next(t for t in items if t["path"] == "/api/v1/namespaces")  # finished long before this request
    assert listing["user"] == "kubernetes-admin"
    assert listing["steps"][0] == {**listing["steps"][0], "stage": "authenticate", "plugin": "authn_x509",
                                   "outcome": "recognised"}
    assert listing["decision"]["plugin"] == "authz_always_allow"


def test_official_client_gets_the_trace_header(kapi_server: KapiServer) -> None:
    from kubernetes import client, config

    configuration = client.Configuration()
    config.load_kube_config(config_file=str(kapi_server.kubeconfig), client_configuration=configuration)
    with client.ApiClient(configuration, header_name="X-Kapi-Trace", header_value="1") as api:
        _, status, headers = client.CoreV1Api(api).create_namespaced_config_map_with_http_info(
            "default", {"metadata": {"name": "traced"}})
        api.rest_client.pool_manager.clear()
    assert status == 201
    trace = json.loads(headers["X-Kapi-Trace"])
    assert trace["auditID"] == headers["Audit-Id"]
    assert [s["stage"] for s in trace["steps"]] == ["authenticate", "authorize"]


def test_watch_counts_as_long_running(kapi_server: KapiServer) -> None:
    ctx = ssl.create_default_context(cafile=kapi_server.ca_file)
    ctx.load_cert_chain(*kapi_server.client_cert)
    opened = threading.Event()

    def watch() -> None:
        with httpx.Client(base_url=kapi_server.url, verify=ctx, timeout=10) as http, http.stream(
                "GET", "/api/v1/namespaces/default/configmaps?watch=1&timeoutSeconds=2") as response:
            opened.set()
            for _ in response.iter_bytes():
                pass

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        assert opened.wait(10)

        def metrics() -> str:
            with httpx.Client(base_url=kapi_server.url, verify=ctx, timeout=10) as http:
                return http.get("/metrics").text

        long_running = ('apiserver_longrunning_requests{verb="WATCH",dry_run="",group="",version="v1",'
                        'resource="configmaps",subresource="",scope="namespace",component="apiserver"} 1')
        wait_until(lambda: long_running in metrics(), timeout=5)
        text: Any = metrics()
        assert 'apiserver_registered_watchers{group="",version="v1",kind="ConfigMap"} 1' in text
        assert 'apiserver_current_inflight_requests{request_kind="readOnly"} 1' in text  # the scrape only
    finally:
        watcher.join(10)


class TestAuditWithKubectl:
    """The audit_log plugin on the in-process TLS server, driven by kubectl."""

    @pytest.fixture
    def kapi_plugins(self) -> list[tuple[str, Any]]:
        from kapi_plugins import audit_log

        return [("audit_log", audit_log)]

    @pytest.fixture
    def kapi_config(self, tmp_path: Path) -> Any:
        import kapi

        doc = {"apiVersion": "audit.k8s.io/v1", "kind": "Policy", "omitStages": ["RequestReceived"],
               "rules": [{"level": "None", "nonResourceURLs": ["/api*", "/openapi*", "/version"]},
                         {"level": "RequestResponse", "resources": [{"resources": ["configmaps"]}]},
                         {"level": "Metadata"}]}
        return kapi.Config(storage_backend="memory", authenticators=("x509",),
                           plugin_options={"audit_log": {"policy": doc, "log_path": str(tmp_path / "audit.log")}})

    def test_kubectl_requests_are_audited(self, kapi_kubeconfig: Path, tmp_path: Path) -> None:
        manifest = tmp_path / "cm.json"
        manifest.write_text(json.dumps({"apiVersion": "v1", "kind": "ConfigMap",
                                        "metadata": {"name": "audited", "namespace": "default"},
                                        "data": {"color": "blue"}}))
        kubectl(kapi_kubeconfig, "apply", "-f", str(manifest))
        kubectl(kapi_kubeconfig, "get", "namespaces")

        def read_events() -> list[dict[str, Any]]:
            return [json.loads(line) for line in (tmp_path / "audit.log").read_text().splitlines()]

        def is_create(e: dict[str, Any]) -> bool:
            return e["verb"] == "create" and e.get("objectRef", {}).get("name") == "audited"

        def is_list(e: dict[str, Any]) -> bool:
            return e["verb"] == "list" and e["objectRef"]["resource"] == "namespaces"

        # ResponseComplete is written once the response is sent: the client can be faster than the log
        wait_until(lambda: any(map(is_create, read_events())) and any(map(is_list, read_events())), timeout=5)
        events = read_events()
        created = next(filter(is_create, events))
        assert created["user"]["username"] == "kubernetes-admin"
        assert created["userAgent"].startswith("kubectl/")
        assert created["requestObject"]["data"] == {"color": "blue"}
        assert created["responseObject"]["metadata"]["name"] == "audited"
        assert created["annotations"]["kapi.io/trace-authenticator"] == "authn_x509"
        listed = next(filter(is_list, events))
        assert listed["level"] == "Metadata" and "responseObject" not in listed
        assert not any(e["requestURI"].startswith(("/api?", "/openapi")) for e in events)
