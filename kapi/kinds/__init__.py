"""The built-in resource kinds: what kube-apiserver keeps in each registry's ``strategy.go``.

``builtin_resources()`` lists the served resources (discovery facts plus each kind's
``Strategy``). Modules by area: ``core`` (namespaces, serviceaccounts, endpoints),
``configdata`` (configmaps, secrets), ``nodes``, ``pods`` (+ ``podspec`` shared with
workloads), ``services``, ``apps``, ``batch`` (jobs, cronjobs), ``discovery``
(endpointslices), ``events``, ``rbac``, ``misc`` (leases, selfsubjectaccessreviews), ``authorization`` (the other
access and rules reviews), ``quota`` (limitranges,
resourcequotas), ``scheduling`` (priorityclasses), ``admissionregistration`` (webhook
configurations, validating admission policies and bindings), ``apiextensions``
(customresourcedefinitions; custom objects' strategy in ``custom``, schemas in ``structural``). Shared helpers:
``fielderrors`` (kube-formatted field errors), ``formats`` (name/label formats), ``printing``
(ages, Table helpers), ``quantity``, ``access``.

The kind modules are imported on first call, so ``kapi.kinds.formats`` & co. stay importable
from low-level modules (``kapi.selectors``) without import cycles.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

from kapi.kinds.formats import NAME_DNS_SUBDOMAIN

if TYPE_CHECKING:
    from kapi.resources import ResourceType


@functools.cache
def _builtin() -> tuple[ResourceType, ...]:
    from kapi.kinds import (
        admissionregistration,
        apiextensions,
        apps,
        authn,
        authorization,
        batch,
        configdata,
        core,
        discovery,
        events,
        misc,
        nodes,
        pods,
        quota,
        rbac,
        scheduling,
        services,
    )

    return (*core.resources(), *configdata.resources(), *nodes.resources(), *pods.resources(),
            *services.resources(), *events.resources(), *apps.resources(), *batch.resources(),
            *discovery.resources(), *misc.resources(), *rbac.resources(), *authn.authn_resources(),
            *authorization.resources(), *quota.resources(), *scheduling.resources(), *admissionregistration.resources(),
            *apiextensions.resources())


def builtin_resources() -> list[ResourceType]:
    """Every built-in resource, core group first. A fresh list of frozen ``ResourceType`` objects
    sharing stateless strategies; callers may filter or extend it."""
    return list(_builtin())


def name_format(rt: ResourceType) -> str:
    """The object-name rule of a resource (``kapi.kinds.formats.NAME_*``): a strategy's
    ``name_format`` attribute, else DNS subdomain. For ``validate_object_meta``'s ``name_fn``."""
    return str(getattr(rt.strategy, "name_format", NAME_DNS_SUBDOMAIN))
