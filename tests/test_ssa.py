"""Server-side apply and managedFields, in process: kapi.ssa units and the PATCH/PUT/POST endpoints."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import pytest

from kapi.schema import load_catalog
from kapi.ssa import ApplyConflict, apply, track_update
from kapi.ssa.fieldset import decode, diff, encode, field_set, path_string, subtract, union

CMS = "/api/v1/namespaces/default/configmaps"
DEPLOYS = "/apis/apps/v1/namespaces/default/deployments"
APPLY = {"content-type": "application/apply-patch+yaml"}
POD = load_catalog().node_for("", "v1", "Pod")


def cm(data: dict[str, str], **meta: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", **meta}, "data": data}


def deployment(containers: list[dict[str, Any]], **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
            "spec": {"selector": {"matchLabels": {"app": "d"}}, **spec,
                     "template": {"metadata": {"labels": {"app": "d"}}, "spec": {"containers": containers}}}}


async def do_apply(client: httpx.AsyncClient, path: str, obj: dict[str, Any], manager: str,
                   force: bool = False) -> httpx.Response:
    params = {"fieldManager": manager, **({"force": "true"} if force else {})}
    return await client.patch(path, content=orjson.dumps(obj), params=params, headers=APPLY)


def entries(obj: dict[str, Any]) -> dict[tuple[str, str], set[tuple[str, ...]]]:
    return {(e["manager"], e["operation"]): decode(e["fieldsV1"]) for e in obj["metadata"].get("managedFields", [])}


# ---------------------------------------------------------------------------------------------
# units


def test_field_set_follows_list_types() -> None:
    spec = {"spec": {"containers": [{"name": "a", "image": "x", "ports": [{"containerPort": 80}],
                                     "command": ["sh"]}], "nodeSelector": {"k": "v"}},
            "metadata": {"finalizers": ["f1"], "labels": {"l": "1"}}}
    got = field_set(spec, POD)
    item = ("f:spec", "f:containers", 'k:{"name":"a"}')
    port = 'k:{"containerPort":80,"protocol":"TCP"}'  # the protocol key field defaults to TCP
    assert {item, (*item, "f:image"), (*item, "f:command"), (*item, "f:ports", port),
            ("f:metadata", "f:finalizers", 'v:"f1"'), ("f:metadata", "f:labels", "f:l"),
            ("f:spec", "f:nodeSelector")} <= got  # nodeSelector is x-kubernetes-map-type: atomic
    assert ("f:spec", "f:containers") not in got  # a map list is not owned whole
    assert encode(got)["f:spec"]["f:containers"]['k:{"name":"a"}']["."] == {}


def test_diff_and_trie_algebra() -> None:
    old = {"metadata": {"labels": {"a": "1"}}, "spec": {"restartPolicy": "Always"}}
    new = {"metadata": {"labels": {"a": "2"}, "annotations": {"x": "y"}}, "spec": {}}
    changed, removed = diff(old, new, POD)
    assert decode(changed) == {("f:metadata", "f:labels", "f:a"), ("f:metadata", "f:annotations"),
                               ("f:metadata", "f:annotations", "f:x")}
    assert decode(removed) == {("f:spec", "f:restartPolicy")}
    both = union(changed, removed)
    assert decode(both) == decode(changed) | decode(removed)
    assert decode(subtract(both, changed)) == decode(removed)
    assert subtract(removed, changed) is removed  # nothing taken away: shared, not copied
    assert path_string(("f:spec", "f:containers", 'k:{"name":"a"}', "f:image")) == '.spec.containers[name="a"].image'


def test_apply_units_conflict_force_and_removal() -> None:
    live = apply(None, {"spec": {"containers": [{"name": "a", "image": "x"}]}}, manager="m1", force=False,
                 api_version="v1", node=POD)
    with pytest.raises(ApplyConflict) as caught:
        apply(live, {"spec": {"containers": [{"name": "a", "image": "y"}]}}, manager="m2", force=False,
              api_version="v1", node=POD)
    assert str(caught.value) == 'Apply failed with 1 conflict: conflict with "m1": .spec.containers[name="a"].image'
    taken = apply(live, {"spec": {"containers": [{"name": "a", "image": "y"}]}}, manager="m2", force=True,
                  api_version="v1", node=POD)
    assert taken["spec"]["containers"] == [{"name": "a", "image": "y"}]
    owners = {e["manager"]: decode(e["fieldsV1"]) for e in taken["metadata"]["managedFields"]}
    assert ("f:spec", "f:containers", 'k:{"name":"a"}', "f:image") not in owners["m1"]
    # m1 stops applying its container: it goes, since m2 co-owns only the image below it ... which keeps it
    dropped = apply(taken, {"spec": {"restartPolicy": "Never"}}, manager="m1", force=False, api_version="v1", node=POD)
    assert dropped["spec"]["containers"] == [{"name": "a", "image": "y"}]


def test_track_update_moves_changed_fields() -> None:
    obj = {"metadata": {"name": "p"}, "spec": {"restartPolicy": "Always", "hostname": "h"}}
    track_update(None, obj, manager="creator", api_version="v1", node=POD)
    new = orjson.loads(orjson.dumps(obj))
    new["spec"]["restartPolicy"] = "Never"
    del new["metadata"]["managedFields"]  # a client that does not send them keeps them
    track_update(obj, new, manager="editor", api_version="v1", node=POD)
    owners = {e["manager"]: decode(e["fieldsV1"]) for e in new["metadata"]["managedFields"]}
    assert owners == {"creator": {("f:spec", "f:hostname")}, "editor": {("f:spec", "f:restartPolicy")}}
    same = orjson.loads(orjson.dumps(new))
    track_update(new, same, manager="other", api_version="v1", node=POD)
    assert same == new  # no change, no new entry, no new time


# ---------------------------------------------------------------------------------------------
# endpoints


async def test_apply_creates_and_reapply_is_a_noop(client: httpx.AsyncClient) -> None:
    created = await do_apply(client, f"{CMS}/c", cm({"a": "1"}), "m1")
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["data"] == {"a": "1"}
    assert entries(body) == {("m1", "Apply"): {("f:data", "f:a")}}
    again = await do_apply(client, f"{CMS}/c", cm({"a": "1"}), "m1")
    assert again.status_code == 200
    assert again.json()["metadata"]["resourceVersion"] == body["metadata"]["resourceVersion"]


async def test_apply_needs_a_field_manager_and_matching_kind(client: httpx.AsyncClient) -> None:
    missing = await client.patch(f"{CMS}/c", content=orjson.dumps(cm({})), headers=APPLY)
    assert missing.status_code == 400 and "fieldManager" in missing.json()["message"]
    wrong = await do_apply(client, f"{CMS}/c", {**cm({}), "kind": "Secret"}, "m")
    assert wrong.status_code == 400
    other_name = await do_apply(client, f"{CMS}/other", cm({}), "m")
    assert other_name.status_code == 400
    yaml_body = await client.patch(f"{CMS}/c", content=b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n"
                                   b"data:\n  y: 'z'\n", params={"fieldManager": "y"}, headers=APPLY)
    assert yaml_body.status_code == 201 and yaml_body.json()["data"] == {"y": "z"}


async def test_conflict_then_force(client: httpx.AsyncClient) -> None:
    await do_apply(client, f"{CMS}/c", cm({"x": "1", "y": "1"}), "a")
    shared = await do_apply(client, f"{CMS}/c", cm({"x": "1"}), "b")  # same value: shared, no conflict
    assert shared.status_code == 200, shared.text
    clash = await do_apply(client, f"{CMS}/c", cm({"x": "2", "y": "2"}), "b")
    assert clash.status_code == 409
    status = clash.json()
    assert status["reason"] == "Conflict"
    assert status["message"].startswith('Apply failed with 2 conflicts: conflicts with "a":')
    assert status["details"]["causes"] == [
        {"reason": "FieldManagerConflict", "message": 'conflict with "a"', "field": ".data.x"},
        {"reason": "FieldManagerConflict", "message": 'conflict with "a"', "field": ".data.y"}]
    forced = await do_apply(client, f"{CMS}/c", cm({"x": "2", "y": "2"}), "b", force=True)
    assert forced.status_code == 200 and forced.json()["data"] == {"x": "2", "y": "2"}
    owners = entries(forced.json())
    assert owners[("b", "Apply")] == {("f:data", "f:x"), ("f:data", "f:y")}
    assert ("a", "Apply") not in owners  # a owned only x and y: its entry is gone


async def test_update_manager_conflict_message(client: httpx.AsyncClient) -> None:
    await client.post(CMS, json=cm({"x": "1"}), params={"fieldManager": "kubectl-client-side-apply"})
    clash = await do_apply(client, f"{CMS}/c", cm({"x": "2"}), "kubectl")
    assert clash.status_code == 409
    assert clash.json()["message"].startswith('Apply failed with 1 conflict: conflict with '
                                              '"kubectl-client-side-apply" using v1 at ')
    assert clash.json()["message"].endswith(": .data.x")


async def test_removal_of_fields_no_longer_applied(client: httpx.AsyncClient) -> None:
    await do_apply(client, f"{CMS}/c", cm({"x": "1", "y": "1", "z": "1"}, labels={"l": "1"}), "a")
    await do_apply(client, f"{CMS}/c", cm({"z": "1"}), "b")
    later = await do_apply(client, f"{CMS}/c", cm({"x": "1"}), "a")
    body = later.json()
    assert body["data"] == {"x": "1", "z": "1"}  # y removed; z stays because b owns it too
    assert not body["metadata"].get("labels")


async def test_containers_merge_by_name_and_set_lists(client: httpx.AsyncClient) -> None:
    first = deployment([{"name": "app", "image": "nginx"}])
    first["metadata"]["finalizers"] = ["example.com/a"]
    assert (await do_apply(client, f"{DEPLOYS}/d", first, "a")).status_code == 201
    second = deployment([{"name": "side", "image": "busybox"}])
    second["metadata"]["finalizers"] = ["example.com/b"]
    resp = await do_apply(client, f"{DEPLOYS}/d", second, "b")
    assert resp.status_code == 200, resp.text
    spec = resp.json()["spec"]["template"]["spec"]
    assert [c["name"] for c in spec["containers"]] == ["app", "side"]
    assert spec["containers"][0]["image"] == "nginx"
    assert resp.json()["metadata"]["finalizers"] == ["example.com/a", "example.com/b"]
    owners = entries(resp.json())
    item = ("f:spec", "f:template", "f:spec", "f:containers", 'k:{"name":"side"}')
    assert {item, (*item, "f:image")} <= owners[("b", "Apply")]


async def test_managed_fields_after_update_and_patch(client: httpx.AsyncClient) -> None:
    created = (await client.post(CMS, json=cm({"a": "1"}), headers={"user-agent": "kubectl/v1.37.0 (linux)"})).json()
    # a map that appears is itself owned (FieldsV1 ".") besides its keys, as kube records it
    assert entries(created) == {("kubectl", "Update"): {("f:data",), ("f:data", "f:a")}}
    created["data"]["b"] = "2"
    del created["metadata"]["managedFields"]
    updated = (await client.put(f"{CMS}/c", json=created, params={"fieldManager": "kubectl-edit"})).json()
    assert entries(updated)[("kubectl-edit", "Update")] == {("f:data", "f:b")}
    patched = (await client.patch(f"{CMS}/c", content=b'{"data":{"a":"3"}}', params={"fieldManager": "patcher"},
                                  headers={"content-type": "application/merge-patch+json"})).json()
    owners = entries(patched)
    assert owners[("patcher", "Update")] == {("f:data", "f:a")}
    assert owners[("kubectl", "Update")] == {("f:data",)}  # data.a moved to the patcher
    reset = (await client.patch(f"{CMS}/c", content=b'{"metadata":{"managedFields":[{}]}}',
                                headers={"content-type": "application/merge-patch+json"})).json()
    assert "managedFields" not in reset["metadata"]


async def test_status_is_not_owned_through_the_main_resource(client: httpx.AsyncClient) -> None:
    body = deployment([{"name": "app", "image": "nginx"}])
    body["status"] = {"replicas": 5}
    resp = await do_apply(client, f"{DEPLOYS}/d", body, "a")
    assert resp.status_code == 201
    assert not any(p[0] == "f:status" for p in entries(resp.json())[("a", "Apply")])


async def test_apply_to_the_status_subresource(client: httpx.AsyncClient) -> None:
    assert (await do_apply(client, f"{DEPLOYS}/d", deployment([{"name": "app", "image": "nginx"}]), "a")).status_code \
        == 201
    status = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
              "status": {"observedGeneration": 1, "replicas": 2}}
    resp = await do_apply(client, f"{DEPLOYS}/d/status", status, "controller")
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["status"]["replicas"] == 2
    mine = [e for e in body["metadata"]["managedFields"] if e["manager"] == "controller"]
    assert mine and mine[0]["subresource"] == "status" and mine[0]["operation"] == "Apply"
    assert decode(mine[0]["fieldsV1"]) == {("f:status", "f:observedGeneration"), ("f:status", "f:replicas")}
    missing = await do_apply(client, f"{DEPLOYS}/nope/status", {**status, "metadata": {"name": "nope"}}, "c")
    assert missing.status_code == 404
