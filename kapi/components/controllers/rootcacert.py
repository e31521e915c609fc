"""The root CA publisher: a ``kube-root-ca.crt`` ConfigMap in every active namespace.

Pods read the cluster CA from it (``ca.crt``) to verify the API server. Like
``pkg/controller/certificates/rootcacertpublisher``: the ConfigMap is created when missing and
rewritten when its data or its ``kubernetes.io/description`` annotation differ; namespaces that
are terminating or gone are skipped. Enabled when the controller manager knows the CA
(``ControllerOptions.root_ca_pem``, read from ``--root-ca-file`` or the kubeconfig).
"""

from __future__ import annotations

from typing import Any

from kapi.client import ApiError
from kapi.components.controllers.framework import Controller
from kapi.components.controllers.gvr import CONFIG_MAPS, NAMESPACES
from kapi.components.controllers.objects import annotations_of, copy, is_namespace_active, namespace_of
from kapi.components.controllers.writes import create_if_absent, is_namespace_terminating

Obj = dict[str, Any]

CONFIG_MAP_NAME = "kube-root-ca.crt"
DESCRIPTION_ANNOTATION = "kubernetes.io/description"
DESCRIPTION = ("Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints "
               "such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across "
               "distributions of Kubernetes clusters.")


class RootCACertPublisher(Controller):
    """``root-ca-cert-publisher``: see the module docstring."""

    name = "root-ca-cert-publisher"
    component = "root-ca-cert-publisher"
    service_account = "root-ca-cert-publisher"

    def setup(self) -> None:
        self.namespaces = self.cache(NAMESPACES)
        self.config_maps = self.cache(CONFIG_MAPS, field_selector=f"metadata.name={CONFIG_MAP_NAME}")
        self.namespaces.add_handler(self.enqueue, lambda old, new: self.enqueue(new))
        self.config_maps.add_handler(on_update=lambda old, new: self.enqueue(namespace_of(new)),
                                     on_delete=lambda cm: self.enqueue(namespace_of(cm)))

    async def sync(self, key: str) -> float | None:
        if not self.options.root_ca_pem or not is_namespace_active(self.namespaces.get(key)):
            return None
        data = {"ca.crt": self.options.root_ca_pem}
        current = self.config_maps.get(f"{key}/{CONFIG_MAP_NAME}")
        try:
            if current is None:
                await create_if_absent(self.client, CONFIG_MAPS, {
                    "apiVersion": "v1", "kind": "ConfigMap", "data": data,
                    "metadata": {"name": CONFIG_MAP_NAME, "namespace": key,
                                 "annotations": {DESCRIPTION_ANNOTATION: DESCRIPTION}}})
            elif current.get("data") != data or not annotations_of(current).get(DESCRIPTION_ANNOTATION):
                updated = copy(current)
                updated["data"] = data
                updated["metadata"].setdefault("annotations", {})[DESCRIPTION_ANNOTATION] = DESCRIPTION
                await self.client.update(CONFIG_MAPS.path_of(updated), updated)
        except ApiError as exc:
            if not (exc.not_found or is_namespace_terminating(exc)):
                raise
        return None
