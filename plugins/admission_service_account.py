"""ServiceAccount admission (``--enable-admission-plugins=ServiceAccount``, on by default), with the
controller that gives every namespace its ``default`` ServiceAccount.

On pod create:

* a pod without ``spec.serviceAccountName`` runs as ``default``;
* the service account must exist: else 403 ``error looking up service account NS/NAME:
  serviceaccount "NAME" not found`` (for ``default``, which the controller creates right after the
  namespace, the lookup is retried for about a second, as kube does);
* unless the pod or its service account sets ``automountServiceAccountToken: false``, the pod gets
  the projected ``kube-api-access-XXXXX`` volume (a bound service-account token valid 3607 s, the
  ``kube-root-ca.crt`` ConfigMap's ``ca.crt`` and the pod's namespace) mounted read-only at
  ``/var/run/secrets/kubernetes.io/serviceaccount`` in every container and init container that
  does not already mount something there;
* a pod without ``imagePullSecrets`` inherits its service account's;
* with the ``kubernetes.io/enforce-mountable-secrets: "true"`` annotation on the service account,
  the pod may only use the secrets the account lists (volumes, env, envFrom, image pull secrets);
* mirror pods (``kubernetes.io/config.mirror`` annotation, created by kubelets) are not mutated
  and may not reference service accounts or secrets.

The controller (started in ``kapi_startup`` when the plugin is enabled) follows namespaces and
service accounts from storage and creates ``default`` in every active namespace where it is
missing - also after someone deletes it. Creation is create-if-absent, so several API servers (or
the controller manager) never duplicate it.
"""

from __future__ import annotations

import asyncio
import random
import secrets
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from kapi import AdmissionRequest, EventType, Operation, admissionkit, hookimpl

if TYPE_CHECKING:
    from kapi import App
    from kapi.admissionkit.informer import Change

ALIASES = ("ServiceAccount",)
PLUGIN_NAME = "admission_service_account"
DEFAULT_NAME = "default"
MIRROR_ANNOTATION = "kubernetes.io/config.mirror"
ENFORCE_ANNOTATION = "kubernetes.io/enforce-mountable-secrets"
VOLUME_PREFIX = "kube-api-access-"
MOUNT_PATH = "/var/run/secrets/kubernetes.io/serviceaccount"
TOKEN_EXPIRATION = 3607
DEFAULT_LOOKUPS = 10
_NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"

Obj = dict[str, Any]


def token_volume_source() -> Obj:
    """The projected source of the ``kube-api-access`` volume (``TokenVolumeSource``)."""
    return {"defaultMode": 420, "sources": [
        {"serviceAccountToken": {"expirationSeconds": TOKEN_EXPIRATION, "path": "token"}},
        {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
        {"downwardAPI": {"items": [{"path": "namespace",
                                    "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}},
    ]}


def should_automount(service_account: Obj, spec: Obj) -> bool:
    """The pod's ``automountServiceAccountToken`` if set, else the account's, else True."""
    if spec.get("automountServiceAccountToken") is not None:
        return bool(spec["automountServiceAccountToken"])
    if service_account.get("automountServiceAccountToken") is not None:
        return bool(service_account["automountServiceAccountToken"])
    return True


def mount_token(spec: Obj) -> None:
    """Add the token volume and its mounts to a pod spec, in place (``mountServiceAccountToken``)."""
    volumes = [v for v in spec.get("volumes") or [] if isinstance(v, dict)]
    existing = next((v["name"] for v in volumes if str(v.get("name", "")).startswith(VOLUME_PREFIX)), None)
    name = existing or VOLUME_PREFIX + "".join(secrets.choice(_NAME_ALPHABET) for _ in range(5))
    needs_volume = False
    for field in ("initContainers", "containers"):
        containers = spec.get(field)
        if not isinstance(containers, list):
            continue
        updated = []
        for container in containers:
            mounts = list(container.get("volumeMounts") or []) if isinstance(container, dict) else []
            if isinstance(container, dict) and not any(m.get("mountPath") == MOUNT_PATH for m in mounts
                                                       if isinstance(m, dict)):
                container = {**container, "volumeMounts": [*mounts, {"name": name, "readOnly": True,
                                                                     "mountPath": MOUNT_PATH}]}
                needs_volume = True
            updated.append(container)
        spec[field] = updated
    if needs_volume and existing is None:
        spec["volumes"] = [*volumes, {"name": name, "projected": token_volume_source()}]


async def lookup(app: App, namespace: str, name: str) -> Obj | None:
    """The service account, retrying a while for ``default`` (its controller may be a moment late)."""
    attempts = DEFAULT_LOOKUPS if name == DEFAULT_NAME else 1
    for attempt in range(attempts):
        if attempt:
            await asyncio.sleep(random.uniform(0.05, 0.15))
        found = await admissionkit.objects.fetch(app, "", "v1", "serviceaccounts", namespace, name)
        if found is not None:
            return found
    return None


def _is_pod_create(request: AdmissionRequest) -> bool:
    return (request.operation is Operation.CREATE and request.resource == "pods" and not request.api_group
            and not request.subresource and request.obj is not None)


def _is_mirror(pod: Any) -> bool:
    return MIRROR_ANNOTATION in ((pod.get("metadata") or {}).get("annotations") or {})


async def _account_or_deny(request: AdmissionRequest, app: App, name: str) -> Obj:
    account = await lookup(app, request.namespace, name)
    if account is None:
        raise admissionkit.forbidden(request, f"error looking up service account {request.namespace}/{name}: "
                                              f'serviceaccount "{name}" not found')
    return account


@hookimpl
async def kapi_mutate_admission(request: AdmissionRequest, app: App) -> Obj | None:
    """Default the service account, mount its token, inherit image pull secrets."""
    if not _is_pod_create(request) or _is_mirror(request.obj):
        return None
    pod = dict(request.obj or {})
    spec = dict(pod.get("spec") or {})
    name = str(spec.get("serviceAccountName") or DEFAULT_NAME)
    spec["serviceAccountName"] = spec["serviceAccount"] = name
    account = await _account_or_deny(request, app, name)
    if should_automount(account, spec):
        mount_token(spec)
    if not spec.get("imagePullSecrets") and account.get("imagePullSecrets"):
        spec["imagePullSecrets"] = [{"name": s.get("name")} for s in account["imagePullSecrets"]
                                    if isinstance(s, dict)]
    pod["spec"] = spec
    return pod


def referenced_secrets(spec: Obj) -> Iterator[tuple[str, str]]:
    """``(where, secret name)`` for every secret a pod spec uses."""
    for volume in spec.get("volumes") or []:
        if isinstance(volume, dict) and isinstance(volume.get("secret"), dict):
            yield "volume", str(volume["secret"].get("secretName") or "")
        for source in ((volume.get("projected") or {}).get("sources") or []) if isinstance(volume, dict) else []:
            if isinstance(source, dict) and isinstance(source.get("secret"), dict):
                yield "volume", str(source["secret"].get("name") or "")
    for field in ("initContainers", "containers", "ephemeralContainers"):
        for container in spec.get(field) or []:
            if not isinstance(container, dict):
                continue
            for env in container.get("env") or []:
                ref = ((env or {}).get("valueFrom") or {}).get("secretKeyRef") if isinstance(env, dict) else None
                if isinstance(ref, dict):
                    yield "env", str(ref.get("name") or "")
            for env_from in container.get("envFrom") or []:
                ref = env_from.get("secretRef") if isinstance(env_from, dict) else None
                if isinstance(ref, dict):
                    yield "envFrom", str(ref.get("name") or "")
    for secret in spec.get("imagePullSecrets") or []:
        if isinstance(secret, dict):
            yield "imagePullSecrets", str(secret.get("name") or "")


@hookimpl
async def kapi_validate_admission(request: AdmissionRequest, app: App) -> None:
    """The account exists; mirror pods stay apart; mountable secrets are enforced."""
    if not _is_pod_create(request):
        return
    spec = (request.obj or {}).get("spec") or {}
    name = str(spec.get("serviceAccountName") or "")
    if _is_mirror(request.obj):
        if name:
            raise admissionkit.forbidden(request, "a mirror pod may not reference service accounts")
        if any(True for _ in referenced_secrets(spec)):
            raise admissionkit.forbidden(request, "a mirror pod may not reference secrets")
        return
    if not name:
        return
    account = await _account_or_deny(request, app, name)
    if ((account.get("metadata") or {}).get("annotations") or {}).get(ENFORCE_ANNOTATION) != "true":
        return
    allowed = {str(s.get("name")) for s in account.get("secrets") or [] if isinstance(s, dict)}
    pull = {str(s.get("name")) for s in account.get("imagePullSecrets") or [] if isinstance(s, dict)}
    for where, secret in referenced_secrets(spec):
        if secret not in (pull if where == "imagePullSecrets" else allowed):
            noun = "image pull secret" if where == "imagePullSecrets" else "secret"
            raise admissionkit.forbidden(request, f'{where} with {noun} "{secret}" is not allowed because service '
                                                  f"account {name} does not reference that {noun}")


# ---------------------------------------------------------------------------------------------
# the default service account controller


async def ensure_default(app: App, namespace: str) -> bool:
    """Create ``default`` in ``namespace`` if missing (and the namespace is active); True if created."""
    ns = await admissionkit.objects.fetch(app, "", "v1", "namespaces", "", namespace)
    if ns is None or (ns.get("metadata") or {}).get("deletionTimestamp") \
            or (ns.get("status") or {}).get("phase") == "Terminating":
        return False
    account = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": DEFAULT_NAME,
                                                                          "namespace": namespace}}
    return await admissionkit.objects.create_if_absent(app, "", "v1", "serviceaccounts", account)


@hookimpl
async def kapi_startup(app: App) -> None:
    """Start the default service account controller (only when the plugin is enabled)."""
    if PLUGIN_NAME not in app.chains.admission_names:
        return

    async def on_namespace(change: Change) -> None:
        if change.type is not EventType.DELETED:
            await ensure_default(app, str(change.obj.get("metadata", {}).get("name", "")))

    async def on_account(change: Change) -> None:
        meta = change.obj.get("metadata", {})
        if change.type is EventType.DELETED and meta.get("name") == DEFAULT_NAME:
            await ensure_default(app, str(meta.get("namespace", "")))

    background = admissionkit.informer.Background(app, PLUGIN_NAME)
    for plural, handler in (("namespaces", on_namespace), ("serviceaccounts", on_account)):
        informer = admissionkit.informer.Informer(app, "", "v1", plural, handler)
        background.spawn(informer.run(), name=f"kapi-serviceaccounts-{plural}")


@hookimpl
async def kapi_shutdown(app: App) -> None:
    await admissionkit.informer.Background(app, PLUGIN_NAME).stop()
