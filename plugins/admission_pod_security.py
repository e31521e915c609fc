"""PodSecurity admission (``--enable-admission-plugins=PodSecurity``, on by default): the Pod Security
Standards, chosen per namespace by labels.

Namespace labels (kube's): ``pod-security.kubernetes.io/enforce``, ``.../warn`` and ``.../audit``
with a level - ``privileged`` (anything goes, the default), ``baseline`` or ``restricted`` - and
optional ``...-version`` labels (``latest`` or ``v1.N``; kapi always evaluates the latest checks,
listed in ``kapi.admissionkit.podsecurity``).

* enforce: a pod that violates the level is refused, 403 ``pods "web" is forbidden: violates
  PodSecurity "restricted:latest": allowPrivilegeEscalation != false (container "web" must set
  securityContext.allowPrivilegeEscalation=false), ...``;
* warn: the pod (or a workload whose pod template would violate it: Deployments, ReplicaSets,
  StatefulSets, DaemonSets, Jobs, CronJobs, ReplicationControllers, PodTemplates) is admitted and
  the client gets a ``Warning`` header ``would violate PodSecurity "restricted:latest": ...``;
* audit: the violation is logged (logger ``kapi.podsecurity``);
* setting a namespace's labels to an unknown level or version is 422 Invalid; raising its enforce
  level warns about the namespace's existing pods that would now be refused.

Pod updates are only evaluated when the pod spec changes in a way that matters (not for label,
annotation, image, toleration or activeDeadlineSeconds changes); status and other subresources
are never. Options (``plugin_options["admission_pod_security"]``): ``enforce``, ``warn``,
``audit`` (default levels for unlabelled namespaces, ``privileged``), ``exempt_usernames``,
``exempt_namespaces``, ``exempt_runtime_classes`` (comma-separated).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from kapi import AdmissionDenied, AdmissionRequest, Operation, admissionkit, hookimpl

if TYPE_CHECKING:
    from kapi import App

ALIASES = ("PodSecurity",)
PLUGIN_NAME = "admission_pod_security"
LABEL_PREFIX = "pod-security.kubernetes.io/"
MODES = ("enforce", "warn", "audit")
_VERSION = re.compile(r"^(latest|v1\.(0|[1-9][0-9]*))$")
#: (group, resource) -> path to the pod template of a workload
TEMPLATES: dict[tuple[str, str], tuple[str, ...]] = {
    ("apps", "deployments"): ("spec", "template"), ("apps", "replicasets"): ("spec", "template"),
    ("apps", "statefulsets"): ("spec", "template"), ("apps", "daemonsets"): ("spec", "template"),
    ("batch", "jobs"): ("spec", "template"), ("batch", "cronjobs"): ("spec", "jobTemplate", "spec", "template"),
    ("", "replicationcontrollers"): ("spec", "template"), ("", "podtemplates"): ("template",),
}
#: pod spec fields whose change does not make an update worth re-evaluating
INSIGNIFICANT_SPEC_FIELDS = ("tolerations", "activeDeadlineSeconds", "terminationGracePeriodSeconds")

log = logging.getLogger("kapi.podsecurity")

Obj = Mapping[str, Any]


def _options(app: App) -> Mapping[str, Any]:
    return app.config.options_for(PLUGIN_NAME)


def _csv(value: Any) -> frozenset[str]:
    return frozenset(v.strip() for v in str(value or "").split(",") if v.strip())


def policy(labels: Mapping[str, str], defaults: Mapping[str, Any]) -> tuple[dict[str, tuple[str, str]], list[str]]:
    """``{mode: (level, version)}`` from a namespace's labels (defaults for missing ones), and the
    label errors in kube's field-error words."""
    result: dict[str, tuple[str, str]] = {}
    errors = []
    for mode in MODES:
        key = LABEL_PREFIX + mode
        level = labels.get(key, str(defaults.get(mode, "privileged")))
        version = labels.get(f"{key}-version", "latest")
        if level not in admissionkit.podsecurity.LEVELS:
            errors.append(f'metadata.labels[{key}]: Invalid value: "{level}": must be one of privileged, baseline, '
                          f"restricted")
            level = "privileged"
        if not _VERSION.match(version):
            errors.append(f'metadata.labels[{key}-version]: Invalid value: "{version}": must be "latest" or "v1.x"')
        result[mode] = (level, version)
    return result, errors


def _template(request: AdmissionRequest) -> Obj | None:
    path = TEMPLATES.get((request.api_group, request.resource))
    node: Any = request.obj
    for step in path or ():
        node = node.get(step) if isinstance(node, Mapping) else None
    return node if path and isinstance(node, Mapping) else None


def _significant_update(new: Obj, old: Obj | None) -> bool:
    if old is None:
        return True

    def stripped(pod: Obj) -> dict[str, Any]:
        spec = {k: v for k, v in (pod.get("spec") or {}).items() if k not in INSIGNIFICANT_SPEC_FIELDS}
        for field in ("initContainers", "containers", "ephemeralContainers"):
            if isinstance(spec.get(field), list):
                spec[field] = [{k: v for k, v in c.items() if k != "image"} if isinstance(c, Mapping) else c
                               for c in spec[field]]
        return spec

    return stripped(new) != stripped(old)


def _exempt(request: AdmissionRequest, app: App, spec: Obj) -> bool:
    options = _options(app)
    return (request.user.name in _csv(options.get("exempt_usernames"))
            or request.namespace in _csv(options.get("exempt_namespaces"))
            or str(spec.get("runtimeClassName") or "") in _csv(options.get("exempt_runtime_classes")))


async def _namespace_policy(app: App, namespace: str) -> dict[str, tuple[str, str]]:
    ns = await admissionkit.objects.fetch(app, "", "v1", "namespaces", "", namespace)
    labels = ((ns or {}).get("metadata") or {}).get("labels") or {}
    return policy(labels, _options(app))[0]


async def _check_pod_like(request: AdmissionRequest, app: App, metadata: Obj, spec: Obj, enforce: bool) -> None:
    if _exempt(request, app, spec):
        return
    modes = await _namespace_policy(app, request.namespace)
    evaluated: dict[str, list[admissionkit.podsecurity.Failure]] = {}
    for mode in MODES:
        level, version = modes[mode]
        if level == "privileged" or (mode == "enforce" and not enforce):
            continue
        failures = evaluated.setdefault(level, admissionkit.podsecurity.evaluate(level, metadata, spec))
        if not failures:
            continue
        if mode == "enforce":
            raise admissionkit.forbidden(request, admissionkit.podsecurity.message(level, version, failures))
        text = admissionkit.podsecurity.message(level, version, failures, verb="would violate")
        if mode == "warn":
            request.warnings.append(text)
        else:
            log.info("audit: %s %s/%s by %s %s", admissionkit.qualified_resource(request), request.namespace,
                     admissionkit.object_name(request), request.user.name, text)


async def _pods_now_refused(app: App, namespace: str, level: str, version: str) -> list[str]:
    refused = []
    for pod in await admissionkit.objects.consistent_list(app, "", "v1", "pods", namespace):
        failures = admissionkit.podsecurity.evaluate(level, pod.get("metadata") or {}, pod.get("spec") or {})
        if failures:
            refused.append(f"{pod['metadata'].get('name')}: {', '.join(reason for reason, _ in failures)}")
    if not refused:
        return []
    return [f'existing pods in namespace "{namespace}" violate the new PodSecurity enforce level '
            f'"{level}:{version}"', *sorted(refused)[:10]]


async def _check_namespace(request: AdmissionRequest, app: App) -> None:
    labels = ((request.obj or {}).get("metadata") or {}).get("labels") or {}
    modes, errors = policy(labels, _options(app))
    if errors:
        raise AdmissionDenied(f'namespaces "{request.name}" is invalid: {", ".join(errors)}', code=422)
    if request.operation is not Operation.UPDATE:
        return
    old_labels = ((request.old_obj or {}).get("metadata") or {}).get("labels") or {}
    old_level = policy(old_labels, _options(app))[0]["enforce"][0]
    level, version = modes["enforce"]
    if admissionkit.podsecurity.LEVELS.index(level) > admissionkit.podsecurity.LEVELS.index(old_level):
        request.warnings.extend(await _pods_now_refused(app, request.name, level, version))


@hookimpl
async def kapi_validate_admission(request: AdmissionRequest, app: App) -> None:
    """Enforce, warn about and audit pod security levels."""
    if request.operation not in (Operation.CREATE, Operation.UPDATE) or request.obj is None:
        return
    if not request.api_group and request.resource == "namespaces" and not request.subresource:
        await _check_namespace(request, app)
        return
    if not request.namespace:
        return
    if not request.api_group and request.resource == "pods":
        if request.subresource not in ("", "ephemeralcontainers"):
            return
        if request.operation is Operation.UPDATE and not _significant_update(request.obj, request.old_obj):
            return
        await _check_pod_like(request, app, request.obj.get("metadata") or {}, request.obj.get("spec") or {}, True)
        return
    template = _template(request) if not request.subresource else None
    if template is not None:
        await _check_pod_like(request, app, template.get("metadata") or {}, template.get("spec") or {}, False)
