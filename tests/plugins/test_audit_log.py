"""The audit_log plugin: policy matching (kube-apiserver's rules), events at each level and stage,
secret redaction, log rotation and the webhook backend."""

from __future__ import annotations

import http.server
import json
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import kapi
from kapi.testing.plugins import client_for, make_test_app, running
from kapi_plugins import audit_log
from kapi_plugins.audit_log import parse_policy

CM = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}, "data": {"k": "v"}}
SECRET = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "data": {"token": "c2VjcmV0"}}


def policy(*rules: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"apiVersion": "audit.k8s.io/v1", "kind": "Policy", "rules": list(rules), **extra}


def attrs(verb: str = "get", *, resource: str = "pods", subresource: str = "", namespace: str = "default",
          name: str = "", group: str = "", path: str = "", user: str = "alice",
          groups: tuple[str, ...] = ()) -> kapi.RequestAttributes:
    return kapi.RequestAttributes(verb=verb, path=path or f"/api/v1/{resource}", is_resource_request=not path,
                                  api_group=group, api_version="v1", resource=resource if not path else "",
                                  subresource=subresource, namespace=namespace, name=name,
                                  user=kapi.UserInfo(user, groups=groups))


@pytest.mark.parametrize(("rule", "request_attrs", "level"), [
    ({"level": "Metadata"}, attrs(), "Metadata"),
    ({"level": "Request", "users": ["bob"]}, attrs(), "None"),
    ({"level": "Request", "userGroups": ["dev"]}, attrs(groups=("dev",)), "Request"),
    ({"level": "Request", "verbs": ["create"]}, attrs("get"), "None"),
    ({"level": "Request", "resources": [{"group": "", "resources": ["pods"]}]}, attrs(), "Request"),
    ({"level": "Request", "resources": [{"group": "", "resources": ["pods"]}]}, attrs(subresource="log"), "None"),
    ({"level": "Request", "resources": [{"group": "", "resources": ["pods/log"]}]}, attrs(subresource="log"),
     "Request"),
    ({"level": "Request", "resources": [{"group": "", "resources": ["*/status"]}]},
     attrs(resource="nodes", subresource="status"), "Request"),
    ({"level": "Request", "resources": [{"group": "", "resources": ["pods/*"]}]}, attrs(subresource="exec"),
     "Request"),
    ({"level": "Request", "resources": [{"group": "apps"}]}, attrs(resource="deployments", group="apps"), "Request"),
    ({"level": "Request", "resources": [{"group": "apps"}]}, attrs(), "None"),
    ({"level": "Request", "resources": [{"resources": ["pods"], "resourceNames": ["web"]}]}, attrs(name="db"),
     "None"),
    ({"level": "Request", "namespaces": ["kube-system"]}, attrs(), "None"),
    ({"level": "Request", "namespaces": [""]}, attrs(resource="nodes", namespace=""), "Request"),
    ({"level": "Request", "nonResourceURLs": ["/healthz*"]}, attrs(path="/healthz/etcd"), "Request"),
    ({"level": "Request", "nonResourceURLs": ["/healthz*"]}, attrs(), "None"),
    ({"level": "Request", "resources": [{"resources": ["*"]}]}, attrs(path="/version"), "None"),
])
def test_policy_rules_match_like_kube(rule: dict[str, Any], request_attrs: kapi.RequestAttributes,
                                      level: str) -> None:
    assert parse_policy(policy(rule)).evaluate(request_attrs).level == level


def test_first_matching_rule_wins_and_stages_combine() -> None:
    parsed = parse_policy(policy({"level": "None", "users": ["system:kube-proxy"]},
                                 {"level": "RequestResponse", "omitStages": ["ResponseStarted"]},
                                 omitStages=["RequestReceived"]))
    assert parsed.evaluate(attrs(user="system:kube-proxy")).level == "None"
    decision = parsed.evaluate(attrs())
    assert decision.level == "RequestResponse"
    assert decision.omit_stages == {"RequestReceived", "ResponseStarted"}


@pytest.mark.parametrize(("doc", "message"), [
    ({"kind": "ConfigMap"}, "kind: Policy"),
    (policy({"level": "Everything"}), "rules[0].level"),
    (policy({"level": "None", "omitStages": ["Later"]}), "unknown stage"),
    (policy({"level": "None", "users": "bob"}), "rules[0].users must be a list"),
    (policy({"level": "None", "nonResourceURLs": ["/x"], "namespaces": ["a"]}), "cannot be combined"),
])
def test_bad_policies_are_refused(doc: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_policy(doc)


class Labeller:
    @kapi.hookimpl
    def kapi_mutate_admission(self, request: kapi.AdmissionRequest) -> dict[str, Any] | None:
        if request.resource != "configmaps" or request.obj is None:
            return None
        return {**request.obj, "metadata": {**request.obj["metadata"], "labels": {"audited": "yes"}}}


def audited_app(tmp_path: Path, doc: dict[str, Any], **options: Any) -> kapi.App:
    section = {"policy": doc, "log_path": str(tmp_path / "audit.log"), **options}
    return make_test_app(plugins=[("audit_log", audit_log), ("labeller", Labeller())], admission=("labeller",),
                         plugin_options={"audit_log": section})


def events(tmp_path: Path) -> list[dict[str, Any]]:
    path = tmp_path / "audit.log"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


async def test_metadata_level_events(tmp_path: Path) -> None:
    app = audited_app(tmp_path, policy({"level": "None", "nonResourceURLs": ["/version"]}, {"level": "Metadata"}))
    async with running(app), client_for(app, user="alice:dev") as client:
        response = await client.post("/api/v1/namespaces/default/configmaps?fieldManager=x", json=CM,
                                     headers={"User-Agent": "audit-test/1.0", "X-Forwarded-For": "10.0.0.9"})
        await client.get("/version")
    received, complete = events(tmp_path)
    assert received["stage"] == "RequestReceived" and complete["stage"] == "ResponseComplete"
    assert received["auditID"] == complete["auditID"] == response.headers["audit-id"]
    assert complete["level"] == "Metadata" and complete["verb"] == "create"
    assert complete["requestURI"] == "/api/v1/namespaces/default/configmaps?fieldManager=x"
    assert complete["user"] == {"username": "alice", "groups": ["dev", "system:authenticated"]}
    assert complete["sourceIPs"][0] == "10.0.0.9" and complete["userAgent"] == "audit-test/1.0"
    assert complete["objectRef"] == {"resource": "configmaps", "namespace": "default", "name": "a",
                                     "apiVersion": "v1"}  # the name from the body, as kube-apiserver does
    assert complete["responseStatus"] == {"metadata": {}, "code": 201}
    assert "responseStatus" not in received
    assert "requestObject" not in complete and "responseObject" not in complete
    annotations = complete["annotations"]
    assert annotations["authorization.k8s.io/decision"] == "allow"
    assert annotations["kapi.io/trace-authenticator"] == "test-header"
    assert annotations["kapi.io/trace-mutate-labeller"] == "changed"  # no patch content at Metadata
    assert complete["requestReceivedTimestamp"].endswith("Z")


async def test_request_response_level_and_failures(tmp_path: Path) -> None:
    app = audited_app(tmp_path, policy({"level": "RequestResponse", "omitStages": ["RequestReceived"]}))
    async with running(app), client_for(app) as client:
        await client.post("/api/v1/namespaces/default/configmaps", json=CM)
        await client.get("/api/v1/namespaces/default/configmaps/missing")
    created, missing = events(tmp_path)
    assert created["requestObject"]["data"] == {"k": "v"}
    assert created["responseObject"]["metadata"]["labels"] == {"audited": "yes"}
    patch = json.loads(created["annotations"]["kapi.io/trace-mutate-labeller"])
    assert patch == [{"op": "add", "path": "/metadata/labels", "value": {"audited": "yes"}}]
    assert missing["responseStatus"]["code"] == 404 and missing["responseStatus"]["reason"] == "NotFound"


async def test_forbidden_requests_are_audited(tmp_path: Path) -> None:
    app = make_test_app(plugins=[("audit_log", audit_log)], authorizers=("AlwaysDeny",),
                        plugin_options={"audit_log": {"policy": policy({"level": "Metadata"}),
                                                      "log_path": str(tmp_path / "audit.log")}})
    async with running(app), client_for(app) as client:
        assert (await client.get("/api/v1/namespaces")).status_code == 403
    complete = events(tmp_path)[-1]
    assert complete["responseStatus"]["code"] == 403 and complete["responseStatus"]["reason"] == "Forbidden"
    assert complete["annotations"]["authorization.k8s.io/decision"] == "forbid"


async def test_secret_data_is_redacted_below_request_response(tmp_path: Path) -> None:
    doc = policy({"level": "Request", "resources": [{"resources": ["secrets"]}], "namespaces": ["default"]},
                 {"level": "RequestResponse"})
    app = audited_app(tmp_path, doc)
    async with running(app), client_for(app) as client:
        await client.post("/api/v1/namespaces/default/secrets", json=SECRET)
        await client.post("/api/v1/namespaces/kube-system/secrets", json=SECRET)
    text = (tmp_path / "audit.log").read_text()
    by_ns = {e["objectRef"]["namespace"]: e for e in events(tmp_path) if e["stage"] == "ResponseComplete"}
    assert by_ns["default"]["requestObject"]["data"] == {"token": "<redacted>"}
    assert "responseObject" not in by_ns["default"]
    assert by_ns["kube-system"]["requestObject"]["data"] == {"token": "c2VjcmV0"}  # RequestResponse: as kube
    assert text.count("c2VjcmV0") == 2  # kube-system's requestObject and responseObject


async def test_log_rotation(tmp_path: Path) -> None:
    app = audited_app(tmp_path, policy({"level": "Metadata"}), log_maxsize=2000 / 1024 / 1024, log_maxbackup=2)
    async with running(app), client_for(app) as client:
        for _ in range(12):
            await client.get("/api/v1/namespaces")
    backups = sorted(tmp_path.glob("audit-*.log"))
    assert len(backups) == 2
    for path in [*backups, tmp_path / "audit.log"]:
        assert path.stat().st_size <= 2000
        assert all(json.loads(line)["kind"] == "Event" for line in path.read_text().splitlines())


class Receiver(http.server.BaseHTTPRequestHandler):
    batches: list[dict[str, Any]]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.batches.append({"auth": self.headers.get("Authorization"), "body": json.loads(body)})
        self.send_response(200)
        self.end_headers()

    def log_message(self, *_: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    batches: list[dict[str, Any]] = []
    handler = type("Handler", (Receiver,), {"batches": batches})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/audit", batches
    finally:
        server.shutdown()
        thread.join(5)


async def test_webhook_backend_batches_event_lists(tmp_path: Path,
                                                   receiver: tuple[str, list[dict[str, Any]]]) -> None:
    url, batches = receiver
    kubeconfig = tmp_path / "webhook.kubeconfig"
    kubeconfig.write_text(json.dumps({"apiVersion": "v1", "kind": "Config", "current-context": "c",
                                      "clusters": [{"name": "c", "cluster": {"server": url}}],
                                      "users": [{"name": "u", "user": {"token": "hook-token"}}],
                                      "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}]}))
    app = make_test_app(plugins=[("audit_log", audit_log)], plugin_options={"audit_log": {
        "policy": policy({"level": "Metadata", "omitStages": ["RequestReceived"]}),
        "webhook_config_file": str(kubeconfig), "webhook_batch_max_wait": 0.2}})
    async with running(app), client_for(app) as client:
        for _ in range(3):
            await client.get("/api/v1/namespaces")
    items = [item for batch in batches for item in batch["body"]["items"]]
    assert len(items) == 3 and {i["stage"] for i in items} == {"ResponseComplete"}
    assert batches[0]["body"]["kind"] == "EventList" and batches[0]["auth"] == "Bearer hook-token"


async def test_unconfigured_plugin_adds_nothing(tmp_path: Path) -> None:
    app = make_test_app(plugins=[("audit_log", audit_log)])
    assert audit_log.kapi_middleware(app) is None
    async with running(app), client_for(app) as client:
        assert (await client.get("/api/v1/namespaces")).status_code == 200
    assert "auditor" not in app.plugin_state("audit_log")


def test_flags_become_a_section(tmp_path: Path) -> None:
    import argparse

    parser = argparse.ArgumentParser()
    audit_log.kapi_add_options(parser)
    path = tmp_path / "policy.yaml"
    path.write_text("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Metadata\n")
    args = parser.parse_args(["--audit-policy-file", str(path), "--audit-log-path", "-",
                              "--audit-webhook-batch-max-wait", "5s"])
    section = audit_log.kapi_read_options(args)
    assert section is not None and section["policy_file"] == str(path) and section["webhook_batch_max_wait"] == 5.0
    path.write_text("kind: Policy\nrules:\n- level: Loud\n")
    with pytest.raises(ValueError, match=f"--audit-policy-file {path}: rules\\[0\\].level"):
        audit_log.kapi_read_options(parser.parse_args(["--audit-policy-file", str(path)]))
