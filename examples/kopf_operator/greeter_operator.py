"""A small kopf operator for a custom resource: ``Greeting`` (greetings.kapi.example.com/v1).

When a Greeting is created or its ``spec.name`` changes, the operator writes
``status.message: "Hello, NAME!"`` (through the status subresource). ``GREETING_CRD`` is the
CustomResourceDefinition to apply first::

    KUBECONFIG=/path/to/admin.kubeconfig kopf run --standalone -A examples/kopf_operator/greeter_operator.py
"""

from __future__ import annotations

import os
from typing import Any

import kopf
import kubernetes

GROUP = "kapi.example.com"

GREETING_CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
    "metadata": {"name": f"greetings.{GROUP}"},
    "spec": {"group": GROUP, "scope": "Namespaced",
             "names": {"plural": "greetings", "singular": "greeting", "kind": "Greeting", "listKind": "GreetingList"},
             "versions": [{"name": "v1", "served": True, "storage": True, "subresources": {"status": {}},
                           "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                               "spec": {"type": "object", "required": ["name"],
                                        "properties": {"name": {"type": "string"}}},
                               "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}}}}]},
}


@kopf.on.login()
def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
    """Log in with the kubeconfig named by $KUBECONFIG."""
    return kopf.login_with_kubeconfig(**kwargs)


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    """Keep kopf's bookkeeping in annotations; no Events."""
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="greeter.kapi.io")
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix="greeter.kapi.io")
    settings.posting.level = 100
    kubernetes.config.load_kube_config(config_file=os.environ.get("KUBECONFIG"))


@kopf.on.create(GROUP, "v1", "greetings")
@kopf.on.field(GROUP, "v1", "greetings", field="spec.name")
def greet(spec: kopf.Spec, patch: kopf.Patch, **_: Any) -> None:
    """Write the greeting into the status."""
    patch.status["message"] = f"Hello, {spec.get('name')}!"
