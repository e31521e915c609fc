"""NamespaceLifecycle admission (``--enable-admission-plugins=NamespaceLifecycle``, on by default).

* Creating or updating a namespaced object needs its namespace to exist: otherwise 404
  ``namespaces "NAME" not found``. The watch cache is asked first, then storage (a namespace
  created a moment ago may not be cached yet).
* Nothing new may be created in a terminating namespace (``deletionTimestamp`` set or phase
  ``Terminating``): 403 ``unable to create new content in namespace NAME because it is being
  terminated``, with a ``NamespaceTerminating`` cause on ``metadata.namespace``.
* The namespaces ``default``, ``kube-system`` and ``kube-public`` may not be deleted: 403
  ``namespaces "default" is forbidden: this namespace may not be deleted``.

Deletes of namespaced objects, review requests and cluster-scoped objects are never checked.
These rules live only here, as in kube-apiserver: a server (or an embedded app) without this
plugin lets clients write into namespaces that do not exist. ``kapi-apiserver`` enables it by
default; embedders list it in ``Config.admission`` (``kapi.cli.DEFAULT_ADMISSION_PLUGINS`` is
kube's default set).

The existence check is a mutating-phase hook (it runs before every other mutating plugin, so a
missing namespace is reported as such rather than as, say, a missing service account); the delete
protection is a validating hook, since deletes only run validating admission.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kapi import AdmissionRequest, APIError, Cause, Operation, admissionkit, hookimpl

if TYPE_CHECKING:
    from kapi import App

ALIASES = ("NamespaceLifecycle",)
IMMORTAL_NAMESPACES = frozenset({"default", "kube-system", "kube-public"})
#: review kinds answer about the namespace without writing into it
REVIEW_RESOURCES = frozenset({"localsubjectaccessreviews", "subjectaccessreviews", "selfsubjectaccessreviews",
                              "selfsubjectrulesreviews", "tokenreviews", "selfsubjectreviews"})


def _terminating(namespace: dict[str, object]) -> bool:
    meta = namespace.get("metadata") or {}
    status = namespace.get("status") or {}
    return bool(isinstance(meta, dict) and meta.get("deletionTimestamp")) or \
        (isinstance(status, dict) and status.get("phase") == "Terminating")


@hookimpl
async def kapi_mutate_admission(request: AdmissionRequest, app: App) -> None:
    """404 for a missing namespace; 403 for a create in a terminating one."""
    if not request.namespace or request.resource == "namespaces" or request.resource in REVIEW_RESOURCES:
        return
    if request.operation not in (Operation.CREATE, Operation.UPDATE):
        return
    namespace = await admissionkit.objects.fetch(app, "", "v1", "namespaces", "", request.namespace)
    if namespace is None:
        raise APIError(404, "NotFound", f'namespaces "{request.namespace}" not found', kind="namespaces",
                       name=request.namespace)
    if request.operation is Operation.CREATE and _terminating(namespace):
        denied = admissionkit.forbidden(request, f"unable to create new content in namespace {request.namespace} "
                                                 f"because it is being terminated")
        denied.causes = (Cause("metadata.namespace", f"namespace {request.namespace} is being terminated",
                               "NamespaceTerminating"),)
        raise denied


@hookimpl
def kapi_validate_admission(request: AdmissionRequest) -> None:
    """403 for deleting one of the immortal namespaces."""
    if request.operation is Operation.DELETE and request.resource == "namespaces" and not request.api_group \
            and request.name in IMMORTAL_NAMESPACES:
        raise admissionkit.forbidden(request, "this namespace may not be deleted")
