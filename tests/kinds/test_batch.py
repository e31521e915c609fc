"""Jobs, CronJobs (batch/v1) and EndpointSlices (discovery.k8s.io/v1): defaults, validation, tables,
and serving through the API (``kapi.kinds.batch``, ``kapi.kinds.discovery``)."""

from __future__ import annotations

import copy
from typing import Any

import httpx

from kapi.kinds.batch import CONTROLLER_UID_LABEL, CronJobStrategy, JobStrategy, job_status
from kapi.kinds.discovery import EndpointSliceStrategy, format_endpoints, format_ports

from .helpers import ago, messages

JOB = JobStrategy()
CRON = CronJobStrategy()
SLICE = EndpointSliceStrategy()


def job(**spec: Any) -> dict[str, Any]:
    spec.setdefault("template", {"spec": {"restartPolicy": "Never", "containers": [{"name": "pi", "image": "perl"}]}})
    return {"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": "pi", "namespace": "default", "uid": "u-1", "creationTimestamp": ago(minutes=3)},
            "spec": spec}


def created(obj: dict[str, Any]) -> dict[str, Any]:
    JOB.prepare_for_create(obj)
    JOB.default(obj)
    return obj


def test_job_defaults_and_generated_selector() -> None:
    obj = created(job())
    spec = obj["spec"]
    assert (spec["completions"], spec["parallelism"], spec["backoffLimit"]) == (1, 1, 6)
    assert spec["completionMode"] == "NonIndexed" and spec["suspend"] is False
    assert spec["podReplacementPolicy"] == "TerminatingOrFailed"
    assert spec["selector"] == {"matchLabels": {CONTROLLER_UID_LABEL: "u-1"}}
    labels = spec["template"]["metadata"]["labels"]
    assert labels == {"controller-uid": "u-1", CONTROLLER_UID_LABEL: "u-1", "job-name": "pi",
                      "batch.kubernetes.io/job-name": "pi"}
    assert obj["metadata"]["labels"] == labels and obj["status"] == {}
    assert JOB.validate(obj) == []
    work_queue = created(job(parallelism=3))
    assert "completions" not in work_queue["spec"] and work_queue["spec"]["parallelism"] == 3


def test_job_validation() -> None:
    obj = created(job())
    obj["spec"]["template"]["spec"]["restartPolicy"] = "Always"
    assert messages(JOB.validate(obj)) == [
        'spec.template.spec.restartPolicy: Unsupported value: "Always": supported values: "OnFailure", "Never"']
    indexed = created(job(completionMode="Indexed", parallelism=2))
    assert "completions" not in indexed["spec"]
    assert any("spec.completions: Required value" in m for m in messages(JOB.validate(indexed)))
    manual = created(job(manualSelector=True, selector={"matchLabels": {"x": "y"}}))
    assert any("`selector` does not match template `labels`" in m for m in messages(JOB.validate(manual)))
    old = created(job())
    new = copy.deepcopy(old)
    new["spec"]["completions"] = 5
    assert any("spec.completions: Invalid value: 5: field is immutable" in m
               for m in messages(JOB.validate_update(new, old)))


def test_job_table() -> None:
    obj = created(job(completions=3))
    obj["status"] = {"succeeded": 1, "startTime": ago(minutes=2)}
    assert [c.name for c in JOB.columns()][:4] == ["Status", "Completions", "Duration", "Age"]
    cells = JOB.cells(obj)
    assert cells[:3] == ["Running", "1/3", "2m"]
    obj["status"]["conditions"] = [{"type": "Complete", "status": "True"}]
    assert job_status(obj) == "Complete"


def test_cronjob_defaults_and_schedule() -> None:
    obj = {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "c", "creationTimestamp": ago(days=1)},
           "spec": {"schedule": "*/5 * * * *", "jobTemplate": {"spec": job()["spec"]}}}
    CRON.prepare_for_create(obj)
    CRON.default(obj)
    spec = obj["spec"]
    assert (spec["concurrencyPolicy"], spec["suspend"], spec["successfulJobsHistoryLimit"],
            spec["failedJobsHistoryLimit"]) == ("Allow", False, 3, 1)
    assert CRON.validate(obj) == []
    obj["spec"]["schedule"] = "every day"
    assert messages(CRON.validate(obj)) == ['spec.schedule: Invalid value: "every day": unparseable schedule']
    assert CRON.cells(obj)[:4] == ["every day", "<none>", False, 0]


def test_endpoint_slice_rules_and_table() -> None:
    obj = {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "addressType": "IPv4",
           "metadata": {"name": "web-abc", "creationTimestamp": ago(minutes=1)},
           "ports": [{"port": 80}], "endpoints": [{"addresses": [f"10.0.0.{i}"]} for i in range(5)]}
    SLICE.default(obj)
    assert obj["ports"] == [{"port": 80, "protocol": "TCP", "name": ""}]
    assert SLICE.validate(obj) == []
    assert SLICE.cells(obj)[:3] == ["IPv4", "80", "10.0.0.0,10.0.0.1,10.0.0.2 + 2 more..."]
    assert format_ports([]) == "<unset>" and format_endpoints([]) == "<unset>"
    bad = {**obj, "endpoints": [{"addresses": ["fd00::1"]}]}
    assert messages(SLICE.validate(bad)) == ['endpoints[0].addresses[0]: Invalid value: "fd00::1": must be an IPv4 '
                                             'address']
    changed = {**obj, "addressType": "IPv6", "endpoints": []}
    assert any("addressType: Invalid value" in m for m in messages(SLICE.validate_update(changed, obj)))


async def test_jobs_and_slices_are_served(client: httpx.AsyncClient) -> None:
    body = job()
    body["metadata"] = {"name": "pi"}
    response = await client.post("/apis/batch/v1/namespaces/default/jobs", json=body)
    assert response.status_code == 201, response.text
    stored = response.json()
    uid = stored["metadata"]["uid"]
    assert stored["spec"]["selector"] == {"matchLabels": {CONTROLLER_UID_LABEL: uid}}
    table = await client.get("/apis/batch/v1/namespaces/default/jobs",
                             headers={"accept": "application/json;as=Table;v=v1;g=meta.k8s.io"})
    assert [c["name"] for c in table.json()["columnDefinitions"]][:3] == ["Name", "Status", "Completions"]
    status = await client.put("/apis/batch/v1/namespaces/default/jobs/pi/status",
                              json={**stored, "status": {"active": 1}})
    assert status.status_code == 200 and status.json()["status"] == {"active": 1}
    created_slice = await client.post("/apis/discovery.k8s.io/v1/namespaces/default/endpointslices", json={
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "metadata": {"name": "s"},
        "addressType": "IPv4", "endpoints": [{"addresses": ["10.0.0.1"], "conditions": {"ready": True}}],
        "ports": [{"name": "http", "port": 80}]})
    assert created_slice.status_code == 201, created_slice.text


async def test_namespace_finalize_subresource(client: httpx.AsyncClient) -> None:
    """PUT namespaces/NAME/finalize changes only spec.finalizers; a terminating namespace stays
    (even through other updates) until they are gone, then it is deleted."""
    assert (await client.post("/api/v1/namespaces", json={"metadata": {"name": "fin"}})).status_code == 201
    deleted = await client.delete("/api/v1/namespaces/fin")
    assert deleted.json()["status"]["phase"] == "Terminating"
    ns = (await client.get("/api/v1/namespaces/fin")).json()
    labelled = await client.put("/api/v1/namespaces/fin", json={
        **ns, "metadata": {**ns["metadata"], "labels": {**ns["metadata"]["labels"], "x": "y"}}})
    assert labelled.status_code == 200  # an ordinary update does not finish the deletion
    ns = (await client.get("/api/v1/namespaces/fin")).json()
    ns["status"] = {"phase": "Active"}
    ns["spec"]["finalizers"] = []
    finalized = await client.put("/api/v1/namespaces/fin/finalize", json=ns)
    assert finalized.status_code == 200, finalized.text
    assert (await client.get("/api/v1/namespaces/fin")).status_code == 404
