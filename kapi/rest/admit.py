"""Defaulting, validation and admission of an object on its way to storage.

Order (kube-apiserver's): prepare -> default -> mutating admission -> validation (generic metadata,
schema, kind rules; 422 Invalid with causes, or 400 for unknown fields under
``fieldValidation=Strict``) -> validating admission.

Admission warnings: every ``AdmissionRequest`` of one HTTP request shares one ``warnings`` list
(kept in the ASGI scope under ``WARNINGS_KEY``); plugins append to it, and ``validate_admission``
hands the collected sentences back for the ``Warning`` response header.
"""

from __future__ import annotations

from typing import Any

from kapi import errors, hooks, kinds, validation
from kapi.kinds import formats
from kapi.rest.context import Ctx
from kapi.types import AdmissionRequest, Operation

Obj = dict[str, Any]

#: kapi.kinds.name_format(rt) -> the object-name rule of validate_object_meta
NAME_RULES = {
    formats.NAME_DNS_SUBDOMAIN: validation.name_is_dns_subdomain,
    formats.NAME_DNS_LABEL: validation.name_is_dns_label,
    formats.NAME_DNS1035_LABEL: validation.name_is_dns1035_label,
    formats.NAME_PATH_SEGMENT: validation.name_is_path_segment,
}


WARNINGS_KEY = "kapi.admission_warnings"


def _warnings(ctx: Ctx) -> list[str]:
    """The request's shared admission-warnings list (created on first use)."""
    warnings: list[str] = ctx.request.scope.setdefault(WARNINGS_KEY, [])
    return warnings


def _request(ctx: Ctx, op: Operation, obj: Obj | None, old: Obj | None, subresource: str, name: str,
             dry_run: bool) -> AdmissionRequest:
    rt = ctx.rt
    return AdmissionRequest(operation=op, kind=rt.kind, api_group=rt.group, api_version=rt.version,
                            resource=rt.plural, subresource=subresource, namespace=ctx.namespace, name=name,
                            obj=obj, old_obj=old, user=ctx.user, dry_run=dry_run, warnings=_warnings(ctx))


async def mutate(ctx: Ctx, op: Operation, obj: Obj, old: Obj | None, *, subresource: str = "",
                 dry_run: bool = False) -> Obj:
    """Run the mutating admission chain; returns the (possibly new) object."""
    name = obj.get("metadata", {}).get("name", "")
    for impl in ctx.app.chains.mutate:
        request = _request(ctx, op, obj, old, subresource, name, dry_run)
        result = await hooks.invoke("kapi_mutate_admission", impl, {"request": request, "app": ctx.app})
        if result is not None:
            if not isinstance(result, dict):
                raise hooks.PluginFailure("kapi_mutate_admission", impl.plugin)
            obj = result
    return obj


async def validate_admission(ctx: Ctx, op: Operation, obj: Obj | None, old: Obj | None, *, name: str,
                             subresource: str = "", dry_run: bool = False) -> list[str]:
    """Run the validating admission chain (raises ``AdmissionDenied`` to reject).

    Returns the warnings that mutating and validating plugins added for this request (and clears
    them, so a retried update does not repeat them)."""
    if ctx.app.chains.validate:
        request = _request(ctx, op, obj, old, subresource, name, dry_run)
        await hooks.call_each("kapi_validate_admission", ctx.app.chains.validate, request=request, app=ctx.app)
    warnings: list[str] = ctx.request.scope.pop(WARNINGS_KEY, None) or []
    return warnings


def field_validation(ctx: Ctx) -> str:
    value = ctx.query("fieldValidation", "Warn") or "Warn"
    if value not in ("Strict", "Warn", "Ignore"):
        raise errors.bad_request(f'fieldValidation must be one of "Ignore", "Warn" or "Strict", not "{value}"')
    return value


def prune_unknown(ctx: Ctx, obj: Obj) -> list[str]:
    """Drop the fields the kind does not declare, before defaulting (the strategy prunes custom
    resources, the OpenAPI schema built-in kinds, as kube's decoder drops them): a 400 under
    ``fieldValidation=Strict`` (kubectl's default), warnings under Warn, silence under Ignore."""
    rt = ctx.rt
    unknown = rt.strategy.unknown_fields(obj) or \
        validation.prune_unknown_fields(ctx.app.schema, rt.group, rt.version, rt.kind, obj)
    if not unknown:
        return []
    mode = field_validation(ctx)
    if mode == "Strict":
        raise errors.bad_request(f'{rt.kind} in version "{rt.version}" cannot be handled as a {rt.kind}: strict '
                                 "decoding error: " + ", ".join(f'unknown field "{u}"' for u in unknown))
    return [f'unknown field "{u}"' for u in unknown] if mode == "Warn" else []


def validate(ctx: Ctx, obj: Obj, old: Obj | None) -> list[str]:
    """Validate ``obj`` (an update when ``old`` is given). Returns warnings for the Warning header.

    A body the schema cannot decode (wrong JSON types) or, under ``fieldValidation=Strict``, with
    unknown fields is a 400 BadRequest as in kube-apiserver; every other problem is a 422 Invalid
    listing all causes.
    """
    rt = ctx.rt
    mode = field_validation(ctx)
    result = validation.validate_against_schema(ctx.app.schema, rt.group, rt.version, rt.kind, obj,
                                                unknown_fields=mode)
    message = result.bad_request_message(rt.kind, rt.group_version)
    if message is not None:
        raise errors.bad_request(message)
    name_fn = NAME_RULES.get(kinds.name_format(rt), validation.name_is_dns_subdomain)
    causes = [*validation.validate_object_meta(obj, rt.namespaced, name_fn=name_fn), *result.causes]
    causes += rt.strategy.validate(obj) if old is None else rt.strategy.validate_update(obj, old)
    if causes:
        raise errors.invalid(rt.group, rt.kind, obj.get("metadata", {}).get("name", ""), tuple(causes))
    return list(result.warnings)
