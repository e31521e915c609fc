"""DefaultTolerationSeconds admission (``--enable-admission-plugins=DefaultTolerationSeconds``, on by default).

A new pod that does not tolerate the ``node.kubernetes.io/not-ready`` and
``node.kubernetes.io/unreachable`` NoExecute taints gets tolerations for them, bounded to
``tolerationSeconds: 300``: when its node goes away the pod is evicted after five minutes rather
than at once or never. A toleration with the taint's key (or an empty key) and the NoExecute
effect (or no effect) counts as tolerating it already.

Flags (kube-apiserver's): ``--default-not-ready-toleration-seconds`` and
``--default-unreachable-toleration-seconds`` (both 300). Embedders set
``plugin_options["admission_default_toleration_seconds"]`` keys ``not_ready`` / ``unreachable``.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from kapi import AdmissionRequest, Operation, hookimpl

if TYPE_CHECKING:
    from kapi import App

ALIASES = ("DefaultTolerationSeconds",)
PLUGIN_NAME = "admission_default_toleration_seconds"
NOT_READY = "node.kubernetes.io/not-ready"
UNREACHABLE = "node.kubernetes.io/unreachable"
DEFAULT_SECONDS = 300


def _seconds(options: Mapping[str, Any], key: str) -> int:
    value = options.get(key, DEFAULT_SECONDS)
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ValueError(f"{PLUGIN_NAME}.{key}: {value!r} is not a whole number of seconds") from None


def _tolerates(tolerations: list[Any], key: str) -> bool:
    return any(isinstance(t, dict) and t.get("key", "") in (key, "") and t.get("effect", "") in ("NoExecute", "")
               for t in tolerations)


def with_default_tolerations(pod: Mapping[str, Any], not_ready: int, unreachable: int) -> dict[str, Any] | None:
    """The pod with the two default tolerations added where missing, or None if it has both."""
    spec = pod.get("spec") or {}
    tolerations = list(spec.get("tolerations") or [])
    added = [{"key": key, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": seconds}
             for key, seconds in ((NOT_READY, not_ready), (UNREACHABLE, unreachable))
             if not _tolerates(tolerations, key)]
    if not added:
        return None
    return {**pod, "spec": {**spec, "tolerations": tolerations + added}}


@hookimpl
def kapi_add_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("DefaultTolerationSeconds admission")
    group.add_argument("--default-not-ready-toleration-seconds", type=int, default=DEFAULT_SECONDS,
                       help="tolerationSeconds of the not-ready:NoExecute toleration added to every pod (300)")
    group.add_argument("--default-unreachable-toleration-seconds", type=int, default=DEFAULT_SECONDS,
                       help="tolerationSeconds of the unreachable:NoExecute toleration added to every pod (300)")


@hookimpl
def kapi_read_options(args: argparse.Namespace) -> Mapping[str, Any]:
    return {"not_ready": args.default_not_ready_toleration_seconds,
            "unreachable": args.default_unreachable_toleration_seconds}


@hookimpl
def kapi_mutate_admission(request: AdmissionRequest, app: App) -> dict[str, Any] | None:
    """Add the default tolerations to pods on create."""
    if request.operation is not Operation.CREATE or request.resource != "pods" or request.api_group \
            or request.subresource or request.obj is None:
        return None
    options = app.config.options_for(PLUGIN_NAME)
    return with_default_tolerations(request.obj, _seconds(options, "not_ready"), _seconds(options, "unreachable"))
