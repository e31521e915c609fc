"""admission_always_pull_images: imagePullPolicy Always everywhere, and refused otherwise."""

from __future__ import annotations

from typing import Any

import pytest

from kapi import AdmissionDenied, AdmissionRequest, Operation, UserInfo
from kapi_plugins import admission_always_pull_images as plugin
from tests.plugins.admission_fakes import pod, running


def test_aliases() -> None:
    assert plugin.ALIASES == ("AlwaysPullImages",)


async def test_hook_kapi_mutate_admission() -> None:
    async with running("AlwaysPullImages") as (_app, client):
        manifest = pod("p", {"name": "a", "image": "x:1", "imagePullPolicy": "IfNotPresent"},
                       initContainers=[{"name": "i", "image": "y"}])
        spec = (await client.post("/api/v1/namespaces/default/pods", json=manifest)).json()["spec"]
        assert [c["imagePullPolicy"] for c in (*spec["containers"], *spec["initContainers"])] == ["Always", "Always"]


def _request(obj: dict[str, Any], old: dict[str, Any] | None = None) -> AdmissionRequest:
    return AdmissionRequest(operation=Operation.UPDATE if old else Operation.CREATE, kind="Pod", api_group="",
                            api_version="v1", resource="pods", subresource="", namespace="default", name="p",
                            obj=obj, old_obj=old, user=UserInfo("u"))


def test_hook_kapi_validate_admission() -> None:
    never = pod("p", {"name": "a", "image": "x", "imagePullPolicy": "Never"})
    with pytest.raises(AdmissionDenied) as denied:
        plugin.kapi_validate_admission(_request(never))
    assert str(denied.value) == ('pods "p" is forbidden: spec.containers[0].imagePullPolicy: Unsupported value: '
                                 '"Never": supported values: "Always"')
    # an unchanged image on update is not re-checked
    plugin.kapi_validate_admission(_request(never, old=never))
