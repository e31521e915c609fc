"""Server-side printing: ``meta.k8s.io/v1`` Table responses for ``kubectl get``.

kubectl asks with ``Accept: application/json;as=Table;v=v1;g=meta.k8s.io, application/json``.
Rows carry the kind's columns (``Strategy.columns``/``cells``) after NAME, and the object as
``includeObject`` asks: ``Metadata`` (default: a PartialObjectMetadata), ``Object`` or ``None``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from kapi import errors
from kapi.resources import Column, ResourceType

NAME_COLUMN = Column("Name", "string", "name",
                     "Name must be unique within a namespace. Is required when creating resources, although some "
                     "resources may allow a client to request the generation of an appropriate name automatically. "
                     "Name is primarily intended for creation idempotence and configuration definition. Cannot be "
                     "updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names")


def wants_table(accept: str) -> bool:
    """True if the client asks for a Table (and accepts it first)."""
    for part in accept.split(","):
        params = {p.split("=", 1)[0].strip(): p.split("=", 1)[-1].strip() for p in part.split(";")[1:]}
        if params.get("as") == "Table":
            return params.get("g") == "meta.k8s.io" and params.get("v") in ("v1", "v1beta1")
        if part.strip():
            return False
    return False


def table_version(accept: str) -> str:
    return "meta.k8s.io/v1beta1" if "v=v1beta1" in accept and "v=v1;" not in accept else "meta.k8s.io/v1"


def _row_object(obj: dict[str, Any], include: str) -> dict[str, Any] | None:
    if include == "None":
        return None
    if include == "Object":
        return obj
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj.get("metadata", {})}


def make_table(rt: ResourceType, objects: Iterable[dict[str, Any]], *, include: str = "Metadata",
               list_meta: dict[str, Any] | None = None, api_version: str = "meta.k8s.io/v1",
               with_columns: bool = True) -> dict[str, Any]:
    """A Table of ``objects``."""
    if include not in ("None", "Metadata", "Object"):
        raise errors.bad_request(f'invalid includeObject "{include}": use None, Metadata or Object')
    strategy = rt.strategy
    lead = strategy.name_column_first
    rows = []
    for obj in objects:
        cells = strategy.cells(obj)
        row: dict[str, Any] = {"cells": [obj.get("metadata", {}).get("name", ""), *cells] if lead else cells}
        embedded = _row_object(obj, include)
        if embedded is not None:
            row["object"] = embedded
        rows.append(row)
    table: dict[str, Any] = {"kind": "Table", "apiVersion": api_version, "metadata": list_meta or {}}
    columns = (NAME_COLUMN, *strategy.columns()) if lead else tuple(strategy.columns())
    table["columnDefinitions"] = [c.to_dict() for c in columns] if with_columns else None
    table["rows"] = rows
    return table
