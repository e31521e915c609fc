"""MutatingAdmissionWebhook (``--enable-admission-plugins=MutatingAdmissionWebhook``, on by default).

Calls the webhooks of every MutatingWebhookConfiguration (admissionregistration.k8s.io/v1) whose
rules, namespaceSelector and objectSelector match the request, one after another (configurations
by name, webhooks in order), each with an AdmissionReview v1 over TLS. A webhook answers allowed
or not and may return a ``JSONPatch`` (base64) that is applied to the object before the next one
sees it. ``reinvocationPolicy: IfNeeded`` webhooks are called once more, at the end, when a later
webhook changed the object after them. ``failurePolicy``, ``timeoutSeconds``, ``sideEffects`` and
dry run, ``caBundle`` and the service/URL resolution are described in
``kapi.admissionkit.webhooks``.

Deletes run only kapi's validating admission: mutating webhooks whose rules name DELETE are
called there (they can refuse a delete; there is nothing to patch). Reinvocation covers changes
made by other webhooks, not by built-in plugins ordered after this one (kube's default order puts
this plugin after the built-in mutators anyway). ``matchConditions`` are not evaluated.

Options (``plugin_options["admission_mutating_webhook"]``): ``services`` - a comma-separated
``NAMESPACE/NAME[:PORT]=https://HOST:PORT`` map for webhooks given by service reference.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kapi import AdmissionRequest, Operation, admissionkit, hookimpl

if TYPE_CHECKING:
    from kapi import App
    from kapi.admissionkit.webhooks import Caller, Webhook

ALIASES = ("MutatingAdmissionWebhook",)
PLUGIN_NAME = "admission_mutating_webhook"
CONFIGURATIONS = "mutatingwebhookconfigurations"

Obj = dict[str, Any]


def _caller(app: App) -> Caller:
    state = app.plugin_state(PLUGIN_NAME)
    if "caller" not in state:
        services = admissionkit.webhooks.parse_service_map(app.config.options_for(PLUGIN_NAME).get("services", ""))
        state["caller"] = admissionkit.webhooks.Caller(app, services)
    caller: Caller = state["caller"]
    return caller


async def _matching(app: App, request: AdmissionRequest) -> list[Webhook]:
    if admissionkit.matching.is_exempt(request):
        return []
    return [h for h in admissionkit.webhooks.configured(app, CONFIGURATIONS)
            if await admissionkit.webhooks.applies(app, h, request)]


async def _invoke(app: App, hook: Webhook, request: AdmissionRequest, obj: Obj) -> Obj:
    response = await _caller(app).review(hook, request, obj)
    return admissionkit.webhooks.apply_patch(hook, obj, response) if response is not None else obj


@hookimpl
async def kapi_mutate_admission(request: AdmissionRequest, app: App) -> Obj | None:
    """Call the matching mutating webhooks in order, applying their patches; reinvoke if needed."""
    hooks = await _matching(app, request)
    if not hooks or request.obj is None:
        return None
    original = obj = dict(request.obj)
    after: list[tuple[Webhook, Obj]] = []
    for hook in hooks:
        obj = await _invoke(app, hook, request, obj)
        after.append((hook, obj))
    for hook, seen in after:
        if hook.spec.get("reinvocationPolicy") == "IfNeeded" and seen != obj:
            obj = await _invoke(app, hook, request, obj)
    return obj if obj != original else None


@hookimpl
async def kapi_validate_admission(request: AdmissionRequest, app: App) -> None:
    """Deletes: mutating webhooks that match DELETE may still refuse it."""
    if request.operation is Operation.DELETE:
        for hook in await _matching(app, request):
            await _caller(app).review(hook, request, None)


@hookimpl
async def kapi_shutdown(app: App) -> None:
    caller = app.plugin_state(PLUGIN_NAME).pop("caller", None)
    if caller is not None:
        await caller.aclose()
