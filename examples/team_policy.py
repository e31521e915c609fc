"""Example authorizer + admission plugin: one module, both halves of a "team" policy.

* ``kapi_authorize``: members of group ``team:NAME`` may do anything in namespace ``team-NAME``
  (and read namespaces); everything else is left to the next authorizer (``None``), so the
  plugin composes with RBAC: ``--authorization-mode=TeamPolicy,RBAC``.
* ``kapi_mutate_admission``: pods created in a team namespace get the label ``team=NAME``.
* ``kapi_validate_admission``: pods must not run privileged containers in team namespaces
  (rejected with 403 naming the plugin, like kube's admission errors).

Install: put it in your own package and list it in the ``kapi`` entry-point group
(``team_policy = my_package.team_policy``), or pass it to ``kapi.create_app(plugins=[...])``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kapi import AdmissionDenied, AdmissionRequest, Decision, Operation, RequestAttributes, hookimpl

ALIASES = ("TeamPolicy",)
TEAM_PREFIX = "team:"


def _team_namespaces(groups: tuple[str, ...]) -> set[str]:
    return {"team-" + g.removeprefix(TEAM_PREFIX) for g in groups if g.startswith(TEAM_PREFIX)}


@hookimpl
def kapi_authorize(attributes: RequestAttributes) -> Decision | None:
    """ALLOW inside the caller's team namespaces; no opinion elsewhere."""
    teams = _team_namespaces(attributes.user.groups)
    if not teams or not attributes.is_resource_request:
        return None
    if attributes.namespace in teams:
        return Decision.ALLOW
    if attributes.resource == "namespaces" and attributes.is_read_only:
        return Decision.ALLOW
    return None


def _is_team_namespace(namespace: str) -> bool:
    return namespace.startswith("team-")


@hookimpl
def kapi_mutate_admission(request: AdmissionRequest) -> Mapping[str, Any] | None:
    """Label new pods with their team."""
    if request.operation is not Operation.CREATE or request.resource != "pods" or request.obj is None:
        return None
    if not _is_team_namespace(request.namespace):
        return None
    obj = dict(request.obj)
    meta = dict(obj.get("metadata") or {})
    meta["labels"] = {**(meta.get("labels") or {}), "team": request.namespace.removeprefix("team-")}
    obj["metadata"] = meta
    return obj


@hookimpl
def kapi_validate_admission(request: AdmissionRequest) -> None:
    """Refuse privileged containers in team namespaces."""
    if request.resource != "pods" or request.obj is None or not _is_team_namespace(request.namespace):
        return
    for container in (request.obj.get("spec") or {}).get("containers") or []:
        if ((container.get("securityContext") or {}).get("privileged")) is True:
            raise AdmissionDenied(f'admission plugin "TeamPolicy" denied the request: container '
                                  f'"{container.get("name")}" may not be privileged in a team namespace')
