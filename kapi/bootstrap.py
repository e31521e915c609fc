"""Objects every cluster has, created at startup when missing: the system namespaces and the
``kubernetes`` Service in ``default`` (its ClusterIP is the first address of the service range)."""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING, Any

from kapi.rest.objects import encode_for_storage, new_uid, now_rfc3339
from kapi.storage import KeyExistsError

if TYPE_CHECKING:
    from kapi.app import App

SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")


async def _create(app: App, key: str, obj: dict[str, Any]) -> None:
    try:
        await app.storage.create(key, encode_for_storage(obj))
    except KeyExistsError:
        pass


async def ensure_defaults(app: App) -> None:
    """Create the system namespaces and the kubernetes Service if they do not exist."""
    ns_type = app.registry.lookup("", "v1", "namespaces")
    if ns_type is not None:
        for name in SYSTEM_NAMESPACES:
            key = ns_type.key(app.root, "", name)
            if app.cache.route(key) is not None and key in app.cache.route(key).objects:  # type: ignore[union-attr]
                continue
            obj = {"apiVersion": "v1", "kind": "Namespace",
                   "metadata": {"name": name, "uid": new_uid(), "creationTimestamp": now_rfc3339(),
                                "labels": {"kubernetes.io/metadata.name": name}},
                   "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}
            await _create(app, key, obj)
    svc_type = app.registry.lookup("", "v1", "services")
    if svc_type is None:
        return
    key = svc_type.key(app.root, "default", "kubernetes")
    cache = app.cache.route(key)
    if cache is not None and key in cache.objects:
        return
    net = ipaddress.ip_network(app.config.service_cluster_ip_range, strict=False)
    ip = str(net.network_address + 1)
    await _create(app, f"{app.root}/ranges/serviceips/{ip}", {})
    port = app.config.secure_port
    service = {"apiVersion": "v1", "kind": "Service",
               "metadata": {"name": "kubernetes", "namespace": "default", "uid": new_uid(),
                            "creationTimestamp": now_rfc3339(),
                            "labels": {"component": "apiserver", "provider": "kubernetes"}},
               "spec": {"ports": [{"name": "https", "protocol": "TCP", "port": 443, "targetPort": port}],
                        "clusterIP": ip, "clusterIPs": [ip], "type": "ClusterIP", "sessionAffinity": "None",
                        "ipFamilies": ["IPv4" if net.version == 4 else "IPv6"], "ipFamilyPolicy": "SingleStack",
                        "internalTrafficPolicy": "Cluster"},
               "status": {"loadBalancer": {}}}
    await _create(app, key, service)
