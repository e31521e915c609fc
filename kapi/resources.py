"""The resource registry: which resources the API server serves, and how each kind behaves.

A ``ResourceType`` names a resource (group, version, plural, kind, scope, discovery names) and
carries its ``Strategy``: the kind-specific rules that kube-apiserver keeps in each registry's
``strategy.go`` (defaulting, validation, what a status write may change, field selectors, the
columns of ``kubectl get``). The generic REST layer (``kapi.rest``) does everything else.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from kapi.errors import Cause

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")

Obj = dict[str, Any]


@dataclass(frozen=True)
class Column:
    """A Table column (``meta.k8s.io/v1`` TableColumnDefinition). ``priority`` 0 is shown by
    ``kubectl get``; 1 only with ``-o wide``."""

    name: str
    type: str = "string"
    format: str = ""
    description: str = ""
    priority: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.type, "format": self.format,
                "description": self.description, "priority": self.priority}


class Strategy:
    """Kind-specific behaviour. The base class is the behaviour of a plain object (ConfigMap-like);
    kinds override what differs. Every method is synchronous and pure except that ``default`` and
    the ``prepare_*`` methods change the object in place.

    Order on create: default -> (mutating admission) -> prepare_for_create -> validate.
    Order on update: prepare_for_update (or prepare_for_status_update) -> default -> validate_update.
    """

    #: True when the kind has ``spec`` and ``status``: writes to the main resource keep the stored
    #: status, and ``metadata.generation`` is bumped when anything but metadata/status changes.
    has_status: bool = False

    #: False when ``columns()``/``cells()`` place the Name column themselves (events show it last)
    name_column_first: bool = True

    #: True when objects are stored in another form than served (``to_storage``/``from_storage``)
    converts: bool = False

    def to_storage(self, obj: Obj) -> Obj:
        """The stored form of a served object (events.k8s.io Events are stored as core Events)."""
        return obj

    def from_storage(self, obj: Obj) -> Obj:
        """The served form of a stored object (the inverse of ``to_storage``)."""
        return obj

    def create_refusal(self) -> str:
        """Why every create of this resource is refused right now (405), or "" to allow creates."""
        return ""

    def prepare_for_create(self, obj: Obj) -> None:
        """Clear or initialise fields a client may not set on create (e.g. reset status)."""

    def prepare_for_update(self, obj: Obj, old: Obj) -> None:
        """Main-resource update: by default keep the stored status when the kind has one."""
        if self.has_status:
            if "status" in old:
                obj["status"] = old["status"]
            else:
                obj.pop("status", None)

    def prepare_for_status_update(self, obj: Obj, old: Obj) -> None:
        """Status-subresource update: keep everything of ``old`` except ``status`` (and the
        metadata fields a status writer may change: labels, annotations are kept from ``old``)."""
        status = obj.get("status")
        for key in list(obj):
            if key not in ("apiVersion", "kind", "metadata", "status"):
                del obj[key]
        for key, value in old.items():
            if key not in ("apiVersion", "kind", "metadata", "status"):
                obj[key] = value
        if status is None:
            obj.pop("status", None)

    def unknown_fields(self, obj: Obj) -> list[str]:
        """Remove the fields the kind does not declare and return their paths (custom resources are
        pruned this way; built-in kinds report unknown fields through schema validation instead)."""
        return []

    def default(self, obj: Obj) -> None:
        """Fill defaults as kube-apiserver's defaulters do, so stored objects look the same."""

    def validate(self, obj: Obj) -> list[Cause]:
        """Kind-specific rules beyond the schema (required fields, formats). Empty = valid."""
        return []

    def validate_update(self, obj: Obj, old: Obj) -> list[Cause]:
        """Rules for an update: ``validate`` plus immutable fields."""
        return self.validate(obj)

    def field_values(self, obj: Obj) -> dict[str, str]:
        """Values of the kind-specific field selectors (``spec.nodeName`` -> value). The generic
        ``metadata.name`` and ``metadata.namespace`` are added by the caller."""
        return {}

    def columns(self) -> list[Column]:
        """Table columns after NAME (NAME is always first); AGE is usually last."""
        return [Column("Age", "date", description="CreationTimestamp")]

    def cells(self, obj: Obj) -> list[Any]:
        """One Table row's cells after the name, matching ``columns()``, already rendered as
        kube-apiserver renders them (ages as "5m")."""
        return [obj.get("metadata", {}).get("creationTimestamp")]


@dataclass(frozen=True)
class ResourceType:
    """One served resource (one group/version/plural)."""

    group: str
    version: str
    kind: str
    plural: str
    singular: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    subresources: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ALL_VERBS
    #: the path segment(s) under the storage prefix: "pods", "services/specs", "deployments"
    storage_resource: str = ""
    strategy: Strategy = field(default_factory=Strategy)

    @property
    def group_version(self) -> str:
        """``apps/v1``, or ``v1`` for the core group."""
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"

    @property
    def qualified(self) -> str:
        """``deployments.apps``, or ``pods`` for the core group (used in messages)."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    def key_prefix(self, root: str, namespace: str = "") -> str:
        """The storage key prefix of this resource (of one namespace if given), ending in ``/``."""
        base = f"{root}/{self.storage_resource or self.plural}/"
        return f"{base}{namespace}/" if namespace and self.namespaced else base

    def key(self, root: str, namespace: str, name: str) -> str:
        """The storage key of one object, laid out as kube-apiserver lays out etcd."""
        if self.namespaced:
            return f"{root}/{self.storage_resource or self.plural}/{namespace}/{name}"
        return f"{root}/{self.storage_resource or self.plural}/{name}"


class Registry:
    """An immutable index of resource types. Built once per app."""

    def __init__(self, types: Iterable[ResourceType]) -> None:
        self._types = tuple(types)
        self._by_path: dict[tuple[str, str, str], ResourceType] = {}
        self._by_kind: dict[tuple[str, str, str], ResourceType] = {}
        for rt in self._types:
            path_key = (rt.group, rt.version, rt.plural)
            if path_key in self._by_path:
                raise ValueError(f"resource {rt.plural} registered twice in {rt.group_version}")
            self._by_path[path_key] = rt
            self._by_kind.setdefault((rt.group, rt.version, rt.kind), rt)

    def __iter__(self) -> Iterator[ResourceType]:
        return iter(self._types)

    def lookup(self, group: str, version: str, plural: str) -> ResourceType | None:
        """The resource served at ``/apis/GROUP/VERSION/PLURAL`` (or ``/api/v1/PLURAL``)."""
        return self._by_path.get((group, version, plural))

    def by_kind(self, group: str, version: str, kind: str) -> ResourceType | None:
        return self._by_kind.get((group, version, kind))

    def group_versions(self) -> list[tuple[str, str]]:
        """Served (group, version) pairs in registration order, without repeats."""
        seen: dict[tuple[str, str], None] = {}
        for rt in self._types:
            seen.setdefault((rt.group, rt.version), None)
        return list(seen)


class DynamicRegistry:
    """The registry an app serves: fixed built-in types plus a replaceable set of custom types
    (established CRDs). Reads see one consistent ``Registry`` snapshot; ``version`` grows by one
    with every change, so documents derived from the registry (discovery, OpenAPI) can be cached
    per version."""

    def __init__(self, builtin: Iterable[ResourceType]) -> None:
        self._builtin = tuple(builtin)
        self._custom: tuple[ResourceType, ...] = ()
        self._current = Registry(self._builtin)
        self.version = 0

    def __iter__(self) -> Iterator[ResourceType]:
        return iter(self._current)

    @property
    def custom(self) -> tuple[ResourceType, ...]:
        """The custom resource types served now."""
        return self._custom

    def is_builtin(self, group: str, plural: str) -> bool:
        return any(rt.group == group and rt.plural == plural for rt in self._builtin)

    def set_custom(self, types: Iterable[ResourceType]) -> bool:
        """Serve exactly ``types`` besides the built-ins (a type that clashes with a built-in is
        skipped). Returns True (and bumps ``version``) when anything changed."""
        taken = {(rt.group, rt.version, rt.plural) for rt in self._builtin}
        custom = tuple(rt for rt in types if (rt.group, rt.version, rt.plural) not in taken)
        if custom == self._custom:
            return False
        self._current = Registry((*self._builtin, *custom))
        self._custom = custom
        self.version += 1
        return True

    def lookup(self, group: str, version: str, plural: str) -> ResourceType | None:
        return self._current.lookup(group, version, plural)

    def by_kind(self, group: str, version: str, kind: str) -> ResourceType | None:
        return self._current.by_kind(group, version, kind)

    def group_versions(self) -> list[tuple[str, str]]:
        return self._current.group_versions()
