"""Resource discovery through ``/api`` and ``/apis`` (what the namespace controller and the
garbage collector use to find every kind of object).

``discover(client)`` reads the legacy discovery documents (``/api``, ``/api/v1``, ``/apis``,
``/apis/GROUP/VERSION``) and returns every served resource of every group version, without
subresources, each with its verbs and whether its version is the group's preferred one. A group
version whose document fails is skipped (and reported in ``Discovered.failed``), as client-go's
partial discovery does.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from kapi.client import ApiError, Client
from kapi.components.controllers.gvr import Resource

Obj = dict[str, Any]


@dataclass(frozen=True)
class ApiResource:
    """A served resource: where it lives, its verbs, and whether its version is preferred."""

    resource: Resource
    verbs: frozenset[str]
    preferred: bool = True

    def supports(self, *verbs: str) -> bool:
        return all(v in self.verbs for v in verbs)


@dataclass(frozen=True)
class Discovered:
    """The result of one discovery pass."""

    resources: tuple[ApiResource, ...] = ()
    failed: tuple[str, ...] = field(default=())

    def preferred(self) -> list[ApiResource]:
        """One entry per resource: the preferred version's."""
        return [r for r in self.resources if r.preferred]

    def by_kind(self) -> dict[tuple[str, str], Resource]:
        """``(apiVersion, kind) -> Resource`` over every version (for owner references)."""
        return {(r.resource.api_version, r.resource.kind): r.resource for r in self.resources}


def _entries(group: str, version: str, document: Obj, preferred: bool) -> Iterable[ApiResource]:
    for entry in document.get("resources") or []:
        name = str(entry.get("name") or "")
        if not name or "/" in name:
            continue
        resource = Resource(group, version, name, str(entry.get("kind") or ""), bool(entry.get("namespaced")))
        yield ApiResource(resource, frozenset(str(v) for v in entry.get("verbs") or []), preferred)


async def _group_version(client: Client, group: str, version: str, preferred: bool) -> list[ApiResource] | str:
    path = f"/apis/{group}/{version}" if group else f"/api/{version}"
    try:
        document = await client.get(path)
    except ApiError:
        return f"{group}/{version}" if group else version
    return list(_entries(group, version, document, preferred))


class DiscoveryCache:
    """The last discovery result, reused for ``max_age`` seconds (one pass shared by controllers)."""

    def __init__(self) -> None:
        self._result: Discovered | None = None
        self._at = 0.0
        self._lock = asyncio.Lock()

    async def get(self, client: Client, max_age: float) -> Discovered:
        """A result at most ``max_age`` seconds old (a failed pass is retried next time)."""
        async with self._lock:
            now = time.monotonic()
            if self._result is None or now - self._at > max_age or self._result.failed:
                self._result = await discover(client)
                self._at = now
            return self._result

    def invalidate(self) -> None:
        self._result = None


async def discover(client: Client) -> Discovered:
    """Every resource the API server serves. :raises ApiError: ``/api`` or ``/apis`` failed."""
    core, groups = await asyncio.gather(client.get("/api"), client.get("/apis"))
    wanted: list[tuple[str, str, bool]] = [("", v, i == 0) for i, v in enumerate(core.get("versions") or [])]
    for group in groups.get("groups") or []:
        name = str(group.get("name") or "")
        preferred = str((group.get("preferredVersion") or {}).get("version") or "")
        for version in group.get("versions") or []:
            value = str(version.get("version") or "")
            wanted.append((name, value, value == preferred))
    results = await asyncio.gather(*(_group_version(client, g, v, p) for g, v, p in wanted))
    resources: list[ApiResource] = []
    failed: list[str] = []
    for result in results:
        if isinstance(result, str):
            failed.append(result)
        else:
            resources.extend(result)
    return Discovered(tuple(resources), tuple(failed))
