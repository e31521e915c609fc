"""Discovery documents, rendered once per app as bytes, shaped exactly as kube-apiserver's.

Legacy discovery::

    /api                  APIVersions        {"kind":"APIVersions","versions":["v1"]}
    /api/v1               APIResourceList    resources and "pods/status"-style subresource entries
    /apis                 APIGroupList       groups with their versions and preferredVersion
    /apis/GROUP           APIGroup
    /apis/GROUP/VERSION   APIResourceList

Aggregated discovery (``apidiscovery.k8s.io/v2`` ``APIGroupDiscoveryList``; kubectl asks for it
first): ``/api`` holds the core group, ``/apis`` every named group, each resource with
``responseKind``, ``scope``, ``singularResource``, ``verbs``, ``shortNames``, ``categories`` and
``subresources``; every version is ``freshness: Current``. ``aggregated_etag`` gives the ETag
kube sends with them. ``negotiate_aggregated`` reads an ``Accept`` header.

Resources are listed in name order and groups in kube's priority order (core, apps,
events.k8s.io, authentication, authorization, ..., rbac, ..., coordination, then others by name).
Subresource facts (verbs, kinds) come from ``SUBRESOURCES``.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson

from kapi.resources import ResourceType

AGGREGATED_V2 = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
AGGREGATED_V2BETA1 = "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList"
AGGREGATED_VERSIONS = ("v2", "v2beta1")


@dataclass(frozen=True)
class Subresource:
    """Discovery facts of a subresource: its verbs, and its kind when not the parent's
    (``group``/``version`` set only when kube reports them, e.g. ``autoscaling/v1`` Scale)."""

    verbs: tuple[str, ...]
    kind: str = ""
    group: str | None = None
    version: str | None = None


SUBRESOURCES: dict[str, Subresource] = {
    "status": Subresource(("get", "patch", "update")),
    "scale": Subresource(("get", "patch", "update"), "Scale", "autoscaling", "v1"),
    "binding": Subresource(("create",), "Binding"),
    "log": Subresource(("get",)),
    "finalize": Subresource(("update",)),
    "token": Subresource(("create",), "TokenRequest", "authentication.k8s.io", "v1"),
    "eviction": Subresource(("create",), "Eviction", "policy", "v1"),
    "ephemeralcontainers": Subresource(("get", "patch", "update")),
    "resize": Subresource(("get", "patch", "update")),
    "exec": Subresource(("create", "get"), "PodExecOptions"),
    "attach": Subresource(("create", "get"), "PodAttachOptions"),
    "portforward": Subresource(("create", "get"), "PodPortForwardOptions"),
    "proxy": Subresource(("create", "delete", "get", "patch", "update")),
    "approval": Subresource(("get", "patch", "update")),
}
DEFAULT_SUBRESOURCE = Subresource(("get", "patch", "update"))

#: kube-apiserver's group priorities (higher first); unknown groups come after, by name.
GROUP_PRIORITY = {
    "": 18000, "apiregistration.k8s.io": 17900, "apps": 17800, "events.k8s.io": 17750,
    "authentication.k8s.io": 17700, "authorization.k8s.io": 17600, "autoscaling": 17500, "batch": 17400,
    "certificates.k8s.io": 17300, "networking.k8s.io": 17200, "policy": 17100, "rbac.authorization.k8s.io": 17000,
    "storage.k8s.io": 16800, "admissionregistration.k8s.io": 16700, "apiextensions.k8s.io": 16700,
    "scheduling.k8s.io": 16600, "coordination.k8s.io": 16500, "node.k8s.io": 16300, "discovery.k8s.io": 16200,
    "flowcontrol.apiserver.k8s.io": 16100, "internal.apiserver.k8s.io": 16000, "resource.k8s.io": 15900,
    "storagemigration.k8s.io": 15800,
}

_VERSION = re.compile(r"^v(\d+)(?:(alpha|beta)(\d+))?$")


def version_sort_key(version: str) -> tuple[int, int, int, str]:
    """Kube's version priority: GA before beta before alpha, higher numbers first."""
    match = _VERSION.match(version)
    if not match:
        return (3, 0, 0, version)
    major, stage, minor = match.groups()
    rank = {None: 0, "beta": 1, "alpha": 2}[stage]
    return (rank, -int(major), -int(minor or 0), version)


def group_sort_key(group: str) -> tuple[int, str]:
    return (-GROUP_PRIORITY.get(group, 0), group)


def storage_version_hash(group: str, version: str, kind: str) -> str:
    """``discovery.StorageVersionHash``: base64 of the first 8 bytes of sha256("group/version/kind")."""
    digest = hashlib.sha256(f"{group}/{version}/{kind}".encode()).digest()
    return base64.b64encode(digest[:8]).decode()


def aggregated_etag(body: bytes) -> str:
    """The quoted ETag kube-apiserver sends with an aggregated discovery document."""
    return '"' + hashlib.sha512(body).hexdigest().upper() + '"'


def negotiate_aggregated(accept: str) -> str | None:
    """The aggregated-discovery version (``v2``/``v2beta1``) the client accepts before plain JSON,
    or None. kubectl 1.37 sends ``...v=v2;as=APIGroupDiscoveryList, ...v=v2beta1..., application/json``."""
    for part in accept.split(","):
        media, *params = (p.strip() for p in part.split(";"))
        values = dict(p.split("=", 1) for p in params if "=" in p)
        if values.get("as") == "APIGroupDiscoveryList":
            if values.get("g") == "apidiscovery.k8s.io" and values.get("v") in AGGREGATED_VERSIONS:
                return values["v"]
            continue
        if media:
            return None
    return None


# ---------------------------------------------------------------------------------------------
# document builders


def _storage_kind(rt: ResourceType) -> tuple[str, str, str]:
    """The GVK kube stores a resource as (events.k8s.io Events are stored as core v1 Events)."""
    if rt.storage_resource == "events":
        return ("", "v1", "Event")
    return (rt.group, rt.version, rt.kind)


def _legacy_entries(rt: ResourceType) -> list[dict[str, Any]]:
    main: dict[str, Any] = {"name": rt.plural, "singularName": rt.singular, "namespaced": rt.namespaced,
                            "kind": rt.kind, "verbs": sorted(rt.verbs)}
    if rt.short_names:
        main["shortNames"] = list(rt.short_names)
    if rt.categories:
        main["categories"] = list(rt.categories)
    if {"get", "list", "watch"} & set(rt.verbs):  # stored (reviews are create-only and have none)
        main["storageVersionHash"] = storage_version_hash(*_storage_kind(rt))
    entries = [main]
    for name in sorted(rt.subresources):
        sub = SUBRESOURCES.get(name, DEFAULT_SUBRESOURCE)
        entry: dict[str, Any] = {"name": f"{rt.plural}/{name}", "singularName": "", "namespaced": rt.namespaced}
        if sub.group is not None:
            entry["group"] = sub.group
        if sub.version is not None:
            entry["version"] = sub.version
        entry["kind"] = sub.kind or rt.kind
        entry["verbs"] = sorted(sub.verbs)
        entries.append(entry)
    return entries


def _aggregated_resource(rt: ResourceType) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resource": rt.plural,
        "responseKind": {"group": "", "version": "", "kind": rt.kind},
        "scope": "Namespaced" if rt.namespaced else "Cluster",
        "singularResource": rt.singular,
        "verbs": sorted(rt.verbs),
    }
    if rt.short_names:
        resource["shortNames"] = list(rt.short_names)
    if rt.categories:
        resource["categories"] = list(rt.categories)
    subresources = []
    for name in sorted(rt.subresources):
        sub = SUBRESOURCES.get(name, DEFAULT_SUBRESOURCE)
        subresources.append({
            "subresource": name,
            "responseKind": {"group": sub.group or "", "version": sub.version or "", "kind": sub.kind or rt.kind},
            "verbs": sorted(sub.verbs),
        })
    if subresources:
        resource["subresources"] = subresources
    return resource


def _dumps(doc: Any) -> bytes:
    return orjson.dumps(doc)


class Discovery:
    """Every discovery document of a set of resources, built once. Methods return the JSON bytes
    to send, or None for a group/version that is not served (answer 404)."""

    def __init__(self, resources: Iterable[ResourceType], *, server_address: str = "") -> None:
        by_gv: dict[tuple[str, str], list[ResourceType]] = {}
        for rt in resources:
            by_gv.setdefault((rt.group, rt.version), []).append(rt)
        for items in by_gv.values():
            items.sort(key=lambda rt: rt.plural)
        groups: dict[str, list[str]] = {}
        for group, version in by_gv:
            groups.setdefault(group, []).append(version)
        ordered = sorted(groups, key=group_sort_key)
        versions = {g: sorted(groups[g], key=version_sort_key) for g in ordered}

        self._resource_lists: dict[tuple[str, str], bytes] = {}
        for (group, version), items in by_gv.items():
            doc: dict[str, Any] = {"kind": "APIResourceList"}
            if group:
                doc["apiVersion"] = "v1"
            doc["groupVersion"] = f"{group}/{version}" if group else version
            doc["resources"] = [entry for rt in items for entry in _legacy_entries(rt)]
            self._resource_lists[(group, version)] = _dumps(doc)

        api_doc: dict[str, Any] = {"kind": "APIVersions", "versions": versions.get("", [])}
        if server_address:
            api_doc["serverAddressByClientCIDRs"] = [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}]
        self._api = _dumps(api_doc)

        group_docs = {g: self._group_doc(g, versions[g]) for g in ordered if g}
        self._groups = {g: _dumps({"kind": "APIGroup", "apiVersion": "v1", **doc}) for g, doc in group_docs.items()}
        self._apis = _dumps({"kind": "APIGroupList", "apiVersion": "v1", "groups": list(group_docs.values())})

        self._aggregated: dict[tuple[str, bool], bytes] = {}
        for api_version in AGGREGATED_VERSIONS:
            for core in (True, False):
                items_doc = [self._aggregated_group(g, versions[g], by_gv) for g in ordered if (g == "") is core]
                self._aggregated[(api_version, core)] = _dumps({
                    "kind": "APIGroupDiscoveryList", "apiVersion": f"apidiscovery.k8s.io/{api_version}",
                    "metadata": {}, "items": items_doc})
        self._etags = {key: aggregated_etag(body) for key, body in self._aggregated.items()}

    @staticmethod
    def _group_doc(group: str, versions: list[str]) -> dict[str, Any]:
        entries = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
        return {"name": group, "versions": entries, "preferredVersion": entries[0]}

    @staticmethod
    def _aggregated_group(group: str, versions: list[str],
                          by_gv: dict[tuple[str, str], list[ResourceType]]) -> dict[str, Any]:
        metadata: dict[str, Any] = {"name": group} if group else {}
        metadata["creationTimestamp"] = None
        return {"metadata": metadata, "versions": [
            {"version": v, "resources": [_aggregated_resource(rt) for rt in by_gv[(group, v)]], "freshness": "Current"}
            for v in versions]}

    # -- legacy ------------------------------------------------------------------------------

    def api(self) -> bytes:
        """``/api``: APIVersions."""
        return self._api

    def api_v1(self) -> bytes | None:
        """``/api/v1``: the core APIResourceList."""
        return self._resource_lists.get(("", "v1"))

    def apis(self) -> bytes:
        """``/apis``: APIGroupList of the named groups."""
        return self._apis

    def group(self, name: str) -> bytes | None:
        """``/apis/GROUP``: APIGroup."""
        return self._groups.get(name)

    def group_version(self, group: str, version: str) -> bytes | None:
        """``/apis/GROUP/VERSION`` (or ``("", "v1")`` for ``/api/v1``): APIResourceList."""
        return self._resource_lists.get((group, version))

    # -- aggregated --------------------------------------------------------------------------

    def aggregated_api(self, version: str = "v2") -> bytes:
        """``/api`` as an APIGroupDiscoveryList (``v2`` or ``v2beta1``)."""
        return self._aggregated[(version, True)]

    def aggregated_apis(self, version: str = "v2") -> bytes:
        """``/apis`` as an APIGroupDiscoveryList (``v2`` or ``v2beta1``)."""
        return self._aggregated[(version, False)]

    def aggregated_api_etag(self, version: str = "v2") -> str:
        return self._etags[(version, True)]

    def aggregated_apis_etag(self, version: str = "v2") -> str:
        return self._etags[(version, False)]
