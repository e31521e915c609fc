"""admission_default_toleration_seconds: not-ready/unreachable NoExecute tolerations of 300 s."""

from __future__ import annotations

import argparse

from kapi_plugins import admission_default_toleration_seconds as plugin
from tests.plugins.admission_fakes import pod, running


def test_aliases() -> None:
    assert plugin.ALIASES == ("DefaultTolerationSeconds",)


async def test_hook_kapi_mutate_admission() -> None:
    async with running("DefaultTolerationSeconds") as (_app, client):
        resp = await client.post("/api/v1/namespaces/default/pods", json=pod("p"))
        assert resp.json()["spec"]["tolerations"] == [
            {"key": plugin.NOT_READY, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
            {"key": plugin.UNREACHABLE, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}]
        own = [{"key": plugin.UNREACHABLE, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 5}]
        resp = await client.post("/api/v1/namespaces/default/pods", json=pod("q", tolerations=own))
        assert [t["key"] for t in resp.json()["spec"]["tolerations"]] == [plugin.UNREACHABLE, plugin.NOT_READY]


async def test_options_and_everything_tolerated() -> None:
    options = {plugin.PLUGIN_NAME: {"not_ready": 60, "unreachable": 30}}
    async with running("DefaultTolerationSeconds", options=options) as (_app, client):
        resp = await client.post("/api/v1/namespaces/default/pods", json=pod("p"))
        assert [t["tolerationSeconds"] for t in resp.json()["spec"]["tolerations"]] == [60, 30]
        resp = await client.post("/api/v1/namespaces/default/pods", json=pod("q", tolerations=[{"operator": "Exists"}]))
        assert resp.json()["spec"]["tolerations"] == [{"operator": "Exists"}]


def test_hook_kapi_add_options() -> None:
    parser = argparse.ArgumentParser()
    plugin.kapi_add_options(parser)
    args = parser.parse_args(["--default-not-ready-toleration-seconds", "10"])
    assert plugin.kapi_read_options(args) == {"not_ready": 10, "unreachable": 300}


def test_hook_kapi_read_options() -> None:
    args = argparse.Namespace(default_not_ready_toleration_seconds=1, default_unreachable_toleration_seconds=2)
    assert plugin.kapi_read_options(args) == {"not_ready": 1, "unreachable": 2}
