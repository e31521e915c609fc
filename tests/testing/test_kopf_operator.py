"""A real operator framework against the in-process server: examples/kopf_operator under KopfRunner."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from kapi.testing.inprocess import KapiServer, wait_until

OPERATOR = Path(__file__).resolve().parents[2] / "examples" / "kopf_operator" / "mirror_operator.py"


def test_operator_mirrors_labelled_configmaps(kapi_server: KapiServer, kapi_client: Any,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("kopf")
    from kopf.testing import KopfRunner
    from kubernetes import client
    from kubernetes.client.rest import ApiException

    core = client.CoreV1Api(kapi_client)
    monkeypatch.setenv("KUBECONFIG", str(kapi_server.kubeconfig))

    def mirror() -> Any:
        try:
            return core.read_namespaced_config_map("settings-mirror", "default")
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    with KopfRunner(["run", "--standalone", "-A", str(OPERATOR)], timeout=30) as runner:
        core.create_namespaced_config_map("default", {"metadata": {"name": "plain"}, "data": {"a": "1"}})
        core.create_namespaced_config_map("default", {"metadata": {"name": "settings",
                                                                   "labels": {"kapi.io/mirror": "true"}},
                                                      "data": {"color": "blue"}})
        wait_until(lambda: mirror() is not None, timeout=15)
        original = core.read_namespaced_config_map("settings", "default")
        copy = mirror()
        assert copy.data == {"color": "blue"}
        assert copy.metadata.owner_references[0].uid == original.metadata.uid
        wait_until(lambda: (core.read_namespaced_config_map("settings", "default").metadata.annotations or {})
                   .get("kapi.io/mirrored-to") == "settings-mirror", timeout=10)
        core.patch_namespaced_config_map("settings", "default", {"data": {"color": "green"}})
        wait_until(lambda: mirror().data == {"color": "green"}, timeout=15)
        names = [c.metadata.name for c in core.list_namespaced_config_map("default").items]
        assert "plain-mirror" not in names
    assert runner.exit_code == 0, runner.output
    assert runner.exception is None
