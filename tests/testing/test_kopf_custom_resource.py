"""kopf reconciling a *custom* resource served by kapi: examples/kopf_operator/greeter_operator.py."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest

from kapi.testing.inprocess import KapiServer, wait_until

OPERATOR = Path(__file__).resolve().parents[2] / "examples" / "kopf_operator" / "greeter_operator.py"


def _crd() -> dict[str, Any]:
    spec = importlib.util.spec_from_file_location("greeter_operator", OPERATOR)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return dict(module.GREETING_CRD)


def test_operator_reconciles_a_custom_resource(kapi_server: KapiServer, kapi_client: Any,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("kopf")
    from kopf.testing import KopfRunner
    from kubernetes import client

    client.ApiextensionsV1Api(kapi_client).create_custom_resource_definition(_crd())
    custom = client.CustomObjectsApi(kapi_client)

    def served() -> bool:
        try:
            custom.list_namespaced_custom_object("kapi.example.com", "v1", "default", "greetings")
            return True
        except client.ApiException:
            return False

    wait_until(served, timeout=10)
    monkeypatch.setenv("KUBECONFIG", str(kapi_server.kubeconfig))

    def message() -> str | None:
        obj = custom.get_namespaced_custom_object("kapi.example.com", "v1", "default", "greetings", "hi")
        return (obj.get("status") or {}).get("message")

    with KopfRunner(["run", "--standalone", "-A", str(OPERATOR)], timeout=30) as runner:
        custom.create_namespaced_custom_object("kapi.example.com", "v1", "default", "greetings", {
            "apiVersion": "kapi.example.com/v1", "kind": "Greeting", "metadata": {"name": "hi"},
            "spec": {"name": "kapi"}})
        wait_until(lambda: message() == "Hello, kapi!", timeout=15)
        custom.patch_namespaced_custom_object("kapi.example.com", "v1", "default", "greetings", "hi",
                                              {"spec": {"name": "operators"}})
        wait_until(lambda: message() == "Hello, operators!", timeout=15)
    assert runner.exit_code == 0, runner.output
    assert runner.exception is None
