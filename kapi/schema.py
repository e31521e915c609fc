"""The Kubernetes 1.37 schemas: one immutable catalog of definitions, with resolved navigation.

The definitions come from the ``kubernetes-validate`` package
(``kubernetes_validate/kubernetes-json-schema/v1.37.0-local/_definitions.json``): JSON Schema 2020-12
with ``$defs`` keyed by OpenAPI definition names (``io.k8s.api.core.v1.Pod``), ``$ref:
"#/$defs/NAME"``, nullable types written ``["string", "null"]``, IntOrString and Quantity as
``oneOf``, and the ``x-kubernetes-*`` extensions kept. (The ``-strict`` variant of the same files
only adds ``additionalProperties: false`` to every object that has properties; kapi derives that rule
itself, so it loads the plain variant.)

Contracts:

* ``load_catalog()`` reads the file once per process (about 20 ms with orjson) and returns the same
  ``SchemaCatalog`` every time. Nothing is processed eagerly except the group/version/kind index;
  ``SchemaNode`` views are built on first use and kept.
* A catalog is immutable from the outside. ``extended(...)`` returns a *new* catalog that also
  knows extra definitions (custom kinds); the base is untouched.
* ``SchemaNode`` is a resolved view of one place in a schema: ``$ref`` is followed, and what the
  referring site adds (description, patch strategy, merge key, list type) is merged over the target.
  Its ``child(name)``, ``items`` and ``additional`` are what validation and strategic merge patch walk.
* ``memo(key, factory)`` keeps artefacts derived from a catalog (compiled validators, OpenAPI
  documents) with the catalog, so they are built once and die with it.
"""

from __future__ import annotations

import functools
import importlib.util
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

import orjson

KUBERNETES_VERSION = "v1.37.0"
SCHEMA_DIR = "v1.37.0-local"

GVK = tuple[str, str, str]
Schema = Mapping[str, Any]
T = TypeVar("T")

#: JSON type names as written in the schemas.
JSON_TYPES = frozenset({"string", "integer", "number", "boolean", "object", "array", "null"})

_META = "io.k8s.apimachinery.pkg.apis.meta.v1"
_API_VERSION_DOC = ("APIVersion defines the versioned schema of this representation of an object. Servers should "
                    "convert recognized schemas to the latest internal value, and may reject unrecognized values.")
_KIND_DOC = ("Kind is a string value representing the REST resource this object represents. Servers may infer "
             "this from the endpoint the client submits requests to. Cannot be updated. In CamelCase.")


def definitions_path() -> Path:
    """The ``_definitions.json`` that ships with ``kubernetes-validate``.

    Found with ``importlib.util.find_spec`` so the package itself (which imports jsonschema, about
    130 ms) is never imported."""
    spec = importlib.util.find_spec("kubernetes_validate")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the kubernetes-validate package is not installed")
    root = Path(next(iter(spec.submodule_search_locations)))
    return root / "kubernetes-json-schema" / SCHEMA_DIR / "_definitions.json"


@functools.cache
def load_catalog() -> SchemaCatalog:
    """The Kubernetes 1.37 catalog, loaded once per process and shared (it is immutable)."""
    raw = orjson.loads(definitions_path().read_bytes())
    return SchemaCatalog(raw["$defs"])


def ref_name(ref: str) -> str:
    """The definition name a ``$ref`` points at, for any of ``#/$defs/``, ``#/definitions/`` and
    ``#/components/schemas/``."""
    return ref.rsplit("/", 1)[-1]


def schema_types(schema: Schema) -> frozenset[str] | None:
    """The JSON types a (resolved) schema admits, or None when it admits anything.

    ``type`` may be a string or a list; ``oneOf``/``anyOf`` alternatives are united (that is how
    IntOrString and Quantity are written)."""
    declared = schema.get("type")
    if isinstance(declared, str):
        return frozenset((declared,))
    if isinstance(declared, list):
        return frozenset(declared)
    alternatives = schema.get("oneOf") or schema.get("anyOf")
    if alternatives:
        union: set[str] = set()
        for alt in alternatives:
            types = schema_types(alt)
            if types is None:
                return None
            union |= types
        return frozenset(union)
    return None


class SchemaNode:
    """A resolved, read-only view of one schema site.

    Attributes: ``name`` (the definition followed, or None for an inline schema), ``schema`` (the
    definition's own mapping), ``types`` (JSON type names, None = anything), ``format``, ``enum``,
    ``required``, ``description`` and the patch metadata ``patch_strategies`` (e.g. ``("merge",
    "retainKeys")``), ``merge_key``, ``list_type``, ``list_map_keys``, ``map_type``.
    """

    __slots__ = ("_additional", "_catalog", "_items", "_properties", "description", "enum", "format",
                 "list_map_keys", "list_type", "map_type", "merge_key", "name", "patch_strategies",
                 "required", "schema", "types")

    def __init__(self, catalog: SchemaCatalog, site: Schema) -> None:
        name: str | None = None
        target = site
        seen = 0
        while "$ref" in target and seen < 16:
            name = ref_name(target["$ref"])
            target = catalog.definition(name) or {}
            seen += 1
        self._catalog = catalog
        self.name = name
        self.schema = target

        def pick(key: str) -> Any:
            return site[key] if key in site else target.get(key)

        self.description: str = pick("description") or ""
        strategy = pick("x-kubernetes-patch-strategy") or ""
        self.patch_strategies: tuple[str, ...] = tuple(s for s in strategy.split(",") if s)
        self.merge_key: str = pick("x-kubernetes-patch-merge-key") or ""
        self.list_type: str = pick("x-kubernetes-list-type") or ""
        self.list_map_keys: tuple[str, ...] = tuple(pick("x-kubernetes-list-map-keys") or ())
        self.map_type: str = pick("x-kubernetes-map-type") or ""
        self.types = schema_types(target)
        self.format: str = target.get("format") or ""
        enum = target.get("enum")
        self.enum: tuple[Any, ...] | None = tuple(enum) if enum else None
        self.required: tuple[str, ...] = tuple(target.get("required") or ())
        self._properties: dict[str, SchemaNode] | None = None
        self._items: SchemaNode | bool | None = False
        self._additional: SchemaNode | bool | None = False

    def __repr__(self) -> str:
        return f"SchemaNode({self.name or 'inline'}, types={sorted(self.types) if self.types else 'any'})"

    @property
    def properties(self) -> Mapping[str, SchemaNode]:
        """Declared properties, resolved (empty when the schema declares none)."""
        if self._properties is None:
            raw = self.schema.get("properties") or {}
            self._properties = {key: SchemaNode(self._catalog, sub) for key, sub in raw.items()}
        return self._properties

    @property
    def items(self) -> SchemaNode | None:
        """The schema of array items, or None."""
        if self._items is False:
            raw = self.schema.get("items")
            self._items = SchemaNode(self._catalog, raw) if isinstance(raw, Mapping) else None
        return self._items  # type: ignore[return-value]

    @property
    def additional(self) -> SchemaNode | None:
        """The schema of map values (``additionalProperties``), or None."""
        if self._additional is False:
            raw = self.schema.get("additionalProperties")
            self._additional = SchemaNode(self._catalog, raw) if isinstance(raw, Mapping) else None
        return self._additional  # type: ignore[return-value]

    @property
    def is_struct(self) -> bool:
        """True for an object with declared properties (unknown keys are then unknown fields)."""
        return bool(self.schema.get("properties"))

    def child(self, key: str) -> SchemaNode | None:
        """The schema of ``key`` in an object: the declared property, else the map value schema."""
        node = self.properties.get(key)
        return node if node is not None else self.additional

    def has_strategy(self, strategy: str) -> bool:
        return strategy in self.patch_strategies


class SchemaCatalog:
    """All definitions by name, indexed by group/version/kind; see the module docstring."""

    def __init__(self, definitions: Mapping[str, Schema], base: SchemaCatalog | None = None) -> None:
        self._defs: dict[str, Schema] = dict(base._defs) if base else {}
        self._defs.update(definitions)
        self._by_gvk: dict[GVK, str] = dict(base._by_gvk) if base else {}
        self._gvks: dict[str, tuple[GVK, ...]] = dict(base._gvks) if base else {}
        for name, schema in definitions.items():
            found: list[GVK] = []
            for entry in schema.get("x-kubernetes-group-version-kind") or ():
                gvk = (entry.get("group", ""), entry.get("version", ""), entry.get("kind", ""))
                found.append(gvk)
                if base is None:
                    self._by_gvk.setdefault(gvk, name)
                else:
                    self._by_gvk[gvk] = name
            self._gvks[name] = tuple(found)
        self._nodes: dict[str, SchemaNode] = {}
        self._memo: dict[Any, Any] = {}

    # -- definitions -------------------------------------------------------------------------
    def __contains__(self, name: object) -> bool:
        return name in self._defs

    def __len__(self) -> int:
        return len(self._defs)

    def names(self) -> Iterator[str]:
        """All definition names, in file order."""
        return iter(self._defs)

    def definition(self, name: str) -> Schema | None:
        """The raw definition (read-only by contract), or None."""
        return self._defs.get(name)

    def name_for(self, group: str, version: str, kind: str) -> str | None:
        """The definition name of a kind, from ``x-kubernetes-group-version-kind``."""
        return self._by_gvk.get((group, version, kind))

    def gvks(self, name: str) -> tuple[GVK, ...]:
        """The (group, version, kind) triples a definition declares."""
        return self._gvks.get(name, ())

    def kinds(self) -> Iterator[tuple[GVK, str]]:
        """Every ((group, version, kind), definition name) pair."""
        return iter(self._by_gvk.items())

    # -- resolved navigation -----------------------------------------------------------------
    def node(self, name: str) -> SchemaNode:
        """The resolved node of a definition (KeyError if unknown)."""
        node = self._nodes.get(name)
        if node is None:
            if name not in self._defs:
                raise KeyError(name)
            node = self._nodes[name] = SchemaNode(self, {"$ref": f"#/$defs/{name}"})
        return node

    def node_for(self, group: str, version: str, kind: str) -> SchemaNode | None:
        """The resolved root node of a kind, or None when the catalog does not know it."""
        name = self.name_for(group, version, kind)
        return self.node(name) if name else None

    def resolve(self, site: Schema) -> SchemaNode:
        """A resolved node for an arbitrary schema mapping (its ``$ref`` looked up here)."""
        return SchemaNode(self, site)

    def reachable(self, roots: Iterable[str]) -> list[str]:
        """Definition names reachable from ``roots`` through ``$ref`` (roots included), sorted."""
        seen: set[str] = set()
        stack = [r for r in roots if r in self._defs]
        while stack:
            name = stack.pop()
            if name in seen:
                continue
            seen.add(name)
            stack.extend(n for n in _refs_in(self._defs[name]) if n not in seen and n in self._defs)
        return sorted(seen)

    # -- derivation ----------------------------------------------------------------------------
    def extended(self, definitions: Mapping[str, Schema]) -> SchemaCatalog:
        """A new catalog with ``definitions`` added (a same-named definition is replaced, and a
        group/version/kind they declare now maps to them)."""
        return SchemaCatalog(definitions, base=self)

    def with_kinds(self, schemas: Mapping[GVK, Schema]) -> SchemaCatalog:
        """A new catalog that also knows custom kinds, each given as an OpenAPI v3 object schema
        (a CRD version's ``openAPIV3Schema``), keyed by (group, version, kind).

        As kube-apiserver publishes them: named ``custom_definition_name(...)``, with
        ``apiVersion``, ``kind`` and ``metadata`` (ObjectMeta) added when missing, the kind's
        ``x-kubernetes-group-version-kind``, and a ``<Kind>List`` definition beside it."""
        added: dict[str, Schema] = {}
        for (group, version, kind), schema in schemas.items():
            name = custom_definition_name(group, version, kind)
            props = dict(schema.get("properties") or {})
            props.setdefault("apiVersion", {"type": "string", "description": _API_VERSION_DOC})
            props.setdefault("kind", {"type": "string", "description": _KIND_DOC})
            props.setdefault("metadata", {"$ref": f"#/$defs/{_META}.ObjectMeta"})
            added[name] = {**schema, "type": "object", "properties": props,
                           "x-kubernetes-group-version-kind": [{"group": group, "version": version, "kind": kind}]}
            added[name + "List"] = {
                "description": f"{kind}List is a list of {kind}",
                "type": "object",
                "required": ["items"],
                "properties": {
                    "apiVersion": {"type": "string", "description": _API_VERSION_DOC},
                    "kind": {"type": "string", "description": _KIND_DOC},
                    "metadata": {"$ref": f"#/$defs/{_META}.ListMeta"},
                    "items": {"type": "array", "items": {"$ref": f"#/$defs/{name}"},
                              "description": f"List of {kind.lower()}s."},
                },
                "x-kubernetes-group-version-kind": [{"group": group, "version": version, "kind": kind + "List"}],
            }
        return self.extended(added)

    def memo(self, key: Any, factory: Callable[[], T]) -> T:
        """The artefact cached under ``key`` for this catalog, built by ``factory`` on first use."""
        try:
            return self._memo[key]  # type: ignore[no-any-return]
        except KeyError:
            value = self._memo[key] = factory()
            return value


def custom_definition_name(group: str, version: str, kind: str) -> str:
    """kube-apiserver's definition name for a custom kind: the group reversed, then version and
    kind (``stable.example.com``/``v1``/``CronTab`` -> ``com.example.stable.v1.CronTab``)."""
    reversed_group = ".".join(reversed(group.split("."))) if group else "core"
    return f"{reversed_group}.{version}.{kind}"


def _refs_in(schema: Any) -> Iterator[str]:
    """Every definition name referenced anywhere inside ``schema``."""
    stack = [schema]
    while stack:
        item = stack.pop()
        if isinstance(item, Mapping):
            ref = item.get("$ref")
            if isinstance(ref, str):
                yield ref_name(ref)
            stack.extend(v for v in item.values() if isinstance(v, (Mapping, list)))
        elif isinstance(item, list):
            stack.extend(v for v in item if isinstance(v, (Mapping, list)))
