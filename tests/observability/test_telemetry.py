"""Metrics, audit IDs, request traces and the ``kapi_middleware`` hook, in process (httpx ASGI)."""

from __future__ import annotations

import io
import logging
from typing import Any

import orjson
import pytest

import kapi
from kapi.observability.logs import make_handler
from kapi.observability.trace import json_patch
from kapi.plugins import PluginConfigError
from kapi.testing.plugins import client_for, make_test_app, running

CM = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}, "data": {"k": "v"}}
SECRET = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "data": {"token": "c2VjcmV0"}}


class LabelAdder:
    """Mutating admission: labels every ConfigMap and Secret, and adds a key to Secrets' data."""

    @kapi.hookimpl
    def kapi_mutate_admission(self, request: kapi.AdmissionRequest) -> dict[str, Any] | None:
        if request.resource not in ("configmaps", "secrets") or request.obj is None:
            return None
        obj = dict(request.obj)
        obj["metadata"] = {**obj["metadata"], "labels": {"team": "blue"}}
        if request.resource == "secrets":
            obj["data"] = {**obj.get("data", {}), "added": "aGlkZGVu"}
        return obj


class NoRed:
    @kapi.hookimpl
    def kapi_validate_admission(self, request: kapi.AdmissionRequest) -> None:
        if (request.obj or {}).get("data", {}).get("color") == "red":
            raise kapi.AdmissionDenied("red is not allowed")


class Explained:
    """Authorizer: allows everyone but 'intern' on /debug/kapi/trace, explaining itself."""

    @kapi.hookimpl
    def kapi_authorize(self, attributes: kapi.RequestAttributes) -> kapi.Decision:
        if attributes.user.name == "intern" and attributes.path.startswith("/debug/kapi/trace"):
            kapi.trace_note("interns may not read traces")
            return kapi.Decision.DENY
        kapi.trace_note(f"rule 7 allows {attributes.user.name}")
        return kapi.Decision.ALLOW


def traced_app(**config: Any) -> kapi.App:
    return make_test_app(plugins=[("labels", LabelAdder()), ("no-red", NoRed()), ("explained", Explained())],
                         admission=("labels", "no-red"), authorizers=("explained",), **config)


def metric_lines(text: str, name: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith(name + "{") or line.startswith(name + " ")]


async def test_metrics_have_kube_names_and_labels() -> None:
    app = traced_app()
    async with running(app), client_for(app) as client:
        assert (await client.post("/api/v1/namespaces/default/configmaps", json=CM)).status_code == 201
        assert (await client.get("/api/v1/namespaces/default/configmaps/a")).status_code == 200
        assert (await client.get("/api/v1/namespaces/default/configmaps/nope")).status_code == 404
        response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    text = response.text
    assert ('apiserver_request_total{verb="POST",dry_run="",group="",version="v1",resource="configmaps",'
            'subresource="",scope="namespace",component="apiserver",code="201"} 1') in text
    assert 'verb="GET",dry_run="",group="",version="v1",resource="configmaps",subresource="",scope="resource",' \
           'component="apiserver",code="404"} 1' in text
    assert metric_lines(text, "apiserver_request_duration_seconds_count")
    assert 'apiserver_current_inflight_requests{request_kind="readOnly"} 1' in text  # the /metrics GET itself
    assert 'apiserver_current_inflight_requests{request_kind="mutating"} 0' in text
    assert 'apiserver_storage_objects{resource="configmaps"} 1' in text
    assert 'apiserver_storage_objects{resource="namespaces"} 4' in text
    assert any('operation="create",type="configmaps"' in line
               for line in metric_lines(text, "etcd_request_duration_seconds_count"))
    assert 'authentication_attempts{result="success"}' in text
    assert 'apiserver_authorization_decisions_total{type="explained",name="explained",decision="allowed"}' in text
    assert any('name="labels",operation="CREATE",rejected="false",type="admit"' in line
               for line in metric_lines(text, "apiserver_admission_controller_admission_duration_seconds_count"))
    assert any('hook="kapi_authenticate",plugin="test-header"' in line
               for line in metric_lines(text, "kapi_plugin_duration_seconds_count"))


async def test_metrics_parse_as_prometheus_text() -> None:
    parser = pytest.importorskip("prometheus_client.parser")
    app = traced_app()
    async with running(app), client_for(app) as client:
        await client.post("/api/v1/namespaces/default/configmaps", json=CM)
        text = (await client.get("/metrics")).text
    families = {f.name: f for f in parser.text_string_to_metric_families(text)}
    assert families["apiserver_request"].type == "counter"
    assert families["apiserver_request_duration_seconds"].type == "histogram"
    assert families["apiserver_current_inflight_requests"].type == "gauge"


async def test_audit_id_header() -> None:
    app = traced_app()
    async with running(app), client_for(app) as client:
        fresh = await client.get("/version")
        kept = await client.get("/version", headers={"X-Request-Id": "req-123"})
        replaced = await client.get("/version", headers={"Audit-ID": "bad id\twith spaces"})
    assert len(fresh.headers["audit-id"]) == 36
    assert kept.headers["audit-id"] == "req-123"
    assert replaced.headers["audit-id"] != "bad id\twith spaces"


async def test_trace_header_shows_the_pipeline() -> None:
    app = traced_app()
    async with running(app), client_for(app, user="alice:dev") as client:
        response = await client.post("/api/v1/namespaces/default/configmaps", json=CM, headers={"X-Kapi-Trace": "1"})
        plain = await client.get("/api/v1/namespaces/default/configmaps/a")
    assert response.status_code == 201
    assert "x-kapi-trace" not in plain.headers
    trace = orjson.loads(response.headers["x-kapi-trace"])
    assert trace["user"] == "alice" and trace["auditID"] == response.headers["audit-id"]
    stages = [(s["stage"], s["plugin"], s["outcome"]) for s in trace["steps"]]
    assert stages == [("authenticate", "test-header", "recognised"), ("authorize", "explained", "allow"),
                      ("mutate", "labels", "changed"), ("validate", "no-red", "accepted")]
    assert trace["decision"] == {"plugin": "explained", "decision": "allow", "reason": "rule 7 allows alice"}
    assert trace["steps"][2]["patch"] == [{"op": "add", "path": "/metadata/labels", "value": {"team": "blue"}}]


async def test_trace_header_needs_permission_and_rejections_are_traced() -> None:
    app = traced_app()
    async with running(app), client_for(app, user="intern") as client, client_for(app, user="admin") as admin:
        red = {**CM, "data": {"color": "red"}}
        response = await client.post("/api/v1/namespaces/default/configmaps", json=red, headers={"X-Kapi-Trace": "1"})
        assert response.status_code == 403 and "red is not allowed" in response.text
        assert "x-kapi-trace" not in response.headers
        denied = await client.get("/debug/kapi/traces")
        assert denied.status_code == 403
        await admin.get("/version")
        traces = (await admin.get("/debug/kapi/traces?limit=3")).json()
        assert (await admin.get("/debug/kapi/traces?limit=0")).status_code == 400
    assert traces["kind"] == "TraceList" and len(traces["items"]) == 3
    rejected = next(t for t in traces["items"] if t["method"] == "POST")
    assert rejected["code"] == 403 and rejected["user"] == "intern"
    assert rejected["steps"][-1] == {**rejected["steps"][-1], "stage": "validate", "plugin": "no-red",
                                     "outcome": "rejected", "detail": "red is not allowed"}


async def test_secret_values_never_reach_traces() -> None:
    app = traced_app()
    async with running(app), client_for(app) as client:
        response = await client.post("/api/v1/namespaces/default/secrets", json=SECRET, headers={"X-Kapi-Trace": "1"})
        assert response.status_code == 201
        traces = (await client.get("/debug/kapi/traces?limit=5")).text
    assert "aGlkZGVu" not in response.headers["x-kapi-trace"] and "aGlkZGVu" not in traces
    assert "c2VjcmV0" not in traces
    patch = orjson.loads(response.headers["x-kapi-trace"])["steps"][2]["patch"]
    assert {"op": "add", "path": "/data/added", "value": "<redacted>"} in patch


async def test_log_lines_carry_the_request_id() -> None:
    class Chatty:
        @kapi.hookimpl
        def kapi_validate_admission(self) -> None:
            logging.getLogger("kapi.test.chatty").warning("checking")

    stream = io.StringIO()
    handler = make_handler("json", stream)
    logger = logging.getLogger("kapi.test.chatty")
    logger.addHandler(handler)
    try:
        app = make_test_app(plugins=[("chatty", Chatty())], admission=("chatty",))
        async with running(app), client_for(app) as client:
            response = await client.post("/api/v1/namespaces/default/configmaps", json=CM)
    finally:
        logger.removeHandler(handler)
    line = orjson.loads(stream.getvalue().splitlines()[0])
    assert line["msg"] == "checking" and line["level"] == "WARNING" and line["logger"] == "kapi.test.chatty"
    assert line["request_id"] == response.headers["audit-id"]


class Recorder:
    """A plugin adding middleware at every position; each records what it saw."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, bool]] = []

    def wrap(self, position: str) -> Any:
        def factory(inner: Any) -> Any:
            async def middleware(scope: Any, receive: Any, send: Any) -> None:
                if scope["type"] == "http":
                    trace = kapi.request_trace(scope)
                    attributes = kapi.request_attributes(scope)
                    self.seen.append((position, trace.audit_id if trace else "", attributes is not None))
                await inner(scope, receive, send)
            return middleware
        return factory

    @kapi.hookimpl
    def kapi_middleware(self) -> list[tuple[Any, str]]:
        return [(self.wrap(p), p) for p in ("authorized", "outer", "authenticated")]


async def test_hook_middleware() -> None:
    recorder = Recorder()
    app = make_test_app(plugins=[("recorder", recorder)])
    async with running(app), client_for(app) as client:
        response = await client.get("/api/v1/namespaces")
        unauthenticated = await client.get("/api/v1/namespaces", headers={"x-test-user": ""})
    assert response.status_code == 200 and unauthenticated.status_code == 401
    audit_id = response.headers["audit-id"]
    assert recorder.seen[:3] == [("outer", audit_id, False), ("authenticated", audit_id, True),
                                 ("authorized", audit_id, True)]
    assert [s[0] for s in recorder.seen[3:]] == ["outer"]  # a 401 stops at authentication


def test_hook_middleware_rejects_unknown_positions() -> None:
    class Wrong:
        @kapi.hookimpl
        def kapi_middleware(self) -> list[tuple[Any, str]]:
            return [(lambda inner: inner, "innermost")]

    app = make_test_app(plugins=[("wrong", Wrong())])
    with pytest.raises(PluginConfigError, match=r"'wrong'.*'innermost'.*outer, authenticated, authorized"):
        app.asgi()


@pytest.mark.parametrize(("old", "new", "patch"), [
    ({"a": 1}, {"a": 1}, []),
    ({"a": 1, "b": 2}, {"a": 2}, [{"op": "remove", "path": "/b"}, {"op": "replace", "path": "/a", "value": 2}]),
    ({"m": {"x/y": 1}}, {"m": {"x/y": 1, "z~": [1]}}, [{"op": "add", "path": "/m/z~0", "value": [1]}]),
    ({"l": [1, 2]}, {"l": [1]}, [{"op": "replace", "path": "/l", "value": [1]}]),
])
def test_json_patch(old: Any, new: Any, patch: list[Any]) -> None:
    assert json_patch(old, new) == patch
