"""Serve-ready OpenAPI documents: ``/openapi/v2`` (Swagger 2.0) and ``/openapi/v3`` (per group-version).

``OpenAPI(catalog, resources)`` is built once per app; every document is produced on first request
and kept as bytes. The schemas come from the catalog with the JSON-Schema-isms turned back into
OpenAPI: one ``type`` instead of ``["string", "null"]``, refs to ``#/definitions/NAME`` (v2) or
``#/components/schemas/NAME`` (v3), IntOrString as ``{"type": "string", "format": "int-or-string"}``,
Quantity as a string, and the ``apiVersion``/``kind`` enums that kubernetes-validate adds removed.
The ``x-kubernetes-*`` extensions are kept: clients read patch strategies from them.

Paths follow kube-apiserver: collection and item paths (namespaced and, for listing, across all
namespaces), the deprecated ``/watch/`` paths and the subresources a ``ResourceType`` names, each
operation with ``operationId``, ``x-kubernetes-action`` and ``x-kubernetes-group-version-kind``,
and query parameters written inline on the operation. kubectl relies on that: it decides that the
server validates fields itself when the PATCH operation of a kind lists ``fieldValidation``.

What kubectl 1.37 fetches: ``kubectl explain`` and the field-validation probe read ``/openapi/v3``
(the index, then ``serverRelativeURL`` with its ``?hash=``, cached under the hash). ``/openapi/v2``
is only requested as protobuf by client-go (kubectl validates a ``kind: List`` manifest with it):
``v2_protobuf()`` is the JSON document encoded by ``kapi.openapi_pb``; other clients read ``v2()``.

Each v3 group-version document holds only the definitions reachable from that group-version's
kinds (plus the meta types its operations use), so documents stay small.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from kapi.openapi_pb import encode_document
from kapi.resources import ResourceType
from kapi.schema import GVK, KUBERNETES_VERSION, Schema, SchemaCatalog, ref_name, schema_types

_META = "io.k8s.apimachinery.pkg.apis.meta.v1"
DELETE_OPTIONS = f"{_META}.DeleteOptions"
STATUS = f"{_META}.Status"
WATCH_EVENT = f"{_META}.WatchEvent"
PATCH = f"{_META}.Patch"
_ALWAYS = (DELETE_OPTIONS, STATUS, WATCH_EVENT, PATCH)

_JSON = "application/json"
_YAML = "application/yaml"
_PROTOBUF = "application/vnd.kubernetes.protobuf"
_READ_TYPES = (_JSON, _YAML, _PROTOBUF)
_LIST_TYPES = (_JSON, _YAML, _PROTOBUF, "application/json;stream=watch", f"{_PROTOBUF};stream=watch")
_PATCH_TYPES = ("application/json-patch+json", "application/merge-patch+json", "application/strategic-merge-patch+json",
                "application/apply-patch+yaml")
_ANY_TYPE = ("*/*",)
_STATUS_TEXT = {200: "OK", 201: "Created", 202: "Accepted", 401: "Unauthorized"}
_SCALAR_DOCS = {
    "io.k8s.apimachinery.pkg.util.intstr.IntOrString":
        "IntOrString is a type that can hold an int32 or a string: a field that accepts a name or a number.",
    "io.k8s.apimachinery.pkg.api.resource.Quantity":
        "Quantity is a fixed-point representation of a number, serialized as a string such as '100m', '1Gi' "
        "or '2.5'.",
}
_BEARER = {"type": "apiKey", "description": "Bearer Token authentication", "name": "authorization", "in": "header"}

# name -> (type, description)
_PARAMS: dict[str, tuple[str, str]] = {
    "allowWatchBookmarks": ("boolean", "allowWatchBookmarks requests watch events with type \"BOOKMARK\"."),
    "continue": ("string", "The continue token of a previous paged list call, to fetch the next page."),
    "dryRun": ("string", "When present, modifications are not persisted. Valid values are: - All: all dry run "
                         "stages will be processed"),
    "fieldManager": ("string", "fieldManager is a name associated with the actor or entity that is making "
                               "these changes."),
    "fieldSelector": ("string", "A selector to restrict the list of returned objects by their fields. Defaults "
                                "to everything."),
    "fieldValidation": ("string", "fieldValidation determines how the server should respond to unknown/duplicate "
                                  "fields in the object in the request. Valid values are: - Ignore: ignores "
                                  "unknown/duplicate fields. - Warn: responds with a warning for each "
                                  "unknown/duplicate field, but successfully serves the request. - Strict: fails "
                                  "the request on unknown/duplicate fields."),
    "force": ("boolean", "Force is going to \"force\" Apply requests. It means user will re-acquire conflicting "
                         "fields owned by other people."),
    "gracePeriodSeconds": ("integer", "The duration in seconds before the object should be deleted."),
    "ignoreStoreReadErrorWithClusterBreakingPotential": (
        "boolean", "if set to true, it will trigger an unsafe deletion of the resource in case the normal "
                   "deletion flow fails with a corrupt object error."),
    "labelSelector": ("string", "A selector to restrict the list of returned objects by their labels. Defaults "
                                "to everything."),
    "limit": ("integer", "limit is a maximum number of responses to return for a list call."),
    "orphanDependents": ("boolean", "Deprecated: please use the PropagationPolicy. Should the dependent objects "
                                    "be orphaned."),
    "pretty": ("string", "If 'true', then the output is pretty printed."),
    "propagationPolicy": ("string", "Whether and how garbage collection will be performed: 'Orphan', "
                                    "'Background' or 'Foreground'."),
    "resourceVersion": ("string", "resourceVersion sets a constraint on what resource versions a request may "
                                  "be served from."),
    "resourceVersionMatch": ("string", "resourceVersionMatch determines how resourceVersion is applied to list "
                                       "calls."),
    "sendInitialEvents": ("boolean", "`sendInitialEvents=true` may be set together with `watch=true` to begin "
                                     "the watch stream with synthetic events of the current state."),
    "timeoutSeconds": ("integer", "Timeout for the list/watch call."),
    "watch": ("boolean", "Watch for changes to the described resources and return them as a stream of add, "
                         "update, and remove notifications."),
    # log
    "container": ("string", "The container for which to stream logs, or to run the command in."),
    "follow": ("boolean", "Follow the log stream of the pod."),
    "limitBytes": ("integer", "If set, the number of bytes to read from the server before terminating the "
                              "log output."),
    "previous": ("boolean", "Return previous terminated container logs."),
    "sinceSeconds": ("integer", "A relative time in seconds before the current time from which to show logs."),
    "tailLines": ("integer", "If set, the number of lines from the end of the logs to show."),
    "timestamps": ("boolean", "If true, add an RFC3339 timestamp at the beginning of every line of log output."),
    # exec / attach
    "command": ("string", "Command is the remote command to execute. argv array."),
    "stdin": ("boolean", "Redirect the standard input stream of the pod for this call."),
    "stdout": ("boolean", "Redirect the standard output stream of the pod for this call."),
    "stderr": ("boolean", "Redirect the standard error stream of the pod for this call."),
    "tty": ("boolean", "TTY if true indicates that a tty will be allocated for the exec call."),
    "ports": ("integer", "List of ports to forward."),
    "path": ("string", "Path is the URL path to use for the current proxy request."),
}
_LIST = ("allowWatchBookmarks", "continue", "fieldSelector", "labelSelector", "limit", "resourceVersion",
         "resourceVersionMatch", "sendInitialEvents", "timeoutSeconds", "watch")
_WRITE = ("dryRun", "fieldManager", "fieldValidation")
_PATCH = ("dryRun", "fieldManager", "fieldValidation", "force")
_DELETE = ("dryRun", "gracePeriodSeconds", "ignoreStoreReadErrorWithClusterBreakingPotential", "orphanDependents",
           "propagationPolicy")
_DELETE_COLLECTION = (*_DELETE, "continue", "fieldSelector", "labelSelector", "limit", "resourceVersion",
                      "resourceVersionMatch", "sendInitialEvents", "timeoutSeconds")
_LOG = ("container", "follow", "limitBytes", "previous", "sinceSeconds", "tailLines", "timestamps")
_EXEC = ("command", "container", "stderr", "stdin", "stdout", "tty")
_CONNECT_PARAMS = {"exec": _EXEC, "attach": ("container", "stderr", "stdin", "stdout", "tty"),
                   "portforward": ("ports",), "proxy": ("path",)}

# subresource -> (HTTP methods, kind of the body/response: None = the resource's own kind)
_SUBRESOURCES: dict[str, tuple[tuple[str, ...], GVK | None]] = {
    "status": (("get", "put", "patch"), None),
    "ephemeralcontainers": (("get", "put", "patch"), None),
    "resize": (("get", "put", "patch"), None),
    "approval": (("get", "put", "patch"), None),
    "finalize": (("put",), None),
    "scale": (("get", "put", "patch"), ("autoscaling", "v1", "Scale")),
    "binding": (("post",), ("", "v1", "Binding")),
    "eviction": (("post",), ("policy", "v1", "Eviction")),
    "token": (("post",), ("authentication.k8s.io", "v1", "TokenRequest")),
}


# ---------------------------------------------------------------------------------------------
# schema conversion
# ---------------------------------------------------------------------------------------------
def convert_schema(schema: Schema, ref_prefix: str, *, top: bool = False, wrap_refs: bool = False) -> dict[str, Any]:
    """One schema in OpenAPI form. v2 and v3 differ in ``ref_prefix`` and in ``wrap_refs``: OpenAPI 3.0
    ignores the siblings of a ``$ref``, so v3 writes a reference that carries a description or an
    extension as ``allOf: [{"$ref": ...}]`` beside them, as kube-apiserver does (kubectl explain
    then shows the field's own description)."""
    out: dict[str, Any] = {}
    types = schema_types(schema)
    for key, value in schema.items():
        if key == "$ref":
            out[key] = ref_prefix + ref_name(value)
        elif key in ("type", "oneOf", "anyOf"):
            continue
        elif key == "properties":
            out[key] = {name: _convert_property(name, sub, ref_prefix, top, wrap_refs) for name, sub in value.items()}
        elif key == "items" and isinstance(value, Mapping):
            out[key] = convert_schema(value, ref_prefix, wrap_refs=wrap_refs)
        elif key == "additionalProperties":
            if isinstance(value, Mapping):
                out[key] = convert_schema(value, ref_prefix, wrap_refs=wrap_refs)
        else:
            out[key] = value
    if types is not None:
        concrete = sorted(types - {"null"})
        if concrete == ["integer", "string"]:
            out["type"], out["format"] = "string", "int-or-string"
        elif len(concrete) == 1:
            out["type"] = concrete[0]
        elif "string" in concrete:
            out["type"] = "string"
    if wrap_refs and "$ref" in out and len(out) > 1:
        ref = out.pop("$ref")
        out = {"allOf": [{"$ref": ref}], **out}
    return out


def _convert_property(name: str, schema: Schema, ref_prefix: str, top: bool, wrap_refs: bool) -> dict[str, Any]:
    converted = convert_schema(schema, ref_prefix, wrap_refs=wrap_refs)
    if top and name in ("apiVersion", "kind"):
        converted.pop("enum", None)
    return converted


def _gv_names(group: str, version: str) -> tuple[str, str]:
    """(``CoreV1``/``RbacAuthorizationV1`` for operation ids, ``core_v1``/``rbacAuthorization_v1`` tag)."""
    base = group.removesuffix(".k8s.io") if group else "core"
    parts = [p for p in re.split(r"[.\-]", base) if p]
    camel = "".join(p[:1].upper() + p[1:] for p in parts)
    return camel + version[:1].upper() + version[1:], camel[:1].lower() + camel[1:] + "_" + version


# ---------------------------------------------------------------------------------------------
# operations (a neutral form rendered as v2 or v3)
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Op:
    method: str
    action: str
    operation_id: str
    description: str
    gvk: GVK | None
    response: str | None  # definition name ("" = unknown: any object); None = a plain string
    params: tuple[str, ...] = ()
    body: str | None = None
    codes: tuple[int, ...] = (200, 401)
    consumes: tuple[str, ...] = _ANY_TYPE
    produces: tuple[str, ...] = _READ_TYPES


@dataclass(frozen=True)
class _Path:
    path: str
    ops: tuple[_Op, ...]
    name_of: str = ""  # kind named in the path's {name} description; "" = no {name}
    namespaced: bool = False
    extra_params: tuple[str, ...] = ()


class _Paths:
    """Builds the paths of one resource type."""

    def __init__(self, catalog: SchemaCatalog, rt: ResourceType) -> None:
        self.rt = rt
        self.catalog = catalog
        self.gvk: GVK = (rt.group, rt.version, rt.kind)
        # "" (no definition) renders as a generic object; None would mean a plain string
        self.kind_def = catalog.name_for(*self.gvk) or ""
        self.list_def = catalog.name_for(rt.group, rt.version, rt.list_kind) or ""
        self.gv, self.tag = _gv_names(rt.group, rt.version)
        self.root = f"/apis/{rt.group}/{rt.version}" if rt.group else f"/api/{rt.version}"

    def _id(self, verb: str, suffix: str = "", *, all_namespaces: bool = False) -> str:
        scope = "Namespaced" if self.rt.namespaced and not all_namespaces else ""
        tail = "ForAllNamespaces" if all_namespaces else ""
        return f"{verb}{self.gv}{scope}{self.rt.kind}{suffix}{tail}"

    def build(self) -> Iterator[_Path]:
        rt, verbs, kind = self.rt, set(self.rt.verbs), self.rt.kind
        ns = "/namespaces/{namespace}" if rt.namespaced else ""
        collection = f"{self.root}{ns}/{rt.plural}"
        item = f"{collection}/{{name}}"
        coll_ops: list[_Op] = []
        if "list" in verbs:
            coll_ops.append(_Op("get", "list", self._id("list"), f"list or watch objects of kind {kind}", self.gvk,
                                self.list_def, _LIST, produces=_LIST_TYPES))
        if "create" in verbs:
            coll_ops.append(_Op("post", "post", self._id("create"), f"create a {kind}", self.gvk, self.kind_def,
                                _WRITE, self.kind_def, (200, 201, 202, 401)))
        if "deletecollection" in verbs:
            coll_ops.append(_Op("delete", "deletecollection", self._id("deleteCollection"),
                                f"delete collection of {kind}", self.gvk, STATUS, _DELETE_COLLECTION, DELETE_OPTIONS))
        if coll_ops:
            yield _Path(collection, tuple(coll_ops), namespaced=rt.namespaced)
        item_ops: list[_Op] = []
        if "get" in verbs:
            item_ops.append(_Op("get", "get", self._id("read"), f"read the specified {kind}", self.gvk, self.kind_def))
        if "update" in verbs:
            item_ops.append(_Op("put", "put", self._id("replace"), f"replace the specified {kind}", self.gvk,
                                self.kind_def, _WRITE, self.kind_def, (200, 201, 401)))
        if "patch" in verbs:
            item_ops.append(_Op("patch", "patch", self._id("patch"), f"partially update the specified {kind}",
                                self.gvk, self.kind_def, _PATCH, PATCH, (200, 201, 401), consumes=_PATCH_TYPES))
        if "delete" in verbs:
            item_ops.append(_Op("delete", "delete", self._id("delete"), f"delete a {kind}", self.gvk, STATUS,
                                _DELETE, DELETE_OPTIONS, (200, 202, 401)))
        if item_ops:
            yield _Path(item, tuple(item_ops), name_of=kind, namespaced=rt.namespaced)
        if "list" in verbs and rt.namespaced:
            yield _Path(f"{self.root}/{rt.plural}", (
                _Op("get", "list", self._id("list", all_namespaces=True), f"list or watch objects of kind {kind}",
                    self.gvk, self.list_def, _LIST, produces=_LIST_TYPES),))
        if "watch" in verbs:
            yield from self._watch_paths(ns)
        for sub in rt.subresources:
            path = self._subresource(item, sub)
            if path is not None:
                yield path

    def _watch_paths(self, ns: str) -> Iterator[_Path]:
        rt, kind = self.rt, self.rt.kind
        base = f"{self.root}/watch{ns}/{rt.plural}"
        yield _Path(base, (_Op("get", "watchlist", self._id("watch", "List"),
                                f"watch individual changes to a list of {kind}. deprecated: use the 'watch' "
                                "parameter with a list operation instead.", self.gvk, WATCH_EVENT,
                                produces=_LIST_TYPES),), namespaced=rt.namespaced, extra_params=_LIST)
        yield _Path(f"{base}/{{name}}", (_Op("get", "watch", self._id("watch"),
                                             f"watch changes to an object of kind {kind}. deprecated: use the 'watch' "
                                             "parameter with a list operation instead, filtered to a single item "
                                             "with the 'fieldSelector' parameter.", self.gvk, WATCH_EVENT,
                                             produces=_LIST_TYPES),),
                    name_of=kind, namespaced=rt.namespaced, extra_params=_LIST)
        if rt.namespaced:
            yield _Path(f"{self.root}/watch/{rt.plural}", (
                _Op("get", "watchlist", self._id("watch", "List", all_namespaces=True),
                    f"watch individual changes to a list of {kind}. deprecated: use the 'watch' parameter with a "
                    "list operation instead.", self.gvk, WATCH_EVENT, produces=_LIST_TYPES),),
                extra_params=_LIST)

    def _subresource(self, item: str, sub: str) -> _Path | None:
        kind = self.rt.kind
        suffix = sub[:1].upper() + sub[1:]
        path = f"{item}/{sub}"
        if sub == "log":
            op = _Op("get", "get", self._id("read", "Log"), f"read log of the specified {kind}", self.gvk, None,
                     _LOG, produces=("text/plain", _JSON, _YAML, _PROTOBUF))
            return _Path(path, (op,), name_of=kind, namespaced=self.rt.namespaced)
        if sub in _CONNECT_PARAMS:
            options: GVK = ("", "v1", f"{kind}{'PortForward' if sub == 'portforward' else suffix}Options")
            ops = tuple(_Op(method, "connect", f"connect{self.gv}{method.capitalize()}"
                                               f"{'Namespaced' if self.rt.namespaced else ''}{kind}{suffix}",
                            f"connect {method.upper()} requests to {sub} of {kind}", options, None,
                            _CONNECT_PARAMS[sub], produces=_ANY_TYPE) for method in ("get", "post"))
            return _Path(path, ops, name_of=kind, namespaced=self.rt.namespaced)
        methods, sub_gvk = _SUBRESOURCES.get(sub, (("get", "put", "patch"), None))
        gvk = sub_gvk or self.gvk
        definition = self.catalog.name_for(*gvk) or ""
        ops_list: list[_Op] = []
        for method in methods:
            if method == "get":
                ops_list.append(_Op("get", "get", self._id("read", suffix), f"read {sub} of the specified {kind}",
                                    gvk, definition))
            elif method == "put":
                ops_list.append(_Op("put", "put", self._id("replace", suffix), f"replace {sub} of the specified {kind}",
                                    gvk, definition, _WRITE, definition, (200, 201, 401)))
            elif method == "patch":
                ops_list.append(_Op("patch", "patch", self._id("patch", suffix),
                                    f"partially update {sub} of the specified {kind}", gvk, definition, _PATCH, PATCH,
                                    (200, 201, 401), consumes=_PATCH_TYPES))
            elif method == "post":
                ops_list.append(_Op("post", "post", self._id("create", suffix), f"create {sub} of a {kind}", gvk,
                                    definition, _WRITE, definition, (200, 201, 202, 401)))
        return _Path(path, tuple(ops_list), name_of=kind, namespaced=self.rt.namespaced)


# ---------------------------------------------------------------------------------------------
# rendering
# ---------------------------------------------------------------------------------------------
class _Renderer:
    """Renders paths and parameters in v2 or v3 style."""

    def __init__(self, v3: bool, known: set[str]) -> None:
        self.v3 = v3
        self.known = known
        self.prefix = "#/components/schemas/" if v3 else "#/definitions/"

    def schema_of(self, definition: str | None) -> dict[str, Any]:
        if definition is None:
            return {"type": "string"}
        if definition not in self.known:
            return {"type": "object"}
        return {"$ref": self.prefix + definition}

    def param(self, name: str, where: str = "query", description: str = "") -> dict[str, Any]:
        kind, text = _PARAMS.get(name, ("string", ""))
        out: dict[str, Any] = {"name": name, "in": where, "description": description or text}
        if where == "path":
            out["required"] = True
        if self.v3:
            out["schema"] = {"type": kind, "uniqueItems": True}
        else:
            out["type"] = kind
            out["uniqueItems"] = True
        return out

    def path_params(self, path: _Path) -> list[dict[str, Any]]:
        params = []
        if path.name_of:
            params.append(self.param("name", "path", f"name of the {path.name_of}"))
        if path.namespaced:
            params.append(self.param("namespace", "path", "object name and auth scope, such as for teams and projects"))
        params.append(self.param("pretty"))
        params.extend(self.param(name) for name in path.extra_params)
        return params

    def operation(self, op: _Op, tag: str) -> dict[str, Any]:
        out: dict[str, Any] = {"description": op.description, "operationId": op.operation_id, "tags": [tag]}
        params = [self.param(name) for name in op.params]
        body = self.schema_of(op.body) if op.body else None
        response = self.schema_of(op.response)
        if self.v3:
            if params:
                out["parameters"] = params
            if body is not None:
                out["requestBody"] = {"content": {t: {"schema": body} for t in op.consumes}, "required": True}
            out["responses"] = {str(code): self._response_v3(code, response, op.produces) for code in op.codes}
        else:
            if body is not None:
                params.insert(0, {"name": "body", "in": "body", "required": True, "schema": body})
            if params:
                out["parameters"] = params
            out["consumes"] = list(op.consumes)
            out["produces"] = list(op.produces)
            out["schemes"] = ["https"]
            out["responses"] = {str(code): ({"description": _STATUS_TEXT[code]} if code == 401 else
                                            {"description": _STATUS_TEXT[code], "schema": response})
                                for code in op.codes}
        out["x-kubernetes-action"] = op.action
        if op.gvk is not None:
            group, version, kind = op.gvk
            out["x-kubernetes-group-version-kind"] = {"group": group, "kind": kind, "version": version}
        return out

    @staticmethod
    def _response_v3(code: int, schema: dict[str, Any], produces: tuple[str, ...]) -> dict[str, Any]:
        if code == 401:
            return {"description": _STATUS_TEXT[code]}
        types = [t for t in produces if t != "*/*"] or ["*/*"]
        return {"description": _STATUS_TEXT[code], "content": {t: {"schema": schema} for t in types}}

    def paths(self, items: Iterable[tuple[_Path, str]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for path, tag in items:
            entry: dict[str, Any] = {op.method: self.operation(op, tag) for op in path.ops}
            entry["parameters"] = self.path_params(path)
            out[path.path] = entry
        return out


# ---------------------------------------------------------------------------------------------
# the documents
# ---------------------------------------------------------------------------------------------
def group_version_path(group: str, version: str) -> str:
    """The v3 document path of a group-version: ``api/v1`` or ``apis/apps/v1``."""
    return f"apis/{group}/{version}" if group else f"api/{version}"


class OpenAPI:
    """The OpenAPI documents of one app. Thread-safe enough: building twice yields equal bytes.

    ``extra_schemas`` adds custom kinds, keyed by (group, version, kind), each an OpenAPI v3 object
    schema (see ``SchemaCatalog.with_kinds``)."""

    def __init__(self, catalog: SchemaCatalog, resources: Iterable[ResourceType], *,
                 extra_schemas: Mapping[GVK, Schema] | None = None) -> None:
        self.catalog = catalog.with_kinds(extra_schemas) if extra_schemas else catalog
        self.resources = tuple(resources)
        self._v2: bytes | None = None
        self._v2_protobuf: bytes | None = None
        self._v3: dict[str, tuple[bytes, str]] | None = None
        self._v3_index: bytes | None = None
        self._converted: dict[tuple[str, bool], dict[str, Any]] = {}

    # -- public API ------------------------------------------------------------------------------
    def v2(self) -> bytes:
        """The Swagger 2.0 document (``GET /openapi/v2`` with a JSON Accept)."""
        if self._v2 is None:
            names = self._definitions(self.resources)
            renderer = _Renderer(False, set(names))
            doc = {
                "swagger": "2.0",
                "info": {"title": "Kubernetes", "version": KUBERNETES_VERSION},
                "paths": renderer.paths(self._paths(self.resources)),
                "definitions": {name: self._convert(name, v3=False) for name in names},
                "securityDefinitions": {"BearerToken": _BEARER},
                "security": [{"BearerToken": []}],
            }
            self._v2 = orjson.dumps(doc)
        return self._v2

    def v2_protobuf(self) -> bytes:
        """The same document as gnostic's ``openapi.v2.Document`` protobuf (``GET /openapi/v2`` with
        ``Accept: application/com.github.proto-openapi.spec.v2@v1.0+protobuf``, as client-go asks)."""
        if self._v2_protobuf is None:
            self._v2_protobuf = encode_document(orjson.loads(self.v2()))
        return self._v2_protobuf

    def v3_index(self) -> bytes:
        """``GET /openapi/v3``: ``{"paths": {"api/v1": {"serverRelativeURL": "/openapi/v3/api/v1?hash=H"}}}``."""
        if self._v3_index is None:
            docs = self._v3_docs()
            paths = {path: {"serverRelativeURL": f"/openapi/v3/{path}?hash={digest}"}
                     for path, (_, digest) in docs.items()}
            self._v3_index = orjson.dumps({"paths": paths})
        return self._v3_index

    def v3_group(self, path: str) -> bytes | None:
        """The v3 document of ``api/v1`` or ``apis/GROUP/VERSION``, or None if nothing is served there."""
        entry = self._v3_docs().get(path.strip("/"))
        return entry[0] if entry else None

    def v3_hash(self, path: str) -> str | None:
        """The hash (ETag) of a v3 document: uppercase hex SHA-512 of its bytes, as kube-apiserver."""
        entry = self._v3_docs().get(path.strip("/"))
        return entry[1] if entry else None

    def v3_paths(self) -> list[str]:
        """The group-version paths that have a v3 document."""
        return list(self._v3_docs())

    # -- building --------------------------------------------------------------------------------
    def _paths(self, resources: Iterable[ResourceType]) -> Iterator[tuple[_Path, str]]:
        for rt in resources:
            builder = _Paths(self.catalog, rt)
            for path in builder.build():
                yield path, builder.tag

    def _definitions(self, resources: Iterable[ResourceType]) -> list[str]:
        roots: list[str] = list(_ALWAYS)
        for rt in resources:
            for kind in (rt.kind, rt.list_kind):
                name = self.catalog.name_for(rt.group, rt.version, kind)
                if name:
                    roots.append(name)
            for sub in rt.subresources:
                gvk = _SUBRESOURCES.get(sub, ((), None))[1]
                name = self.catalog.name_for(*gvk) if gvk else None
                if name:
                    roots.append(name)
        return self.catalog.reachable(roots)

    def _convert(self, name: str, *, v3: bool) -> dict[str, Any]:
        key = (name, v3)
        converted = self._converted.get(key)
        if converted is None:
            schema = self.catalog.definition(name) or {}
            prefix = "#/components/schemas/" if v3 else "#/definitions/"
            converted = convert_schema(schema, prefix, top=True, wrap_refs=v3)
            if name in _SCALAR_DOCS and "description" not in converted:
                converted = {"description": _SCALAR_DOCS[name], **converted}
            self._converted[key] = converted
        return converted

    def _v3_docs(self) -> dict[str, tuple[bytes, str]]:
        if self._v3 is None:
            by_gv: dict[str, list[ResourceType]] = {}
            for rt in self.resources:
                by_gv.setdefault(group_version_path(rt.group, rt.version), []).append(rt)
            docs: dict[str, tuple[bytes, str]] = {}
            for path, resources in by_gv.items():
                data = self._v3_document(resources)
                docs[path] = (data, hashlib.sha512(data).hexdigest().upper())
            self._v3 = docs
        return self._v3

    def _v3_document(self, resources: list[ResourceType]) -> bytes:
        names = self._definitions(resources)
        renderer = _Renderer(True, set(names))
        doc = {
            "openapi": "3.0.0",
            "info": {"title": "Kubernetes", "version": KUBERNETES_VERSION},
            "paths": renderer.paths(self._paths(resources)),
            "components": {
                "schemas": {name: self._convert(name, v3=True) for name in names},
                "securitySchemes": {"BearerToken": _BEARER},
            },
            "security": [{"BearerToken": []}],
        }
        return orjson.dumps(doc)
