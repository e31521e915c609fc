"""Admission webhooks: which webhooks apply to a request, and calling them with AdmissionReview v1.

``configured(app, plural)`` lists the webhooks of every Mutating/ValidatingWebhookConfiguration
(configurations by name, webhooks in order); ``applies(app, hook, request)`` checks rules,
namespace and object selectors; ``Caller.review(hook, request, obj)`` POSTs an AdmissionReview and
returns its ``response`` or raises ``APIError`` as kube-apiserver would:

* unreachable, timed out (``timeoutSeconds``) or malformed answers: with ``failurePolicy: Fail``
  a 500 ``failed calling webhook "NAME": ...``; with ``Ignore`` the webhook is skipped (``None``);
* ``allowed: false``: the webhook's status (code below 400 becomes 400), message ``admission
  webhook "NAME" denied the request: <message>``;
* the answer's ``warnings`` are added to the request's warnings.

Where a webhook is reached: ``clientConfig.url``, or for ``clientConfig.service`` (kapi has no
cluster network) the URL given for ``NAMESPACE/NAME[:PORT]`` in the plugin's ``services`` option
(``ns/svc=https://127.0.0.1:8443,...``), else the first address of the Service's Endpoints on the
matching port. Service calls verify the serving certificate for ``NAME.NAMESPACE.svc``, as kube
does; ``caBundle`` (base64 PEM) is the trust root when given, else the system's.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import ssl
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx
import orjson

from kapi import errors, patch
from kapi.admissionkit import matching, objects
from kapi.types import AdmissionRequest

if TYPE_CHECKING:
    from kapi.app import App

GROUP = "admissionregistration.k8s.io"
DEFAULT_TIMEOUT = 10

Obj = dict[str, Any]


@dataclass(frozen=True)
class Webhook:
    """One webhook of a configuration (already defaulted by the kind's strategy)."""

    configuration: str
    name: str
    spec: Mapping[str, Any] = field(compare=False)

    @property
    def fail_open(self) -> bool:
        return self.spec.get("failurePolicy") == "Ignore"

    @property
    def timeout(self) -> float:
        return float(self.spec.get("timeoutSeconds") or DEFAULT_TIMEOUT)


def configured(app: App, plural: str) -> list[Webhook]:
    """Every webhook of every configuration of ``plural`` (mutating/validatingwebhookconfigurations)."""
    configs = sorted(objects.cached_list(app, GROUP, "v1", plural), key=lambda c: c["metadata"]["name"])
    return [Webhook(c["metadata"]["name"], str(h.get("name", "")), h)
            for c in configs for h in c.get("webhooks") or [] if isinstance(h, dict)]


async def applies(app: App, hook: Webhook, request: AdmissionRequest) -> bool:
    """Rules, then object and namespace selectors (requests on admission configuration are exempt)."""
    if matching.is_exempt(request) or not matching.any_rule_matches(hook.spec.get("rules") or [], request):
        return False
    return await matching.selectors_match(app, request, hook.spec.get("namespaceSelector"),
                                          hook.spec.get("objectSelector"))


def review(request: AdmissionRequest, obj: Mapping[str, Any] | None, uid: str) -> Obj:
    """The AdmissionReview v1 request body for ``request`` (with ``obj`` as the object)."""
    kind = {"group": request.api_group, "version": request.api_version, "kind": request.kind}
    resource = {"group": request.api_group, "version": request.api_version, "resource": request.resource}
    option_kind = {"CREATE": "CreateOptions", "UPDATE": "UpdateOptions", "DELETE": "DeleteOptions"}.get(
        request.operation.value)
    body: Obj = {"uid": uid, "kind": kind, "resource": resource, "requestKind": kind, "requestResource": resource,
                 "name": request.name, "operation": request.operation.value, "userInfo": request.user.to_dict(),
                 "object": obj, "oldObject": request.old_obj, "dryRun": request.dry_run}
    if request.subresource:
        body["subResource"] = body["requestSubResource"] = request.subresource
    if request.namespace:
        body["namespace"] = request.namespace
    if option_kind:
        body["options"] = {"apiVersion": "meta.k8s.io/v1", "kind": option_kind}
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": body}


def denied(hook: Webhook, response: Mapping[str, Any]) -> errors.APIError:
    """``webhookerrors.ToStatusErr``: the webhook's status as the request's error."""
    raw_status = response.get("status")
    status: Mapping[str, Any] = raw_status if isinstance(raw_status, Mapping) else {}
    raw_code = status.get("code")
    code = raw_code if isinstance(raw_code, int) and raw_code >= 400 else 400
    prefix = f'admission webhook "{hook.name}" denied the request'
    reason_text = str(status.get("message") or status.get("reason") or "")
    message = f"{prefix}: {reason_text}" if reason_text else f"{prefix} without explanation"
    return errors.APIError(code, str(status.get("reason") or ""), message)


def apply_patch(hook: Webhook, obj: Obj, response: Mapping[str, Any]) -> Obj:
    """``obj`` with the response's base64 JSONPatch applied (a 500 when the patch is unusable)."""
    raw = response.get("patch")
    if not raw:
        return obj
    if response.get("patchType") != "JSONPatch":
        raise errors.internal(f'admission webhook "{hook.name}" returned an unsupported patchType '
                              f'"{response.get("patchType")}"; only JSONPatch is supported')
    try:
        operations = orjson.loads(base64.b64decode(str(raw), validate=True))
        patched = patch.json_patch(obj, operations)
    except (binascii.Error, ValueError, TypeError, KeyError, IndexError) as exc:
        raise errors.internal(f'admission webhook "{hook.name}" returned an invalid JSON patch: {exc}') from None
    if not isinstance(patched, dict):
        raise errors.internal(f'admission webhook "{hook.name}" patched the object into a non-object')
    return patched


class CallError(Exception):
    """A webhook could not be called or answered badly (the failure policy decides)."""


@dataclass(frozen=True)
class Target:
    url: str
    server_name: str | None
    ca_bundle: str


def parse_service_map(text: str) -> dict[str, str]:
    """``ns/name[:port]=https://host:port,...`` -> ``{"ns/name:port": url}`` (port 443 if omitted)."""
    table = {}
    for item in filter(None, (part.strip() for part in str(text or "").split(","))):
        ref, sep, url = item.partition("=")
        if not sep or "/" not in ref or not url.startswith("https://"):
            raise ValueError(f"webhook service mapping {item!r}: expected NAMESPACE/NAME[:PORT]=https://HOST:PORT")
        table[ref if ":" in ref else f"{ref}:443"] = url.rstrip("/")
    return table


class Caller:
    """Calls webhooks for one plugin: one HTTP client per trust root, closed with ``aclose``."""

    def __init__(self, app: App, services: Mapping[str, str]) -> None:
        self.app = app
        self.services = dict(services)
        self.clients: dict[str, httpx.AsyncClient] = {}

    def _client(self, ca_bundle: str) -> httpx.AsyncClient:
        client = self.clients.get(ca_bundle)
        if client is None:
            try:
                pem = base64.b64decode(ca_bundle).decode() if ca_bundle else None
                context = ssl.create_default_context(cadata=pem)
            except (binascii.Error, UnicodeDecodeError, ssl.SSLError, ValueError) as exc:
                raise CallError(f"invalid caBundle: {exc}") from None
            client = self.clients[ca_bundle] = httpx.AsyncClient(verify=context)
        return client

    async def aclose(self) -> None:
        for client in self.clients.values():
            await client.aclose()
        self.clients.clear()

    async def _target(self, hook: Webhook) -> Target:
        config = hook.spec.get("clientConfig") or {}
        ca_bundle = str(config.get("caBundle") or "")
        if config.get("url"):
            return Target(str(config["url"]), None, ca_bundle)
        service = config.get("service") or {}
        namespace, name = str(service.get("namespace", "")), str(service.get("name", ""))
        port, path = int(service.get("port") or 443), str(service.get("path") or "")
        base = self.services.get(f"{namespace}/{name}:{port}") or await self._endpoint(namespace, name, port)
        return Target(base + path, f"{name}.{namespace}.svc", ca_bundle)

    async def _endpoint(self, namespace: str, name: str, port: int) -> str:
        svc = await objects.fetch(self.app, "", "v1", "services", namespace, name)
        if svc is None:
            raise CallError(f'service "{namespace}/{name}" not found')
        ports = [p for p in (svc.get("spec") or {}).get("ports") or [] if p.get("port") == port]
        if not ports:
            raise CallError(f'service "{namespace}/{name}" has no port {port}')
        endpoints = await objects.fetch(self.app, "", "v1", "endpoints", namespace, name) or {}
        wanted = ports[0].get("name", "")
        for subset in endpoints.get("subsets") or []:
            subset_ports = subset.get("ports") or []
            chosen = next((p for p in subset_ports if p.get("name", "") == wanted), None)
            addresses = subset.get("addresses") or []
            if chosen is None and len(subset_ports) == 1:
                chosen = subset_ports[0]
            if chosen is not None and addresses:
                host = str(addresses[0].get("ip", ""))
                return f"https://{f'[{host}]' if ':' in host else host}:{chosen.get('port')}"
        raise CallError(f'service "{namespace}/{name}" has no ready endpoints; kapi has no cluster network: map it '
                        f"with the webhook plugin's services option (NAMESPACE/NAME:PORT=https://HOST:PORT)")

    async def _post(self, hook: Webhook, body: Obj) -> Obj:
        target = await self._target(hook)
        timeout = hook.timeout
        url = f"{target.url}{'&' if '?' in target.url else '?'}timeout={int(timeout)}s"
        extensions = {"sni_hostname": target.server_name} if target.server_name else None
        try:
            resp = await self._client(target.ca_bundle).post(url, content=orjson.dumps(body), timeout=timeout,
                                                             headers={"content-type": "application/json"},
                                                             extensions=extensions)
        except httpx.TimeoutException:
            raise CallError(f'Post "{url}": context deadline exceeded') from None
        except (httpx.HTTPError, ssl.SSLError, OSError) as exc:
            raise CallError(f'Post "{url}": {exc}') from None
        if resp.status_code != 200:
            raise CallError(f"the server responded with status {resp.status_code}")
        try:
            answer = orjson.loads(resp.content)
        except orjson.JSONDecodeError:
            raise CallError("the response is not JSON") from None
        response = answer.get("response") if isinstance(answer, dict) else None
        if not isinstance(response, dict):
            raise CallError("the response has no response field")
        if response.get("uid") != body["request"]["uid"]:
            raise CallError(f'expected response.uid="{body["request"]["uid"]}", got "{response.get("uid")}"')
        return response

    async def review(self, hook: Webhook, request: AdmissionRequest, obj: Mapping[str, Any] | None) -> Obj | None:
        """The webhook's response (allowed), or None when it failed open; raises on denial/failure."""
        if request.dry_run and hook.spec.get("sideEffects") not in ("None", "NoneOnDryRun"):
            raise errors.bad_request(f'admission webhook "{hook.name}" does not support dry run')
        try:
            response = await self._post(hook, review(request, obj, str(uuid.uuid4())))
        except CallError as exc:
            if hook.fail_open:
                return None
            raise errors.internal(f'Internal error occurred: failed calling webhook "{hook.name}": failed to call '
                                  f"webhook: {exc}") from None
        except asyncio.CancelledError:
            raise
        for warning in response.get("warnings") or []:
            request.warnings.append(str(warning))
        if not response.get("allowed"):
            raise denied(hook, response)
        return response
