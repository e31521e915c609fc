"""The built-in resource kinds: what kube-apiserver keeps in each registry's ``strategy.go``.

``builtin_resources()`` lists the served resources (discovery facts plus each kind's
``Strategy``). Modules by area: ``core`` (namespaces, configmaps, secrets, serviceaccounts,
endpoints, nodes), ``pods`` (+ ``podspec`` shared with workloads), ``services``, ``apps``,
``events``, ``rbac``, ``misc`` (leases, selfsubjectaccessreviews). Shared helpers:
``fielderrors`` (kube-formatted field errors), ``formats`` (name/label formats), ``printing``
(ages, Table helpers), ``quantity``, ``access``.

The kind modules are imported on first call, so ``kapi.kinds.formats`` & co. stay importable
from low-level modules (``kapi.selectors``) without import cycles.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kapi.resources import ResourceType


@functools.cache
def _builtin() -> tuple[ResourceType, ...]:
    from kapi.kinds import apps, core, events, misc, pods, rbac, services

    return (*core.resources_before_pods(), *pods.resources(), *core.resources_after_pods(),
            *services.resources(), *events.resources(), *apps.resources(), *misc.resources(),
            *rbac.resources())


def builtin_resources() -> list[ResourceType]:
    """Every built-in resource, core group first. A fresh list of frozen ``ResourceType`` objects
    sharing stateless strategies; callers may filter or extend it."""
    return list(_builtin())
