"""ValidatingAdmissionWebhook (``--enable-admission-plugins=ValidatingAdmissionWebhook``, on by default).

Calls the webhooks of every ValidatingWebhookConfiguration (admissionregistration.k8s.io/v1) whose
rules, namespaceSelector and objectSelector match the request - in parallel, as kube does - with
an AdmissionReview v1 over TLS, after every mutation. Any webhook answering ``allowed: false``
refuses the request (the first refusal in configuration order is reported:
``admission webhook "NAME" denied the request: ...``); patches are ignored. ``failurePolicy``,
``timeoutSeconds``, ``sideEffects``/dry run, ``caBundle`` and service/URL resolution are
described in ``kapi.admissionkit.webhooks``; ``matchConditions`` are not evaluated.

Options (``plugin_options["admission_validating_webhook"]``): ``services`` - a comma-separated
``NAMESPACE/NAME[:PORT]=https://HOST:PORT`` map for webhooks given by service reference.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from kapi import AdmissionRequest, admissionkit, hookimpl

if TYPE_CHECKING:
    from kapi import App
    from kapi.admissionkit.webhooks import Caller

ALIASES = ("ValidatingAdmissionWebhook",)
PLUGIN_NAME = "admission_validating_webhook"
CONFIGURATIONS = "validatingwebhookconfigurations"


def _caller(app: App) -> Caller:
    state = app.plugin_state(PLUGIN_NAME)
    if "caller" not in state:
        services = admissionkit.webhooks.parse_service_map(app.config.options_for(PLUGIN_NAME).get("services", ""))
        state["caller"] = admissionkit.webhooks.Caller(app, services)
    caller: Caller = state["caller"]
    return caller


@hookimpl
async def kapi_validate_admission(request: AdmissionRequest, app: App) -> None:
    """Call the matching validating webhooks concurrently; the first refusal (in order) wins."""
    if admissionkit.matching.is_exempt(request):
        return
    hooks = [h for h in admissionkit.webhooks.configured(app, CONFIGURATIONS)
             if await admissionkit.webhooks.applies(app, h, request)]
    if not hooks:
        return
    caller = _caller(app)
    results = await asyncio.gather(*(caller.review(h, request, request.obj) for h in hooks), return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result


@hookimpl
async def kapi_shutdown(app: App) -> None:
    caller = app.plugin_state(PLUGIN_NAME).pop("caller", None)
    if caller is not None:
        await caller.aclose()
