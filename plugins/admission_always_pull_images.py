"""AlwaysPullImages admission (``--enable-admission-plugins=AlwaysPullImages``; opt-in, as in kube).

Every container of a pod (init and ephemeral ones included) gets ``imagePullPolicy: Always`` on
create and update, so a pod can only use an image its credentials can pull, never one another
tenant's pod left cached on the node. The validating half refuses pods whose containers (new or
with a changed image, on update) do not use ``Always``: 403 ``pods "NAME" is forbidden:
spec.containers[0].imagePullPolicy: Unsupported value: "IfNotPresent": supported values: "Always"``.
"""

from __future__ import annotations

from typing import Any

from kapi import AdmissionRequest, Operation, admissionkit, hookimpl

ALIASES = ("AlwaysPullImages",)
CONTAINER_LISTS = ("initContainers", "containers", "ephemeralContainers")


def _applies(request: AdmissionRequest) -> bool:
    return (request.operation in (Operation.CREATE, Operation.UPDATE) and request.resource == "pods"
            and not request.api_group and request.subresource in ("", "ephemeralcontainers")
            and request.obj is not None)


def always_pull(pod: dict[str, Any]) -> dict[str, Any] | None:
    """The pod with every container's pull policy set to Always, or None if it already is."""
    spec = dict(pod.get("spec") or {})
    changed = False
    for field in CONTAINER_LISTS:
        containers = spec.get(field)
        if not isinstance(containers, list):
            continue
        updated = [{**c, "imagePullPolicy": "Always"} if isinstance(c, dict) else c for c in containers]
        changed = changed or updated != containers
        spec[field] = updated
    return {**pod, "spec": spec} if changed else None


def _old_images(old: Any) -> dict[tuple[str, str], Any]:
    spec = (old or {}).get("spec") or {}
    return {(field, str(c.get("name"))): c.get("image") for field in CONTAINER_LISTS
            for c in spec.get(field) or [] if isinstance(c, dict)}


@hookimpl
def kapi_mutate_admission(request: AdmissionRequest) -> dict[str, Any] | None:
    """Set ``imagePullPolicy: Always`` everywhere."""
    return always_pull(dict(request.obj or {})) if _applies(request) else None


@hookimpl
def kapi_validate_admission(request: AdmissionRequest) -> None:
    """Refuse containers that would not pull their image."""
    if not _applies(request):
        return
    old = _old_images(request.old_obj) if request.operation is Operation.UPDATE else {}
    spec = (request.obj or {}).get("spec") or {}
    for field in CONTAINER_LISTS:
        for i, container in enumerate(spec.get(field) or []):
            if not isinstance(container, dict):
                continue
            key = (field, str(container.get("name")))
            if key in old and old[key] == container.get("image"):
                continue
            policy = container.get("imagePullPolicy", "")
            if policy != "Always":
                raise admissionkit.forbidden(request, f'spec.{field}[{i}].imagePullPolicy: Unsupported value: '
                                                      f'"{policy}": supported values: "Always"')
