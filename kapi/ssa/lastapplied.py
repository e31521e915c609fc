"""Interplay of server-side apply with kubectl's client-side ``last-applied-configuration`` annotation.

kube-apiserver eases moving from ``kubectl apply`` to ``kubectl apply --server-side`` for managers
whose name starts with ``kubectl`` (users opt out by picking another ``--field-manager``):

* ``allowed_conflicts(live, node, ...)``: fields both in the live object and in its last-applied
  annotation; conflicts on them do not fail the apply (it is forced for them), because the
  client-side apply that set them was the same user's kubectl.
* ``sync_annotation(obj, applied)``: when the live object has the annotation, the server rewrites it
  to the newly applied configuration, so a later client-side apply sees what was last applied.
"""

from __future__ import annotations

from typing import Any

import orjson

from kapi.schema import SchemaNode
from kapi.ssa.fieldset import FieldSet, field_set, ownable

ANNOTATION = "kubectl.kubernetes.io/last-applied-configuration"
Obj = dict[str, Any]


def eases(manager: str) -> bool:
    """Whether a manager gets the client-side apply upgrade behaviour."""
    return manager.startswith("kubectl")


def _annotation(obj: Obj | None) -> str | None:
    annotations = ((obj or {}).get("metadata") or {}).get("annotations") or {}
    value = annotations.get(ANNOTATION)
    return value if isinstance(value, str) else None


def allowed_conflicts(live: Obj | None, node: SchemaNode | None, *, subresource: str = "",
                      ignore_status: bool = False) -> FieldSet:
    """Fields in both the live object and its last-applied configuration (empty without one)."""
    text = _annotation(live)
    if text is None or live is None:
        return set()
    try:
        last = orjson.loads(text)
    except orjson.JSONDecodeError:
        return set()
    if not isinstance(last, dict):
        return set()
    last_set = field_set(ownable(last, subresource=subresource, ignore_status=ignore_status), node)
    return last_set & field_set(ownable(live, subresource=subresource, ignore_status=ignore_status), node)


def sync_annotation(obj: Obj, applied: Obj) -> None:
    """Rewrite ``obj``'s last-applied annotation (if it has one) to ``applied``, minus the annotation."""
    if _annotation(obj) is None:
        return
    config = {**applied, "metadata": dict(applied.get("metadata") or {})}
    annotations = {k: v for k, v in (config["metadata"].get("annotations") or {}).items() if k != ANNOTATION}
    if annotations:
        config["metadata"]["annotations"] = annotations
    else:
        config["metadata"].pop("annotations", None)
    obj["metadata"]["annotations"][ANNOTATION] = orjson.dumps(config).decode() + "\n"
