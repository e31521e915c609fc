"""A small kopf operator: mirrors labelled ConfigMaps.

When a ConfigMap labelled ``kapi.io/mirror=true`` is created, the operator creates
``NAME-mirror`` in the same namespace with the same data (owned by the original through an
ownerReference) and annotates the original with ``kapi.io/mirrored-to: NAME-mirror``. Updates of the
original's data are copied to the mirror.

It is CRD-free on purpose (it watches a built-in kind), and runs against any Kubernetes API server,
kapi's in-process test server included::

    pip install kopf kubernetes
    KUBECONFIG=/path/to/admin.kubeconfig kopf run --standalone -A examples/kopf_operator/mirror_operator.py

``--standalone`` skips kopf's peering objects (a CRD); ``-A`` watches every namespace.
"""

from __future__ import annotations

import os
from typing import Any

import kopf
import kubernetes

LABEL = "kapi.io/mirror"
ANNOTATION = "kapi.io/mirrored-to"


def mirror_name(name: str) -> str:
    return f"{name}-mirror"


@kopf.on.login()
def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
    """Log in with the kubeconfig named by $KUBECONFIG at start time (kopf's own reader)."""
    return kopf.login_with_kubeconfig(**kwargs)


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    """Keep kopf's own bookkeeping in annotations under our prefix, and load the client config."""
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="mirror.kapi.io")
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix="mirror.kapi.io")
    settings.posting.level = 100  # no Events for this demo
    kubernetes.config.load_kube_config(config_file=os.environ.get("KUBECONFIG"))  # read now, not at import


def _core() -> kubernetes.client.CoreV1Api:
    return kubernetes.client.CoreV1Api()


@kopf.on.create("configmaps", labels={LABEL: "true"})
def create_mirror(body: kopf.Body, name: str, namespace: str, patch: kopf.Patch, logger: Any, **_: Any) -> None:
    """Create the mirror, owned by the original; annotate the original."""
    child: dict[str, Any] = {"apiVersion": "v1", "kind": "ConfigMap",
                             "metadata": {"name": mirror_name(name), "namespace": namespace},
                             "data": dict(body.get("data") or {})}
    kopf.adopt(child, owner=body)
    child["metadata"]["labels"] = {}  # do not mirror the mirror (adopt copies the owner's labels)
    _core().create_namespaced_config_map(namespace, child)
    patch.metadata.annotations[ANNOTATION] = mirror_name(name)
    logger.info("mirrored %s/%s", namespace, name)


@kopf.on.field("configmaps", field="data", labels={LABEL: "true"})
def update_mirror(name: str, namespace: str, new: Any, **_: Any) -> None:
    """Copy changed data to the mirror (replacing it whole, so removed keys go too)."""
    _core().patch_namespaced_config_map(mirror_name(name), namespace,
                                        [{"op": "replace", "path": "/data", "value": dict(new or {})}])
