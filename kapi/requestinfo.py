"""URL path + method -> what the request is about (k8s.io/apiserver ``RequestInfoFactory``).

Valid resource paths (``/api/v1`` is the core group; ``/apis/GROUP/VERSION`` every other)::

    /api/v1/RESOURCE                                  list, watch, create, deletecollection (cluster-wide)
    /api/v1/RESOURCE/NAME                             get, update, patch, delete (cluster-scoped kinds)
    /api/v1/RESOURCE/NAME/SUBRESOURCE                 e.g. nodes/NAME/status
    /api/v1/namespaces/NS/RESOURCE                    namespaced collection
    /api/v1/namespaces/NS/RESOURCE/NAME               one namespaced object
    /api/v1/namespaces/NS/RESOURCE/NAME/SUBRESOURCE   e.g. pods/NAME/status, pods/NAME/binding
    /api/v1/namespaces/NAME[/SUBRESOURCE]             the namespace object itself (status, finalize)
    /api/v1/watch/...                                 legacy watch paths (verb watch)

Anything else (``/api``, ``/apis/apps``, ``/version``, ``/healthz``, ``/openapi/v3``...) is a
non-resource request whose verb is the lowercase HTTP method (``get``, ``post``...).
Verbs: GET -> get, list (no name) or watch (``?watch=1|true`` or a legacy watch path); a list or
watch with ``fieldSelector=metadata.name=NAME`` carries that name (as kube-apiserver authorizes it);
POST -> create; PUT -> update; PATCH -> patch; DELETE -> delete or deletecollection (no name).
"""

from __future__ import annotations

from dataclasses import dataclass

from kapi.types import RequestAttributes, UserInfo

_SPECIAL_VERBS = {"GET": "get", "HEAD": "get", "POST": "create", "PUT": "update", "PATCH": "patch",
                  "DELETE": "delete"}


@dataclass(frozen=True, slots=True)
class RequestInfo:
    """The parsed request. For non-resource requests only ``path`` and ``verb`` are meaningful."""

    path: str
    verb: str
    is_resource_request: bool
    api_prefix: str = ""
    api_group: str = ""
    api_version: str = ""
    namespace: str = ""
    resource: str = ""
    subresource: str = ""
    name: str = ""

    def attributes(self, user: UserInfo) -> RequestAttributes:
        """The authorization attributes of this request for ``user``."""
        return RequestAttributes(verb=self.verb, path=self.path, is_resource_request=self.is_resource_request,
                                 api_group=self.api_group, api_version=self.api_version, resource=self.resource,
                                 subresource=self.subresource, namespace=self.namespace, name=self.name, user=user)


def _selected_name(query: str) -> str:
    """The name a list/watch selects with ``fieldSelector=metadata.name=NAME`` (kube authorizes
    such a request as one on that name), or ""."""
    from urllib.parse import parse_qs

    for selector in parse_qs(query).get("fieldSelector", ()):
        for term in selector.split(","):
            key, sep, value = term.partition("=")
            if sep and key.strip() == "metadata.name" and not value.startswith("="):
                return value.strip()
            if key.strip() == "metadata.name" and value.startswith("="):
                return value[1:].strip()
    return ""


def _is_watch_query(query: str) -> bool:
    for part in query.split("&"):
        key, _, value = part.partition("=")
        if key == "watch":
            return value in ("1", "true", "True")
    return False


def parse(method: str, path: str, query: str = "") -> RequestInfo:
    """Parse one request. Pure; never raises (an unknown shape is a non-resource request)."""
    non_resource = RequestInfo(path=path, verb=method.lower(), is_resource_request=False)
    parts = [p for p in path.strip("/").split("/") if p]
    if not parts:
        return non_resource
    if parts[0] == "api":
        if len(parts) < 3:
            return non_resource
        prefix, group, version, rest = "api", "", parts[1], parts[2:]
    elif parts[0] == "apis":
        if len(parts) < 4:
            return non_resource
        prefix, group, version, rest = "apis", parts[1], parts[2], parts[3:]
    else:
        return non_resource

    verb = _SPECIAL_VERBS.get(method.upper(), method.lower())
    legacy_watch = False
    if rest and rest[0] == "watch":
        legacy_watch = True
        rest = rest[1:]
        if not rest:
            return non_resource

    namespace = ""
    if rest[0] == "namespaces" and len(rest) > 1:
        namespace = rest[1]
        if len(rest) == 2:  # /namespaces/NAME is the namespace object itself
            rest = ["namespaces", namespace]
        elif len(rest) == 3 and rest[2] in ("status", "finalize"):
            rest = ["namespaces", namespace, rest[2]]
        else:
            rest = rest[2:]
    resource = rest[0]
    name = rest[1] if len(rest) > 1 else ""
    subresource = rest[2] if len(rest) > 2 else ""
    if len(rest) > 3:
        return non_resource

    if not name:
        if verb == "get":
            verb = "watch" if legacy_watch or _is_watch_query(query) else "list"
            if "fieldSelector" in query:
                name = _selected_name(query)
        elif verb == "delete":
            verb = "deletecollection"
    elif (legacy_watch and verb == "get") or (verb == "get" and _is_watch_query(query)):
        verb = "watch"
    return RequestInfo(path=path, verb=verb, is_resource_request=True, api_prefix=prefix, api_group=group,
                       api_version=version, namespace=namespace, resource=resource, subresource=subresource,
                       name=name)
