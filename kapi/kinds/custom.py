"""The strategy of custom resources: one ``CustomStrategy`` per served version of a CRD.

Built from the CRD version (``CustomStrategy.from_crd(crd, version)``): the structural schema
prunes, defaults and validates objects (``kapi.kinds.structural``); ``status`` enabled as a
subresource makes main-resource writes keep the stored status (and status writes keep the rest);
``additionalPrinterColumns`` become the Table columns (JSONPath subset: ``.a.b``, ``.a[0].b``);
versions other than the storage version are stored under the storage version by rewriting
``apiVersion`` (conversion strategy None). Strategic merge patch is refused (``strategic_merge``).
``x-kubernetes-validations`` CEL rules are evaluated after the schema checks (``kapi.kinds.celrules``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import orjson

from kapi.errors import Cause
from kapi.kinds import celrules, structural
from kapi.kinds.printing import AGE, age
from kapi.resources import Column, Strategy

Obj = dict[str, Any]

_STEP = re.compile(r"\.([^.\[\]]+)|\[(\d+)\]|\['([^']+)'\]")
_COLUMN_TYPES = {"integer": "integer", "number": "number", "boolean": "boolean", "date": "date", "string": "string"}


@dataclass(frozen=True)
class PrinterColumn:
    """One ``additionalPrinterColumns`` entry with its parsed JSONPath."""

    column: Column
    path: tuple[str | int, ...]
    is_date: bool

    def cell(self, obj: Obj) -> Any:
        value = _value_at(obj, self.path)
        if value is None:
            return None
        if self.is_date and isinstance(value, str):
            return age({"metadata": {"creationTimestamp": value}})
        if isinstance(value, (dict, list)):
            return orjson.dumps(value).decode()
        return value


def parse_json_path(path: str) -> tuple[str | int, ...] | None:
    """``.spec.replicas`` / ``.status.conditions[0].type`` -> steps; None if outside the subset."""
    text = path.strip()
    if text.startswith("{") and text.endswith("}"):
        text = text[1:-1]
    steps: list[str | int] = []
    pos = 0
    while pos < len(text):
        match = _STEP.match(text, pos)
        if match is None:
            return None
        name, index, quoted = match.groups()
        steps.append(int(index) if index is not None else (name or quoted))
        pos = match.end()
    return tuple(steps) if steps else None


def printer_columns(specs: list[Obj]) -> tuple[PrinterColumn, ...]:
    """The Table columns of ``additionalPrinterColumns`` (entries with an unsupported path are skipped)."""
    out = []
    for spec in specs:
        path = parse_json_path(str(spec.get("jsonPath", "")))
        if path is None:
            continue
        kind = _COLUMN_TYPES.get(str(spec.get("type", "string")), "string")
        is_date = kind == "date"
        column = Column(str(spec.get("name", "")), "string" if is_date else kind, str(spec.get("format", "")),
                        str(spec.get("description", "")), int(spec.get("priority", 0) or 0))
        out.append(PrinterColumn(column, path, is_date))
    return tuple(out)


def _value_at(obj: Any, path: tuple[str | int, ...]) -> Any:
    for step in path:
        if isinstance(step, int):
            obj = obj[step] if isinstance(obj, list) and step < len(obj) else None
        else:
            obj = obj.get(step) if isinstance(obj, dict) else None
    return obj


def selectable_fields(specs: list[Obj]) -> tuple[tuple[str, tuple[str | int, ...]], ...]:
    """``selectableFields`` as (field-selector name, parsed path): ``.spec.color`` -> ``spec.color``."""
    out = []
    for spec in specs:
        text = str(spec.get("jsonPath", ""))
        path = parse_json_path(text)
        if path is not None:
            out.append((text.strip().lstrip("."), path))
    return tuple(out)


def _selector_value(value: Any) -> str:
    """A field value as field selectors compare it (booleans as ``true``/``false``)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class CustomStrategy(Strategy):
    """Behaviour of one served version of a custom resource."""

    strategic_merge = False

    def __init__(self, *, group: str, version: str, storage_version: str, schema: Obj | None,
                 status: bool, columns: tuple[PrinterColumn, ...], scale: Obj | None = None,
                 terminating: bool = False,
                 selectable: tuple[tuple[str, tuple[str | int, ...]], ...] = ()) -> None:
        self.group = group
        self.terminating = terminating
        self.selectable = selectable
        self.version = version
        self.storage_version = storage_version
        self.schema: Obj = schema or {"type": "object", structural.PRESERVE: True}
        self.has_status = status
        self.scale = scale
        self.converts = version != storage_version
        self._columns = columns
        self._rules = celrules.CelRules(self.schema) if celrules.has_rules(self.schema) else None

    @classmethod
    def from_crd(cls, crd: Obj, version: Obj) -> CustomStrategy:
        """The strategy of ``version`` (an entry of ``crd.spec.versions``)."""
        spec = crd.get("spec") or {}
        versions = spec.get("versions") or []
        storage = next((v.get("name") for v in versions if v.get("storage")), version.get("name"))
        subresources = version.get("subresources") or {}
        schema = (version.get("schema") or {}).get("openAPIV3Schema")
        columns = printer_columns(list(version.get("additionalPrinterColumns") or []))
        return cls(group=str(spec.get("group", "")), version=str(version.get("name", "")),
                   storage_version=str(storage), schema=schema, status="status" in subresources,
                   columns=columns, scale=subresources.get("scale"),
                   terminating=bool((crd.get("metadata") or {}).get("deletionTimestamp")),
                   selectable=selectable_fields(list(version.get("selectableFields") or [])))

    def create_refusal(self) -> str:
        return "create not allowed while custom resource definition is terminating" if self.terminating else ""

    def field_values(self, obj: Obj) -> dict[str, str]:
        """The CRD version's ``selectableFields`` (``spec.color`` -> its value as a string)."""
        return {name: _selector_value(_value_at(obj, path)) for name, path in self.selectable}

    def _api_version(self, version: str) -> str:
        return f"{self.group}/{version}"

    def to_storage(self, obj: Obj) -> Obj:
        if obj.get("apiVersion") == self._api_version(self.version):
            obj = {**obj, "apiVersion": self._api_version(self.storage_version)}
        return obj

    def from_storage(self, obj: Obj) -> Obj:
        return {**obj, "apiVersion": self._api_version(self.version)}

    def prepare_for_create(self, obj: Obj) -> None:
        if self.has_status:
            obj.pop("status", None)

    def unknown_fields(self, obj: Obj) -> list[str]:
        removed: list[str] = []
        structural.prune(self.schema, obj, removed=removed)
        return removed

    def default(self, obj: Obj) -> None:
        structural.prune(self.schema, obj)
        structural.apply_defaults(self.schema, obj)

    def validate(self, obj: Obj) -> list[Cause]:
        return self._validate(obj, None)

    def validate_update(self, obj: Obj, old: Obj) -> list[Cause]:
        """``validate`` plus the CEL transition rules (``oldSelf``)."""
        return self._validate(obj, old)

    def _validate(self, obj: Obj, old: Obj | None) -> list[Cause]:
        errs = structural.validate(self.schema, obj)
        if self._rules is not None and not errs:  # kube skips CEL when the schema already failed
            errs = self._rules.validate(obj) if old is None else self._rules.validate(obj, old)
        return errs

    def columns(self) -> list[Column]:
        """The CRD's printer columns, or AGE alone when it declares none (as kube)."""
        return [c.column for c in self._columns] if self._columns else [AGE]

    def cells(self, obj: Obj) -> list[Any]:
        return [c.cell(obj) for c in self._columns] if self._columns else [age(obj)]
