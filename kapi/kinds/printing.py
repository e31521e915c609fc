"""Helpers for server-side printing (the Table cells of ``kubectl get``), as kube's printers.go.

Ages are rendered here, in the cells, like kube-apiserver does (``translateTimestampSince``):
the column type is ``string`` and the cell already says ``5m``. ``human_duration`` is
k8s.io/apimachinery's ``duration.HumanDuration``.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from kapi.resources import Column

NONE = "<none>"
UNKNOWN = "<unknown>"

CREATION_TIMESTAMP_DOC = (
    "CreationTimestamp is a timestamp representing the server time when this object was created. It is not "
    "guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It "
    "is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More "
    "info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata")

#: The AGE column of nearly every printer (type string: the cell is a rendered age).
AGE = Column("Age", "string", description=CREATION_TIMESTAMP_DOC)
#: The column of kube's default table convertor (kinds without a printer): an RFC 3339 date.
CREATED_AT = Column("Created At", "date", description=CREATION_TIMESTAMP_DOC)
CONTAINERS = Column("Containers", "string", priority=1, description="Names of each container in the template.")
IMAGES = Column("Images", "string", priority=1, description="Images referenced by each container in the template.")


@functools.lru_cache(maxsize=8192)
def parse_time(timestamp: str) -> datetime | None:
    """An RFC 3339 timestamp (``Time`` or ``MicroTime``) as an aware datetime, None if unparsable."""
    try:
        parsed = datetime.fromisoformat(timestamp)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def human_duration(seconds: float) -> str:
    """``duration.HumanDuration``: ~2-3 significant figures (``45s``, ``3m20s``, ``5h``, ``3d4h``, ``2y``)."""
    whole = int(seconds)
    if whole < -1:
        return "<invalid>"
    if whole < 0:
        return "0s"
    if whole < 120:
        return f"{whole}s"
    minutes = whole // 60
    if minutes < 10:
        s = whole % 60
        return f"{minutes}m" if s == 0 else f"{minutes}m{s}s"
    if minutes < 180:
        return f"{minutes}m"
    hours = whole // 3600
    if hours < 8:
        m = minutes % 60
        return f"{hours}h" if m == 0 else f"{hours}h{m}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        h = hours % 24
        return f"{hours // 24}d" if h == 0 else f"{hours // 24}d{h}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        days = (hours // 24) % 365
        return f"{hours // 24 // 365}y" if days == 0 else f"{hours // 24 // 365}y{days}d"
    return f"{hours // 24 // 365}y"


def human_age(timestamp: str | None, now: datetime) -> str:
    """``translateTimestampSince``: the age of ``timestamp`` at ``now``, ``<unknown>`` when unset."""
    if not timestamp:
        return UNKNOWN
    then = parse_time(timestamp)
    if then is None:
        return UNKNOWN
    return human_duration((now - then).total_seconds())


def utcnow() -> datetime:
    return datetime.now(UTC)


def age(obj: Mapping[str, Any], now: datetime | None = None) -> str:
    """The AGE cell of ``obj`` (from ``metadata.creationTimestamp``)."""
    return human_age((obj.get("metadata") or {}).get("creationTimestamp"), now or utcnow())


def format_labels(labels: Mapping[str, str] | None) -> str:
    """``labels.FormatLabels``: ``a=1,b=2`` sorted by key, ``<none>`` when empty."""
    if not labels:
        return NONE
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def container_cells(containers: Sequence[Mapping[str, Any]] | None) -> tuple[str, str]:
    """``layoutContainerCells``: comma-joined container names and images."""
    containers = containers or []
    return (",".join(str(c.get("name", "")) for c in containers),
            ",".join(str(c.get("image", "")) for c in containers))

