"""Server-side apply and ``metadata.managedFields`` (field ownership per manager).

Driven by the schema catalog (``kapi.schema.SchemaNode``), so built-in and custom kinds work alike:
pass the kind's root node (``catalog.node_for(group, version, kind)``, None for schemaless kinds).

* ``fieldset`` — paths, field sets, ``diff``, the ``FieldsV1`` encoding.
* ``merge`` — merging an applied configuration into a live object.
* ``managed`` — managedFields entries: ``track_update`` (create/update/patch), ``apply`` (SSA with
  conflicts and ``force``), ``manager_name``.
"""

from __future__ import annotations

from kapi.ssa.managed import ApplyConflict, Conflict, apply, manager_name, track_update

__all__ = ["ApplyConflict", "Conflict", "apply", "manager_name", "track_update"]
