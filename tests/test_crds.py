"""CustomResourceDefinitions in-process: serving, discovery, OpenAPI, validation, pruning, defaulting,
subresources, printer columns, versions, deletion and name conflicts."""

from __future__ import annotations

import asyncio
import copy
import json
from typing import Any

import httpx
import pytest

import kapi
from kapi.kinds import structural
from kapi.kinds.custom import parse_json_path
from tests.conftest import client_for

CRDS = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io, application/json"
SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "spec": {"type": "object", "required": ["size"], "properties": {
            "size": {"type": "integer", "minimum": 1, "maximum": 10},
            "replicas": {"type": "integer"},
            "color": {"type": "string", "enum": ["red", "blue"], "default": "red"},
            "code": {"type": "string", "pattern": "^[a-z]+$", "maxLength": 8},
            "port": {"x-kubernetes-int-or-string": True},
            "tags": {"type": "array", "maxItems": 2, "items": {"type": "string"}},
            "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
            "template": {"type": "object", "x-kubernetes-embedded-resource": True,
                         "x-kubernetes-preserve-unknown-fields": True},
        }},
        "status": {"type": "object", "properties": {"phase": {"type": "string"}, "replicas": {"type": "integer"}}},
    },
}


def crd(plural: str = "widgets", kind: str = "Widget", group: str = "example.com", *, scope: str = "Namespaced",
        versions: list[dict[str, Any]] | None = None, **names: Any) -> dict[str, Any]:
    version = {"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": copy.deepcopy(SCHEMA)},
               "subresources": {"status": {}, "scale": {"specReplicasPath": ".spec.replicas",
                                                         "statusReplicasPath": ".status.replicas"}},
               "additionalPrinterColumns": [
                   {"name": "Size", "type": "integer", "jsonPath": ".spec.size"},
                   {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
                   {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}]}
    return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": f"{plural}.{group}"},
            "spec": {"group": group, "scope": scope, "names": {"plural": plural, "kind": kind, **names},
                     "versions": versions or [version]}}


def widget(name: str = "w1", **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": name},
            "spec": {"size": 3, **spec}}


WIDGETS = "/apis/example.com/v1/namespaces/default/widgets"


async def established(c: httpx.AsyncClient, name: str, timeout: float = 1.0) -> dict[str, Any]:
    """The CRD once Established=True (within ``timeout`` seconds, as the issue asks)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        got = (await c.get(f"{CRDS}/{name}")).json()
        conditions = {x["type"]: x["status"] for x in got.get("status", {}).get("conditions", [])}
        if conditions.get("Established") == "True" or loop.time() > deadline:
            return got
        await asyncio.sleep(0.01)


@pytest.fixture
async def c(app: kapi.App) -> Any:
    async with client_for(app) as client:
        resp = await client.post(CRDS, json=crd(shortNames=["wg"], categories=["all"]))
        assert resp.status_code == 201, resp.text
        got = await established(client, "widgets.example.com")
        assert {x["type"]: x["status"] for x in got["status"]["conditions"]} == {
            "NamesAccepted": "True", "Established": "True"}
        yield client


async def test_discovery_and_openapi(c: httpx.AsyncClient) -> None:
    resources = (await c.get("/apis/example.com/v1")).json()["resources"]
    main = next(r for r in resources if r["name"] == "widgets")
    assert main["kind"] == "Widget" and main["namespaced"] and main["shortNames"] == ["wg"]
    assert main["categories"] == ["all"] and any(r["name"] == "widgets/status" for r in resources)
    groups = [g["name"] for g in (await c.get("/apis")).json()["groups"]]
    assert "example.com" in groups and "apiextensions.k8s.io" in groups
    index = (await c.get("/openapi/v3")).json()["paths"]
    assert "apis/example.com/v1" in index
    doc = (await c.get(index["apis/example.com/v1"]["serverRelativeURL"])).json()
    assert doc["components"]["schemas"]["com.example.v1.Widget"]["properties"]["spec"]["required"] == ["size"]


async def test_crud_list_watch_and_defaults(c: httpx.AsyncClient) -> None:
    rv = (await c.get(WIDGETS)).json()["metadata"]["resourceVersion"]
    created = await c.post(WIDGETS, json=widget(bogus=1, extra={"any": {"thing": 1}}, port="http"))
    assert created.status_code == 201, created.text
    obj = created.json()
    assert obj["spec"]["color"] == "red"  # defaulted
    assert "bogus" not in obj["spec"] and obj["spec"]["extra"] == {"any": {"thing": 1}}  # pruned / preserved
    got = (await c.get(f"{WIDGETS}/w1")).json()
    assert got == obj
    patched = await c.patch(f"{WIDGETS}/w1", content=json.dumps({"spec": {"size": 4}}),
                            headers={"content-type": "application/merge-patch+json"})
    assert patched.json()["spec"]["size"] == 4
    items = (await c.get("/apis/example.com/v1/widgets")).json()["items"]
    assert [i["metadata"]["name"] for i in items] == ["w1"]
    events = []
    async with c.stream("GET", f"{WIDGETS}?watch=1&resourceVersion={rv}&timeoutSeconds=1") as stream:
        async for line in stream.aiter_lines():
            if line:
                events.append(json.loads(line))
            if len(events) == 2:
                break
    assert [e["type"] for e in events] == ["ADDED", "MODIFIED"]
    strategic = await c.patch(f"{WIDGETS}/w1", content=json.dumps({"spec": {"size": 5}}),
                              headers={"content-type": "application/strategic-merge-patch+json"})
    assert strategic.status_code == 415


@pytest.mark.parametrize(("spec", "field"), [
    ({"size": 11}, "spec.size"), ({"size": "x"}, "spec.size"), ({"color": "green"}, "spec.color"),
    ({"code": "ABC"}, "spec.code"), ({"code": "abcdefghij"}, "spec.code"), ({"tags": ["a", "b", "c"]}, "spec.tags"),
    ({"port": 1.5}, "spec.port"), ({"template": {"kind": "Pod"}}, "spec.template.apiVersion")])
async def test_validation_422(c: httpx.AsyncClient, spec: dict[str, Any], field: str) -> None:
    resp = await c.post(WIDGETS, json=widget(**spec))
    assert resp.status_code == 422, resp.text
    assert field in [cause["field"] for cause in resp.json()["details"]["causes"]]


async def test_required_field(c: httpx.AsyncClient) -> None:
    resp = await c.post(WIDGETS, json={**widget(), "spec": {}})
    assert resp.status_code == 422 and resp.json()["details"]["causes"][0]["field"] == "spec.size"


async def test_status_subresource_and_printer_columns(c: httpx.AsyncClient) -> None:
    obj = (await c.post(WIDGETS, json={**widget(), "status": {"phase": "ignored"}})).json()
    assert "status" not in obj
    obj["status"] = {"phase": "Ready"}
    updated = (await c.put(f"{WIDGETS}/w1/status", json=obj)).json()
    assert updated["status"] == {"phase": "Ready"}
    updated["status"] = {"phase": "Other"}
    updated["spec"]["size"] = 7
    main = (await c.put(f"{WIDGETS}/w1", json=updated)).json()
    assert main["status"] == {"phase": "Ready"} and main["spec"]["size"] == 7 and main["metadata"]["generation"] == 2
    table = (await c.get(WIDGETS, headers={"accept": TABLE})).json()
    assert [col["name"] for col in table["columnDefinitions"]] == ["Name", "Size", "Phase", "Age"]
    assert table["rows"][0]["cells"][:3] == ["w1", 7, "Ready"]


async def test_versions_share_storage(app: kapi.App) -> None:
    schema = {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}
    versions = [{"name": "v1beta1", "served": True, "storage": False, "schema": schema},
                {"name": "v1", "served": True, "storage": True, "schema": schema}]
    async with client_for(app) as c:
        assert (await c.post(CRDS, json=crd("gadgets", "Gadget", versions=versions))).status_code == 201
        await established(c, "gadgets.example.com")
        body = {"apiVersion": "example.com/v1beta1", "kind": "Gadget", "metadata": {"name": "g"}, "x": 1}
        resp = await c.post("/apis/example.com/v1beta1/namespaces/default/gadgets", json=body)
        assert resp.status_code == 201, resp.text
        assert resp.json()["apiVersion"] == "example.com/v1beta1"
        v1 = (await c.get("/apis/example.com/v1/namespaces/default/gadgets/g")).json()
        assert v1["apiVersion"] == "example.com/v1" and v1["x"] == 1
        stored = await app.storage.get("/registry/example.com/gadgets/default/g")
        assert json.loads(stored.value)["apiVersion"] == "example.com/v1"


async def test_delete_crd_removes_objects(app: kapi.App, c: httpx.AsyncClient) -> None:
    for name in ("a", "b"):
        assert (await c.post(WIDGETS, json=widget(name))).status_code == 201
    resp = await c.delete(f"{CRDS}/widgets.example.com")
    assert resp.status_code == 200
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 2
    while (await c.get(f"{CRDS}/widgets.example.com")).status_code != 404 and loop.time() < deadline:
        await asyncio.sleep(0.02)
    assert (await c.get(f"{CRDS}/widgets.example.com")).status_code == 404
    assert (await app.storage.list("/registry/example.com/widgets/")).items == []
    while (await c.get(WIDGETS)).status_code != 404 and loop.time() < deadline + 1:  # the controller catches up
        await asyncio.sleep(0.02)
    assert (await c.get(WIDGETS)).status_code == 404


async def test_delete_crd_waits_for_custom_object_finalizers(app: kapi.App, c: httpx.AsyncClient) -> None:
    """As kube's CRD finalizer controller: objects with finalizers are marked for deletion and the CRD
    stays (Terminating, still served except for creates) until an operator removes them."""
    held = widget("held")
    held["metadata"]["finalizers"] = ["example.com/cleanup"]
    assert (await c.post(WIDGETS, json=held)).status_code == 201
    assert (await c.post(WIDGETS, json=widget("free"))).status_code == 201
    assert (await c.delete(f"{CRDS}/widgets.example.com")).status_code == 200
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 3
    while (await c.get(f"{WIDGETS}/free")).status_code != 404 and loop.time() < deadline:
        await asyncio.sleep(0.02)
    assert (await c.get(f"{WIDGETS}/free")).status_code == 404
    marked = (await c.get(f"{WIDGETS}/held")).json()
    assert marked["metadata"]["deletionTimestamp"] and marked["metadata"]["finalizers"] == ["example.com/cleanup"]
    refused = await c.post(WIDGETS, json=widget("late"))
    assert refused.status_code == 405 and refused.json()["reason"] == "MethodNotAllowed"
    assert refused.json()["message"] == "create not allowed while custom resource definition is terminating"
    await asyncio.sleep(0.6)  # a cleanup pass later, the CRD is still there, Terminating
    crd_now = (await c.get(f"{CRDS}/widgets.example.com")).json()
    assert {x["type"]: x["status"] for x in crd_now["status"]["conditions"]}["Terminating"] == "True"
    patched = await c.patch(f"{WIDGETS}/held", json={"metadata": {"finalizers": None}},
                            headers={"content-type": "application/merge-patch+json"})
    assert patched.status_code == 200, patched.text
    deadline = loop.time() + 3
    while (await c.get(f"{CRDS}/widgets.example.com")).status_code != 404 and loop.time() < deadline:
        await asyncio.sleep(0.05)
    assert (await c.get(f"{CRDS}/widgets.example.com")).status_code == 404
    assert (await app.storage.list("/registry/example.com/widgets/")).items == []


async def test_selectable_fields(c: httpx.AsyncClient) -> None:
    """``selectableFields`` make field selectors work on custom resources (list and watch);
    undeclared fields are refused, and the CRD's paths are validated."""
    version = crd()["spec"]["versions"][0]
    version["selectableFields"] = [{"jsonPath": ".spec.color"}, {"jsonPath": ".spec.size"}]
    assert (await c.post(CRDS, json=crd("colored", "Colored", versions=[version]))).status_code == 201
    await established(c, "colored.example.com")
    url = "/apis/example.com/v1/namespaces/default/colored"
    for name, color, size in (("r1", "red", 1), ("b1", "blue", 1), ("b2", "blue", 2)):
        obj = {"apiVersion": "example.com/v1", "kind": "Colored", "metadata": {"name": name},
               "spec": {"size": size, "color": color}}
        assert (await c.post(url, json=obj)).status_code == 201

    async def names(selector: str) -> list[str]:
        got = await c.get(url, params={"fieldSelector": selector})
        assert got.status_code == 200, got.text
        return [o["metadata"]["name"] for o in got.json()["items"]]

    assert await names("spec.color=blue") == ["b1", "b2"]
    assert await names("spec.color=blue,spec.size=2") == ["b2"]
    assert await names("spec.color!=blue,metadata.name=r1") == ["r1"]
    refused = await c.get(url, params={"fieldSelector": "spec.code=x"})
    assert refused.status_code == 400 and "field label not supported: spec.code" in refused.text
    bad = crd("badsels", "Badsel", versions=[{**version, "selectableFields": [
        {"jsonPath": ".spec.color"}, {"jsonPath": ".spec.color"}, {"jsonPath": ".spec.tags"},
        {"jsonPath": "spec"}, {}]}])
    resp = await c.post(CRDS, json=bad)
    assert resp.status_code == 422
    causes = {(x["field"], x["reason"]) for x in resp.json()["details"]["causes"]}
    assert causes == {("spec.versions[0].selectableFields[1].jsonPath", "FieldValueDuplicate"),
                      ("spec.versions[0].selectableFields[2].jsonPath", "FieldValueInvalid"),
                      ("spec.versions[0].selectableFields[3].jsonPath", "FieldValueInvalid"),
                      ("spec.versions[0].selectableFields[4].jsonPath", "FieldValueRequired")}


async def test_name_conflicts(c: httpx.AsyncClient) -> None:
    builtin = crd("roles", "Role", "rbac.authorization.k8s.io")
    builtin["metadata"]["annotations"] = {"api-approved.kubernetes.io": "unapproved"}
    resp = await c.post(CRDS, json=builtin)
    assert resp.status_code == 422 and resp.json()["details"]["causes"][0]["field"] == "spec.names.plural"
    clash = crd("gizmos", "Widget")  # the kind Widget is taken in example.com
    assert (await c.post(CRDS, json=clash)).status_code == 201
    got = await established(c, "gizmos.example.com", timeout=0.3)
    conditions = {x["type"]: x for x in got["status"]["conditions"]}
    assert conditions["NamesAccepted"]["status"] == "False"
    assert conditions["NamesAccepted"]["reason"] in ("SingularConflict", "KindConflict")
    assert conditions["Established"]["status"] == "False"
    assert (await c.get("/apis/example.com/v1/namespaces/default/gizmos")).status_code == 404


async def test_invalid_crds(c: httpx.AsyncClient) -> None:
    bad = crd("things", "Thing")
    bad["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["size"] = {}
    resp = await c.post(CRDS, json=bad)
    assert resp.status_code == 422
    fields = [x["field"] for x in resp.json()["details"]["causes"]]
    assert "spec.versions[0].schema.openAPIV3Schema.properties[spec].properties[size].type" in fields
    two = crd("things", "Thing")
    two["spec"]["versions"].append({**two["spec"]["versions"][0], "name": "v2"})
    assert (await c.post(CRDS, json=two)).status_code == 422
    nodot = crd("things", "Thing", "example")
    assert (await c.post(CRDS, json=nodot)).status_code == 422


async def test_restart_serves_stored_crds() -> None:
    from kapi.storage import Storage
    from tests.conftest import make_app

    first = make_app()
    await first.startup()
    store: Storage = first.storage
    try:
        async with client_for(first) as c:
            await c.post(CRDS, json=crd())
            await established(c, "widgets.example.com")
            assert (await c.post(WIDGETS, json=widget())).status_code == 201
        second = kapi.create_app(first.config, storage=store, load_entrypoints=True,
                                 plugins=[(n, first.pm.get_plugin(n)) for n in ("test-header",)])
        await second.startup()
        try:
            async with client_for(second) as c:
                items = (await c.get(WIDGETS)).json()["items"]
                assert [i["metadata"]["name"] for i in items] == ["w1"]
        finally:
            await second.shutdown()
    finally:
        await first.shutdown()


def test_json_path_subset() -> None:
    assert parse_json_path(".spec.replicas") == ("spec", "replicas")
    assert parse_json_path(".status.conditions[0].type") == ("status", "conditions", 0, "type")
    assert parse_json_path("{.metadata.labels['app']}") == ("metadata", "labels", "app")
    assert parse_json_path(".items[*].x") is None


def test_structural_pruning_nested() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "array", "items": {"type": "object", "properties": {
        "b": {"type": "string", "default": "x"}}}}}}
    obj: dict[str, Any] = {"apiVersion": "v", "kind": "K", "metadata": {"name": "n"}, "a": [{"c": 1}], "z": 2}
    structural.prune(schema, obj)
    structural.apply_defaults(schema, obj)
    assert obj == {"apiVersion": "v", "kind": "K", "metadata": {"name": "n"}, "a": [{"b": "x"}]}


async def test_cel_rules(c: httpx.AsyncClient) -> None:
    rules = {"type": "object", "x-kubernetes-validations": [
        {"rule": "self.min <= self.max", "message": "min must not exceed max"}],
        "properties": {"min": {"type": "integer"}, "max": {"type": "integer"},
                       "name": {"type": "string", "x-kubernetes-validations": [{"rule": "self.startsWith('a')"}]}}}
    versions = [{"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": {
        "type": "object", "properties": {"spec": rules}}}}]
    assert (await c.post(CRDS, json=crd("ranges", "Range", versions=versions))).status_code == 201
    await established(c, "ranges.example.com")
    url = "/apis/example.com/v1/namespaces/default/ranges"

    def body(**spec: Any) -> dict[str, Any]:
        return {"apiVersion": "example.com/v1", "kind": "Range", "metadata": {"name": "r"}, "spec": spec}

    bad = await c.post(url, json=body(min=5, max=1))
    assert bad.status_code == 422 and bad.json()["details"]["causes"][0]["field"] == "spec"
    assert "min must not exceed max" in bad.json()["message"]
    named = await c.post(url, json=body(min=1, max=2, name="b"))
    assert named.status_code == 422 and "failed rule: self.startsWith('a')" in named.text
    assert named.json()["details"]["causes"][0]["field"] == "spec.name"
    assert (await c.post(url, json=body(min=1, max=2, name="abc"))).status_code == 201
    broken = crd("brokens", "Broken", versions=[{**versions[0], "schema": {"openAPIV3Schema": {
        "type": "object", "x-kubernetes-validations": [{"rule": "self.x <="}]}}}])
    resp = await c.post(CRDS, json=broken)
    assert resp.status_code == 422
    assert resp.json()["details"]["causes"][0]["field"] == \
        "spec.versions[0].schema.openAPIV3Schema.x-kubernetes-validations[0].rule"


async def test_cel_transition_rules_and_message_expressions(c: httpx.AsyncClient) -> None:
    """``oldSelf`` rules run on updates only, against the correlated old value (properties, map keys,
    list-type=map items); ``messageExpression`` builds the message, falling back to ``message``."""
    spec = {"type": "object", "properties": {
        "id": {"type": "string", "x-kubernetes-validations": [
            {"rule": "self == oldSelf", "message": "id is immutable"}]},
        "level": {"type": "integer", "x-kubernetes-validations": [
            {"rule": "self >= oldSelf", "messageExpression": "'level may not drop below ' + string(oldSelf)"},
            {"rule": "self < 100", "messageExpression": "1 + 1", "message": "level must stay below 100"}]},
        "ports": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
                  "items": {"type": "object", "required": ["name"], "properties": {
                      "name": {"type": "string"},
                      "number": {"type": "integer", "x-kubernetes-validations": [
                          {"rule": "self == oldSelf", "message": "a port's number is immutable"}]}}}}}}
    versions = [{"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": {
        "type": "object", "properties": {"spec": spec}}}}]
    assert (await c.post(CRDS, json=crd("locks", "Lock", versions=versions))).status_code == 201
    await established(c, "locks.example.com")
    url = "/apis/example.com/v1/namespaces/default/locks"
    obj = {"apiVersion": "example.com/v1", "kind": "Lock", "metadata": {"name": "l"},
           "spec": {"id": "a", "level": 5, "ports": [{"name": "http", "number": 80}]}}
    created = await c.post(url, json=obj)  # transition rules do not run on create
    assert created.status_code == 201, created.text

    async def update(**changes: Any) -> httpx.Response:
        current = (await c.get(f"{url}/l")).json()
        current["spec"].update(changes)
        return await c.put(f"{url}/l", json=current)

    immutable = await update(id="b")
    assert immutable.status_code == 422 and "id is immutable" in immutable.text
    assert immutable.json()["details"]["causes"][0]["field"] == "spec.id"
    dropped = await update(level=4)
    assert dropped.status_code == 422 and "level may not drop below 5" in dropped.text
    too_high = await update(level=100)  # the messageExpression is not a string: the message is used
    assert too_high.status_code == 422 and "level must stay below 100" in too_high.text
    assert (await update(level=6)).status_code == 200
    renumbered = await update(ports=[{"name": "http", "number": 8080}])
    assert renumbered.status_code == 422 and "a port's number is immutable" in renumbered.text
    assert renumbered.json()["details"]["causes"][0]["field"] == "spec.ports[0].number"
    # a new item has no old value to compare with; reordering keeps the correlation by key
    added = await update(ports=[{"name": "https", "number": 443}, {"name": "http", "number": 80}])
    assert added.status_code == 200, added.text
    broken = crd("brokens", "Broken", versions=[{**versions[0], "schema": {"openAPIV3Schema": {
        "type": "object", "x-kubernetes-validations": [{"rule": "true", "messageExpression": "'x' +"}]}}}])
    resp = await c.post(CRDS, json=broken)
    assert resp.status_code == 422
    assert resp.json()["details"]["causes"][0]["field"] == \
        "spec.versions[0].schema.openAPIV3Schema.x-kubernetes-validations[0].messageExpression"


async def test_scale_subresource(c: httpx.AsyncClient) -> None:
    assert (await c.post(WIDGETS, json=widget(replicas=2))).status_code == 201
    scale = (await c.get(f"{WIDGETS}/w1/scale")).json()
    assert scale["kind"] == "Scale" and scale["spec"]["replicas"] == 2
    scale["spec"]["replicas"] = 5
    assert (await c.put(f"{WIDGETS}/w1/scale", json=scale)).status_code == 200
    assert (await c.get(f"{WIDGETS}/w1")).json()["spec"]["replicas"] == 5


async def test_unknown_fields_follow_field_validation(c: httpx.AsyncClient) -> None:
    strict = await c.post(f"{WIDGETS}?fieldValidation=Strict", json=widget("s1", bogus=1))
    assert strict.status_code == 400
    assert 'strict decoding error: unknown field "spec.bogus"' in strict.json()["message"]
    assert (await c.get(f"{WIDGETS}/s1")).status_code == 404
    warn = await c.post(f"{WIDGETS}?fieldValidation=Warn", json=widget("s2", bogus=1))
    assert warn.status_code == 201 and 'unknown field \\"spec.bogus\\"' in warn.headers["warning"]
    assert "bogus" not in warn.json()["spec"]
    ignored = await c.post(f"{WIDGETS}?fieldValidation=Ignore", json=widget("s3", bogus=1))
    assert ignored.status_code == 201 and "warning" not in ignored.headers


async def test_server_side_apply_on_custom_objects(c: httpx.AsyncClient) -> None:
    apply = {"content-type": "application/apply-patch+yaml"}
    body = json.dumps(widget("ssa", size=2))
    first = await c.patch(f"{WIDGETS}/ssa?fieldManager=alice", content=body, headers=apply)
    assert first.status_code == 201, first.text
    assert {m["manager"] for m in first.json()["metadata"]["managedFields"]} == {"alice"}
    other = json.dumps(widget("ssa", size=5))
    conflict = await c.patch(f"{WIDGETS}/ssa?fieldManager=bob", content=other, headers=apply)
    assert conflict.status_code == 409 and "spec.size" in conflict.text
    forced = await c.patch(f"{WIDGETS}/ssa?fieldManager=bob&force=true", content=other, headers=apply)
    assert forced.status_code == 200 and forced.json()["spec"]["size"] == 5
