"""CustomResourceDefinitions (apiextensions.k8s.io/v1): validation and defaulting of the CRD itself.

What the CRD serves is decided by ``kapi.crds`` (the controller inside the API server): it sets
the ``NamesAccepted`` and ``Established`` conditions and serves established CRDs. This strategy
checks what kube's ``ValidateCustomResourceDefinition`` checks that matters to clients: the
name is ``<plural>.<group>``, the group is a domain with a dot, names are DNS labels, the scope,
unique version names with exactly one storage version, structural schemas (with the offending
path; CEL rules must compile), ``selectableFields`` (at most 8 simple paths to string, integer or
boolean fields), and that the resource does not shadow a built-in one. Creation adds the
``customresourcecleanup.apiextensions.k8s.io`` finalizer (the controller removes it after
deleting the custom objects).
"""

from __future__ import annotations

import functools
import re
from typing import Any

from kapi.errors import Cause
from kapi.kinds import celrules, structural
from kapi.kinds import fielderrors as fe
from kapi.kinds.custom import parse_json_path
from kapi.kinds.formats import NAME_DNS_SUBDOMAIN
from kapi.kinds.printing import CREATED_AT
from kapi.resources import Column, ResourceType, Strategy
from kapi.validation import DNS1123_LABEL_FMT, DNS1123_SUBDOMAIN_FMT

Obj = dict[str, Any]

GROUP = "apiextensions.k8s.io"
CLEANUP_FINALIZER = "customresourcecleanup.apiextensions.k8s.io"
APPROVAL_ANNOTATION = "api-approved.kubernetes.io"
SCOPES = ("Cluster", "Namespaced")

_LABEL = re.compile(f"^{DNS1123_LABEL_FMT}$")
_SUBDOMAIN = re.compile(f"^{DNS1123_SUBDOMAIN_FMT}$")


@functools.cache
def builtin_names() -> frozenset[tuple[str, str]]:
    """(group, plural) of every built-in resource: a CRD may not serve one of them."""
    from kapi.kinds import builtin_resources

    return frozenset((rt.group, rt.plural) for rt in builtin_resources())


def storage_version(crd: Obj) -> str | None:
    """The name of the CRD's storage version (None when not exactly one)."""
    stored = [v.get("name") for v in (crd.get("spec") or {}).get("versions") or [] if v.get("storage")]
    return str(stored[0]) if len(stored) == 1 else None


def _validate_names(names: Any, path: str) -> list[Cause]:
    if not isinstance(names, dict):
        return [fe.required(path, "")]
    errs: list[Cause] = []
    for field in ("plural", "singular"):
        value = names.get(field)
        if field == "plural" and not value:
            errs.append(fe.required(f"{path}.plural", ""))
        elif value and not _LABEL.match(str(value)):
            errs.append(fe.invalid(f"{path}.{field}", value, "a lowercase RFC 1123 label must consist of lower case "
                                   "alphanumeric characters or '-', and must start and end with an alphanumeric "
                                   "character"))
    if not names.get("kind"):
        errs.append(fe.required(f"{path}.kind", ""))
    for i, short in enumerate(names.get("shortNames") or []):
        if not _LABEL.match(str(short)):
            errs.append(fe.invalid(f"{path}.shortNames[{i}]", short, "a lowercase RFC 1123 label must consist of "
                                   "lower case alphanumeric characters or '-'"))
    return errs


def _validate_versions(versions: Any, path: str) -> list[Cause]:
    if not isinstance(versions, list) or not versions:
        return [fe.required(path, "must have exactly one version marked as storage version")]
    errs: list[Cause] = []
    seen: set[str] = set()
    for i, version in enumerate(versions):
        vpath = f"{path}[{i}]"
        name = str(version.get("name") or "")
        if not name:
            errs.append(fe.required(f"{vpath}.name", ""))
        elif not _LABEL.match(name):
            errs.append(fe.invalid(f"{vpath}.name", name, "a DNS-1035 label must consist of lower case alphanumeric "
                                   "characters or '-'"))
        elif name in seen:
            errs.append(fe.duplicate(f"{vpath}.name", name))
        seen.add(name)
        schema = (version.get("schema") or {}).get("openAPIV3Schema")
        if schema is None:
            errs.append(fe.required(f"{vpath}.schema.openAPIV3Schema", "schemas are required"))
        else:
            errs.extend(structural.schema_errors(schema, f"{vpath}.schema.openAPIV3Schema"))
            errs.extend(celrules.rule_errors(schema, f"{vpath}.schema.openAPIV3Schema"))
        errs.extend(_validate_selectable_fields(version.get("selectableFields"), schema, f"{vpath}.selectableFields"))
    if sum(1 for v in versions if v.get("storage")) != 1:
        errs.append(fe.invalid(path, [v.get("name") for v in versions],
                               "must have exactly one version marked as storage version"))
    if not any(v.get("served") for v in versions):
        errs.append(fe.invalid(path, [v.get("name") for v in versions], "must have at least one served version"))
    return errs


MAX_SELECTABLE_FIELDS = 8
SELECTABLE_TYPES = ("string", "integer", "boolean")


def _schema_at(schema: Any, path: tuple[str | int, ...]) -> Any:
    for step in path:
        props = schema.get("properties") if isinstance(schema, dict) else None
        if isinstance(step, int) or not isinstance(props, dict):
            return None
        schema = props.get(step)
    return schema


def _validate_selectable_fields(fields: Any, schema: Any, path: str) -> list[Cause]:
    """``selectableFields``: at most 8, each a simple path to a string, integer or boolean field."""
    if not fields:
        return []
    if not isinstance(fields, list):
        return [fe.invalid(path, fields, "must be a list")]
    errs: list[Cause] = []
    if len(fields) > MAX_SELECTABLE_FIELDS:
        errs.append(Cause(path, f"Too many: {len(fields)}: must have at most {MAX_SELECTABLE_FIELDS} items",
                          "FieldValueTooMany"))
    seen: set[str] = set()
    for i, field in enumerate(fields):
        fpath = f"{path}[{i}].jsonPath"
        text = str((field or {}).get("jsonPath") or "") if isinstance(field, dict) else ""
        steps = parse_json_path(text) if text.startswith(".") else None
        if not text:
            errs.append(fe.required(fpath, ""))
        elif steps is None or any(isinstance(s, int) for s in steps):
            errs.append(fe.invalid(fpath, text, "must be a simple JSON path of field names, such as .spec.color"))
        elif text in seen:
            errs.append(fe.duplicate(fpath, text))
        else:
            target = _schema_at(schema, steps) if schema is not None else None
            if not isinstance(target, dict) or target.get("type") not in SELECTABLE_TYPES:
                errs.append(fe.invalid(fpath, text, "must point to a field of type string, boolean or integer. "
                                       "Enum string fields and strings with formats are allowed."))
        seen.add(text)
    return errs


def validate_crd(crd: Obj) -> list[Cause]:
    """``ValidateCustomResourceDefinition`` (the subset described in the module docstring)."""
    spec: Obj = crd["spec"] if isinstance(crd.get("spec"), dict) else {}
    meta: Obj = crd.get("metadata") or {}
    group = str(spec.get("group") or "")
    names: Obj = spec["names"] if isinstance(spec.get("names"), dict) else {}
    errs: list[Cause] = []
    if not group:
        errs.append(fe.required("spec.group", ""))
    elif not _SUBDOMAIN.match(group) or "." not in group:
        errs.append(fe.invalid("spec.group", group, "should be a domain with at least one dot"))
    elif (group.endswith(".k8s.io") or group.endswith(".kubernetes.io") or group in ("k8s.io", "kubernetes.io")) \
            and not (meta.get("annotations") or {}).get(APPROVAL_ANNOTATION):
        errs.append(fe.invalid(f"metadata.annotations[{APPROVAL_ANNOTATION}]", None,
                               "protected groups must have approval annotation "
                               f"\"{APPROVAL_ANNOTATION}\", see https://github.com/kubernetes/enhancements/pull/1111"))
    errs.extend(_validate_names(spec.get("names"), "spec.names"))
    plural = str(names.get("plural") or "")
    if plural and group and meta.get("name") != f"{plural}.{group}":
        errs.append(fe.invalid("metadata.name", meta.get("name"), 'must be spec.names.plural+"."+spec.group'))
    if spec.get("scope") not in SCOPES:
        errs.append(fe.not_supported("spec.scope", spec.get("scope"), SCOPES))
    errs.extend(_validate_versions(spec.get("versions"), "spec.versions"))
    if (group, plural) in builtin_names():
        errs.append(fe.invalid("spec.names.plural", plural, f"{plural}.{group} is already served by a built-in "
                               "resource of the API server"))
    return errs


class CustomResourceDefinitionStrategy(Strategy):
    """``customResourceDefinitionStrategy``."""

    has_status = True
    name_format = NAME_DNS_SUBDOMAIN

    def default(self, obj: Obj) -> None:
        spec = obj.setdefault("spec", {})
        if not isinstance(spec, dict):
            return
        names = spec.get("names")
        if isinstance(names, dict) and names.get("kind"):
            names.setdefault("singular", str(names["kind"]).lower())
            names.setdefault("listKind", f"{names['kind']}List")
        spec.setdefault("conversion", {"strategy": "None"})
        for version in spec.get("versions") or []:
            if isinstance(version, dict):
                version.setdefault("served", True)
                version.setdefault("storage", False)

    def prepare_for_create(self, obj: Obj) -> None:
        obj["status"] = {"conditions": [], "acceptedNames": {"plural": "", "kind": ""}, "storedVersions": []}
        finalizers = obj.setdefault("metadata", {}).setdefault("finalizers", [])
        if CLEANUP_FINALIZER not in finalizers:
            finalizers.append(CLEANUP_FINALIZER)

    def validate(self, obj: Obj) -> list[Cause]:
        return validate_crd(obj)

    def validate_update(self, obj: Obj, old: Obj) -> list[Cause]:
        errs = validate_crd(obj)
        for field in ("group", "scope"):
            new_value, old_value = (obj.get("spec") or {}).get(field), (old.get("spec") or {}).get(field)
            if new_value != old_value:
                errs.append(fe.immutable(f"spec.{field}", new_value))
        return errs

    def columns(self) -> list[Column]:
        return [CREATED_AT]

    def cells(self, obj: Obj) -> list[Any]:
        return [obj.get("metadata", {}).get("creationTimestamp")]


def resources() -> list[ResourceType]:
    return [ResourceType(GROUP, "v1", "CustomResourceDefinition", "customresourcedefinitions",
                         "customresourcedefinition", False, short_names=("crd", "crds"), categories=("api-extensions",),
                         subresources=("status",), storage_resource=f"{GROUP}/customresourcedefinitions",
                         strategy=CustomResourceDefinitionStrategy())]
